"""The recorder: watch one or more clusters continuously and append every change to a recording store.

What it records (one row per observed change, the ``objects`` table of :mod:`gitops_nb.cluster.store`):

- Argo CD Applications: every spec change (``syncPolicy`` included: a pause is on record whoever made
  it) and every status change (sync, health, the operation, history entries), with the manager and time
  from ``managedFields``;
- the live objects the Applications manage (``status.resources``, any group/version/kind): a watch per
  kind starts when an Application first lists it and stops when none does; field-level changes
  ``[path, old, new]`` with the manager that owns the changed fields and its time;
- Events in the Applications' namespaces (and Argo CD's), deduplicated by ``(uid, count)``;
- ReplicaSets, so rollouts are kept after ``revisionHistoryLimit`` deletes them;
- Secrets, read as metadata only (``PartialObjectMetadata``): that a key changed, never a value.

Each watch is a list then a watch from its ``resourceVersion`` with bookmarks; a ``410 Gone`` relists;
a dropped connection (an API server restart) reconnects with backoff. Watch threads hand their events to
one processing thread through a bounded queue: when it is full they block (and so stop reading), so
memory stays bounded however fast the cluster changes. On start the last recorded version of each object
is read from the store; the first list then records what changed while nobody watched (``RELISTED``,
with ``since``) and what disappeared (``GONE``), never twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ArgoCDNotFoundError, ClusterError, InputError, StoreError
from .argocd import GROUP, PLURAL, VERSION
from .destinations import destination_of
from .live import Cluster, flatten_fields, set_retries

if TYPE_CHECKING:
    from .fleet import Fleet
    from .store import Store, StoreWriter

__all__ = [
    "Recorder",
    "RecorderStats",
    "field_changes",
    "manager_of",
    "record",
    "recorder_manifests",
]

#: ``Accept`` for metadata-only reads: a Secret's data never leaves the API server
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
#: paths whose changes are noise (every reconcile, every write), never a row of their own
IGNORED = (
    "metadata.resourceVersion",
    "metadata.managedFields",
    "metadata.generation",
    "status.reconciledAt",
    "status.observedAt",
    "metadata.annotations[kubectl.kubernetes.io/last-applied-configuration]",
)
#: seconds a watch asks the API server to keep it open; bookmarks come about once a minute
WATCH_SECONDS = 300
_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class Resource:
    """One watched resource: where it is served and what it is."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    metadata_only: bool = False

    @property
    def path(self) -> str:
        """The cluster-wide collection path (every namespace)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


APPLICATION = Resource(GROUP, VERSION, PLURAL, "Application", True)
REPLICASET = Resource("apps", "v1", "replicasets", "ReplicaSet", True)
EVENT = Resource("", "v1", "events", "Event", True)
SECRET = Resource("", "v1", "secrets", "Secret", True, metadata_only=True)
#: kinds with a watch of their own (whatever the Applications list)
_FIXED = {r.kind: r for r in (REPLICASET, EVENT, SECRET)}


@dataclass
class RecorderStats:
    """What a recorder did so far (also the periodic status line)."""

    rows: int = 0
    watches: int = 0
    relists: int = 0
    reconnects: int = 0
    queue_max_wait: float = 0.0
    last_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    #: since when (monotonic) no watch of this cluster could connect; ``None`` while it answers
    down_since: float | None = None

    def line(self, context: str, queued: int, written: int | None = None) -> str:
        up = time.monotonic() - self.started
        err = f", last error: {self.last_error}" if self.last_error else ""
        flushed = f" ({written} flushed)" if written is not None else ""
        down = (
            f" UNREACHABLE for {time.monotonic() - self.down_since:.0f}s (retrying with backoff);"
            if self.down_since is not None
            else ""
        )
        return (
            f"[record] {context}:{down} {self.watches} watches, {self.rows} rows written{flushed}, {queued} queued, "
            f"lag {self.queue_max_wait:.1f}s, {self.relists} relists, {self.reconnects} reconnects, "
            f"up {up:.0f}s{err}"
        )


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


# -- field-level changes ------------------------------------------------------------------------


def _key(item: Any) -> str | None:
    return str(item["name"]) if isinstance(item, dict) and "name" in item else None


def field_changes(old: Any, new: Any, prefix: str = "", *, limit: int = 500) -> list[list[Any]]:
    """``[path, old, new]`` for each field that differs (dotted paths; list items with a ``name`` as
    ``containers[name=web]``, others by index; a list that changed length whole). Noise (:data:`IGNORED`)
    is left out. At most ``limit`` changes."""
    out: list[list[Any]] = []
    _diff(old, new, prefix, out, limit)
    return out


def _diff(old: Any, new: Any, path: str, out: list[list[Any]], limit: int) -> None:
    if len(out) >= limit or old == new or path in IGNORED:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            sub = _join(path, str(k))
            _diff(old.get(k), new.get(k), sub, out, limit)
        return
    if isinstance(old, list) and isinstance(new, list):
        ko, kn = [_key(x) for x in old], [_key(x) for x in new]
        if all(ko) and all(kn) and len(set(ko)) == len(ko) and len(set(kn)) == len(kn):
            om, nm = dict(zip(ko, old, strict=True)), dict(zip(kn, new, strict=True))
            for k in list(dict.fromkeys([*ko, *kn])):
                _diff(om.get(k), nm.get(k), f"{path}[name={k}]", out, limit)
            return
        if len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                _diff(a, b, f"{path}[{i}]", out, limit)
            return
    out.append([path, old, new])


def _join(path: str, key: str) -> str:
    if path == "metadata.annotations" or path == "metadata.labels" or "." in key or "/" in key:
        return f"{path}[{key}]" if path else key
    return f"{path}.{key}" if path else key


def _plain(path: str) -> str:
    """A change path in managedFields' spelling (``containers[web]``, ``metadata.labels.app.kubernetes.io/name``)."""
    dotted = re.sub(r"\[([^\]=]*[./][^\]=]*)\]", r".\1", path)
    return re.sub(r"\[name=([^\]]*)\]", r"[\1]", dotted)


