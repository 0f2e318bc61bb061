"""Saving a notebook's key results machine-readably, beside the executed notebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["load_results", "save_results"]


def _jsonable(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, pd.Timedelta):
        return v.isoformat()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def save_results(
    output_dir: str | Path,
    frames: dict[str, pd.DataFrame],
    summary: dict[str, Any] | None = None,
    *,
    formats: tuple[str, ...] = ("parquet", "csv"),
) -> Path:
    """Write each frame as ``<name>.parquet`` and ``<name>.csv``, and ``summary.json``.

    Parquet keeps dtypes (tz-aware UTC times, lists); CSV is for people and
    spreadsheets; ``json`` (records, ISO-8601 times) is a text form that keeps lists and
    dicts, for fixtures kept in git. Returns the directory.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {}
    for name, df in frames.items():
        flat = df.copy()
        for col in flat.columns:
            if flat[col].dtype == object and flat[col].map(lambda v: isinstance(v, pd.Timedelta)).any():
                flat[col] = flat[col].map(lambda v: v.isoformat() if isinstance(v, pd.Timedelta) else v)
            if flat[col].dtype.kind == "m":
                flat[col] = flat[col].map(lambda v: v.isoformat() if pd.notna(v) else None)
        flat.attrs = {}
        if "parquet" in formats:
            flat.to_parquet(out / f"{name}.parquet", index=False)
        if "csv" in formats:
            flat.to_csv(out / f"{name}.csv", index=False)
        if "json" in formats:
            flat.to_json(out / f"{name}.json", orient="records", date_format="iso", date_unit="ns", indent=1)
        index[name] = {"rows": len(df), "columns": list(df.columns)}
    doc = {"frames": index, **_jsonable(summary or {})}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return out


def load_results(output_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read back what :func:`save_results` wrote: (frames by name, summary). Parquet is read where it
    was written, else the JSON form (its times come back as ISO-8601 text: rebuild on the schema)."""
    out = Path(output_dir)
    summary = json.loads((out / "summary.json").read_text())
    frames = {}
    for name in summary["frames"]:
        pq = out / f"{name}.parquet"
        if pq.exists():
            frames[name] = pd.read_parquet(pq)
        else:
            frames[name] = pd.read_json(out / f"{name}.json", orient="records", convert_dates=False, dtype=False)
    return frames, summary
