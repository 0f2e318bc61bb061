"""Drift: what differs from git now, and who changed what outside git."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from ..cluster.evidence import EvidenceSource
from ..times import parse_at

__all__ = ["drift", "manual_edits"]


def drift(cluster: EvidenceSource) -> pd.DataFrame:
    """One row per OutOfSync resource of every OutOfSync Application.

    Columns: ``app``, ``app_sync``, ``app_health``, then the resource's ``group``, ``kind``,
    ``namespace``, ``name``, ``sync_status``, ``health_status``.
    """
    apps = cluster.applications()
    rows: list[dict[str, Any]] = []
    for a in apps[apps["sync_status"] != "Synced"].itertuples(index=False):
        res = cluster.app_resources(str(a.name))
        for r in res[res["sync_status"] != "Synced"].itertuples(index=False):
            rows.append(
                {
                    "app": a.name,
                    "app_sync": a.sync_status,
                    "app_health": a.health_status,
                    "group": r.group,
                    "kind": r.kind,
                    "namespace": r.namespace,
                    "name": r.name,
                    "sync_status": r.sync_status,
                    "health_status": r.health_status,
                }
            )
    cols = ["app", "app_sync", "app_health", "group", "kind", "namespace", "name", "sync_status", "health_status"]
    return pd.DataFrame(rows, columns=cols).astype(object)


def manual_edits(cluster: EvidenceSource, since: str | datetime | pd.Timestamp | None = None) -> pd.DataFrame:
    """Field edits by anything but Argo CD, in every Application's destination namespace, newest first.

    The frame is :data:`schema.FIELD_EDITS` plus ``apps`` (the Applications deploying into
    that namespace): this is how a 2am ``kubectl edit`` is found.
    """
    apps = cluster.applications()
    by_ns: dict[str, list[str]] = {}
    for n, ns in zip(apps["name"], apps["dest_namespace"], strict=True):
        by_ns.setdefault(ns, []).append(n)
    frames = []
    for ns, names in by_ns.items():
        f = cluster.field_edits(ns)
        f = f[~f["is_gitops"]]
        if since is not None:
            f = f[f["time"] >= parse_at(since)]
        frames.append(f.assign(apps=[sorted(names)] * len(f)))  # type: ignore[list-item]  # pandas-stubs: a column of lists
    if not frames:
        from .. import schema

        return schema.frame(schema.FIELD_EDITS).assign(apps=[])
    return pd.concat(frames, ignore_index=True).sort_values("time", ascending=False).reset_index(drop=True)