def manager_of(obj: dict[str, Any], paths: Sequence[str]) -> tuple[str | None, pd.Timestamp | None]:
    """The field manager (and its time) that owns the changed ``paths`` at this version of ``obj``:
    the newest ``managedFields`` entry owning one of them, else the newest entry."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    if not entries:
        return None, None
    wanted = [_plain(p) for p in paths]

    def owns(m: dict[str, Any]) -> bool:
        mine = flatten_fields(m.get("fieldsV1"))
        return any(
            w == f or w.startswith(f + ".") or w.startswith(f + "[") or f.startswith(w) for w in wanted for f in mine
        )

    def when(m: dict[str, Any]) -> str:
        return str(m.get("time") or "")

    matched = [m for m in entries if owns(m)] if wanted else []
    best = max(matched or entries, key=when)
    t = best.get("time")
    return best.get("manager"), (pd.Timestamp(t).tz_convert("UTC") if t else None)


# -- safe object bodies -----------------------------------------------------------------------


def _secret_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[list[Any]]:
    """A Secret's change without values: the data keys its newest writer owns, each ``[path, None, None]``."""
    entries = (new.get("metadata") or {}).get("managedFields") or []
    newest = max(entries, key=lambda m: str(m.get("time") or ""), default=None)
    paths = [f for f in flatten_fields((newest or {}).get("fieldsV1")) if f.startswith(("data", "stringData"))]
    meta = [p for p, _, _ in field_changes((old or {}).get("metadata"), new.get("metadata"), "metadata")]
    keys = list(dict.fromkeys(paths + [p for p in meta if "annotations" not in p])) or ["data"]
    return [[p, None, None] for p in keys]


# -- the watches ----------------------------------------------------------------------------------


