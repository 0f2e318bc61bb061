"""Many clusters as one evidence source: hubs (Argo CD) and spokes (where apps deploy), read concurrently.

:class:`Fleet` is an :class:`~gitops_nb.cluster.evidence.EvidenceSource`: each query runs on every
member cluster at once (a bounded thread pool, a timeout per cluster) and comes back as one frame
whose ``cluster`` column says where each row was read. A cluster that does not answer, or forbids
the query, gives no rows and one line in :attr:`Fleet.failures` (and in the frame's
``attrs["failures"]``): the query itself never fails because of it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any

import pandas as pd

from .. import schema
from ..errors import ArgoCDNotFoundError, ClusterError, InputError, UnknownAppError
from ..times import now_utc
from .live import Cluster

__all__ = ["FAILURES", "Fleet", "qualify_shared_names", "reading_destinations", "split_qualified"]

#: One row per cluster a fleet query could not read (``Fleet.failures``, ``attrs["failures"]``).
FAILURES: schema.Schema = {
    "cluster": "object",  # the context (or the destination, for one that could not be resolved)
    "query": "object",  # applications, events, rollouts, field_edits, resolve destination, ...
    "error": "object",  # the error's type: ClusterUnreachableError, ForbiddenError, timeout, ...
    "reason": "object",  # what happened and what to do (the typed error's message)
    "time": schema.UTC,
}


class Fleet:
    """Hubs and spokes read concurrently into one frame per query.

    Args:
        contexts: kubeconfig contexts (or :class:`Cluster` objects) to read: hubs, spokes, or both; or
            one comma-separated string of contexts.
        kubeconfig: the kubeconfig they are in (default ``$KUBECONFIG`` / ``~/.kube/config``).
        argocd_namespace: where the hubs keep their Applications.
        destinations: destination server URL or name -> context, for destinations no context's server
            matches (passed to each hub's :class:`~gitops_nb.cluster.destinations.Destinations`).
        argocd_secrets: resolve destinations from the hubs' Argo CD cluster Secrets too (opt-in).
        follow_destinations: add the clusters the hubs' Applications deploy to (resolved) as members.
        timeout: seconds each cluster has to answer one query.
        workers: at most this many clusters are read at once.

    Example:
        >>> fleet = Fleet(["hub", "eu-1", "us-1"])
        >>> ev = fleet.events("checkout")      # one frame, a ``cluster`` column
        >>> fleet.failures                     # who could not be read, and why
    """

    live = True

    def __init__(
        self,
        contexts: Sequence[str | Cluster] = (),
        *,
        kubeconfig: str | None = None,
        argocd_namespace: str = "argocd",
        destinations: Mapping[str, str] | None = None,
        argocd_secrets: bool = False,
        follow_destinations: bool = True,
        timeout: float = 30.0,
        workers: int = 8,
    ) -> None:
        if isinstance(contexts, str):  # "hub,eu-1,us-1": a notebook parameter
            contexts = list(dict.fromkeys(c.strip() for c in contexts.split(",") if c.strip()))
        if timeout <= 0 or workers < 1:
            raise InputError(f"Fleet(timeout={timeout}, workers={workers}): give a positive timeout and 1+ workers")
        self.kubeconfig = kubeconfig
        self.argocd_namespace = argocd_namespace
        self.timeout = float(timeout)
        self.workers = int(workers)
        self.follow_destinations = follow_destinations
        self._mapping = dict(destinations or {})
        self._argocd_secrets = argocd_secrets
        self._members: dict[str, Cluster] = {}
        self._failures: list[dict[str, Any]] = []
        self._hub_of: dict[str, Cluster] = {}  # app -> the hub holding it
        self._lock = threading.Lock()
        for c in contexts:
            if isinstance(c, Cluster):
                self._members[c.context] = c
                continue
            try:
                self._members[c] = Cluster(
                    c,
                    kubeconfig=kubeconfig,
                    argocd_namespace=argocd_namespace,
                    destinations=destinations,
                    argocd_secrets=argocd_secrets,
                )
            except ClusterError as e:
                self._fail(c, "open", e)
        if not self._members and not self._failures:
            raise InputError("Fleet() needs at least one context (or Cluster) to read")

    # -- who is in it -------------------------------------------------------------------

    @property
    def context(self) -> str:
        """``fleet(a, b, c)``: the member contexts (a fleet has no single context)."""
        return f"fleet({', '.join(self._members)})"

    @property
    def members(self) -> list[str]:
        """The member contexts, in the order they were added."""
        return list(self._members)

    def member(self, context: str) -> Cluster:
        """One member :class:`Cluster` by its context."""
        try:
            return self._members[context]
        except KeyError:
            raise InputError(f"{context!r} is not in this fleet: its members are {', '.join(self._members)}") from None

    @property
    def failures(self) -> pd.DataFrame:
        """Every cluster a query could not read so far (schema :data:`FAILURES`), oldest first."""
        with self._lock:
            return schema.frame(FAILURES, list(self._failures))

    def __repr__(self) -> str:
        return f"Fleet({self.members!r}, argocd_namespace={self.argocd_namespace!r}, timeout={self.timeout})"

    def _fail(self, cluster: str, query: str, e: BaseException | str) -> dict[str, Any]:
        row = {
            "cluster": cluster,
            "query": query,
            "error": "timeout" if isinstance(e, str) else type(e).__name__,
            "reason": e if isinstance(e, str) else (str(e) or repr(e)),
            "time": now_utc(),
        }
        with self._lock:
            self._failures.append(row)
        return row

    # -- fan-out --------------------------------------------------------------------------

    def fan_out(
        self, query: str, fn: Callable[[Cluster], pd.DataFrame | None], targets: Sequence[Cluster] | None = None
    ) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
        """Run ``fn`` on each member (or ``targets``) at once: their frames by context, in member order
        (``None`` = nothing to add), and a failure row for each that raised or did not answer within
        :attr:`timeout`."""
        clusters = list(self._members.values()) if targets is None else list(targets)
        if not clusters:
            return {}, []
        started: dict[str, float] = {}

        def run(c: Cluster) -> pd.DataFrame | None:
            started[c.context] = time.monotonic()
            return fn(c)

        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(clusters)), thread_name_prefix="gitops-nb-fleet")
        futs: dict[Future[pd.DataFrame | None], Cluster] = {pool.submit(run, c): c for c in clusters}
        frames: dict[str, pd.DataFrame] = {}
        fails: list[dict[str, Any]] = []
        pending = set(futs)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for f in done:
                    c = futs[f]
                    err = f.exception()
                    if err is not None:
                        fails.append(self._fail(c.context, query, err))
                        continue
                    out = f.result()
                    if out is not None:
                        frames[c.context] = out
                now = time.monotonic()
                for f in list(pending):
                    t0 = started.get(futs[f].context)
                    if t0 is not None and now - t0 > self.timeout:
                        pending.discard(f)
                        fails.append(
                            self._fail(
                                futs[f].context,
                                query,
                                f"no answer within {self.timeout:.0f}s (Fleet(timeout=...)); the other clusters' "
                                "rows are complete",
                            )
                        )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a hung cluster's thread is left to finish alone
        return {c.context: frames[c.context] for c in clusters if c.context in frames}, fails

    def _gather(
        self, query: str, sch: schema.Schema, fn: Callable[[Cluster], pd.DataFrame | None], **kw: Any
    ) -> pd.DataFrame:
        frames, fails = self.fan_out(query, fn, **kw)
        out = pd.concat(list(frames.values()), ignore_index=True) if frames else schema.frame(sch)
        out.attrs["failures"] = fails
        skipped = [f"{ctx}: {s}" for ctx, f in frames.items() for s in f.attrs.get("skipped") or []]
        out.attrs["skipped"] = list(dict.fromkeys(skipped))
        return out

    # -- Argo CD, from the hubs ------------------------------------------------------------------

    def argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Applications, history and operations of every hub (a member without Argo CD is a spoke: no rows).
        With ``follow_destinations``, the clusters the Applications deploy to join the fleet."""
        got: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = {}

        def read(c: Cluster) -> None:
            try:
                got[c.context] = c.argocd_frames()
            except ArgoCDNotFoundError as e:
                if e.status != 404:  # Applications elsewhere: a wrong namespace, worth saying
                    raise

        _, fails = self.fan_out("applications", read)
        hubs = [c for c in self._members.values() if c.context in got]
        got = qualify_shared_names({h.context: got[h.context] for h in hubs})
        apps, hist, ops = ([got[h.context][i] for h in hubs] for i in range(3))
        with self._lock:
            self._hub_of.clear()
            for h in hubs:
                for name in got[h.context][0]["name"]:
                    self._hub_of[str(name)] = h
        out = tuple(
            pd.concat(f, ignore_index=True) if f else schema.frame(s)
            for f, s in ((apps, schema.APPLICATIONS), (hist, schema.APP_HISTORY), (ops, schema.OPERATIONS))
        )
        if self.follow_destinations:
            for h in hubs:
                fails += self.follow(got[h.context][0], h)
        for f in out:
            f.attrs["failures"] = fails
        return out[0], out[1], out[2]

    def follow(self, apps: pd.DataFrame, hub: Cluster) -> list[dict[str, Any]]:
        """Add the clusters ``hub``'s Applications (``apps``) deploy to as members; a failure row for each
        destination that cannot be resolved or opened."""
        fails: list[dict[str, Any]] = []
        if hub.context not in self._members:
            self._members[hub.context] = hub
        for server, name, where in zip(apps["dest_server"], apps["dest_name"], apps["cluster"], strict=True):
            if where in self._members or any(f["cluster"] == where for f in fails):
                continue
            try:
                c = hub.destinations.cluster_of(server, name)
            except ClusterError as e:
                fails.append(self._fail(str(where), "resolve destination", e))
                continue
            self._members.setdefault(c.context, c)
        return fails

    def applications(self) -> pd.DataFrame:
        return self.argocd_frames()[0]

    def history(self) -> pd.DataFrame:
        return self.argocd_frames()[1]

    def operations(self) -> pd.DataFrame:
        return self.argocd_frames()[2]

    def _hub(self, app: str) -> tuple[Cluster, str]:
        """The hub holding ``app`` (a name, or ``hub/name`` for a name on two hubs) and its name there."""
        if app not in self._hub_of:
            self.argocd_frames()
        if app not in self._hub_of:
            from .live import did_you_mean

            on = sorted(q for q in self._hub_of if split_qualified(q)[1] == app and q != app)
            raise UnknownAppError(
                f"Application {app!r} is on {len(on)} hubs of {self.context}: name one as {' or '.join(map(repr, on))}"
                if on
                else f"no Application {app!r} on any hub of {self.context}. " + did_you_mean(app, sorted(self._hub_of)),
                resource=f"applications.argoproj.io/{app}",
                verb="get",
            )
        hub = self._hub_of[app]
        hub_name, name = split_qualified(app)
        return hub, name if hub_name == hub.context else app

    def _of_hub(self, app: str, read: Callable[[Cluster, str], pd.DataFrame]) -> pd.DataFrame:
        hub, name = self._hub(app)
        df = read(hub, name)
        return df.assign(app=app) if name != app and len(df) else df

    def app_history(self, app: str) -> pd.DataFrame:
        """``app``'s deploys, read on its hub; a name two hubs both have is given as ``hub/name``."""
        return self._of_hub(app, Cluster.app_history)

    def app_resources(self, app: str) -> pd.DataFrame:
        """``app``'s resources, read on its hub; a name two hubs both have is given as ``hub/name``."""
        return self._of_hub(app, Cluster.app_resources)

    # -- Kubernetes, from every member ------------------------------------------------------------

    def events(
        self,
        namespace: str | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        until: str | datetime | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        out = self._gather("events", schema.EVENTS, lambda c: c.events(namespace, since, until))
        return out.sort_values("time", kind="stable").reset_index(drop=True) if len(out) else out

    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:
        return self._gather("rollouts", schema.ROLLOUTS, lambda c: c.rollouts(namespace, name))

    def field_edits(self, namespace: str | None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        return self._gather("field_edits", schema.FIELD_EDITS, lambda c: c.field_edits(namespace, kinds))

    def get_object(
        self, group: str, version: str, kind: str, namespace: str | None, name: str, *, cluster: str | None = None
    ) -> dict[str, Any] | None:
        """One object, read on member ``cluster`` (drift reads each resource where its app deploys)."""
        if cluster is None or cluster not in self._members:
            raise InputError(
                f"get_object on a fleet needs the member to read from: cluster= one of {', '.join(self._members)}"
            )
        return self._members[cluster].get_object(group, version, kind, namespace, name)


def split_qualified(app: str) -> tuple[str | None, str]:
    """(hub, name) of ``hub/name``; (None, name) of a plain name. An Application's name has no ``/``
    (a Kubernetes name), so the last one splits; a context name may have some (an EKS ARN does)."""
    hub, sep, name = app.rpartition("/")
    return (hub, name) if sep else (None, app)


def qualify_shared_names(
    per_hub: Mapping[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]],
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """The (applications, history, operations) frames of each hub, with each Application name that two or
    more hubs have written ``hub/name`` in those hubs' frames: two hubs' ``web`` are two apps, with their own
    history, source and destination, never one. A name only one hub has is left as it is."""
    seen = Counter(n for apps, _, _ in per_hub.values() for n in set(apps["name"]))
    shared = [n for n, k in seen.items() if k > 1]
    if not shared:
        return dict(per_hub)

    def q(hub: str, col: pd.Series) -> pd.Series:
        return col.where(~col.isin(shared), hub + "/" + col.astype(str))

    return {
        hub: (
            apps.assign(name=q(hub, apps["name"])),
            hist.assign(app=q(hub, hist["app"])),
            ops.assign(app=q(hub, ops["app"])),
        )
        for hub, (apps, hist, ops) in per_hub.items()
    }


def reading_destinations(source: Any, apps: pd.DataFrame) -> Any:
    """``source`` itself, or (a live :class:`Cluster` whose Applications deploy to other clusters) a
    :class:`Fleet` of it and the clusters its apps deploy to, so their evidence is read where it is."""
    if not isinstance(source, Cluster) or not len(apps):
        return source
    if all(c == source.context for c in apps["cluster"]):
        return source
    fleet = Fleet([source], kubeconfig=source.kubeconfig, argocd_namespace=source.argocd_namespace)
    fleet.follow(apps, source)
    return fleet
