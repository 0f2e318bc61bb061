"""Cluster evidence as timeline rows: Argo CD deploys and failed syncs, events, rollouts, manual edits.

Works on any :class:`~gitops_nb.cluster.evidence.EvidenceSource`. Every row carries a ``kind``
(:class:`gitops_nb.schema.RowKind`): ranking and the console match on it, never on the summary text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from .. import schema
from ..cluster.evidence import PER_NAMESPACE_LIMIT, EditHistory, EvidenceSource
from ..cluster.fleet import Fleet, reading_destinations, split_qualified
from ..schema import RowKind
from ..times import describe_span, parse_at

__all__ = ["beyond_git", "bound_untimed", "cluster_rows", "recorded_changes", "skipped_of"]


#: Argo CD's event for a failed operation: "Sync operation to <revision> failed: <message>"
_FAILED_OP = re.compile(r"(?:Partial )?[Ss]ync operation to ([0-9a-f]{40}|\S+) failed:?\s*(.*)", re.S)


def _in(df: pd.DataFrame, col: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    t = df[col]
    return df[(t >= lo) & (t <= hi)]


def _match(name: str, path: str | None, wanted: Sequence[str]) -> bool:
    parts = (path or "").split("/")
    bare = split_qualified(name)[1]  # a fleet writes an app two hubs have as hub/name: "web" is each hub's web
    return any(w in (name, bare, path) or w in parts or (path or "").endswith("/" + w.strip("/")) for w in wanted)


def skipped_of(frames: Sequence[pd.DataFrame]) -> list[str]:
    """The kinds the frames' queries skipped (``attrs["skipped"]``: forbidden for this role), once each."""
    return list(dict.fromkeys(s for f in frames for s in f.attrs.get("skipped") or []))


def bound_untimed(edits: pd.DataFrame, apps: pd.DataFrame) -> pd.DataFrame:
    """Field edits without a time (an update through the ``scale`` subresource records none) get the last
    sync of the Applications deploying into their namespace as a lower bound: ``time`` is that bound and
    ``time_bound`` says ``after <time> UTC``. Without a known sync they stay without a time."""
    synced: dict[str, pd.Timestamp] = {}
    for ns, t in zip(apps["dest_namespace"], apps["operation_finished_at"], strict=True):
        if pd.notna(t):
            synced[ns] = max(t, synced.get(ns, t))
    untimed = edits["time"].isna() & edits["namespace"].isin(list(synced))
    if not untimed.any():
        return edits
    edits = edits.copy()
    bound = edits.loc[untimed, "namespace"].map(synced)
    edits.loc[untimed, "time"] = bound
    edits.loc[untimed, "time_bound"] = [f"after {t:%Y-%m-%d %H:%M:%S} UTC" for t in bound]
    return edits