class _Watch(threading.Thread):
    """List, then watch from the list's resourceVersion with bookmarks; relist on 410; reconnect with backoff.

    Everything it reads goes to ``out`` (a bounded queue: ``put`` blocks when it is full)."""

    def __init__(self, rec: _ClusterRecorder, res: Resource) -> None:
        super().__init__(name=f"watch-{rec.context}-{res.kind}", daemon=True)
        self.rec, self.res = rec, res
        self.stopped = threading.Event()
        self._resp: Any = None
        self._resume_from: str | None = None

    def expire(self) -> None:
        """A drill: drop the connection and resume from resourceVersion 1, long compacted, as a recorder
        back from a long outage would: the API server answers 410 Gone and the watch relists."""
        self._resume_from = "1"
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def stop(self) -> None:
        self.stopped.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def run(self) -> None:
        rv: str | None = None
        backoff = 0.5
        while not self.stopped.is_set() and not self.rec.stopping.is_set():
            try:
                if rv is None:
                    rv = self._list()
                    self.rec.stats.relists += 1
                    self.rec.stats.down_since = None
                if self._resume_from is not None:
                    rv, self._resume_from = self._resume_from, None
                rv = self._watch(rv)
                backoff = 0.5
                self.rec.stats.down_since = None
            except _Gone:
                rv = None  # relist
            except ArgoCDNotFoundError as e:
                if self.rec.owner_many:  # one of several contexts without Argo CD: a destination only
                    self.rec.watch_apps = False
                    self.rec.stats.last_error = "no Argo CD here: recorded as a destination of the others"
                    self.rec.watches.pop(self.res.kind, None)
                    self.rec.stats.watches = len(self.rec.watches)
                    return
                self.rec.stats.last_error = str(e)
                self.rec.error = e
                self.rec.stopping.set()
                return
            except ClusterError as e:  # forbidden: this kind is not recorded (the others go on) ...
                self.rec.stats.last_error = str(e)
                if self.res is APPLICATION:  # ... but without the Applications there is nothing to record
                    self.rec.error = e
                    self.rec.stopping.set()
                return
            except Exception as e:  # a dropped connection, a restarting API server: retry
                if self.stopped.is_set():
                    return
                if self._resume_from is not None:
                    continue  # the drill dropped the connection: no backoff
                self.rec.stats.reconnects += 1
                answered = str(e).startswith(("HTTP ", "watch error"))  # it answered: not unreachable
                if self.rec.stats.down_since is None and not answered:
                    self.rec.stats.down_since = time.monotonic()
                self.rec.stats.last_error = f"{self.res.kind}: {type(e).__name__}: {str(e)[:160]}"
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    def _get(self, query: dict[str, str], timeout: tuple[float, float]) -> Any:
        api: Any = self.rec.api
        listing = "watch" not in query
        accept = (METADATA_ONLY_LIST if listing else METADATA_ONLY) if self.res.metadata_only else "application/json"
        method, url, headers, _, _ = api.param_serialize(
            "GET",
            self.res.path,
            query_params=list(query.items()),
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        resp = api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        if resp.status == 410:
            resp.response.release_conn()
            raise _Gone()
        if not 200 <= resp.status < 300:
            body = resp.read()[:300]
            if resp.status == 404 and self.res is APPLICATION:
                raise ArgoCDNotFoundError(
                    f"Argo CD's CRD (applications.argoproj.io) is not installed in context {self.rec.context!r}: "
                    "nothing to record. Check the context (--context), or install Argo CD",
                    context=self.rec.context,
                    resource="applications.argoproj.io",
                    verb="watch",
                    status=404,
                )
            if resp.status in (401, 403):
                raise ClusterError(
                    f"{resp.status} on list/watch {self.res.plural}.{self.res.group or 'core'} in context "
                    f"{self.rec.context!r}: the recorder needs get/list/watch on it "
                    "(`gitops-nb record manifests` prints its ClusterRole)",
                    context=self.rec.context,
                    resource=self.res.plural,
                    verb="watch",
                    status=resp.status,
                )
            raise ConnectionError(f"HTTP {resp.status}: {body!r}")
        return resp

    def _list(self) -> str:
        items: list[dict[str, Any]] = []
        token: str | None = None
        rv = ""
        while True:
            q = {"limit": "500"}
            if token:
                q["continue"] = token
            resp = self._get(q, (10, 60))
            page = json.loads(resp.read())
            items += page.get("items") or []
            meta = page.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            token = meta.get("continue") or None
            if not token:
                break
        self.rec.put(("list", self.res, items, rv, time.time()))
        return rv

    def _watch(self, rv: str) -> str:
        q = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        resp = self._get(q, (10, WATCH_SECONDS + 30))
        self._resp = resp.response
        try:
            for line in _lines(resp.response, self.stopped):
                ev = json.loads(line)
                typ, obj = ev.get("type"), ev.get("object") or {}
                if typ == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise ConnectionError(f"watch error: {obj.get('message')}")
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if typ == "BOOKMARK":
                    self.rec.put(("bookmark", self.res, rv, time.time()))
                else:
                    self.rec.put(("event", self.res, typ, obj, time.time()))
        finally:
            self._resp = None
            with contextlib.suppress(Exception):
                resp.response.release_conn()
        return rv


def _lines(resp: Any, stopped: threading.Event) -> Iterator[bytes]:
    buf = b""
    for chunk in resp.stream(65536, decode_content=True):
        if stopped.is_set():
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip() and not stopped.is_set():
        yield buf


# -- one cluster ------------------------------------------------------------------------------------


@dataclass
class _Known:
    """The last recorded version of one object: its body kept as compact JSON (a parsed object takes
    several times the memory; it is parsed again only when the object changes). Events keep none."""

    kind: str
    rv: str
    time: pd.Timestamp
    body: str | None
    app: str | None

    @property
    def obj(self) -> dict[str, Any] | None:
        return json.loads(self.body) if self.body else None


def _body(kind: str, obj: dict[str, Any]) -> str | None:
    return None if kind == "Event" else json.dumps(obj, separators=(",", ":"), default=str)


class _ClusterRecorder:
    """The watches of one cluster, the processing thread, and the writer they feed (one per partition).

    A hub (``watch_apps``) watches its Applications; the objects an Application manages are watched on
    its destination cluster: this one for in-cluster apps, else the destination's own recorder (made by
    ``place``), told which objects and namespaces are whose through its ``control`` queue."""

    def __init__(
        self,
        cluster: Cluster,
        store: Store,
        *,
        queue_size: int,
        flush_seconds: float,
        max_buffer: int,
        stopping: threading.Event,
        watch_apps: bool = True,
        place: Callable[[_ClusterRecorder, dict[str, Any]], _ClusterRecorder | None] | None = None,
        owner_many: bool = False,
        label: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.watch_apps = watch_apps
        self.place = place
        self.owner_many = owner_many
        self.label = label or cluster.context
        #: index/forget messages from hubs (unbounded: one per Application change, never blocks a hub)
        self.control: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.fed = False  # a hub has told this destination what its apps manage
        self.app_dest: dict[str, _ClusterRecorder] = {}  # (a hub) app -> the recorder of its destination
        self.kinds_missing: dict[str, tuple[str, str]] = {}  # kinds not discovered yet (unreachable): retried
        self._last_discovery = 0.0
        self.context = cluster.context
        self.api = set_retries(cluster.api, 0)  # the watches back off and retry themselves
        self.argocd_namespace = cluster.argocd_namespace
        self.store = store
        self.writer: StoreWriter = store.writer(self.context, flush_seconds=flush_seconds, max_buffer=max_buffer)
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=queue_size)
        self.stopping = stopping
        self.stats = RecorderStats()
        self.watches: dict[str, _Watch] = {}
        self.error: BaseException | None = None
        # state: the last version of each object, by (kind, uid)
        self.known: dict[tuple[str, str], _Known] = {}
        self.event_counts: dict[str, int] = {}
        self.managed: dict[tuple[str, str, str, str], str] = {}  # (group, kind, namespace, name) -> app
        self.app_namespaces: dict[str, set[str]] = {}  # namespace -> apps deploying there
        self.kinds_wanted: dict[str, Resource] = {}
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}  # seen but not (yet) managed
        self.listed: set[str] = set()
        self._discovery: dict[str, list[dict[str, Any]]] = {}
        self.processor = threading.Thread(target=self._process, name=f"record-{self.context}", daemon=True)

    # -- start / stop -------------------------------------------------------------------------

    def start(self) -> None:
        self._load()
        self.processor.start()
        if self.watch_apps:
            self._start_watch(APPLICATION)

    @property
    def ready(self) -> bool:
        """The Applications that say what to watch here are known (listed here, or told by a hub)."""
        return "Application" in self.listed or (not self.watch_apps and self.fed)

    def put(self, msg: tuple[Any, ...]) -> None:
        """Hand a message to the processing thread; blocks while the queue is full (backpressure)."""
        while not self.stopping.is_set():
            try:
                self.queue.put(msg, timeout=0.5)
                return
            except queue.Full:
                continue

    def _start_watch(self, res: Resource) -> None:
        if res.kind in self.watches:
            return
        w = _Watch(self, res)
        self.watches[res.kind] = w
        self.stats.watches = len(self.watches)
        w.start()

    def _stop_watch(self, kind: str) -> None:
        w = self.watches.pop(kind, None)
        if w is not None:
            w.stop()
        self.stats.watches = len(self.watches)
        for k in [k for k in self.pending if k[0] == kind]:
            del self.pending[k]

    def stop(self) -> None:
        for kind in list(self.watches):
            self._stop_watch(kind)
        self.processor.join(timeout=30)
        self.writer.close()

    # -- state from the store -------------------------------------------------------------------

    def _load(self) -> None:
        """The last recorded version of every object of this cluster (objects deleted since are left out)."""
        table = self.store.read(
            clusters=[self.context],
            columns=["kind", "uid", "resource_version", "time", "event", "object", "app"],
        )
        if table.num_rows == 0:
            return
        df = table.to_pandas().sort_values("time", kind="stable")
        last = df.groupby(["kind", "uid"], sort=False).tail(1)
        for kind, uid, rv, t, ev, obj, app in zip(
            last["kind"],
            last["uid"],
            last["resource_version"],
            last["time"],
            last["event"],
            last["object"],
            last["app"],
            strict=True,
        ):
            if ev in ("DELETED", "GONE"):
                continue
            body = obj if isinstance(obj, str) and obj else None
            if kind == "Event" and body is not None:
                self.event_counts[str(uid)] = _event_count(json.loads(body))
                body = None
            self.known[(str(kind), str(uid))] = _Known(str(kind), str(rv), pd.Timestamp(t), body, app)

    # -- processing --------------------------------------------------------------------------------

    def _process(self) -> None:
        last_flush = time.monotonic()
        try:
            while True:
                self._control()
                try:
                    msg = self.queue.get(timeout=0.5)
                except queue.Empty:
                    if self.stopping.is_set():
                        break
                    if time.monotonic() - last_flush >= self.writer.flush_seconds:
                        last_flush = time.monotonic()
                        self.writer.flush()  # also raises a failed background flush's error (a full disk) now
                    self._rediscover()
                    continue
                wait = time.time() - msg[-1]
                self.stats.queue_max_wait = max(wait, self.stats.queue_max_wait * 0.9)
                what, res = msg[0], msg[1]
                if what == "list":
                    self._on_list(res, msg[2], msg[3], msg[4])
                elif what == "event":
                    self._on_event(res, msg[2], msg[3], msg[4])
                elif what == "bookmark" and res.kind in self.watches:
                    self.writer.checkpoint(res.kind, msg[2])
            self.writer.flush()
        except BaseException as e:  # the recorder's thread: hand the error to the main loop
            self.error = e
            self.stopping.set()

    def _app_of(self, res: Resource, obj: dict[str, Any]) -> str | None:
        """The Application an object belongs to; ``None`` for an object nobody manages (not recorded)."""
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        if res is APPLICATION:
            return str(name) if ns == self.argocd_namespace else None
        app = self.managed.get((res.group, res.kind, ns, name))
        if app is not None:
            return app
        if res.kind in _FIXED:
            if res.kind == "Event" and ns == self.argocd_namespace:
                inv = obj.get("involvedObject") or obj.get("regarding") or {}
                return str(inv.get("name")) if inv.get("kind") == "Application" else None
            apps = self.app_namespaces.get(ns)
            if not apps:
                return None
            if res.kind == "ReplicaSet":
                owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"), None)
                if owner is not None:
                    return self.managed.get(("apps", "Deployment", ns, owner.get("name", "")), next(iter(sorted(apps))))
            return next(iter(sorted(apps)))
        return None

    def _on_list(self, res: Resource, items: list[dict[str, Any]], rv: str, t: float) -> None:
        if res.kind not in self.watches:
            return
        now = pd.Timestamp(t, unit="s", tz="UTC").floor("us")
        seen: set[str] = set()
        for obj in items:
            obj.setdefault("kind", res.kind)
            obj.setdefault("apiVersion", res.api_version)
            uid = str((obj.get("metadata") or {}).get("uid") or "")
            seen.add(uid)
            self._observe(res, "LIST", obj, now)
        for (kind, uid), k in list(self.known.items()):
            if kind == res.kind and uid not in seen:
                if kind == "Event":  # expired (--event-ttl): not a change of anything
                    del self.known[(kind, uid)]
                    self.event_counts.pop(uid, None)
                else:
                    self._gone(res, uid, k, now)
        self.listed.add(res.kind)
        self.writer.checkpoint(res.kind, rv)
        if res is APPLICATION:
            self._update_watches()

    def _gone(self, res: Resource, uid: str, k: _Known, now: pd.Timestamp) -> None:
        obj = k.obj or {"metadata": {"uid": uid}}
        meta = obj.get("metadata") or {}
        self._append(res, "GONE", obj, now, since=k.time, changes=[], app=k.app, rv=k.rv, manager=(None, None))
        del self.known[(res.kind, uid)]
        if res is APPLICATION:
            self._forget_app(str(meta.get("name")))

    def _on_event(self, res: Resource, typ: str, obj: dict[str, Any], t: float) -> None:
        if res.kind not in self.watches or res.kind not in self.listed:
            return
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
        now = pd.Timestamp(t, unit="s", tz="UTC").floor("us")
        if typ == "DELETED":
            uid = str((obj.get("metadata") or {}).get("uid") or "")
            self.pending.pop((res.kind, uid), None)
            k = self.known.pop((res.kind, uid), None)
            if res.kind == "Event":  # an Event deleted is an Event expired: kept as it was
                self.event_counts.pop(uid, None)
                return
            if k is not None:
                self._append(res, "DELETED", obj, now, since=None, changes=[], app=k.app, manager=(None, None))
                if res is APPLICATION:
                    self._forget_app(str((obj.get("metadata") or {}).get("name")))
            return
        self._observe(res, typ, obj, now)

    def _observe(self, res: Resource, typ: str, obj: dict[str, Any], now: pd.Timestamp) -> None:
        """One version of an object from a list (``typ`` LIST) or a watch (ADDED, MODIFIED)."""
        meta = obj.get("metadata") or {}
        uid, rv = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        app = self._app_of(res, obj)
        if app is None:
            if res.kind != "Event":
                self.pending[(res.kind, uid)] = obj  # recorded once an Application lists it
            return
        self.pending.pop((res.kind, uid), None)
        if res is APPLICATION:
            self._index_app(obj)  # what it manages, even when this version was recorded before
        k = self.known.get((res.kind, uid))
        if res.kind == "Event":
            count = _event_count(obj)
            if self.event_counts.get(uid) == count:
                return  # the same occurrence again (deduplicated by uid and count)
            self.event_counts[uid] = count
        if k is not None and k.rv == rv:
            return
        relisted = typ == "LIST" and k is not None
        body = _body(res.kind, obj)
        if k is None:
            event, changes = "ADDED", []
        elif res.kind == "Secret":
            event, changes = ("RELISTED" if relisted else "MODIFIED"), _secret_changes(k.obj, obj)
        else:
            event, changes = ("RELISTED" if relisted else "MODIFIED"), field_changes(k.obj, obj)
        if k is not None and not changes and res.kind not in ("Event", "Secret"):
            self.known[(res.kind, uid)] = _Known(res.kind, rv, k.time, body, app)  # noise only: nothing to say
            return
        # the manager of the spec or metadata change when there is one (status writers are always newer)
        paths = [c[0] for c in changes if not str(c[0]).startswith("status")] or [c[0] for c in changes]
        since = k.time if relisted and k is not None else None
        self._append(
            res, event, obj, now, since=since, changes=changes, app=app, manager=manager_of(obj, paths), body=body
        )
        self.known[(res.kind, uid)] = _Known(res.kind, rv, now, body, app)

    def _append(
        self,
        res: Resource,
        event: str,
        obj: dict[str, Any],
        now: pd.Timestamp,
        *,
        since: pd.Timestamp | None,
        changes: list[list[Any]],
        app: str | None,
        manager: tuple[str | None, pd.Timestamp | None],
        rv: str | None = None,
        body: str | None = None,
    ) -> None:
        meta = obj.get("metadata") or {}
        self.writer.append(
            {
                "cluster": self.context,
                "kind": res.kind,
                "api_version": str(obj.get("apiVersion") or res.api_version),
                "namespace": meta.get("namespace") or None,
                "name": str(meta.get("name") or ""),
                "uid": str(meta.get("uid") or ""),
                "app": app,
                "resource_version": rv or str(meta.get("resourceVersion") or ""),
                "event": event,
                "time": now,
                "since": since,
                "manager": manager[0],
                "manager_time": manager[1],
                "changes": changes,
                # the store drops a Secret's data, stringData and last-applied annotation
                "object": body if body is not None else obj,
            }
        )
        self.stats.rows += 1

    # -- which objects the Applications manage -----------------------------------------------------

    def _forget_app(self, app: str) -> None:
        dest = self.app_dest.pop(app, None)
        if dest is not None and dest is not self:
            dest.control.put(("forget", app))
            return
        self._forget(app)

    def _forget(self, app: str) -> None:
        for key in [k for k, a in self.managed.items() if a == app]:
            del self.managed[key]
        for ns in list(self.app_namespaces):
            self.app_namespaces[ns].discard(app)
            if not self.app_namespaces[ns]:
                del self.app_namespaces[ns]
        self._update_watches()

    def _index_app(self, app_obj: dict[str, Any]) -> None:
        """What an Application manages, watched where it deploys (here, or its destination's recorder)."""
        name = str((app_obj.get("metadata") or {}).get("name"))
        spec, st = app_obj.get("spec") or {}, app_obj.get("status") or {}
        now: set[tuple[str, str, str, str]] = set()
        kinds: dict[str, tuple[str, str]] = {}
        for r in st.get("resources") or []:
            group, kind = r.get("group") or "", r.get("kind") or ""
            if not kind:
                continue
            key = (group, kind, r.get("namespace") or "", r.get("name") or "")
            now.add(key)
            kinds[kind] = (group, r.get("version") or "v1")
        nss = {k[2] for k in now if k[2]}
        dest_ns = (spec.get("destination") or {}).get("namespace")
        if dest_ns:
            nss.add(str(dest_ns))
        target = self.place(self, app_obj) if self.place is not None else self
        old = self.app_dest.get(name)
        if old is not None and old is not target:
            self._forget_app(name)  # it moved to another cluster
        if target is None:
            return  # an unresolvable destination (named in the status line): retried at its next change
        self.app_dest[name] = target
        if target is self:
            self._index(name, now, nss, kinds)
        else:
            target.control.put(("index", name, now, nss, kinds))

    def _control(self) -> None:
        """Apply what the hubs said about their apps deploying here."""
        while True:
            try:
                msg = self.control.get_nowait()
            except queue.Empty:
                return
            if msg[0] == "index":
                self.fed = True
                self._index(msg[1], msg[2], msg[3], msg[4])
            elif msg[0] == "forget":
                self._forget(msg[1])

    def _rediscover(self) -> None:
        """Kinds whose discovery failed (the cluster was unreachable): tried again every 10 s."""
        if not self.kinds_missing or time.monotonic() - self._last_discovery < 10:
            return
        self._last_discovery = time.monotonic()
        found = False
        for kind, (group, version) in list(self.kinds_missing.items()):
            res = self._resource(group, version, kind)
            if res is not None:
                self.kinds_wanted[kind] = res
                del self.kinds_missing[kind]
                found = True
        if found and self.ready:
            self._update_watches()
            self._adopt(set(self.managed))

    def _index(
        self, name: str, now: set[tuple[str, str, str, str]], nss: set[str], kinds: dict[str, tuple[str, str]]
    ) -> None:
        before = {k for k, a in self.managed.items() if a == name}
        old_ns = {ns for ns, apps in self.app_namespaces.items() if name in apps}
        for key in before - now:
            del self.managed[key]
        for key in now:
            self.managed[key] = name
        for ns in list(self.app_namespaces):
            if ns not in nss:
                self.app_namespaces[ns].discard(name)
                if not self.app_namespaces[ns]:
                    del self.app_namespaces[ns]
        for ns in nss:
            self.app_namespaces.setdefault(ns, set()).add(name)
        for kind, (group, version) in kinds.items():
            if kind not in self.kinds_wanted and kind not in _FIXED and kind != "Application":
                res = self._resource(group, version, kind)
                if res is not None:
                    self.kinds_wanted[kind] = res
                    self.kinds_missing.pop(kind, None)
                else:
                    self.kinds_missing[kind] = (group, version)
        if self.ready:
            self._update_watches()
            if now - before or nss - old_ns:
                self._adopt(now)

    def _adopt(self, keys: set[tuple[str, str, str, str]]) -> None:
        """Objects seen before an Application listed them: recorded now."""
        if not self.pending:
            return
        for (kind, _uid), obj in list(self.pending.items()):
            meta = obj.get("metadata") or {}
            res = self.kinds_wanted.get(kind) or _FIXED.get(kind)
            if res is None:
                continue
            if (res.group, kind, meta.get("namespace") or "", meta.get("name") or "") in keys or kind in _FIXED:
                self._observe(res, "WATCH", obj, pd.Timestamp.now(tz="UTC"))

    def _update_watches(self) -> None:
        if not self.ready or self.stopping.is_set():
            return
        for res in _FIXED.values():
            self._start_watch(res)
        used = {k[1] for k in self.managed}
        for kind, res in list(self.kinds_wanted.items()):
            if kind in used:
                self._start_watch(res)
            elif kind in self.watches:
                self._stop_watch(kind)
                self.listed.discard(kind)
                del self.kinds_wanted[kind]

    def _resource(self, group: str, version: str, kind: str) -> Resource | None:
        """The plural and scope of a kind from discovery (read once per group version)."""
        gv = f"{group}/{version}" if group else version
        if gv not in self._discovery:
            base = f"/apis/{gv}" if group else f"/api/{version}"
            try:
                self._discovery[gv] = list(json.loads(self._get_raw(base)).get("resources") or [])
            except Exception as e:  # a kind we cannot discover now is retried at the next app change
                self.stats.last_error = f"discovery {gv}: {type(e).__name__}"
                return None
        for r in self._discovery[gv]:
            if "/" not in r.get("name", "") and r.get("kind") == kind and "watch" in (r.get("verbs") or []):
                return Resource(group, version, str(r["name"]), kind, bool(r.get("namespaced")))
        return None

    def _get_raw(self, path: str) -> bytes:
        api: Any = self.api
        method, url, headers, _, _ = api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        resp = api.call_api(method, url, header_params=headers, _request_timeout=(10, 30))
        data: bytes = resp.read()
        if not 200 <= resp.status < 300:
            raise ConnectionError(f"HTTP {resp.status} on {path}")
        return data


