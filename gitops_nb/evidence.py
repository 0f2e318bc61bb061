"""Cluster evidence as timeline rows, from a live cluster or a saved snapshot.

:class:`Evidence` turns the cluster frames (Argo CD deploys and operations,
Kubernetes events, rollouts, field edits) into rows of the ``what_changed``
timeline. :class:`~gitops_nb.cluster.Cluster` reads them live; :class:`Snapshot`
reads what :func:`snapshot` saved, so a post-incident review still has the
evidence after Argo CD's 10 history entries and the one-hour events are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import schema
from .errors import InputError, UnknownAppError
from .times import now_utc, parse_at

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["Evidence", "Snapshot", "snapshot"]

_PER_NAMESPACE_LIMIT = 8
_FRAMES = ("applications", "history", "operations", "resources", "events", "rollouts", "field_edits")


def _in(df: pd.DataFrame, col: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    t = df[col]
    return df[(t >= lo) & (t <= hi)]


def _match(name: str, path: str | None, wanted: Sequence[str]) -> bool:
    parts = (path or "").split("/")
    return any(w in (name, path) or w in parts or (path or "").endswith("/" + w.strip("/")) for w in wanted)


class Evidence:
    """Frames every evidence source provides, and the timeline built from them."""

    def applications(self) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def history(self) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def operations(self) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def events(
        self, namespace: str | None = None, since: Any = None, until: Any = None
    ) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def field_edits(
        self, namespace: str | None, kinds: Sequence[str] | None = None
    ) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    argocd_namespace: str = "argocd"

    def app_resources(self, app: str) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def _argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Applications, history and operations (a live cluster reads them in one list call)."""
        return self.applications(), self.history(), self.operations()

    def timeline(self, since: pd.Timestamp, until: pd.Timestamp, apps: Sequence[str] | None = None) -> pd.DataFrame:
        """Cluster rows for :func:`what_changed` between ``since`` and ``until`` (schema :data:`schema.TIMELINE`).

        ``app`` is the Application's source path, which for a Kustomize app is the
        Kustomize root of :meth:`DeployRepo.apps`: that is how git and cluster rows meet.
        """
        lo, hi = parse_at(since), parse_at(until)
        apps_df, hist, ops = self._argocd_frames()
        if apps:
            apps_df = apps_df[[_match(n, p, apps) for n, p in zip(apps_df["name"], apps_df["path"], strict=True)]]
        path_of = dict(zip(apps_df["name"], apps_df["path"], strict=True))
        by_ns: dict[str, list[str]] = {}
        for n, ns in zip(apps_df["name"], apps_df["dest_namespace"], strict=True):
            by_ns.setdefault(ns, []).append(n)
        rows: list[dict[str, Any]] = []

        def row(time: pd.Timestamp, source: str, app: str | None, summary: str, **kw: Any) -> None:
            path = path_of.get(app) if app else None
            rows.append(
                {
                    "time": time,
                    "source": source,
                    "app": path,
                    "apps": [path] if path else [],
                    "argocd_app": app,
                    "summary": summary,
                    "score": 0.0,
                    **kw,
                }
            )

        hist = _in(hist[hist["app"].isin(list(path_of))], "deployed_at", lo, hi)
        for h in hist.itertuples(index=False):
            took = (h.deployed_at - h.deploy_started_at).total_seconds() if pd.notna(h.deploy_started_at) else None
            row(
                h.deployed_at,
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
                "argocd",
                o.app,
                f"sync {o.phase} for {o.app}",
                sha=o.revision,
                author=o.initiated_by,
                detail=o.message,
            )
        for e in self.events(self.argocd_namespace, lo, hi).itertuples(index=False):
            if e.object_kind == "Application" and e.object_name in path_of:
                row(e.time, "argocd-event", e.object_name, f"{e.reason}: {e.message}", author=e.source)
        if len(by_ns) > _PER_NAMESPACE_LIMIT:  # many namespaces: one cluster-wide list each
            events, rolls, edits = self.events(None, lo, hi), self.rollouts(None), self.field_edits(None)
        else:
            events = pd.concat([self.events(ns, lo, hi) for ns in by_ns] or [schema.frame(schema.EVENTS)])
            rolls = pd.concat([self.rollouts(ns) for ns in by_ns] or [schema.frame(schema.ROLLOUTS)])
            edits = pd.concat([self.field_edits(ns) for ns in by_ns] or [schema.frame(schema.FIELD_EDITS)])
        # one namespace's rows belong to its Application when a single one deploys there
        owner = {ns: names[0] if len(names) == 1 else None for ns, names in by_ns.items()}
        events = events[events["namespace"].isin(list(by_ns))]
        for e in events.itertuples(index=False):
            row(
                e.time,
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


class Snapshot(Evidence):
    """Evidence saved by :func:`snapshot`, readable days after the cluster forgot it."""

    def __init__(self, path: str | Path) -> None:
        from .report import load_results

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

    def events(self, namespace: str | None = None, since: Any = None, until: Any = None) -> pd.DataFrame:
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
        return (f[f["kind"].isin(list(kinds))] if kinds else f).reset_index(drop=True)

    def _known(self, app: str) -> None:
        if app not in set(self.frames["applications"]["name"]):
            raise UnknownAppError(
                f"no Application {app!r} in snapshot {self.path}",
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
            if hasattr(v, "tolist") and not isinstance(v, str):
                r[k] = v.tolist()
            elif isinstance(v, dict):
                r[k] = {a: (b.tolist() if hasattr(b, "tolist") else b) for a, b in v.items()}
            elif v is not None and not isinstance(v, list | dict) and pd.isna(v):
                r[k] = None
    return schema.frame(sch, records)


def snapshot(cluster: Cluster, path: str | Path, *, namespaces: Sequence[str] | None = None) -> Path:
    """Save the cluster's evidence under ``path``: applications, deploy history, operations,
    resources, events, rollouts and field edits (Parquet + CSV + ``summary.json``).

    ``namespaces`` defaults to every Application's destination namespace plus Argo CD's.
    Read it back with :class:`Snapshot`; :func:`what_changed` accepts it as ``cluster``.
    """
    from .report import save_results

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
    if len(nss) > _PER_NAMESPACE_LIMIT:  # one cluster-wide list each, kept to the namespaces asked for
        for name, get in (
            ("events", cluster.events),
            ("rollouts", cluster.rollouts),
            ("field_edits", cluster.field_edits),
        ):
            df = get(None)
            frames[name] = df[df["namespace"].isin(nss)].reset_index(drop=True)
    else:
        frames["events"] = pd.concat([cluster.events(ns) for ns in nss], ignore_index=True)
        frames["rollouts"] = pd.concat([cluster.rollouts(ns) for ns in nss], ignore_index=True)
        frames["field_edits"] = pd.concat([cluster.field_edits(ns) for ns in nss], ignore_index=True)
    summary = {
        "context": cluster.context,
        "argocd_namespace": cluster.argocd_namespace,
        "taken_at": now_utc(),
        "namespaces": nss,
    }
    return save_results(path, frames, summary)