def cluster_rows(
    source: EvidenceSource,
    since: str | datetime | pd.Timestamp | None,
    until: str | datetime | pd.Timestamp | None,
    apps: Sequence[str] | None = None,
    *,
    kinds: Sequence[str] | None = None,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
    before: EvidenceSource | None = None,
) -> pd.DataFrame:
    """Cluster rows for :func:`what_changed` between ``since`` and ``until`` (schema :data:`schema.TIMELINE`,
    plus ``fields`` for manual edits and the fields a deploy changed beyond git, and ``beyond``: what a
    deploy changed that git did not ask for, see :func:`beyond_git`).

    ``kinds`` limits the objects whose field edits are read (``field_edits``' kinds); a kind the role
    may not list is skipped and named in ``attrs["skipped"]``.

    ``app`` is the Application's source path, which for a Kustomize app is the
    Kustomize root of :meth:`DeployRepo.apps`: that is how git and cluster rows meet.
    ``frames``: ``source.argocd_frames()`` already read (not read again). ``before``: the same evidence
    not bounded to the window (a recording's ``for_window`` reads only the window), for what a deploy in the
    window undid that was set before it.
    """
    lo, hi = parse_at(since), parse_at(until)
    apps_df, hist, ops = source.argocd_frames() if frames is None else frames
    if apps:
        apps_df = apps_df[[_match(n, p, apps) for n, p in zip(apps_df["name"], apps_df["path"], strict=True)]]
    # a live hub whose apps deploy to other clusters: read their evidence there (a Fleet of hub and spokes)
    source = reading_destinations(source, apps_df)
    path_of = dict(zip(apps_df["name"], apps_df["path"], strict=True))
    cluster_of = dict(zip(apps_df["name"], apps_df["cluster"], strict=True))
    # (cluster, namespace) -> the apps deploying there: the same namespace on two clusters is two places
    by_ns: dict[tuple[Any, str], list[str]] = {}
    for n, ns, where in zip(apps_df["name"], apps_df["dest_namespace"], apps_df["cluster"], strict=True):
        by_ns.setdefault((where, ns), []).append(n)
    namespaces = list(dict.fromkeys(ns for _, ns in by_ns))
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
                "cluster": cluster_of.get(app) if app else None,
                **kw,
            }
        )

    def placed(df: pd.DataFrame) -> pd.DataFrame:
        """The rows of the (cluster, namespace) places the apps deploy to."""
        keep = [(c, ns) in by_ns for c, ns in zip(df["cluster"], df["namespace"], strict=True)]
        return df[pd.Series(keep, index=df.index, dtype=bool)]

    # rows of itertuples(): pandas-stubs types every field as any scalar; each is its column's (schema) type
    o: Any
    e: Any
    r: Any
    f: Any
    hist = hist[hist["app"].isin(list(path_of))]
    all_hist, hist = hist, _in(hist, "deployed_at", lo, hi)
    deploys = _deploy_columns(hist, _history_heals(all_hist), path_of, cluster_of)
    ops_all = ops[ops["app"].isin(list(path_of))]
    ops = ops_all[ops_all["phase"].isin(["Failed", "Error"])]
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
    app_events = source.events(source.argocd_namespace, lo, hi)
    app_events = app_events[
        (app_events["object_kind"] == "Application") & app_events["object_name"].isin(list(path_of))
    ]
    for m in _missing_rows(source, apps_df, app_events, lo, hi):
        row(**m)
    # Argo CD keeps only the last operation: the earlier failed ones are in its events, with their revision
    seen_ops = {(o.app, o.revision) for o in ops.itertuples(index=False)}
    for e in app_events.itertuples(index=False):
        if e.object_kind == "Application" and e.object_name in path_of:
            failed = _FAILED_OP.match(e.message or "") if e.reason == "OperationCompleted" else None
            if failed and (e.object_name, failed[1]) not in seen_ops:
                seen_ops.add((e.object_name, failed[1]))
                row(
                    e.time,
                    RowKind.SYNC_FAILED,
                    "argocd-event",
                    e.object_name,
                    f"sync Failed for {e.object_name}",
                    sha=failed[1],
                    detail=failed[2],
                )
                continue
            row(e.time, RowKind.APP_EVENT, "argocd-event", e.object_name, f"{e.reason}: {e.message}", author=e.source)
    if len(namespaces) > PER_NAMESPACE_LIMIT:  # many namespaces: one cluster-wide list each
        events, rolls = source.events(None, lo, hi), source.rollouts(None)
        edit_frames = [source.field_edits(None, kinds)]
    else:
        events = pd.concat([source.events(ns, lo, hi) for ns in namespaces] or [schema.frame(schema.EVENTS)])
        rolls = pd.concat([source.rollouts(ns) for ns in namespaces] or [schema.frame(schema.ROLLOUTS)])
        edit_frames = [source.field_edits(ns, kinds) for ns in namespaces]
    skipped = skipped_of(edit_frames)
    edits = bound_untimed(pd.concat(edit_frames or [schema.frame(schema.FIELD_EDITS)]), apps_df)
    # one namespace's rows belong to its Application when a single one deploys there
    owner = {place: names[0] if len(names) == 1 else None for place, names in by_ns.items()}
    events = placed(events)
    ns_of = dict(zip(apps_df["name"], apps_df["dest_namespace"], strict=True))
    position = {key: i for i, key in enumerate(zip(hist["app"], hist["id"], strict=True))}
    for key, also in beyond_git(source, hist, ns_of, edits=edits, events=events, before=before).items():
        i = position[key]
        deploys["beyond"][i] = "; ".join(t for _, t in also)
        deploys["detail"][i] += "; beyond git it also changed " + deploys["beyond"][i]
        deploys["fields"][i] = [f for f, _ in also]
    for e in events.itertuples(index=False):
        row(
            e.time,
            RowKind.K8S_EVENT,
            "k8s-event",
            owner[e.cluster, e.namespace],
            f"{e.type} {e.reason} {e.object_kind}/{e.object_name}: {e.message}",
            author=e.source,
            detail=f"x{e.count}" if e.count and e.count > 1 else None,
            cluster=e.cluster,
        )
    # a revert reuses an old ReplicaSet: the rollout is when its revision became current, not its creation
    rolls_all = placed(rolls)
    rolls = _in(rolls_all.assign(at=rolls_all["rolled_out_at"].fillna(rolls_all["created_at"])), "at", lo, hi)
    for r in rolls.itertuples(index=False):
        reused = f", reused (was revision {', '.join(map(str, r.revision_history))})" if r.revision_history else ""
        row(
            r.at,
            RowKind.ROLLOUT,
            "rollout",
            owner[r.cluster, r.namespace],
            f"{r.deployment} rollout #{r.revision}: {', '.join(r.images)}",
            detail=f"ReplicaSet {r.replicaset}{reused}, {r.ready_replicas}/{r.replicas} ready",
            cluster=r.cluster,
        )
    edits_all = placed(edits)
    edits_all = edits_all[~edits_all["is_gitops"]]
    edits = _in(edits_all, "time", lo, hi)
    for f in edits.itertuples(index=False):
        shown = ", ".join(f.fields[:6]) + (f" … {len(f.fields) - 6} more" if len(f.fields) > 6 else "")
        row(
            f.time,
            RowKind.FIELD_EDIT,
            "field-edit",
            owner[f.cluster, f.namespace],
            f"{f.manager} changed {f.kind}/{f.name} in {f.namespace}",
            author=f.manager,
            cluster=f.cluster,
            detail=shown + (f" (time unknown: {f.time_bound})" if isinstance(f.time_bound, str) else ""),
            fields=list(f.fields),
        )
    for heal in _heal_rows(all_hist, ops_all, app_events, edits_all, events, rolls_all, apps_df, lo, hi):
        row(**heal)
    # the deploys (thousands: built from columns), then the rest (a few rows each)
    others = schema.frame(schema.TIMELINE, rows)
    others["fields"] = [r.get("fields", []) for r in rows]
    others["beyond"] = [r.get("beyond") for r in rows]  # what a deploy changed beyond git (its commit row says it)
    first = schema.frame(schema.TIMELINE, deploys)
    first["fields"], first["beyond"] = deploys["fields"], deploys["beyond"]
    out = pd.concat([first, others], ignore_index=True) if len(others) else first
    out.attrs["skipped"] = skipped
    out.attrs["failures"] = source.failures.to_dict("records") if isinstance(source, Fleet) else []
    return out