def _event_count(e: dict[str, Any]) -> int:
    return int((e.get("series") or {}).get("count") or e.get("count") or 1)


# -- the recorder -------------------------------------------------------------------------------------


class Recorder:
    """Record one or more clusters into a store until :meth:`stop` (or SIGTERM/SIGINT in :func:`record`).

    A hub's Applications are recorded in the hub's partition; the objects each one manages (and the
    Events and ReplicaSets of its destination namespace) are watched on its destination cluster,
    resolved as :class:`~gitops_nb.cluster.live.Cluster` resolves them
    (:class:`~gitops_nb.cluster.destinations.Destinations`), and recorded in that cluster's partition
    (``cluster`` = its context, ``app`` = the Application). One writer per partition. A destination that
    does not answer is retried with backoff (its status line says so); the others go on.

    Args:
        contexts: kube context names (``None`` in the list: the current context, or in-cluster config), or
            a :class:`~gitops_nb.cluster.fleet.Fleet` (its members). Of several, one without Argo CD is
            recorded as a destination only.
        store: a :class:`~gitops_nb.cluster.store.Store` or its URL (a directory or ``s3://bucket/prefix``).
        kubeconfig: the kubeconfig file (default ``$KUBECONFIG`` / ``~/.kube/config``).
        argocd_namespace: where the Applications live.
        destinations: destination server URL or name -> kubeconfig context, for destinations no context's
            server matches (as :class:`~gitops_nb.cluster.live.Cluster`'s).
        argocd_secrets: resolve destinations from Argo CD's cluster Secrets too (opt-in).
        queue_size: watch events waiting for the processing thread before the watches block.
        flush_seconds: how often buffered rows become Parquet files (and so queryable).
        max_buffer: rows the writer holds before ``append`` blocks.
    """

    def __init__(
        self,
        contexts: Sequence[str | None] | str | Fleet | None,
        store: Store | str | os.PathLike[str],
        *,
        kubeconfig: str | None = None,
        argocd_namespace: str = "argocd",
        destinations: Mapping[str, str] | None = None,
        argocd_secrets: bool = False,
        queue_size: int = 2000,
        flush_seconds: float = 2.0,
        max_buffer: int = 50_000,
    ) -> None:
        from .fleet import Fleet
        from .store import Store

        if isinstance(contexts, Fleet):
            clusters = [contexts.member(c) for c in contexts.members]
        else:
            ctxs = [contexts] if contexts is None or isinstance(contexts, str) else list(contexts)
            clusters = [
                Cluster(
                    c,
                    kubeconfig=kubeconfig,
                    argocd_namespace=argocd_namespace,
                    destinations=destinations,
                    argocd_secrets=argocd_secrets,
                )
                for c in ctxs
            ]
        if not clusters:
            raise InputError("record needs at least one kube context (--context NAME)")
        names = [c.context for c in clusters]
        if len(set(names)) != len(names):
            raise InputError(f"the same context twice: {', '.join(names)}")
        self.store = store if isinstance(store, Store) else Store(store)
        self.stopping = threading.Event()
        self._opts: dict[str, Any] = {
            "queue_size": queue_size,
            "flush_seconds": flush_seconds,
            "max_buffer": max_buffer,
            "stopping": self.stopping,
            "place": self._place,
            "owner_many": len(clusters) > 1,
        }
        self._lock = threading.Lock()
        self.clusters = [_ClusterRecorder(c, self.store, **self._opts) for c in clusters]
        self._started = False

    def _place(self, hub: _ClusterRecorder, app: dict[str, Any]) -> _ClusterRecorder | None:
        """The recorder of the cluster ``app`` deploys to (``hub`` for in-cluster apps), opened and started
        on first use; ``None`` (named in the hub's status line) when the destination cannot be resolved."""
        server, name = destination_of(app)
        try:
            ctx = hub.cluster.destinations.context_of(server, name)
            if ctx == hub.context:
                return hub
            with self._lock:
                for c in self.clusters:
                    if c.context == ctx:
                        return c
                if self.stopping.is_set():  # stopping: no new writer that nobody would close
                    return None
                spoke = _ClusterRecorder(
                    hub.cluster.destinations.cluster_of(server, name),
                    self.store,
                    **{**self._opts, "watch_apps": False, "label": f"{ctx} (destination of {hub.context})"},
                )
                self.clusters.append(spoke)
                if self._started:
                    spoke.start()
                return spoke
        except (ClusterError, StoreError) as e:
            app_name = (app.get("metadata") or {}).get("name")
            hub.stats.last_error = f"app {app_name}: {type(e).__name__}: {str(e)[:200]}"
            return None

    def start(self) -> Recorder:
        """Start every cluster's watches (returns at once)."""
        if not self._started:
            self._started = True
            with self._lock:
                for c in list(self.clusters):
                    c.start()
        return self

    @property
    def error(self) -> BaseException | None:
        """The error that stopped a cluster's recording, if one did."""
        return next((c.error for c in list(self.clusters) if c.error is not None), None)

    @property
    def stats(self) -> dict[str, RecorderStats]:
        """Per partition (context): the hubs given and the destinations their apps deploy to."""
        return {c.context: c.stats for c in list(self.clusters)}

    def status_lines(self) -> list[str]:
        """One line per cluster: watches, rows written, queued, lag; a destination that does not answer
        says UNREACHABLE."""
        return [c.stats.line(c.label, c.queue.qsize(), c.writer.rows_written) for c in list(self.clusters)]

    def synced(self) -> bool:
        """True once every watch has listed (the recording has caught up with the clusters), the
        destinations' included."""
        return all(
            c.ready and all(k in c.listed or not w.is_alive() for k, w in list(c.watches.items()))
            for c in list(self.clusters)
            if c.watch_apps or c.fed
        )

    def stop(self) -> None:
        """Stop the watches, write what is buffered, close the writers (raises the store's error, if any)."""
        self.stopping.set()
        errors: list[BaseException] = []
        with self._lock:
            clusters = list(self.clusters)
        for c in clusters:
            try:
                c.stop()
            except StoreError as e:
                errors.append(e)
        err = self.error or (errors[0] if errors else None)
        if err is not None:
            raise err

    def expire_watch(self, kind: str) -> None:
        """A drill for tests and runbooks: make ``kind``'s watch resume from a long-compacted resourceVersion
        (the API server answers 410 Gone; the watch relists and records what changed, once)."""
        hit = [c for c in list(self.clusters) if kind in c.watches]
        if not hit:
            watched = sorted({k for c in list(self.clusters) for k in c.watches})
            raise InputError(f"no watch of kind {kind!r}: watched are {', '.join(watched)}")
        for c in hit:
            c.watches[kind].expire()

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def record(
    contexts: Sequence[str | None] | str | Fleet | None,
    store: Store | str | os.PathLike[str],
    *,
    kubeconfig: str | None = None,
    argocd_namespace: str = "argocd",
    destinations: Mapping[str, str] | None = None,
    argocd_secrets: bool = False,
    retain: str | None = None,
    status_seconds: float = 30.0,
    until: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
    flush_seconds: float = 2.0,
    compact_seconds: float = 600.0,
) -> dict[str, RecorderStats]:
    """Record ``contexts`` (or a :class:`~gitops_nb.cluster.fleet.Fleet`) into ``store`` until SIGTERM/SIGINT
    (or ``until()`` is true); returns the stats, per partition. Each hub's apps' objects are recorded on
    their destination clusters (see :class:`Recorder`; ``destinations``/``argocd_secrets`` as there).

    Every ``status_seconds`` one line per cluster goes to ``progress`` (default: stderr): watches, rows
    written, queued events, lag. ``retain`` (e.g. ``30d``) drops older day partitions once an hour; every
    ``compact_seconds`` (0: never) the small files of each partition are merged (a flush every 2 s makes
    many), so reads stay fast.
    A store that cannot be written stops the recorder with a :class:`~gitops_nb.errors.StoreError`.
    """
    say = progress or (lambda m: print(m, file=sys.stderr, flush=True))
    rec = Recorder(
        contexts,
        store,
        kubeconfig=kubeconfig,
        argocd_namespace=argocd_namespace,
        destinations=destinations,
        argocd_secrets=argocd_secrets,
        flush_seconds=flush_seconds,
    )
    if retain:
        rec.store.retain(retain)  # checks the value before anything is recorded
    got: list[int] = []
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda s, _f: got.append(s))
    say(
        f"[record] recording {', '.join(c.context for c in list(rec.clusters))} into {rec.store}; stop with Ctrl-C / SIGTERM"
    )
    try:
        rec.start()
        last_status = last_retain = last_compact = time.monotonic()
        while not got and rec.error is None and not (until is not None and until()):
            time.sleep(0.2)
            now = time.monotonic()
            if now - last_status >= status_seconds:
                last_status = now
                for line in rec.status_lines():
                    say(line)
            if retain and now - last_retain >= 3600:
                last_retain = now
                rec.store.retain(retain)
            if compact_seconds and now - last_compact >= compact_seconds:
                merged = rec.store.compact()
                last_compact = time.monotonic()
                say(f"[record] compacted {merged} partitions in {last_compact - now:.1f}s")
    finally:
        with contextlib.suppress(Exception):
            for num, h in old.items():
                signal.signal(num, h)
        try:
            rec.stop()
        finally:
            for line in rec.status_lines():
                say(line + " (stopped)")
    return rec.stats


