"""Drift: what differs from git now, and who changed what outside git."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from ..cluster.evidence import EvidenceSource
from ..times import parse_at
from .evidence_rows import bound_untimed, skipped_of

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


def manual_edits(
    cluster: EvidenceSource,
    since: str | datetime | pd.Timestamp | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Field edits by anything but Argo CD, in every Application's destination namespace, newest first.

    The frame is :data:`schema.FIELD_EDITS` plus ``apps`` (the Applications deploying into
    that namespace): this is how a 2am ``kubectl edit`` is found. An edit without a time in
    managedFields (``kubectl scale``) is kept, timed by its bound (``time_bound``: after the last
    sync). ``kinds`` limits the kinds read; a kind the role may not list (Secrets) is skipped and
    named in ``attrs["skipped"]``.
    """
    apps = cluster.applications()
    by_ns: dict[str, list[str]] = {}
    for n, ns in zip(apps["name"], apps["dest_namespace"], strict=True):
        by_ns.setdefault(ns, []).append(n)
    frames, read = [], []
    for ns, names in by_ns.items():
        f = cluster.field_edits(ns, kinds)
        read.append(f)
        f = bound_untimed(f[~f["is_gitops"]], apps)
        if since is not None:
            f = f[f["time"].isna() | (f["time"] >= parse_at(since))]
        frames.append(f.assign(apps=[sorted(names)] * len(f)))  # type: ignore[list-item]  # pandas-stubs: a column of lists
    if not frames:
        from .. import schema

        out = schema.frame(schema.FIELD_EDITS).assign(apps=[])
    else:
        out = pd.concat(frames, ignore_index=True).sort_values("time", ascending=False).reset_index(drop=True)
    out.attrs["skipped"] = skipped_of(read)
    return out
