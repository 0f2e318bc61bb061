"""The incident folder: the one place that knows its layout.

::

    incidents/INC-1234/            IncidentFolder(root, "INC-1234").path
      01-pause_self_heal.ipynb     a runbook step's executed notebook (and .html beside it)
      01-pause_self_heal/          that step's output_dir: actions.parquet/.csv, results, summary.json
      02-revert_and_verify.ipynb
      02-revert_and_verify/
      console/                     the incident console's actions (its output_dir)

Every ``*/actions.parquet`` below the folder is the audit trail; :func:`incident_records` reads it
whole and the post-incident report shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import InputError
from ..results import save_results

__all__ = ["ACTIONS", "IncidentFolder", "incident_records", "incident_summary", "save_records"]

#: the audit trail's file name, in any output_dir
ACTIONS = "actions"
_STEP_GLOB = "[0-9][0-9]-*.ipynb"


@dataclass(frozen=True)
class IncidentFolder:
    """``<root>/<incident>/`` and the names of what goes in it."""

    root: Path
    incident: str

    def __post_init__(self) -> None:
        if not self.incident or "/" in self.incident or self.incident.startswith(".") or "\\" in self.incident:
            raise InputError(f"incident id {self.incident!r} cannot name a folder: use e.g. INC-1234")

    @property
    def path(self) -> Path:
        return Path(self.root) / self.incident

    def create(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def step_notebook(self, i: int, notebook: str) -> Path:
        """Where step ``i`` (from 1) of a runbook writes its executed notebook."""
        return self.path / f"{i:02d}-{notebook}.ipynb"

    def step_output(self, i: int, notebook: str) -> Path:
        """Step ``i``'s ``output_dir`` (its action records and results)."""
        return self.path / f"{i:02d}-{notebook}"

    @property
    def console_output(self) -> Path:
        """The incident console's ``output_dir`` when it runs for this incident."""
        return self.path / "console"


def save_records(output_dir: str | Path, records: list[pd.DataFrame], summary: dict[str, Any] | None = None) -> Path:
    """Append action records (one-row frames) to ``actions.parquet`` / ``actions.csv`` under ``output_dir``."""
    frame = pd.concat(records, ignore_index=True) if records else schema.frame(schema.ACTION_RECORDS)
    earlier = Path(output_dir) / f"{ACTIONS}.parquet"
    if earlier.exists():  # a re-run adds to the audit trail, never rewrites it
        frame = pd.concat([pd.read_parquet(earlier), frame], ignore_index=True)
    return save_results(output_dir, {ACTIONS: frame}, summary)


def incident_records(incident_dir: str | Path) -> pd.DataFrame:
    """Every action record saved under an incident folder, oldest first, with the step it came from."""
    frames = [
        pd.read_parquet(f).assign(step=f.parent.name) for f in sorted(Path(incident_dir).glob(f"*/{ACTIONS}.parquet"))
    ]
    if not frames:
        return schema.frame(schema.ACTION_RECORDS).assign(step=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True).sort_values("when", kind="stable").reset_index(drop=True)


def incident_summary(incident_dir: str | Path) -> pd.DataFrame:
    """One row per executed notebook of an incident: step, notebook, status, failed cell, parameters."""
    import nbformat

    rows = []
    for p in sorted(Path(incident_dir).glob(_STEP_GLOB)):
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