# -- what a deploy changed beyond git -------------------------------------------------------

#: how long after a deploy's ``deployedAt`` its apply and its rollout's first scaling are still "the deploy"
_DEPLOY_SLACK = pd.Timedelta(seconds=30)


def beyond_git(
    source: EvidenceSource,
    deploys: pd.DataFrame,
    ns_of: dict[Any, Any],
    *,
    edits: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    before: EvidenceSource | None = None,
) -> dict[tuple[Any, Any], list[tuple[str, str]]]:
    """(app, deploy id) -> [(field, what a person reads)] for each field a deploy changed that git did not
    ask to change: the deploy put back git's value over one set outside git (a ``kubectl edit`` or
    ``scale`` that left the app OutOfSync with self-heal off).

    From a recording (field edits with their recorded ``changes``): each field Argo CD changed at the
    deploy whose old value a manager other than Argo CD had set, with who set it, when, and so how long the
    cluster and git disagreed. Without one, from what the cluster still keeps: the deployment controller's
    ``ScalingReplicaSet`` events (they expire, an hour by default): the old ReplicaSet scaled from the
    replica count before the deploy, the new one to git's, and the scaling that set the old count. (The
    ReplicaSets' ``deployment.kubernetes.io/desired-replicas`` annotations do not keep it: the rollout
    rewrites the old ReplicaSet's to the new count as it scales it down.)

    ``edits``/``events``: the field edits and events already read (else read here, per namespace).
    ``before``: the evidence unbounded by the window, read (only the objects Argo CD changed at the
    deploys, all at once: see :func:`_earlier_changes`) for who set each old value, however long ago.
    """
    out: dict[tuple[Any, Any], list[tuple[str, str]]] = {}
    if not len(deploys):
        return out
    cache: dict[str, tuple[pd.DataFrame, bool]] = {}
    # one split per frame, not one scan of the whole frame per namespace (a fleet has a namespace per app)
    # (the recorded changes and the scalings of the whole frame, split: as made per namespace, in one pass each)
    changed_of, recorded_in = None, set()
    if edits is not None and (whole := recorded_changes(edits)) is not None:
        changed_of, recorded_in = _per_namespace(whole), set(edits.loc[edits["changes"].notna(), "namespace"])
    scalings = _scalings(events) if events is not None else None
    scalings_of = _per_namespace(scalings) if scalings is not None else None
    if edits is not None and scalings is not None:  # all read: only the deploys of a namespace with any evidence
        evident = recorded_in | set(scalings["namespace"])
        deploys = deploys[[ns_of.get(a) in evident for a in deploys["app"]]]
    todo: list[tuple[Any, str, pd.Timestamp, pd.Timestamp]] = []
    d: Any
    for d in deploys.itertuples(index=False):
        ns = ns_of.get(d.app)
        if not isinstance(ns, str) or pd.isna(d.deployed_at):
            continue
        start = d.deploy_started_at if pd.notna(d.deploy_started_at) else d.deployed_at
        lo, hi = start - pd.Timedelta(seconds=2), d.deployed_at + _DEPLOY_SLACK
        if ns not in cache:
            if edits is None:
                changes = recorded_changes(source.field_edits(ns))
            else:
                changes = changed_of(ns) if changed_of is not None and ns in recorded_in else None
            if changes is not None:
                cache[ns] = (changes, True)
            else:
                scaled = scalings_of(ns) if scalings_of is not None else _scalings(source.events(ns, None, hi))
                cache[ns] = (scaled, False)
        todo.append((d, ns, lo, hi))

    earlier, at_deploy = None, {}
    if before is not None and before is not source:  # who set the old values, however long before the window
        for i, (_d, ns, lo, hi) in enumerate(todo):
            frame, recorded = cache[ns]
            if recorded:  # what Argo CD changed at the deploy
                at_deploy[i] = frame[frame["is_gitops"] & (frame["time"] >= lo) & (frame["time"] <= hi)]
        earlier = _earlier_changes(before, [(todo[i][1], mine) for i, mine in at_deploy.items()])
    for i, (d, ns, lo, hi) in enumerate(todo):
        frame, recorded = cache[ns]
        if earlier is not None and i in at_deploy and len(mine := at_deploy[i]):
            whole = earlier(ns, mine)
            frame = whole if whole is not None else mine
        if recorded:
            found = _reset_fields(frame, ns, lo, hi)
        else:
            found = _rescaled(frame, ns, lo, hi, functools.partial(source.events, ns, None, hi))
        if found:
            out[(d.app, d.id)] = found
    return out


