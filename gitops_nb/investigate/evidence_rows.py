"""Cluster evidence as timeline rows: Argo CD deploys and failed syncs, events, rollouts, manual edits.

Works on any :class:`~gitops_nb.cluster.evidence.EvidenceSource`. Every row carries a ``kind``
(:class:`gitops_nb.schema.RowKind`): ranking and the console match on it, never on the summary text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from .. import schema
from ..cluster.evidence import PER_NAMESPACE_LIMIT, EvidenceSource
from ..schema import RowKind
from ..times import parse_at

__all__ = ["cluster_rows"]


def _in(df: pd.DataFrame, col: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    t = df[col]
    return df[(t >= lo) & (t <= hi)]


def _match(name: str, path: str | None, wanted: Sequence[str]) -> bool:
    parts = (path or "").split("/")
    return any(w in (name, path) or w in parts or (path or "").endswith("/" + w.strip("/")) for w in wanted)


def cluster_rows(
    source: EvidenceSource,
    since: str | datetime | pd.Timestamp | None,
    until: str | datetime | pd.Timestamp | None,
    apps: Sequence[str] | None = None,
    *,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Cluster rows for :func:`what_changed` between ``since`` and ``until`` (schema :data:`schema.TIMELINE`,
    plus ``fields`` for manual edits).

    ``app`` is the Application's source path, which for a Kustomize app is the
    Kustomize root of :meth:`DeployRepo.apps`: that is how git and cluster rows meet.
    ``frames``: ``source.argocd_frames()`` already read (not read again).
    """
    lo, hi = parse_at(since), parse_at(until)
    apps_df, hist, ops = source.argocd_frames() if frames is None else frames
    if apps:
        apps_df = apps_df[[_match(n, p, apps) for n, p in zip(apps_df["name"], apps_df["path"], strict=True)]]
    path_of = dict(zip(apps_df["name"], apps_df["path"], strict=True))
    by_ns: dict[str, list[str]] = {}
    for n, ns in zip(apps_df["name"], apps_df["dest_namespace"], strict=True):
        by_ns.setdefault(ns, []).append(n)
    rows: list[dict[str, Any]] = []

    def row(time: pd.Timestamp, kind: str, source_name: str, app: str | None, summary: str, **kw: Any) -> None:
        path = path_of.get(app) if app else None
        rows.append(
            {
                "time": time,
                "kind": kind,
                "source": source_name,
                "app": path,
                "apps": [path] if path else [],
                "argocd_app": app,
                "summary": summary,
                "score": 0.0,
                **kw,
            }
        )

    # rows of itertuples(): pandas-stubs types every field as any scalar; each is its column's (schema) type
    h: Any
    o: Any
    e: Any
    r: Any
    f: Any
    hist = _in(hist[hist["app"].isin(list(path_of))], "deployed_at", lo, hi)
    for h in hist.itertuples(index=False):
        took = (h.deployed_at - h.deploy_started_at).total_seconds() if pd.notna(h.deploy_started_at) else None
        row(
            h.deployed_at,
            RowKind.DEPLOY,
            "argocd",
            h.app,
            f"Argo CD deployed {str(h.revision)[:10]} to {h.app}",
            sha=h.revision,
            author=h.initiated_by,
            detail=f"deploy #{h.id}" + (f", sync took {took:.0f}s" if took is not None else ""),
        )
    ops = ops[ops["app"].isin(list(path_of)) & ops["phase"].isin(["Failed", "Error"])]
    for o in _in(ops, "finished_at", lo, hi).itertuples(index=False):
        row(
            o.finished_at,
            RowKind.SYNC_FAILED,
            "argocd",
            o.app,
            f"sync {o.phase} for {o.app}",
            sha=o.revision,
            author=o.initiated_by,
            detail=o.message,
        )
    # an Application's conditions: a ComparisonError (manifests that cannot be made) deploys nothing at all
    for name, reconciled, conds in zip(apps_df["name"], apps_df["reconciled_at"], apps_df["conditions"], strict=True):
        for c in conds if isinstance(conds, list) else []:
            at = c.get("time") if c.get("time") is not None else reconciled
            if at is None or pd.isna(at) or not lo <= at <= hi:
                continue
            row(
                at,
                RowKind.APP_CONDITION,
                "argocd",
                name,
                f"{c.get('type')} on {name}: {str(c.get('message') or '')[:200]}",
                detail=c.get("message"),
            )
    for e in source.events(source.argocd_namespace, lo, hi).itertuples(index=False):
        if e.object_kind == "Application" and e.object_name in path_of:
            row(e.time, RowKind.APP_EVENT, "argocd-event", e.object_name, f"{e.reason}: {e.message}", author=e.source)
    if len(by_ns) > PER_NAMESPACE_LIMIT:  # many namespaces: one cluster-wide list each
        events, rolls, edits = source.events(None, lo, hi), source.rollouts(None), source.field_edits(None)
    else:
        events = pd.concat([source.events(ns, lo, hi) for ns in by_ns] or [schema.frame(schema.EVENTS)])
        rolls = pd.concat([source.rollouts(ns) for ns in by_ns] or [schema.frame(schema.ROLLOUTS)])
        edits = pd.concat([source.field_edits(ns) for ns in by_ns] or [schema.frame(schema.FIELD_EDITS)])
    # one namespace's rows belong to its Application when a single one deploys there
    owner = {ns: names[0] if len(names) == 1 else None for ns, names in by_ns.items()}
    events = events[events["namespace"].isin(list(by_ns))]
    for e in events.itertuples(index=False):
        row(
            e.time,
            RowKind.K8S_EVENT,
            "k8s-event",
            owner[e.namespace],
            f"{e.type} {e.reason} {e.object_kind}/{e.object_name}: {e.message}",
            author=e.source,
            detail=f"x{e.count}" if e.count and e.count > 1 else None,
        )
    rolls = _in(rolls[rolls["namespace"].isin(list(by_ns))], "created_at", lo, hi)
    for r in rolls.itertuples(index=False):
        row(
            r.created_at,
            RowKind.ROLLOUT,
            "rollout",
            owner[r.namespace],
            f"{r.deployment} rollout #{r.revision}: {', '.join(r.images)}",
            detail=f"ReplicaSet {r.replicaset}, {r.ready_replicas}/{r.replicas} ready",
        )
    edits = _in(edits[edits["namespace"].isin(list(by_ns)) & ~edits["is_gitops"]], "time", lo, hi)
    for f in edits.itertuples(index=False):
        shown = ", ".join(f.fields[:6]) + (f" … {len(f.fields) - 6} more" if len(f.fields) > 6 else "")
        row(
            f.time,
            RowKind.FIELD_EDIT,
            "field-edit",
            owner[f.namespace],
            f"{f.manager} changed {f.kind}/{f.name} in {f.namespace}",
            author=f.manager,
            detail=shown,
            fields=list(f.fields),
        )
    out = schema.frame(schema.TIMELINE, rows)
    out["fields"] = [r.get("fields", []) for r in rows]
    return out
