"""Saved cluster evidence: :func:`snapshot` writes it, :class:`Snapshot` reads it back.

A :class:`Snapshot` is an :class:`~gitops_nb.cluster.evidence.EvidenceSource` like the live
cluster, so a post-incident review still has the evidence after Argo CD's 10 history entries
and the one-hour events are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import InputError, UnknownAppError
from ..times import now_utc, parse_at
from .evidence import PER_NAMESPACE_LIMIT, EvidenceSource

__all__ = ["Snapshot", "snapshot"]


_FRAMES = ("applications", "history", "operations", "resources", "events", "rollouts", "field_edits")


class Snapshot:
    """Evidence saved by :func:`snapshot`, readable days after the cluster forgot it."""

    def __init__(self, path: str | Path) -> None:
        from ..results import load_results

        p = Path(path)
        if not (p / "summary.json").exists():
            raise InputError(f"{p} holds no snapshot (no summary.json): give a directory written by gitops_nb.snapshot")
        frames, self.summary = load_results(p)
        missing = [f for f in _FRAMES if f not in frames]
        if missing:
            raise InputError(f"snapshot {p} lacks {', '.join(missing)}: take it again with gitops_nb.snapshot")
        self.frames = {name: _restore(name, df) for name, df in frames.items()}
        self.path = p
        self.argocd_namespace = self.summary.get("argocd_namespace", "argocd")
        self.context = self.summary.get("context")

    #: saved evidence does not fade: no need to snapshot it again
    live = False

    def __repr__(self) -> str:
        return f"Snapshot({str(self.path)!r}, context={self.context!r}, taken_at={self.summary.get('taken_at')!r})"

    def applications(self) -> pd.DataFrame:
        return self.frames["applications"].copy()

    def history(self) -> pd.DataFrame:
        return self.frames["history"].copy()

    def app_history(self, app: str) -> pd.DataFrame:
        """The saved deploy history of ``app``."""
        self._known(app)
        h = self.frames["history"]
        return h[h["app"] == app].reset_index(drop=True)

    def app_resources(self, app: str) -> pd.DataFrame:
        """The saved resources of ``app``."""
        self._known(app)
        r = self.frames["resources"]
        return r[r["app"] == app].reset_index(drop=True)

    def operations(self) -> pd.DataFrame:
        return self.frames["operations"].copy()

    def argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return self.applications(), self.history(), self.operations()

    def events(
        self,
        namespace: str | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        until: str | datetime | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        e = self.frames["events"]
        if namespace:
            e = e[e["namespace"] == namespace]
        if since is not None:
            e = e[e["time"] >= parse_at(since)]
        if until is not None:
            e = e[e["time"] <= parse_at(until)]
        return e.reset_index(drop=True)

    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:
        r = self.frames["rollouts"]
        r = r[r["namespace"] == namespace] if namespace else r
        return (r[r["deployment"] == name] if name else r).reset_index(drop=True)

    def field_edits(self, namespace: str | None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        f = self.frames["field_edits"]
        f = f[f["namespace"] == namespace] if namespace else f
        out = (f[f["kind"].isin(list(kinds))] if kinds else f).reset_index(drop=True)
        out.attrs["skipped"] = list(self.summary.get("skipped") or [])  # what the role could not read then
        return out

    def _known(self, app: str) -> None:
        if app not in set(self.frames["applications"]["name"]):
            from .live import did_you_mean

            raise UnknownAppError(
                f"no Application {app!r} in snapshot {self.path}. "
                + did_you_mean(app, sorted(self.frames["applications"]["name"])),
                context=self.context,
                resource=f"applications.argoproj.io/{app}",
                verb="get",
            )


_SCHEMAS = {
    "applications": schema.APPLICATIONS,
    "history": schema.APP_HISTORY,
    "operations": schema.OPERATIONS,
    "resources": schema.APP_RESOURCES,
    "events": schema.EVENTS,
    "rollouts": schema.ROLLOUTS,
    "field_edits": schema.FIELD_EDITS,
}


def _restore(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Parquet gives lists back as arrays and None as NaN: rebuild the frame on its schema."""
    sch = _SCHEMAS.get(name)
    if sch is None:
        return df
    records = df.to_dict("records")
    for r in records:
        for k, v in r.items():
            if (hasattr(v, "tolist") and not isinstance(v, str)) or isinstance(v, dict):
                r[k] = _plain(v)
            elif v is not None and not isinstance(v, list | dict) and pd.isna(v):
                r[k] = None
    return schema.frame(sch, records)


def _plain(v: Any) -> Any:
    """Arrays back to lists at any depth (an Application's ``sources`` hold dicts of lists: Helm
    ``valueFiles``), so a saved source reads as the live one does."""
    if isinstance(v, dict):
        return {a: _plain(b) for a, b in v.items()}
    if isinstance(v, list | tuple) or (hasattr(v, "tolist") and getattr(v, "ndim", 0) > 0):
        return [_plain(x) for x in v]
    return v.tolist() if hasattr(v, "tolist") and not isinstance(v, str) else v


def snapshot(
    cluster: EvidenceSource,
    path: str | Path,
    *,
    namespaces: Sequence[str] | None = None,
    formats: tuple[str, ...] = ("parquet", "csv"),
    kinds: Sequence[str] | None = None,
) -> Path:
    """Save the cluster's evidence under ``path``: applications, deploy history, operations,
    resources, events, rollouts and field edits (Parquet + CSV + ``summary.json``).

    ``namespaces`` defaults to every Application's destination namespace plus Argo CD's.
    Read it back with :class:`Snapshot`; :func:`what_changed` accepts it as ``cluster``.
    ``formats`` as in :func:`~gitops_nb.results.save_results` (``("json",)`` for a text fixture).
    ``kinds`` limits the kinds whose field edits are saved; a kind the role may not list (Secrets,
    for a read-only responder) is skipped and named in the summary's ``skipped``.
    """
    from ..results import save_results

    apps = cluster.applications()
    nss = list(dict.fromkeys([cluster.argocd_namespace, *(namespaces or apps["dest_namespace"].dropna())]))
    frames = {
        "applications": apps,
        "history": cluster.history(),
        "operations": cluster.operations(),
        "resources": pd.concat(
            [cluster.app_resources(a) for a in apps["name"]] or [schema.frame(schema.APP_RESOURCES)], ignore_index=True
        ),
    }
    if len(nss) > PER_NAMESPACE_LIMIT:  # one cluster-wide list each, kept to the namespaces asked for
        edits = [cluster.field_edits(None, kinds)]
        for name, get in (("events", cluster.events), ("rollouts", cluster.rollouts)):
            df = get(None)
            frames[name] = df[df["namespace"].isin(nss)].reset_index(drop=True)
        frames["field_edits"] = edits[0][edits[0]["namespace"].isin(nss)].reset_index(drop=True)
    else:
        edits = [cluster.field_edits(ns, kinds) for ns in nss]
        frames["events"] = pd.concat([cluster.events(ns) for ns in nss], ignore_index=True)
        frames["rollouts"] = pd.concat([cluster.rollouts(ns) for ns in nss], ignore_index=True)
        frames["field_edits"] = pd.concat(edits, ignore_index=True)
    skipped = list(dict.fromkeys(s for f in edits for s in f.attrs.get("skipped") or []))
    summary = {
        "context": cluster.context,
        "argocd_namespace": cluster.argocd_namespace,
        "taken_at": now_utc(),
        "namespaces": nss,
        "skipped": skipped,
    }
    return save_results(path, frames, summary, formats=formats)