def _earlier_changes(
    before: EvidenceSource, deploys: list[tuple[str, pd.DataFrame]]
) -> Callable[[str, pd.DataFrame], pd.DataFrame | None]:
    """``(namespace, what Argo CD changed at one deploy)`` -> every recorded change of those objects in
    ``before`` (the evidence unbounded by the window), oldest first; ``None`` when it recorded none.

    A source keeping every change (:class:`~gitops_nb.cluster.evidence.EditHistory`, a recording) is read
    once for the objects the window's deploys changed (names pushed down to the files), not for every
    object of their kinds over all it holds; any other source per namespace, for the kinds changed."""
    if isinstance(before, EditHistory):
        objects = {(ns, k, n) for ns, at in deploys for k, n in zip(at["kind"], at["name"], strict=True)}
        found = recorded_changes(before.recorded_edits(objects)) if objects else None
        of = _per_namespace(found)

        def read(ns: str, at: pd.DataFrame) -> pd.DataFrame | None:
            if of is None:
                return None
            mine = of(ns)
            keys = set(zip(at["kind"], at["name"], strict=True))
            keep = [(k, n) in keys for k, n in zip(mine["kind"], mine["name"], strict=True)]
            mine = mine[pd.Series(keep, index=mine.index, dtype=bool)]
            return mine if len(mine) else None

        return read
    return lambda ns, at: recorded_changes(before.field_edits(ns, sorted(set(at["kind"]))))