# -- running it in a cluster ----------------------------------------------------------------------------


#: API groups whose objects Applications commonly manage (besides the core group); add yours with ``groups=``
MANIFEST_GROUPS = (
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "argoproj.io",
)
#: core-group resources the recorder reads whole (Secrets are not among them: metadata only, below)
CORE_RESOURCES = (
    "configmaps",
    "services",
    "serviceaccounts",
    "namespaces",
    "persistentvolumeclaims",
    "pods",
    "endpoints",
    "events",
    "limitranges",
    "resourcequotas",
)


def recorder_manifests(
    namespace: str = "gitops-nb",
    store: str = "/data/recording",
    *,
    image: str = "python:3.12-slim",
    name: str = "gitops-nb-recorder",
    argocd_namespace: str = "argocd",
    groups: Sequence[str] = (),
    storage: str = "10Gi",
) -> list[dict[str, Any]]:
    """The objects that run the recorder in a cluster: a ServiceAccount, a read-only ClusterRole and its
    ClusterRoleBinding, a PersistentVolumeClaim (for a local ``store``; none for ``s3://``) and a
    Deployment (one replica, ``Recreate``: never two writers at once).

    The role only reads (get/list/watch). It names API groups (:data:`MANIFEST_GROUPS` plus ``groups``)
    rather than ``*``, because ``*`` includes the core group and so Secrets' data. RBAC cannot grant a
    Secret's metadata without its data: the role has list/watch (not get) on ``secrets``, and the recorder
    asks only for ``PartialObjectMetadata`` (it never reads a value) -- but a token of this account could
    read values. Where that is too much, drop that rule: the recorder then records no Secrets (their watch
    is forbidden; everything else goes on).
    """
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "gitops-nb"}
    read = ["get", "list", "watch"]
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": list(CORE_RESOURCES), "verbs": read},
        {"apiGroups": list(dict.fromkeys([*MANIFEST_GROUPS, *groups])), "resources": ["*"], "verbs": read},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read},
        # metadata only: the recorder sends Accept: application/json;as=PartialObjectMetadata (RBAC cannot say so)
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
        {"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*"], "verbs": ["get"]},
    ]
    local = not store.startswith("s3://")
    container: dict[str, Any] = {
        "name": "recorder",
        "image": image,
        # the package from PyPI at start (no image of our own is published): pin a version in production
        "command": ["sh", "-c", 'pip install --no-cache-dir --user gitops-nb && exec python -m gitops_nb "$@"', "--"],
        "args": ["record", "--store", store, "--argocd-namespace", argocd_namespace],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod: dict[str, Any] = {
        "serviceAccountName": name,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
        "terminationGracePeriodSeconds": 30,  # SIGTERM flushes what is buffered
        "containers": [container],
    }
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    if local:
        mount = store.rstrip("/").rsplit("/", 1)[0] or "/"
        container["volumeMounts"] = [{"name": "data", "mountPath": mount}]
        pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}}]
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": f"{name}-data", "namespace": namespace, "labels": labels},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
            }
        )
    out.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }
    )
    return out
