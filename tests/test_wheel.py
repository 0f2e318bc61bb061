"""The wheel on its own: built from this checkout, installed into a fresh virtualenv outside it, and used there.

The virtualenv is made with ``python -m venv`` (no system site-packages) and the wheel is installed
with its dependencies from the package index as a user's ``pip install gitops-nb`` would. That took
81 s and 112 s on a quiet 2-core machine, and 139-174 s beside other builds and test suites (load
average 11): under the 3 minutes that would justify borrowing the development venv's site-packages
through a ``.pth`` file instead, and it proves the declared dependencies are enough on their own. Everything runs from a temporary directory outside the checkout
with ``PYTHONPATH`` removed, so only the installed copy can be imported; the tests assert that it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from gitops_nb.sandbox.demo import DemoRepo

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Installed:
    """A fresh virtualenv with the wheel installed, and what it took."""

    venv: Path
    wheel: Path
    work: Path  # a scratch directory outside the checkout, used as cwd
    env: dict[str, str]  # the environment the installed copy runs in (no PYTHONPATH)
    build_log: str
    install_log: str
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a program of the venv (``gitops-nb``, ``python``, ``papermill``) and require success."""
        exe = args[0] if "/" in args[0] else str(self.venv / "bin" / args[0])
        res = subprocess.run(
            [exe, *args[1:]], cwd=cwd or self.work, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert res.returncode == 0, f"{args} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        return res


def _clean_env(venv: Path) -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel").resolve()
    assert not base.is_relative_to(ROOT)
    work = base / "work"
    work.mkdir()
    venv = base / "venv"
    env = _clean_env(venv)
    seconds = {}

    t = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(ROOT)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds["build wheel"] = round(time.monotonic() - t, 1)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = (base / "dist").glob("*.whl")

    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], cwd=work, env=env, check=True, timeout=300)
    seconds["create venv"] = round(time.monotonic() - t, 1)

    t = time.monotonic()
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", str(wheel)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds["pip install"] = round(time.monotonic() - t, 1)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    print(f"\nwheel {wheel.name}: " + ", ".join(f"{k} {v}s" for k, v in seconds.items()))
    return Installed(
        venv=venv,
        wheel=wheel,
        work=work,
        env=env,
        build_log=build.stdout + build.stderr,
        install_log=pip.stdout + pip.stderr,
        seconds=seconds,
    )


def test_wheel_builds_and_installs_without_warnings(installed: Installed) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert installed.wheel.name == f"gitops_nb-{version}-py3-none-any.whl"
    # hatchling's output is all about our packaging: no warning of any kind
    assert not re.search(r"(?i)warn|deprecat", installed.build_log), installed.build_log
    # pip's may mention dependencies; nothing may be about our wheel
    ours = [
        line
        for line in installed.install_log.splitlines()
        if re.search(r"(?i)warn|deprecat", line) and re.search(r"(?i)gitops[-_]nb", line)
    ]
    assert not ours, ours
    assert "Successfully installed" in installed.install_log and f"gitops-nb-{version}" in installed.install_log
    installed.run("python", "-m", "pip", "check")


def test_the_installed_copy_is_the_one_imported_and_ships_its_data(installed: Installed) -> None:
    out = installed.run(
        "python",
        "-c",
        "import gitops_nb, sys; from gitops_nb.incident.notebooks import notebooks_dir, runbooks_dir; "
        "from gitops_nb.sandbox.control import go_dir; "
        "print(gitops_nb.__file__); print(notebooks_dir()); print(runbooks_dir()); print(go_dir()); "
        "print(sys.prefix)",
    ).stdout.splitlines()
    module, notebooks, runbooks, go, prefix = (Path(p) for p in out)
    site = installed.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert prefix == installed.venv
    assert module == site / "gitops_nb" / "__init__.py"
    assert notebooks == site / "gitops_nb" / "notebooks"
    assert runbooks == site / "gitops_nb" / "runbooks"
    assert go == site / "gitops_nb" / "sandbox" / "go"
    for rel in ("build.sh", "k8s/go.mod", "k8s/go.sum", "argocd/go.mod", "argocd/go.sum", "argocd/main.go"):
        assert (go / rel).read_bytes() == (ROOT / "gitops_nb" / "sandbox" / "go" / rel).read_bytes(), rel
    mains = sorted(p.relative_to(go).as_posix() for p in (go / "k8s" / "cmd").rglob("main.go"))
    assert mains == [
        f"k8s/cmd/{c}/main.go" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    assert sorted(p.name for p in notebooks.glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "notebooks").glob("*.ipynb")
    )
    assert sorted(p.name for p in runbooks.iterdir()) == sorted(p.name for p in (ROOT / "runbooks").iterdir())


