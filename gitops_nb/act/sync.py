"""Ask Argo CD to act now: refresh (compare with git) and sync (deploy a revision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..cluster.live import Cluster
from ..errors import ActionError, InputError
from .records import record, who

__all__ = ["refresh", "sync", "terminate_operation"]


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
    cluster: Cluster,
    app: str,
    revision: str | None = None,
    *,
    prune: bool = False,
    source_positions: Sequence[int] | None = None,
    dry_run: bool = True,
) -> pd.DataFrame:
    """Start a sync of ``app`` (to ``revision``, default its target) through the Application's ``operation`` field.

    As Argo CD's UI and CLI do, the sync carries the app's own ``syncOptions`` (``CreateNamespace=true``,
    ``ServerSideApply=true``, ...) and ``retry``. A multi-source app gets one revision per source
    (``revisions``): ``revision`` for the sources at ``source_positions`` (1-based, as
    ``argocd app sync --source-positions``; default: the sources of the first git source's repo),
    every other source its own ``targetRevision``.
    Refuses while another operation runs (Argo CD would reject it too). Idempotent: an app
    already Synced at exactly ``revision`` (a full sha) is left alone.
    """
    raw = cluster.raw_application(app)
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    op = status.get("operationState") or {}
    if raw.get("operation") or op.get("phase") == "Running":
        raise ActionError(f"{app} has an operation running ({op.get('phase')}): wait for it, then sync")
    synced = status.get("sync") or {}
    sources: list[dict[str, Any]] = spec.get("sources") or []
    positions: list[int] = []
    if sources:
        if source_positions is not None:
            positions = list(source_positions)
        elif revision:
            git = [i for i, src in enumerate(sources, 1) if not src.get("chart")]
            repo = sources[git[0] - 1].get("repoURL") if git else None
            positions = [i for i in git if sources[i - 1].get("repoURL") == repo]
        if any(not 1 <= p <= len(sources) for p in positions):
            raise InputError(f"source_positions {positions} out of range: {app} has {len(sources)} sources")
        revisions = [
            revision if revision and i in positions else (src.get("targetRevision") or "HEAD")
            for i, src in enumerate(sources, 1)
        ]
        done = list(synced.get("revisions") or []) == revisions
    elif source_positions is not None:
        raise InputError(f"{app} has a single source: source_positions is for multi-source apps")
    else:
        done = synced.get("revision") == revision
    if revision and synced.get("status") == "Synced" and done:
        return record(
            "sync", app, revision, revision, dry_run=dry_run, changed=False, note=f"already Synced at {revision[:10]}"
        )
    policy = spec.get("syncPolicy") or {}
    sync_op: dict[str, Any] = {"prune": prune, "syncStrategy": {"hook": {}}}
    if sources:
        sync_op["revisions"] = revisions
    else:
        sync_op["revision"] = revision or (spec.get("source") or {}).get("targetRevision") or "HEAD"
    if policy.get("syncOptions"):
        sync_op["syncOptions"] = list(policy["syncOptions"])
    body: dict[str, Any] = {"sync": sync_op, "initiatedBy": {"username": who()}}
    if policy.get("retry"):
        body["retry"] = policy["retry"]
    if not dry_run:
        cluster.patch_application(app, [{"op": "add", "path": "/operation", "value": body}])
    last = op.get("syncResult") or {}
    return record(
        "sync",
        app,
        last.get("revision") or last.get("revisions"),
        sync_op.get("revision") or sync_op.get("revisions"),
        dry_run=dry_run,
        changed=True,
    )


def terminate_operation(cluster: Cluster, app: str, *, dry_run: bool = True) -> pd.DataFrame:
    """Stop the operation ``app`` is running (a sync stuck on a hook, say), as ``argocd app terminate-op`` does.

    Sets the running operation's phase to ``Terminating``; the controller then stops it (hooks are
    deleted, the phase becomes Failed). Conditional: nothing happens if the operation finished meanwhile.
    Idempotent: an app with no running operation is left alone. Dry run unless ``dry_run=False``.
    """
    raw = cluster.raw_application(app)
    op = (raw.get("status") or {}).get("operationState") or {}
    phase = op.get("phase")
    if phase not in ("Running", "Terminating"):
        return record(
            "terminate-operation", app, phase, phase, dry_run=dry_run, changed=False, note="no operation is running"
        )
    if phase == "Terminating":
        return record(
            "terminate-operation", app, phase, phase, dry_run=dry_run, changed=False, note="already terminating"
        )
    note = f"operation started {op.get('startedAt')}: {op.get('message') or 'running'}"
    if not dry_run:
        cluster.patch_application(
            app,
            [
                {"op": "test", "path": "/status/operationState/phase", "value": "Running"},
                {"op": "replace", "path": "/status/operationState/phase", "value": "Terminating"},
            ],
        )
    return record("terminate-operation", app, "Running", "Terminating", dry_run=dry_run, changed=True, note=note)
