"""A recording as evidence: :class:`Recording` reads what a recorder wrote to a
:class:`~gitops_nb.cluster.store.Store` and answers as a live cluster would have at any time it covers.

Every frame is rebuilt from the stored objects by the same row builders the live
:class:`~gitops_nb.cluster.live.Cluster` uses (:func:`~gitops_nb.cluster.live.app_row`, ...), so a
recording, a snapshot and a live cluster give the same columns and meanings. What a recording adds:
deploys past Argo CD's 10 (``history`` is the union of every recorded version), ReplicaSets deleted
since (``rollouts``), events long expired (``events``), and one ``field_edits`` row per recorded field
change, with its old and new value and the manager that made it.

Reads push the cluster, kind, day, time, namespace and app filters down to the Parquet files (pyarrow
dataset expressions); the newest version of each object is found on a few small columns first, and only
those versions' ``object`` JSON is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from .. import schema
from ..errors import InputError, UnknownAppError
from ..times import now_utc, parse_at
from .live import (
    CONTROLLER_MANAGERS,
    EDIT_KINDS,
    GITOPS_MANAGERS,
    app_row,
    did_you_mean,
    event_frame,
    field_edit_frame,
    field_edit_rows,
    history_rows,
    operation_rows,
    resource_rows,
    rollout_frame,
)
from .store import COLUMNS, Store, sanitize_object

__all__ = ["Recording"]

#: an event relisted after the recorder was down is recorded up to this long after it happened
_EVENT_SLACK = pd.Timedelta(hours=1)
#: history() reads every this many versions of an Application whose status.history grew (Argo CD lists 10)
_STRIDE = 5
#: paths of a recorded change that are bookkeeping, not an edit
_NOT_EDITS = ("status", "metadata.managedFields", "metadata.resourceVersion", "metadata.generation")


class Recording:
    """Evidence recorded by ``gitops-nb record``: an :class:`~gitops_nb.cluster.evidence.EvidenceSource`.

    A fleet recording (a hub recorded with its apps' destinations, see :class:`~gitops_nb.cluster.recorder.Recorder`)
    reads as one: Applications and deploy history from the hub's partition, events, rollouts and field
    edits from every destination's partition, each row's ``cluster`` the partition it was recorded in (an
    app's ``cluster``: the partition its objects were recorded in), so :func:`~gitops_nb.what_changed`
    matches them on (cluster, namespace) as it does a live :class:`~gitops_nb.cluster.fleet.Fleet`.
    A single cluster's recording leaves ``cluster`` empty, as before.

    Args:
        store: a :class:`Store`, or its URL (a directory or ``s3://bucket/prefix``).
        cluster: which recorded cluster, or hub (required when the store holds several hubs, i.e.
            partitions with Applications; destinations-only partitions are read with their hub).
        at: the time the evidence is read as of (default: now): :meth:`applications` is each
            Application as it was then, rollouts and field edits of the objects as they were then.
        since: the oldest time a query needs (default: the whole recording). Setting it bounds the
            reads (deploy history, events, field changes) of a long recording to the window asked about;
            the deploys Argo CD still listed at ``since`` are kept.
        apps: only the objects these Applications manage (pushed down to the files), else all.
    """

    #: a recording does not fade
    live = False

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        *,
        cluster: str | None = None,
        at: str | datetime | pd.Timestamp | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        apps: Sequence[str] | None = None,
        _dest: dict[str, str] | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        known = self.store.clusters()
        if not known:
            raise InputError(
                f"store {self.store.url} holds no recording yet: record one with `gitops-nb record --store ...`"
            )
        hubs = known if len(known) == 1 or _dest is not None else self._hubs()
        if cluster is None and len(hubs) == 1:
            cluster = hubs[0]
        if cluster is None:
            if len(known) > 1:
                raise InputError(
                    f"store {self.store.url} holds {len(known)} clusters ({', '.join(known)}): pass cluster=..."
                )
            cluster = known[0]
        elif cluster not in known:
            raise InputError(
                f"store {self.store.url} has no recording of cluster {cluster!r}. " + did_you_mean(cluster, known)
            )
        self.cluster = cluster
        #: app -> the destination partition its objects were recorded in (a fleet recording; else empty)
        self.dest: dict[str, str] = (
            _dest
            if _dest is not None
            else self._destinations([c for c in known if c not in hubs])
            if cluster in hubs and len(known) > 1
            else {}
        )
        #: the partitions read: the hub's, then its apps' destinations'
        self.places = [cluster, *sorted(set(self.dest.values()) - {cluster})]
        self.at = parse_at(at) if at is not None else now_utc()
        self.at_given = at is not None
        self.since = parse_at(since) if since is not None else None
        if self.since is not None and self.since > self.at:
            raise InputError(f"since ({self.since}) is after at ({self.at}): give since <= at")
        self.apps = list(apps) if apps else None
        self._cache: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"Recording({self.store!r}, cluster={self.cluster!r}, at={self.at.isoformat()!r})"

    def for_window(self, lo: pd.Timestamp, hi: pd.Timestamp) -> Recording:
        """This recording bounded to a query's window [lo, hi]: ``since`` = lo (unless it is bounded more
        already), and, when no ``at`` was given, read as of ``hi`` (the cluster as it was at the window's
        end, not as it is now). :func:`~gitops_nb.what_changed` so reads a 30-day recording as it reads a
        2-hour snapshot, with the same answer as the whole recording's (what a window needs from before it,
        Argo CD's deploy list at ``lo``, is kept)."""
        at = self.at if self.at_given else hi
        since = lo if self.since is None or self.since < lo else self.since
        if at == self.at and since == self.since:
            return self
        return Recording(self.store, cluster=self.cluster, at=at, since=min(since, at), apps=self.apps, _dest=self.dest)

    def save_window(
        self,
        dest: str | os.PathLike[str],
        since: str | datetime | pd.Timestamp,
        until: str | datetime | pd.Timestamp,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> Store:
        """Copy into a new local store at ``dest`` every row :func:`~gitops_nb.what_changed` over
        [since, until] reads of this recording, so the evidence outlives the recorder's ``--retain``; returns
        it. Reopen it as ``Recording(dest, at=...)`` (this recording's ``at``, when one was given) and ask
        the same question: the same timeline.

        What it holds: every row of the window (:meth:`for_window`: from ``since`` to the time it is read
        as of; events up to an hour after, as :meth:`events` reads them); the newest version of each object
        from before the window (the state the window starts from), its recorded ``changes`` left out (``[]``); and,
        when this recording is not bounded to the window itself (no ``since``, or an earlier one), every
        earlier recorded change of the objects changed in the window: who set a value a deploy in the
        window reset, however long before (what :func:`~gitops_nb.investigate.evidence_rows.beyond_git`
        reads). Secrets keep no values (their rows are sanitized again as they are copied). ``progress``
        gets a line per step (a 30-day recording takes a few seconds).
        """
        import pyarrow.dataset as ds

        window = self.for_window(parse_at(since), parse_at(until))
        lo, at = window.since if window.since is not None else parse_at(since), window.at
        out = Store(dest)
        if out.clusters():
            raise InputError(f"{out.url} already holds a recording: save the window into a new directory")
        out.check_writable()
        say = progress or (lambda _line: None)
        say(f"saving the recording's rows from {lo:%Y-%m-%d %H:%M:%S} to {at:%Y-%m-%d %H:%M:%S} UTC into {out.url}")
        before = lo - pd.Timedelta(microseconds=1)
        not_event = ds.field("kind") != "Event"
        kw: dict[str, Any] = {"clusters": self.places, "apps": self.apps}
        rows = [
            self.store.read(**kw, since=lo, until=at, where=not_event).to_pandas(),
            self.store.read(clusters=self.places, kinds=["Event"], since=lo, until=at + _EVENT_SLACK).to_pandas(),
        ]
        # the state the window starts from: each object's newest version before it (and a GONE after that)
        say(f"  {sum(len(r) for r in rows)} rows in the window; reading the state before it")
        small = ["cluster", "kind", "uid", "time", "event", "day"]
        old = self.store.read(**kw, until=before, columns=small, where=not_event).to_pandas()
        real = old[old["event"] != "GONE"].drop_duplicates(["cluster", "uid"], keep="last")
        last = old.drop_duplicates(["cluster", "uid"], keep="last")
        state = self.store.versions(pd.concat([real, last[last["event"] == "GONE"]]), list(COLUMNS))
        state["changes"] = "[]"  # a state to start from: what changed then is not what the window asked
        changed = rows[0][rows[0]["event"].isin(["MODIFIED", "RELISTED"]) & rows[0]["namespace"].notna()]
        objects = set(zip(changed["namespace"], changed["kind"], changed["name"], strict=True))
        if objects and (self.since is None or self.since < lo):  # what_changed reads their earlier changes too
            where = (
                ds.field("event").isin(["MODIFIED", "RELISTED"])
                & ds.field("namespace").isin(sorted({o[0] for o in objects}))
                & ds.field("name").isin(sorted({o[2] for o in objects}))
            )
            kinds = sorted({o[1] for o in objects})
            say(f"  reading the earlier changes of the {len(objects)} objects changed in the window")
            earlier = self.store.read(**kw, kinds=kinds, since=self.since, until=before, where=where).to_pandas()
            mine = [o in objects for o in zip(earlier["namespace"], earlier["kind"], earlier["name"], strict=True)]
            earlier = earlier[pd.Series(mine, index=earlier.index, dtype=bool)]
            key = ["cluster", "uid", "time"]
            kept = pd.MultiIndex.from_frame(earlier[key])
            state = state[~pd.MultiIndex.from_frame(state[key]).isin(kept)]
            rows.append(earlier)
        rows.append(state)
        if not any(len(r) for r in rows):
            raise InputError(
                f"the recording {self.store.url} holds nothing up to {at} (its days dropped by retention?): "
                "nothing to save; reopen a window saved earlier instead"
            )
        copied = pd.concat([r for r in rows if len(r)], ignore_index=True)
        for cluster, part in copied.groupby("cluster", sort=True):
            records = [_sanitized(r) for r in part.to_dict("records")]
            out.write_rows(str(cluster), records, recorder="saved-window", seq=0)
        say(f"  saved {len(copied)} rows")
        return out

    def _hubs(self) -> list[str]:
        """The partitions holding Applications (a destination's partition holds none)."""
        t = self.store.read(kinds=["Application"], columns=["cluster"])
        return sorted({str(c) for c in t.column("cluster").to_pylist()})

    def _destinations(self, spokes: list[str]) -> dict[str, str]:
        """app -> the destinations-only partition its objects were last recorded in."""
        if not spokes:
            return {}
        import pyarrow.dataset as ds

        t = self.store.read(clusters=spokes, columns=["cluster", "app", "time"], where=ds.field("app").is_valid())
        df = t.to_pandas().sort_values("time", kind="stable").drop_duplicates("app", keep="last")
        return {str(a): str(c) for a, c in zip(df["app"], df["cluster"], strict=True)}

    @property
    def fleet(self) -> bool:
        """A hub's recording with its apps' objects recorded on their destinations."""
        return bool(self.dest)

    def _where(self, kinds: Sequence[str] | None) -> list[str]:
        """The partitions a read of ``kinds`` covers: Applications live on the hub, the rest everywhere."""
        return [self.cluster] if list(kinds or []) == ["Application"] else self.places

    def _app_cluster(self, df: pd.DataFrame, by: str) -> pd.DataFrame:
        """``cluster`` of an Argo CD frame (fleet recordings): where each app's objects were recorded."""
        if self.fleet:
            df["cluster"] = pd.Series([self.dest.get(a, self.cluster) for a in df[by]], index=df.index, dtype=object)
        return df

    def _tagged(self, frames: dict[str, pd.DataFrame], order: list[str]) -> pd.DataFrame:
        """Per-partition frames as one, ``cluster`` filled (fleet recordings), sorted by ``order``."""
        if not self.fleet:
            return frames.get(self.cluster, next(iter(frames.values()))) if frames else pd.DataFrame()
        parts = [f.assign(cluster=c) for c, f in frames.items() if len(f)]
        if not parts:
            return next(iter(frames.values()))
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return out.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)

    @property
    def context(self) -> str:
        return self.cluster

    @property
    def argocd_namespace(self) -> str:
        raw = self._raw_apps()
        return str(next((a["metadata"].get("namespace") for a in raw if a["metadata"].get("namespace")), "argocd"))

    # -- reading the store ---------------------------------------------------------------------

    def _read(
        self,
        kinds: Sequence[str] | None,
        columns: list[str],
        *,
        since: Any = None,
        until: Any = None,
        where: Any = None,
    ) -> pd.DataFrame:
        t = self.store.read(
            clusters=self._where(kinds),
            kinds=kinds,
            apps=self.apps,
            since=since,
            until=until if until is not None else self.at,
            columns=columns,
            where=where,
        )
        df: pd.DataFrame = t.to_pandas()
        return df

    def _objects(self, picked: pd.DataFrame) -> list[tuple[str, dict[str, Any]]]:
        """(kind, object) of the versions ``picked`` (their kind, uid, time and day)."""
        got = self.store.versions(picked.assign(cluster=self.cluster), ["object"])
        return [(str(k), json.loads(o)) for k, o in zip(got["kind"], got["object"], strict=True) if isinstance(o, str)]

    def _state(
        self, kinds: Sequence[str], *, at: pd.Timestamp | None = None, deleted: bool = False, where: Any = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Each object's newest version at ``at`` (default: the recording's ``at``); objects deleted by then
        are left out, or (``deleted``) kept as they were last seen."""
        return [(k, o) for _c, k, o in self._placed_state(kinds, at=at, deleted=deleted, where=where)]

    def _placed_state(
        self,
        kinds: Sequence[str],
        *,
        at: pd.Timestamp | None = None,
        deleted: bool = False,
        where: Any = None,
        clusters: Sequence[str] | None = None,
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """:meth:`_state` with the partition of each object: (cluster, kind, object)."""
        df = self.store.latest(
            clusters=clusters or self._where(kinds),
            kinds=kinds,
            apps=self.apps,
            until=at or self.at,
            where=where,
            columns=["object"],
        )
        if not deleted:
            df = df[~df["gone"]]
        elif self.since is not None:  # deleted before the window: nothing to show
            df = df[~(df["gone"] & (df["time"] < self.since))]
        return [
            (str(c), str(k), json.loads(o))
            for c, k, o in zip(df["cluster"], df["kind"], df["object"], strict=True)
            if isinstance(o, str)
        ]

    def _raw_apps(self) -> list[dict[str, Any]]:
        if "apps" not in self._cache:
            self._cache["apps"] = [o for _k, o in self._state(["Application"])]
        out: list[dict[str, Any]] = self._cache["apps"]
        return out

    # -- Argo CD -------------------------------------------------------------------------------

    def applications(self) -> pd.DataFrame:
        """Each Application as it was at ``at`` (schema :data:`schema.APPLICATIONS`)."""
        return self._app_cluster(schema.frame(schema.APPLICATIONS, [app_row(a) for a in self._raw_apps()]), "name")

    def operations(self) -> pd.DataFrame:
        """Each Application's last operation as of ``at`` (schema :data:`schema.OPERATIONS`)."""
        ops = schema.frame(schema.OPERATIONS, [r for a in self._raw_apps() for r in operation_rows(a)])
        return self._app_cluster(ops, "app")

    def history(self) -> pd.DataFrame:
        """Every deploy recorded (schema :data:`schema.APP_HISTORY`), oldest first: the union over all
        recorded versions of each Application, by (app, id), so deploys past Argo CD's 10 are kept."""
        if "history" in self._cache:
            return self._cache["history"].copy()  # type: ignore[no-any-return]
        import pyarrow.dataset as ds

        # the versions whose status.history changed (or that were seen whole: added, relisted)
        where = ds.field("event").isin(["ADDED", "RELISTED", "MODIFIED"])
        rows = self._read(
            ["Application"], ["kind", "uid", "time", "event", "day", "changes"], since=self.since, where=where
        )
        changed = rows["changes"].fillna("[]")
        whole = (rows["event"] != "MODIFIED") | (changed == "[]")  # seen whole, or what changed is unknown
        grew = rows[~whole & changed.str.contains("status.history", regex=False)]
        # a watched update adds a deploy or two and Argo CD lists 10: every _STRIDE-th version (and each
        # app's last) overlaps the next, so reading those loses no deploy and parses a fifth of the JSON
        n = grew.groupby("uid").cumcount()
        last = ~grew["uid"].duplicated(keep="last")
        picked = pd.concat([rows[whole], grew[(n % _STRIDE == _STRIDE - 1) | last]])
        objs = [o for _k, o in self._objects(picked)]
        objs += self._raw_apps()
        if self.since is not None and len(picked):  # what Argo CD still listed at the window's start, for the
            # apps whose history changed in the window (the others list the same now as then)
            moved = ds.field("uid").isin(sorted(set(picked["uid"])))
            objs += [o for _k, o in self._state(["Application"], at=self.since, where=moved)]
        # each entry once (the versions overlap), then the live builder over one merged object per app
        entries: dict[Any, dict[Any, dict[str, Any]]] = {}
        for a in objs:
            name = (a.get("metadata") or {}).get("name")
            for e in (a.get("status") or {}).get("history") or []:
                entries.setdefault(name, {})[e.get("id")] = e
        seen = {
            (h["app"], h["id"]): h
            for name, by_id in entries.items()
            for h in history_rows({"metadata": {"name": name}, "status": {"history": list(by_id.values())}})
        }
        at = self.at
        hist = [h for h in seen.values() if h["deployed_at"] is None or h["deployed_at"] <= at]
        hist.sort(key=lambda h: (h["app"] or "", h["deployed_at"] or pd.Timestamp(0, tz="UTC"), h["id"] or 0))
        self._cache["history"] = self._app_cluster(schema.frame(schema.APP_HISTORY, hist), "app")
        return self._cache["history"].copy()  # type: ignore[no-any-return]

    def argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return self.applications(), self.history(), self.operations()

    def _app(self, app: str) -> dict[str, Any]:
        for a in self._raw_apps():
            if a["metadata"].get("name") == app:
                return a
        names = sorted(str(a["metadata"].get("name")) for a in self._raw_apps())
        raise UnknownAppError(
            f"no Application {app!r} in the recording of {self.cluster!r} at {self.at}. " + did_you_mean(app, names),
            context=self.cluster,
            resource=f"applications.argoproj.io/{app}",
            verb="get",
        )

    def app_history(self, app: str) -> pd.DataFrame:
        """The recorded deploys of ``app``."""
        self._app(app)
        h = self.history()
        return h[h["app"] == app].reset_index(drop=True)

    def app_resources(self, app: str) -> pd.DataFrame:
        """The resources ``app`` managed at ``at``."""
        return schema.frame(schema.APP_RESOURCES, resource_rows(self._app(app)))

    # -- Kubernetes ----------------------------------------------------------------------------

    def get_object(
        self,
        group: str,
        version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        cluster: str | None = None,
    ) -> dict[str, Any] | None:
        """The object as recorded at ``at`` (``None`` if it did not exist then), as
        :meth:`Cluster.get_object <gitops_nb.cluster.live.Cluster.get_object>` reads it live: so
        ``drift(recording, repo)`` compares git with the cluster as it was. Secrets hold no values.
        ``cluster``: the partition to read it in (a fleet recording; default: every one read)."""
        import pyarrow.dataset as ds

        where = ds.field("name") == name
        if namespace:
            where = where & (ds.field("namespace") == namespace)
        objs = self._placed_state([kind], where=where, clusters=[cluster] if cluster else None)
        return objs[-1][2] if objs else None

    def events(
        self,
        namespace: str | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        until: str | datetime | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Every recorded event (expired ones too) last seen in [since, until] (schema :data:`schema.EVENTS`).

        Each event once (its newest recorded count). Without ``since`` the recording's ``since``
        bounds the read.
        """
        lo = parse_at(since) if since is not None else self.since
        hi = parse_at(until) if until is not None else self.at
        key = ("events", lo, hi)
        if key not in self._cache:
            import pyarrow.dataset as ds

            t = self.store.read(
                clusters=self.places,
                kinds=["Event"],
                since=lo,
                until=hi + _EVENT_SLACK,
                columns=["cluster", "uid", "time", "object"],
                where=ds.field("event") != "GONE",
            ).to_pandas()
            t = t.drop_duplicates(["cluster", "uid"], keep="last")
            frames = {
                c: event_frame([json.loads(o) for o in t["object"][t["cluster"] == c] if o], lo, hi)
                for c in self.places
            }
            self._cache[key] = self._tagged(frames, ["time"])
        e: pd.DataFrame = self._cache[key]
        return (e[e["namespace"] == namespace] if namespace else e).reset_index(drop=True)

    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:
        """Deployments' ReplicaSets as of ``at``, those deleted since included (schema :data:`schema.ROLLOUTS`)."""
        if "rollouts" not in self._cache:
            placed = self._placed_state(["ReplicaSet"], deleted=True)
            frames = {
                c: rollout_frame([o for w, _k, o in placed if w == c], None, self._events_of(c)) for c in self.places
            }
            self._cache["rollouts"] = self._tagged(frames, ["namespace", "deployment", "revision"])
        r: pd.DataFrame = self._cache["rollouts"]
        r = r[r["namespace"] == namespace] if namespace else r
        return (r[r["deployment"] == name] if name else r).reset_index(drop=True)

    def _events_of(self, cluster: str) -> Any:
        """``events`` of one partition (a rollout's events are its own cluster's)."""

        def read() -> pd.DataFrame:
            e = self.events()
            return e[e["cluster"] == cluster].reset_index(drop=True) if self.fleet else e

        return read

    def field_edits(self, namespace: str | None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        """Who set which fields, when (schema :data:`schema.FIELD_EDITS`): the managedFields of the objects as
        of ``at``, plus one row per change the recorder saw (``changes`` = [path, old, new]; a change found
        on a relist has ``time_bound`` "between <since> and <time>")."""
        wanted = tuple(sorted(kinds or EDIT_KINDS))
        key = ("edits", wanted)
        if key not in self._cache:
            self._cache[key] = self._field_edits(wanted)
        f: pd.DataFrame = self._cache[key]
        out = (f[f["namespace"] == namespace] if namespace else f).reset_index(drop=True)
        out.attrs["skipped"] = []
        return out

    def recorded_edits(self, objects: Iterable[tuple[str, str, str]]) -> pd.DataFrame:
        """The recorded changes of the ``(namespace, kind, name)`` objects: the rows of ``field_edits(None,
        kinds)`` with ``changes`` that are theirs, in the same order, read with their namespaces and names
        pushed down to the files and without the objects' current managedFields, so a deploy's few objects
        are looked up over 30 days without reading everyone's changes.
        (:class:`~gitops_nb.cluster.evidence.EditHistory`)"""
        import pyarrow.dataset as ds

        wanted = {(str(ns), str(k), str(n)) for ns, k, n in objects}
        if not wanted:
            out = field_edit_frame([])
        else:
            where = ds.field("namespace").isin(sorted({ns for ns, _k, _n in wanted})) & ds.field("name").isin(
                sorted({n for _ns, _k, n in wanted})
            )
            f = self._field_edits(sorted({k for _ns, k, _n in wanted}), where=where, state=False)
            mine = [o in wanted for o in zip(f["namespace"], f["kind"], f["name"], strict=True)]
            out = f[pd.Series(mine, index=f.index, dtype=bool)].reset_index(drop=True)
        out.attrs["skipped"] = []
        return out

    def _field_edits(self, kinds: Sequence[str], *, where: Any = None, state: bool = True) -> pd.DataFrame:
        """Field edit rows of ``kinds`` (only the objects ``where`` keeps, a pyarrow expression on the
        store's columns, when given): the recorded changes, and (``state``) the managedFields rows of the
        objects as of ``at`` that no recorded change already gives."""
        import pyarrow.dataset as ds

        cols = ["cluster", "kind", "namespace", "name", "time", "since", "event", "manager", "manager_time"]
        edits = ds.field("event").isin(["MODIFIED", "RELISTED"])
        changed = self._read(
            kinds, [*cols, "changes"], since=self.since, where=edits if where is None else edits & where
        )
        tag = self.fleet  # a fleet recording says where each edit was recorded; one cluster's leaves it empty
        recorded: list[dict[str, Any]] = []
        for r in changed.itertuples(index=False):
            rec = _recorded_edit(r)
            if rec is not None:
                recorded.append({**rec, "cluster": r.cluster if tag else None})
        seen = {(r["cluster"], r["kind"], r["namespace"], r["name"], r["manager"], r["_mtime"]) for r in recorded}
        rows = [
            {**e, "cluster": c if tag else None}
            for c, kind, obj in (self._placed_state(kinds, where=where) if state else [])
            for e in field_edit_rows(kind, obj)
            if (c if tag else None, e["kind"], e["namespace"], e["name"], e["manager"], e["time"]) not in seen
        ]
        return field_edit_frame(rows + recorded)


def _recorded_edit(r: Any) -> dict[str, Any] | None:
    """A stored change row as a :data:`schema.FIELD_EDITS` row (``None`` for bookkeeping-only changes)."""
    changes = [c for c in json.loads(r.changes or "[]") if not str(c[0]).startswith(_NOT_EDITS)]
    if not changes or r.manager in CONTROLLER_MANAGERS:
        return None
    mtime = r.manager_time if pd.notna(r.manager_time) else None
    relisted = r.event == "RELISTED"
    bound = None
    if relisted:
        lo = r.since if pd.notna(r.since) else None
        bound = f"between {lo:%Y-%m-%d %H:%M:%S} UTC and {r.time:%Y-%m-%d %H:%M:%S} UTC" if lo else f"before {r.time}"
    return {
        # a watched change happened when seen; a relisted one when managedFields says, if it says
        "time": (mtime or r.time) if relisted else r.time,
        "namespace": r.namespace,
        "kind": r.kind,
        "name": r.name,
        "manager": r.manager,
        "operation": "Recorded" if not relisted else "Relisted",
        "subresource": None,
        "fields": [str(c[0]) for c in changes],
        "is_gitops": r.manager in GITOPS_MANAGERS,
        "time_bound": bound,
        "changes": [[str(c[0]), _text(c[1]), _text(c[2])] for c in changes],
        "_mtime": pd.Timestamp(mtime) if mtime is not None else None,
    }


def _text(v: Any) -> str | None:
    """A recorded value as text (as manifest_changes shows them): strings as they are, others as JSON."""
    return v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _sanitized(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as copied: times as Python datetimes (or None), a Secret's object and changes without
    values (as the writer stores them; checked again, whatever wrote the store)."""
    out = {k: (None if not isinstance(v, str | list) and pd.isna(v) else v) for k, v in row.items()}
    for c in ("time", "since", "manager_time"):
        if (t := out.get(c)) is not None:
            out[c] = pd.Timestamp(t).to_pydatetime()
    if out.get("kind") == "Secret":
        if isinstance(obj := out.get("object"), str):
            out["object"] = json.dumps(sanitize_object("Secret", json.loads(obj)), separators=(",", ":"))
        if isinstance(changes := out.get("changes"), str):
            out["changes"] = json.dumps([[c[0], None, None] for c in json.loads(changes)], separators=(",", ":"))
    return out