def test_installed_cli_lists_runbooks_and_copies_notebooks(installed: Installed) -> None:
    listed = installed.run("gitops-nb", "runbook", "list").stdout.splitlines()
    assert [line.split(":")[0] for line in listed] == sorted(p.stem for p in (ROOT / "runbooks").glob("*.yaml"))
    assert any(line.startswith("rollback-by-revert: Rollback by revert (what_changed -> ") for line in listed), listed

    dest = installed.work / "nb"
    res = installed.run("gitops-nb", "notebooks", "copy", str(dest))
    shipped = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(Path(p).name for p in res.stdout.splitlines()) == [p.name for p in shipped]
    for nb in shipped:
        assert (dest / nb.name).read_bytes() == nb.read_bytes()
    assert f"jupyter lab {dest}" in res.stderr
    again = installed.run("gitops-nb", "notebooks", "copy", str(dest))
    assert again.stdout == "" and f"{len(shipped)} notebook(s) already in" in again.stderr


def test_installed_what_changed_notebook_runs_headless(installed: Installed, demo_repo: DemoRepo) -> None:
    """The installed notebook, run by the installed package with papermill, git only (no cluster)."""
    out = installed.work / "incident" / "what_changed.ipynb"
    results = installed.work / "incident" / "results"
    params = {
        "repo_path": str(demo_repo.path),
        "at": demo_repo.incident_at.isoformat(),
        "window": "3h",
        "apps": "",
        "kube_context": "",
        "kubeconfig": "",
        "output_dir": str(results),
    }
    t = time.monotonic()
    ran = installed.run(
        "python",
        "-c",
        "import json, sys; from pathlib import Path; from gitops_nb.incident.notebooks import run_notebook; "
        "print(run_notebook('what_changed', Path(sys.argv[1]), json.loads(sys.argv[2])))",
        str(out),
        json.dumps(params),
    )
    installed.seconds["run notebook"] = round(time.monotonic() - t, 1)
    assert Path(ran.stdout.strip()) == out
    nb = nbformat.read(out, as_version=4)
    assert Path(nb.metadata.papermill.input_path).is_relative_to(installed.venv)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert out.with_suffix(".html").stat().st_size > 0

    summary = json.loads((results / "summary.json").read_text())
    assert summary["top_culprit"]["sha"] == demo_repo.commits["checkout-prod-bad"]
    assert summary["cluster"] is None
    assert "apps/checkout-api/overlays/production" in summary["apps_affected"]
    assert (results / "timeline.parquet").exists()

    # the kernel papermill starts for "python3" is the venv's, so the notebook imported the installed copy
    probe = installed.work / "probe.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell("import sys, gitops_nb\nprint(gitops_nb.__file__)\nprint(sys.prefix)")]
        ),
        probe,
    )
    installed.run("papermill", str(probe), str(probe.with_name("probe-out.ipynb")), "-k", "python3")
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(probe.with_name("probe-out.ipynb"), as_version=4).cells
        for o in c.outputs
    ).split()
    assert Path(text[0]).is_relative_to(installed.venv) and Path(text[1]) == installed.venv, text
    print("timings: " + ", ".join(f"{k} {v}s" for k, v in installed.seconds.items()))