def recorded_changes(edits: pd.DataFrame) -> pd.DataFrame | None:
    """One row per recorded ``[path, old, new]`` of the field edits (time, namespace, kind, name, path, old,
    new, manager, is_gitops, time_bound, cluster), oldest first; ``None`` when the source recorded none (a
    live cluster, a snapshot)."""
    if "changes" not in edits.columns or not edits["changes"].notna().any():
        return None
    rows = [
        {
            "time": t,
            "namespace": ns,
            "kind": k,
            "name": n,
            "path": c[0],
            "old": c[1],
            "new": c[2],
            "manager": m,
            "is_gitops": bool(g),
            "time_bound": b,
            "cluster": where,
        }
        for t, ns, k, n, m, g, b, where, cs in zip(
            edits["time"],
            edits["namespace"],
            edits["kind"],
            edits["name"],
            edits["manager"],
            edits["is_gitops"],
            edits["time_bound"],
            edits["cluster"] if "cluster" in edits.columns else [None] * len(edits),
            edits["changes"],
            strict=True,
        )
        if isinstance(cs, list)
        for c in cs
        if not str(c[0]).startswith("status")
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "time",
            "namespace",
            "kind",
            "name",
            "path",
            "old",
            "new",
            "manager",
            "is_gitops",
            "time_bound",
            "cluster",
        ],
    ).sort_values("time", kind="stable")


def _reset_fields(changes: pd.DataFrame, ns: str, lo: pd.Timestamp, hi: pd.Timestamp) -> list[tuple[str, str]]:
    """Fields Argo CD changed between ``lo`` and ``hi`` whose old value was set outside git (recorded)."""
    mine = changes[changes["is_gitops"] & (changes["time"] >= lo) & (changes["time"] <= hi)]
    out: list[tuple[str, str]] = []
    c: Any
    for c in mine.itertuples(index=False):
        earlier = changes[
            (changes["kind"] == c.kind)
            & (changes["name"] == c.name)
            & (changes["path"] == c.path)
            & (changes["time"] < c.time)
        ]
        if not len(earlier):
            continue
        prev: Any = earlier.iloc[-1]
        if bool(prev["is_gitops"]) or prev["new"] != c.old:
            continue  # git's own change (a tag bump), or an old value Argo CD had put there
        who = prev["manager"] or "an unknown manager"
        bound = prev["time_bound"]
        when = f"{bound} (found on a relist)" if isinstance(bound, str) else f"at {prev['time']:%Y-%m-%d %H:%M:%S} UTC"
        out.append(
            (
                str(c.path),
                f"{c.path} {c.old} → {c.new} on {c.kind}/{c.name} in {ns} ({c.old} had been set by {who} {when}, "
                f"never in git; the cluster and git disagreed for {describe_span(c.time - prev['time'])})",
            )
        )
    return out


