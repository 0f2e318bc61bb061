"""Runbooks: notebooks chained with papermill into an incident folder, and the report that gathers them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError, NotebookError

__all__ = ["incident_records", "incident_summary", "list_runbooks", "load_runbook", "run_runbook", "save_records"]


def runbooks_dir() -> Path:
    """The directory holding the runbooks (``runbooks/*.yaml``)."""
    return Path(__file__).resolve().parent.parent / "runbooks"


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
    name: str, incident: str, params: dict[str, Any], *, root: str | Path = "incidents", progress: Any = None
) -> list[Path]:
    """Execute a runbook's notebooks in order into ``<root>/<incident>/``, stopping at the first failure.

    Each notebook gets the parameters it declares (from ``params``, over the runbook's
    ``defaults``), ``output_dir`` set to its own folder, and ``incident_dir`` to the incident
    folder. Re-running is safe: the notebooks' actions are idempotent. Returns the executed
    notebooks; the HTML report (code hidden) is written beside each.
    """
    from .cli import notebooks_dir, run_notebook

    if not incident or "/" in incident or incident.startswith("."):
        raise InputError(f"incident id {incident!r} cannot name a folder: use e.g. INC-1234")
    book = load_runbook(name)
    folder = Path(root) / incident
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    done: list[Path] = []
    merged = {**(book.get("defaults") or {}), **params}
    for i, nb in enumerate(book["notebooks"], start=1):
        nb_name = nb if isinstance(nb, str) else nb["notebook"]
        step_params = {} if isinstance(nb, str) else dict(nb.get("parameters") or {})
        known = _parameter_names(notebooks_dir() / f"{nb_name}.ipynb")
        out = folder / f"{i:02d}-{nb_name}.ipynb"
        given = {k: v for k, v in {**merged, **step_params}.items() if k in known}
        given.update(
            {
                k: v
                for k, v in {
                    "output_dir": str(folder / f"{i:02d}-{nb_name}"),
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


def save_records(output_dir: str | Path, records: list[pd.DataFrame], summary: dict[str, Any] | None = None) -> Path:
    """Append action records (one frame each) to ``actions.parquet`` / ``actions.csv`` under ``output_dir``."""
    from .actions import RECORD_COLUMNS
    from .report import save_results

    frame = pd.concat(records, ignore_index=True) if records else pd.DataFrame(columns=RECORD_COLUMNS)
    earlier = Path(output_dir) / "actions.parquet"
    if earlier.exists():  # a re-run adds to the audit trail, never rewrites it
        frame = pd.concat([pd.read_parquet(earlier), frame], ignore_index=True)
    return save_results(output_dir, {"actions": frame}, summary)


def incident_records(incident_dir: str | Path) -> pd.DataFrame:
    """Every action record saved under an incident folder, oldest first, with the step it came from."""
    frames = []
    for f in sorted(Path(incident_dir).glob("*/actions.parquet")):
        frames.append(pd.read_parquet(f).assign(step=f.parent.name))
    if not frames:
        from .actions import RECORD_COLUMNS

        return pd.DataFrame(columns=[*RECORD_COLUMNS, "step"])
    return pd.concat(frames, ignore_index=True).sort_values("when", kind="stable").reset_index(drop=True)


def incident_summary(incident_dir: str | Path) -> pd.DataFrame:
    """One row per executed notebook of an incident: step, notebook, status, failed cell, parameters."""
    import nbformat

    rows = []
    for p in sorted(Path(incident_dir).glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        errors = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
        meta = nb.metadata.get("papermill", {})
        rows.append(
            {
                "step": p.stem,
                "notebook": p.name,
                "status": "failed" if errors else "succeeded",
                "failed_cell": errors[0].execution_count if errors else None,
                "started": meta.get("start_time"),
                "duration_s": meta.get("duration"),
                "parameters": json.dumps(meta.get("parameters", {}), sort_keys=True, default=str),
            }
        )
    return pd.DataFrame(
        rows, columns=["step", "notebook", "status", "failed_cell", "started", "duration_s", "parameters"]
    )
