"""The package's public face: __all__, cheap import, environment.yml in step with pyproject."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

import gitops_nb

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"kubernetes": "python-kubernetes"}


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n in dir(gitops_nb) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(gitops_nb, n)).__name__ == "module"}
    assert set(gitops_nb.__all__) == (public - modules) | {"plot_timeline", "show", "IncidentConsole"}
    for name in gitops_nb.__all__:
        assert getattr(gitops_nb, name) is not None


def test_import_is_cheap() -> None:
    code = (
        "import sys, gitops_nb; heavy = [m for m in ('kubernetes', 'plotly', 'ipywidgets', 'papermill') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].strip().lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d): d for d in env["dependencies"] if isinstance(d, str)}
    for req in project["dependencies"]:
        name = _name(req).replace("_", "-")
        cname = CONDA_NAMES.get(name, name)
        assert cname in conda, f"{req} is in pyproject.toml but not in environment.yml as {cname}"
        spec = req[len(_name(req)) :].strip()
        assert conda[cname].replace(" ", "").endswith(spec.replace(" ", "")), (req, conda[cname])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python>="))
    assert python == f"python{project['requires-python']}"


def test_console_script_and_module_entry() -> None:
    for cmd in (
        [sys.executable, "-m", "gitops_nb", "--help"],
        [str(Path(sys.executable).parent / "gitops-nb"), "--help"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        assert "what-changed" in out and "demo" in out


OLD_PATHS = {
    "gitops_nb.widgets": "IncidentConsole",
    "gitops_nb.cli": "run_notebook",
    "gitops_nb.history": "DeployRepo",
    "gitops_nb.timeline": "what_changed",
    "gitops_nb.actions": "RECORD_COLUMNS",
    "gitops_nb.runbook": "incident_records",
    "gitops_nb.evidence": "Snapshot",
    "gitops_nb.demo": "RepoWriter",
    "gitops_nb.report": "load_results",
}


def test_the_old_module_paths_still_work_with_a_deprecation_warning() -> None:
    """0.1's module paths are kept for one release (CHANGELOG), each import warning once."""
    for old, name in OLD_PATHS.items():
        code = f"import warnings; warnings.simplefilter('error'); from {old} import {name}"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode != 0 and "DeprecationWarning" in res.stderr and "moved to" in res.stderr, (
            old,
            res.stderr,
        )
        ok = subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-c", f"from {old} import {name}; print({name})"],
            capture_output=True,
            text=True,
        )
        assert ok.returncode == 0 and ok.stdout.strip(), (old, ok.stderr)
    from gitops_nb import schema

    cols = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "from gitops_nb.actions import RECORD_COLUMNS; print(RECORD_COLUMNS)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert cols.strip() == str(list(schema.ACTION_RECORDS))
