"""Runbooks: notebooks chained with papermill into an incident folder, and the report that gathers them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, NotebookError
from .folder import IncidentFolder
from .notebooks import notebooks_dir, run_notebook, runbooks_dir

__all__ = ["list_runbooks", "load_runbook", "run_runbook"]


def list_runbooks() -> list[str]:
    """Names of the runbooks that can be run."""
    return sorted(p.stem for p in runbooks_dir().glob("*.yaml"))


def load_runbook(name: str) -> dict[str, Any]:
    """A runbook: ``title``, ``notebooks`` (run in order), optional ``defaults`` (parameters)."""
    import yaml

    path = runbooks_dir() / f"{name}.yaml"
    if not path.exists():
        raise InputError(f"no runbook {name!r}: known runbooks are {', '.join(list_runbooks()) or 'none'}")
    book = yaml.safe_load(path.read_text())
    if not isinstance(book, dict) or not book.get("notebooks"):
        raise InputError(f"runbook {path} lists no notebooks")
    return book


def _parameter_names(notebook: Path) -> set[str]:
    import papermill as pm

    return set(pm.inspect_notebook(str(notebook)))


def run_runbook(
    name: str,
    incident: str,
    params: dict[str, Any],
    *,
    root: str | Path = "incidents",
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Execute a runbook's notebooks in order into ``<root>/<incident>/``, stopping at the first failure.

    Each notebook gets the parameters it declares (from ``params``, over the runbook's
    ``defaults``), ``output_dir`` set to its own folder, and ``incident_dir`` to the incident
    folder. Re-running is safe: the notebooks' actions are idempotent. Returns the executed
    notebooks; the HTML report (code hidden) is written beside each.
    """
    where = IncidentFolder(Path(root), incident)
    book = load_runbook(name)
    folder = where.create()
    say = progress or (lambda _m: None)
    done: list[Path] = []
    merged = {**(book.get("defaults") or {}), **params}
    for i, nb in enumerate(book["notebooks"], start=1):
        nb_name = nb if isinstance(nb, str) else nb["notebook"]
        step_params = {} if isinstance(nb, str) else dict(nb.get("parameters") or {})
        known = _parameter_names(notebooks_dir() / f"{nb_name}.ipynb")
        out = where.step_notebook(i, nb_name)
        given = {k: v for k, v in {**merged, **step_params}.items() if k in known}
        given.update(
            {
                k: v
                for k, v in {
                    "output_dir": str(where.step_output(i, nb_name)),
                    "incident_dir": str(folder),
                    "incident": incident,
                }.items()
                if k in known
            }
        )
        say(f"[{i}/{len(book['notebooks'])}] {nb_name} -> {out}")
        try:
            run_notebook(nb_name, out, given)
        except NotebookError as e:
            raise NotebookError(
                f"runbook {name} stopped at step {i} ({nb_name}): {e}. Steps before it are in {folder}; fix the "
                f"cause and run the same command again (finished actions are not repeated)",
                notebook=e.notebook,
                cell=e.cell,
                ename=e.ename,
                evalue=e.evalue,
            ) from e
        done.append(out)
    return done