def _rescaled(
    scalings: pd.DataFrame, ns: str, lo: pd.Timestamp, hi: pd.Timestamp, earlier: Callable[[], pd.DataFrame]
) -> list[tuple[str, str]]:
    """A replica count a deploy reset, from the ScalingReplicaSet events still kept (no recording).
    ``scalings``: the window's events' (:func:`_scalings`); ``earlier()`` reads the events from before it too,
    only when a reset is found."""
    out: list[tuple[str, str]] = []
    if not len(scalings):
        return out
    t = scalings["time"]
    window = scalings[(t >= lo) & (t <= hi)]
    if not len(window):
        return out
    groups = dict(tuple(window.groupby("object_name", sort=False)))
    older: pd.DataFrame | None = None
    for name in pd.unique(scalings["object_name"]):  # in the order the objects first scaled
        if name not in groups:
            continue
        at = groups[name]
        steps = [(t, m) for t, msg in zip(at["time"], at["message"], strict=True) if (m := _SCALED.search(str(msg)))]
        if not steps:
            continue
        created = {m.group(1) for _, m in steps if m.group(2) == "0"}  # the rollout's new ReplicaSet
        old = [(t, m) for t, m in steps if m.group(1) not in created]
        new = [m for _, m in steps if m.group(1) in created]
        if not old or not new:
            continue
        before, after = int(old[0][1].group(2)), max(int(m.group(3)) for m in new)
        if before == after:
            continue
        if older is None:
            older = _scalings(earlier())
        prior = older[(older["object_name"] == name) & (older["time"] < lo)]
        setter = [
            (t, m)
            for t, msg in zip(prior["time"], prior["message"], strict=True)
            if (m := _SCALED.search(str(msg))) and int(m.group(3)) == before and m.group(1) == old[0][1].group(1)
        ]
        since = (
            f"; it had been scaled to {before} at {setter[-1][0]:%Y-%m-%d %H:%M:%S} UTC without a deploy, so the "
            f"cluster and git disagreed for {describe_span(old[0][0] - setter[-1][0])}"
            if setter
            else ""
        )
        out.append(
            (
                "spec.replicas",
                f"spec.replicas {before} → {after} on Deployment/{name} in {ns} (from the ScalingReplicaSet events: the old "
                f"ReplicaSet {old[0][1].group(1)} had {before}, the rollout gave {after}; who set {before} is not "
                f"kept without a recording{since})",
            )
        )
    return out


def _per_namespace(df: pd.DataFrame | None) -> Callable[[str], pd.DataFrame] | None:
    """``df``'s rows of one namespace (in ``df``'s order), split once; ``None`` for no frame."""
    if df is None:
        return None
    groups = dict(tuple(df.groupby("namespace", sort=False)))
    empty = df.iloc[:0]
    return lambda ns: groups.get(ns, empty)


def _scalings(events: pd.DataFrame) -> pd.DataFrame:
    ev = events[(events["reason"] == "ScalingReplicaSet") & (events["object_kind"] == "Deployment")]
    return ev.sort_values("time", kind="stable")


# -- a deleted resource, a self-heal -------------------------------------------------------


def _missing_rows(
    source: EvidenceSource, apps_df: pd.DataFrame, app_events: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp
) -> list[dict[str, Any]]:
    """A resource an OutOfSync app manages that is Missing (deleted outside git, self-heal off or not yet
    healed): one row each, timed by the app's last ``Synced -> OutOfSync`` event, else its reconciledAt."""
    out: list[dict[str, Any]] = []
    r: Any
    for name, sync, reconciled in zip(apps_df["name"], apps_df["sync_status"], apps_df["reconciled_at"], strict=True):
        if sync != "OutOfSync":
            continue
        res = source.app_resources(str(name))
        gone = res[(res["health_status"] == "Missing") & (res["sync_status"] != "Synced") & ~res["hook"]]
        if not len(gone):
            continue
        mine = app_events[
            (app_events["object_name"] == name)
            & app_events["message"].fillna("").str.contains("-> OutOfSync", regex=False)
        ]
        if len(mine):
            at, how = mine["time"].max(), "timed by Argo CD's OutOfSync event"
        else:
            at, how = reconciled, "timed by the app's reconciledAt (it was gone by then)"
        if at is None or pd.isna(at) or not lo <= at <= hi:
            continue
        for r in gone.itertuples(index=False):
            where = f" in {r.namespace}" if r.namespace else ""
            out.append(
                {
                    "time": at,
                    "kind": RowKind.RESOURCE_MISSING,
                    "source_name": "argocd",
                    "app": name,
                    "summary": f"{r.kind}/{r.name}{where} of {name} is missing from the cluster (deleted outside git?)",
                    "detail": f"Argo CD: {r.sync_status}, health Missing; {how}",
                }
            )
    return out


