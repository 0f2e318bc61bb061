"""Notebooks: committed clean, parameterized for papermill, and run headless with the plain CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gitops_nb.sandbox.demo import DemoRepo

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
PAPERMILL = str(Path(sys.executable).parent / "papermill")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_one_parameters_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0]
    for line in tagged[0].source.splitlines():
        assert " = " in line and "  # " in line, f"parameter line without a default and a meaning: {line!r}"


def test_what_changed_parameters_are_documented() -> None:
    out = subprocess.run(
        [PAPERMILL, "--help-notebook", "notebooks/what_changed.ipynb"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    for name in ("repo_path", "at", "window", "apps", "kube_context", "argocd_namespace", "output_dir"):
        assert f"  {name}: " in out, out
    assert "Unable to parse" not in out


def test_what_changed_runs_headless_with_papermill(demo_repo: DemoRepo, tmp_path: Path) -> None:
    out_nb = tmp_path / "what_changed.ipynb"
    res = subprocess.run(
        [
            PAPERMILL,
            "notebooks/what_changed.ipynb",
            str(out_nb),
            "-k",
            "python3",
            "-p",
            "repo_path",
            str(demo_repo.path),
            "-p",
            "at",
            demo_repo.incident_at.isoformat(),
            "-p",
            "window",
            "3h",
            "-p",
            "apps",
            "checkout-api",
            "-p",
            "output_dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["top_culprit"]["sha"] == demo_repo.commits["checkout-prod-bad"]
    assert summary["apps_affected"] == ["apps/checkout-api/overlays/production", "apps/checkout-api/overlays/staging"]
    nb = nbformat.read(out_nb, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    assert any("UTC" in o.get("text", "") and "local" in o.get("text", "") for o in outputs)


def test_committed_notebooks_are_the_generators_output(tmp_path: Path) -> None:
    """tools/make_notebooks.py is the notebooks' one source: regenerate, then commit both."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "tools" / "make_notebooks.py"), str(tmp_path)], check=True)
    made = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert made == sorted(p.name for p in NOTEBOOKS)
    stale = [n for n in made if (tmp_path / n).read_text() != (root / "notebooks" / n).read_text()]
    assert not stale, f"run `.venv/bin/python tools/make_notebooks.py` and commit: {stale} differ from the generator"
