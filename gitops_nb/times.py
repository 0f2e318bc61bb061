"""Parsing of incident times and windows. Everything is tz-aware UTC."""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from typing import Literal, cast

import pandas as pd
from pandas.api.typing import NaTType

from .errors import TimeParseError

__all__ = [
    "NaiveTimeWarning",
    "describe_span",
    "describe_time",
    "now_utc",
    "parse_at",
    "parse_window",
    "with_local_time",
]

_RELATIVE = re.compile(r"^\s*([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw]|min|mins|sec|secs|hours?|days?)\s*$")
_UNITS: dict[str, Literal["s", "min", "h", "D", "W"]] = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "m": "min",
    "min": "min",
    "mins": "min",
    "h": "h",
    "hour": "h",
    "hours": "h",
    "d": "D",
    "day": "D",
    "days": "D",
    "w": "W",
}


class NaiveTimeWarning(UserWarning):
    """A time without a zone was taken as UTC."""


def now_utc() -> pd.Timestamp:
    """The current time, tz-aware UTC."""
    return pd.Timestamp.now(tz="UTC")


def parse_at(at: str | datetime | pd.Timestamp | None, *, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Parse an incident time into a tz-aware UTC timestamp.

    Accepts ISO-8601 with a zone (``2026-03-18T14:32:00+01:00``), ``now``, relative
    forms (``-30m``, ``-2h``, ``-1d``, relative to ``now``), datetimes and Timestamps.
    A naive time is taken as UTC, with a :class:`NaiveTimeWarning` that says so.
    """
    ref = now if now is not None else now_utc()
    if at is None or (isinstance(at, str) and at.strip().lower() in ("", "now")):
        return ref
    if isinstance(at, str):
        m = _RELATIVE.match(at)
        if m:
            sign, num, unit = m.groups()
            delta = pd.Timedelta(float(num), unit=_UNITS[unit])
            return ref - delta if sign == "-" else ref + delta
        try:
            ts = pd.Timestamp(at.strip())
        except (ValueError, TypeError) as e:
            raise TimeParseError(
                f"cannot read the time {at!r}: give ISO-8601 with a zone "
                "(e.g. '2026-03-18T14:32:00Z'), 'now', or a relative time like '-30m'"
            ) from e
    elif isinstance(at, int | float) and not isinstance(at, bool):
        raise TimeParseError(
            f"the time {at!r} is a bare number, which is ambiguous (seconds? nanoseconds?): give ISO-8601 with "
            f"a zone, or pd.Timestamp({at!r}, unit='s', tz='UTC') for a Unix time in seconds"
        )
    else:
        try:
            ts = pd.Timestamp(at)
        except (ValueError, TypeError) as e:
            raise TimeParseError(f"cannot use {at!r} as a time: give a datetime or an ISO-8601 string") from e
    if isinstance(ts, NaTType):  # pd.Timestamp('') is NaT
        raise TimeParseError(f"the time {at!r} is empty (NaT): give a real time or 'now'")
    if ts.tzinfo is None:
        warnings.warn(
            f"the time {at!r} has no zone; it is taken as UTC ({ts.isoformat()}Z)",
            NaiveTimeWarning,
            stacklevel=2,
        )
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")


def parse_window(window: str | pd.Timedelta | float | int, *, name: str = "window") -> pd.Timedelta:
    """Parse a positive duration such as ``2h``, ``30m``, ``1d`` or ``90s``.

    A bare number means minutes. Zero or negative durations are refused, and so is ``1M``
    (minutes or months?).
    """
    if isinstance(window, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*M\s*", window):
        raise TimeParseError(
            f"the {name} {window!r} is ambiguous: 'M' could mean minutes or months. "
            "Write minutes as 'm' (e.g. '30m') and longer spans in days (e.g. '30d')"
        )
    try:
        if isinstance(window, int | float) and not isinstance(window, bool):
            td = pd.Timedelta(minutes=float(window))
        elif isinstance(window, str):
            text = window.strip().lower()
            m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]|min|mins|sec|secs|hours?|days?)", text)
            td = pd.Timedelta(float(m.group(1)), unit=_UNITS[m.group(2)]) if m else pd.Timedelta(text)
        else:
            td = pd.Timedelta(window)
    except (ValueError, TypeError) as e:
        raise TimeParseError(
            f"cannot read the {name} {window!r}: give a duration like '2h', '30m', '1d' or '90s'"
        ) from e
    if isinstance(td, NaTType) or td <= pd.Timedelta(0):
        raise TimeParseError(f"the {name} must be positive, got {window!r}: give e.g. '2h'")
    return td


def with_local_time(df: pd.DataFrame, column: str = "time", tz: str | None = None) -> pd.DataFrame:
    """Return a copy with ``<column>_local`` (the reader's zone, or ``tz``) beside the UTC column."""
    out = df.copy()
    local = out[column].dt.tz_convert(tz) if tz else out[column].dt.tz_convert(datetime.now().astimezone().tzinfo)
    out.insert(cast(int, out.columns.get_loc(column)) + 1, f"{column}_local", local)
    return out


def describe_time(ts: pd.Timestamp, tz: str | None = None) -> str:
    """``2026-03-18 14:32:00 UTC (15:32 CET local)``: UTC first, the reader's time beside it."""
    utc = pd.Timestamp(ts).tz_convert("UTC")
    local = utc.tz_convert(tz) if tz else utc.tz_convert(datetime.now().astimezone().tzinfo)
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC ({local:%Y-%m-%d %H:%M} {local.tzname()} local)"


def describe_span(td: pd.Timedelta) -> str:
    """A duration a person reads: ``45s``, ``3m12s``, ``2h05m``, ``3d4h``."""
    secs = max(0, round(pd.Timedelta(td).total_seconds()))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    if secs < 86400:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{secs // 86400}d{secs % 86400 // 3600}h"