def _deploy_columns(
    hist: pd.DataFrame, heal_ids: set[tuple[Any, Any]], path_of: dict[Any, Any], cluster_of: dict[Any, Any]
) -> dict[str, Any]:
    """The timeline's columns for the deploys of ``hist`` (schema :data:`schema.TIMELINE`, plus ``fields`` and
    ``beyond``), built column-wise: a thousand apps keep ten deploys each."""
    names, revs = hist["app"].tolist(), [str(r)[:10] for r in hist["revision"]]
    healed = [k in heal_ids for k in zip(names, hist["id"], strict=True)]
    took = (hist["deployed_at"] - hist["deploy_started_at"]).dt.total_seconds().tolist()
    paths = [path_of.get(n) for n in names]
    return {
        "time": pd.DatetimeIndex(hist["deployed_at"]),
        "kind": [RowKind.HEAL if h else RowKind.DEPLOY for h in healed],
        "source": ["argocd"] * len(names),
        "app": paths,
        "apps": [[p] if p else [] for p in paths],
        "argocd_app": names,
        "summary": [
            f"Argo CD self-healed {n} at {r}" if h else f"Argo CD deployed {r} to {n}"
            for n, r, h in zip(names, revs, healed, strict=True)
        ],
        "score": [0.0] * len(names),
        "cluster": [cluster_of.get(n) for n in names],
        "sha": hist["revision"].tolist(),
        "author": hist["initiated_by"].tolist(),
        "detail": [
            f"deploy #{i}" + (f", sync took {t:.0f}s" if t == t else "")  # NaN: no start time
            for i, t in zip(hist["id"], took, strict=True)
        ],
        "fields": [[] for _ in names],
        "beyond": [None] * len(names),
    }


def _history_heals(hist: pd.DataFrame) -> set[tuple[Any, Any]]:
    """(app, id) of automated history entries that re-deploy the previous entry's revision: a self-heal,
    where an Argo CD records one (v3.2 does not: see :func:`_heal_rows`)."""
    h = hist.sort_values("deployed_at")
    prev = h.groupby("app", sort=False)["revision"].shift()  # the app's previous entry's revision (column-wise)
    heal = (h["initiated_by"] == "automated") & prev.notna() & (h["revision"] == prev)
    return set(zip(h["app"][heal], h["id"][heal], strict=True))


_SCALED = re.compile(r"Scaled (?:up|down) replica set (\S+) from (\d+) to (\d+)")


def _heal_rows(
    hist: pd.DataFrame,
    ops: pd.DataFrame,
    app_events: pd.DataFrame,
    edits: pd.DataFrame,
    events: pd.DataFrame,
    rolls: pd.DataFrame,
    apps_df: pd.DataFrame,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
) -> list[dict[str, Any]]:
    """Self-heals Argo CD records no history entry for (as v3.2): an automated sync of the revision
    already deployed. Its evidence: the app's operationState (``initiatedBy.automated``,
    ``sync.autoHealAttemptsCount`` >= 1, ``sync.resources`` = what was OutOfSync), and the app's events
    ``OperationStarted: Initiated automated sync to '<sha>'`` then ``OperationCompleted: ... to <sha>
    succeeded`` at the deployed revision. What it undid: the manual field edits of those resources since
    the previous deploy, or (once the heal took the fields back and the edit's managedFields entry is
    gone) the Deployment's scaling events and new ReplicaSets in between."""
    ns_of = dict(zip(apps_df["name"], apps_df["dest_namespace"], strict=True))
    found: dict[Any, list[tuple[pd.Timestamp, Any, list[str]]]] = {}
    # the last operation of each app
    if "self_heal_attempts" in ops.columns:
        for app, phase, by, count, rev, at, res in zip(
            ops["app"],
            ops["phase"],
            ops["initiated_by"],
            ops["self_heal_attempts"],
            ops["revision"],
            ops["finished_at"],
            ops["sync_resources"],
            strict=True,
        ):
            if phase == "Succeeded" and by == "automated" and pd.notna(count) and count >= 1 and pd.notna(at):
                found.setdefault(app, []).append((at, rev, list(res) if isinstance(res, list) else []))
    # every automated sync the events still show, at the revision the history last deployed
    started: dict[Any, str] = {}
    e: Any
    for e in app_events.sort_values("time", kind="stable").itertuples(index=False):
        msg = str(e.message or "")
        if e.reason == "OperationStarted" and msg.startswith("Initiated automated sync to "):
            started[e.object_name] = msg.rsplit(" ", 1)[-1].strip("'")
            continue
        if e.reason != "OperationCompleted" or not msg.endswith("succeeded"):
            continue
        rev = started.pop(e.object_name, None)
        mine = hist[(hist["app"] == e.object_name) & (hist["deployed_at"] < e.time - pd.Timedelta(seconds=2))]
        if rev is None or not len(mine) or mine.sort_values("deployed_at")["revision"].iloc[-1] != rev:
            continue
        known = found.setdefault(e.object_name, [])
        if not any(abs(t - e.time) <= pd.Timedelta(seconds=5) for t, _, _ in known):
            known.append((e.time, rev, []))
    out: list[dict[str, Any]] = []
    for app, heals in found.items():
        mine = hist[hist["app"] == app]
        for at, rev, resources in sorted(heals, key=lambda x: x[0]):
            if not lo <= at <= hi:
                continue
            before = [t for t in mine["deployed_at"] if t < at] + [t for t, _, _ in heals if t < at]
            since = max([at - pd.Timedelta(hours=1), *before])
            undid = _undone(str(ns_of.get(app)), resources, since, at, edits, events, rolls)
            scope = ", ".join(resources) or "the app"
            detail = f"self-heal: re-synced {scope} at {str(rev)[:10]}"
            detail += (
                "; undid " + "; ".join(f"{fld} of {what} ({how})" for fld, what, how in undid)
                if undid
                else "; what it undid is no longer on record"
            )
            out.append(
                {
                    "time": at,
                    "kind": RowKind.HEAL,
                    "source_name": "argocd",
                    "app": app,
                    "summary": f"Argo CD self-healed {app} at {str(rev)[:10]}",
                    "sha": rev,
                    "author": "automated",
                    "detail": detail,
                    "fields": list(dict.fromkeys(fld for fld, _, _ in undid)),
                }
            )
    return out


