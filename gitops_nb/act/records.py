"""The record every action returns: what, on what, before, after, who, when, dry run, changed.

The columns are :data:`gitops_nb.schema.ACTION_RECORDS`. A record is a one-row frame, so records
concatenate into an audit trail (:func:`gitops_nb.incident.folder.save_records`).
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import schema
from ..times import now_utc

__all__ = ["ActionRecord", "record", "who"]


def who() -> str:
    """Who acts: ``$GITOPS_NB_ACTOR`` (e.g. an on-call handle) if set, else the OS user."""
    return os.environ.get("GITOPS_NB_ACTOR") or getpass.getuser()


def _text(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else json.dumps(v, sort_keys=True)


@dataclass(frozen=True)
class ActionRecord:
    """One action taken (or, in a dry run, planned). ``changed`` is never True in a dry run."""

    action: str
    target: str
    before: Any
    after: Any
    dry_run: bool
    changed: bool
    note: str | None = None
    who: str = field(default_factory=who)
    when: pd.Timestamp = field(default_factory=now_utc)

    def frame(self) -> pd.DataFrame:
        """The record as a one-row frame of :data:`schema.ACTION_RECORDS`."""
        row = {
            "action": self.action,
            "target": self.target,
            "before": _text(self.before),
            "after": _text(self.after),
            "who": self.who,
            "when": self.when,
            "dry_run": self.dry_run,
            "changed": self.changed and not self.dry_run,
            "note": self.note,
        }
        return schema.frame(schema.ACTION_RECORDS, [row])


def record(
    action: str, target: str, before: Any, after: Any, *, dry_run: bool, changed: bool, note: str | None = None
) -> pd.DataFrame:
    """A one-row record frame (:data:`schema.ACTION_RECORDS`) of an action taken now."""
    return ActionRecord(action, target, before, after, dry_run=dry_run, changed=changed, note=note).frame()
