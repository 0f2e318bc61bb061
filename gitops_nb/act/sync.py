"""Ask Argo CD to act now: refresh (compare with git) and sync (deploy a revision)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..cluster.live import Cluster
from ..errors import ActionError
from .records import record, who

__all__ = ["refresh", "sync"]


def refresh(cluster: Cluster, app: str, *, hard: bool = False, dry_run: bool = False) -> pd.DataFrame:
    """Ask Argo CD to compare ``app`` with git now (the ``argocd.argoproj.io/refresh`` annotation).

    Harmless, so not dry-run by default: it changes no desired state.
    """
    cluster.raw_application(app)  # a clear UnknownAppError before anything else
    kind = "hard" if hard else "normal"
    if not dry_run:  # the same annotation the sandbox helpers set: one implementation
        cluster.refresh_application(app, hard=hard)
    return record("refresh", app, None, kind, dry_run=dry_run, changed=True)


def sync(
    cluster: Cluster, app: str, revision: str | None = None, *, prune: bool = False, dry_run: bool = True
) -> pd.DataFrame:
    """Start a sync of ``app`` (to ``revision``, default its target) through the Application's ``operation`` field.

    Refuses while another operation runs (Argo CD would reject it too). Idempotent: an app
    already Synced at exactly ``revision`` (a full sha) is left alone.
    """
    raw = cluster.raw_application(app)
    status = raw.get("status") or {}
    op = status.get("operationState") or {}
    if raw.get("operation") or op.get("phase") == "Running":
        raise ActionError(f"{app} has an operation running ({op.get('phase')}): wait for it, then sync")
    synced = status.get("sync") or {}
    if revision and synced.get("status") == "Synced" and synced.get("revision") == revision:
        return record(
            "sync", app, revision, revision, dry_run=dry_run, changed=False, note=f"already Synced at {revision[:10]}"
        )
    body: dict[str, Any] = {
        "sync": {
            "revision": revision or ((raw.get("spec") or {}).get("source") or {}).get("targetRevision", "HEAD"),
            "prune": prune,
            "syncStrategy": {"hook": {}},
        },
        "initiatedBy": {"username": who()},
    }
    if not dry_run:
        cluster.patch_application(app, [{"op": "add", "path": "/operation", "value": body}])
    return record(
        "sync", app, op.get("syncResult", {}).get("revision"), body["sync"]["revision"], dry_run=dry_run, changed=True
    )