def _undone(
    ns: str,
    resources: list[str],
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    edits: pd.DataFrame,
    events: pd.DataFrame,
    rolls: pd.DataFrame,
) -> list[tuple[str, str, str]]:
    """(field, kind/name, how it is known) for each field a heal between ``lo`` and ``hi`` took back."""
    scope = set(resources)

    def ours(kind: Any, name: Any) -> bool:
        return not scope or f"{kind}/{name}" in scope

    out: list[tuple[str, str, str]] = []
    f: Any
    for f in edits[(edits["namespace"] == ns) & (edits["time"] >= lo) & (edits["time"] <= hi)].itertuples(index=False):
        if ours(f.kind, f.name):
            out += [(x, f"{f.kind}/{f.name}", f"set by {f.manager}") for x in f.fields]
    edited = {what for _, what, _ in out}
    slack = pd.Timedelta(seconds=1)  # event times are whole seconds
    # a ReplicaSet made in the seconds after the deploy at ``lo`` is that deploy's own rollout (the controller
    # creates it after Argo CD's apply returned), not one the heal made
    settle = pd.Timedelta(seconds=10)
    new_rs = rolls[
        (rolls["namespace"] == ns) & (rolls["created_at"] > lo + settle) & (rolls["created_at"] <= hi + slack)
    ]
    r: Any
    for r in new_rs.itertuples(index=False):
        if ours("Deployment", r.deployment) and f"Deployment/{r.deployment}" not in edited:
            out.append(
                (
                    "spec.template",
                    f"Deployment/{r.deployment}",
                    f"rolled out ReplicaSet {r.replicaset}: {', '.join(r.images)}",
                )
            )
    scaled = events[
        (events["namespace"] == ns)
        & (events["object_kind"] == "Deployment")
        & (events["reason"] == "ScalingReplicaSet")
        & (events["time"] >= lo)
        & (events["time"] <= hi + slack)
    ]
    seen: set[str] = set()
    e: Any
    for e in scaled.sort_values("time", kind="stable").itertuples(index=False):
        m = _SCALED.search(str(e.message or ""))
        target = f"Deployment/{e.object_name}"
        if (
            m is None
            or m.group(2) == "0"
            or target in seen
            or target in edited
            or not ours("Deployment", e.object_name)
        ):
            continue
        if e.object_name in set(new_rs["deployment"]):
            continue  # a rollout's scaling (old and new ReplicaSets), not a replicas edit
        seen.add(target)
        out.append(("spec.replicas", target, f"scaled from {m.group(2)} to {m.group(3)}"))
    return out
