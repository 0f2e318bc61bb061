"""Cluster state as DataFrames: Argo CD Applications, their history and resources, events,
rollouts and field edits, on the official ``kubernetes`` client (imported lazily)."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import (
    ArgoCDNotFoundError,
    ClusterError,
    ClusterUnreachableError,
    ForbiddenError,
    UnknownAppError,
    UnknownContextError,
)
from ..times import parse_at
from .argocd import (
    A_AT,
    A_BY,
    A_EXPIRES,
    A_POLICY,
    A_REASON,
    GROUP,
    PLURAL,
    VERSION,
    auto_sync_on,
    op_revisions,
    refresh_app,
)
from .destinations import Destinations, destination_of

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

__all__ = [
    "CONTROLLER_MANAGERS",
    "EDIT_KINDS",
    "GITOPS_MANAGERS",
    "Cluster",
    "app_row",
    "did_you_mean",
    "event_frame",
    "field_edit_frame",
    "field_edit_rows",
    "flatten_fields",
    "gc_paused",
    "history_columns",
    "history_rows",
    "operation_rows",
    "resource_rows",
    "rollout_frame",
    "set_retries",
]

PAGE = 500
#: how many kinds one cluster's field edits list at once
LIST_WORKERS = 4
#: the Accept header for a list of objects' metadata only (what ``kubectl get -o name`` asks for)
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#: field managers that are Argo CD itself (or Kubernetes controllers acting for it)
GITOPS_MANAGERS = frozenset({"argocd-controller", "argocd-application-controller", "argocd"})
CONTROLLER_MANAGERS = frozenset({"kube-controller-manager", "kube-scheduler", "kubelet", "kwok"})
#: the kinds whose field edits are read by default
EDIT_KINDS = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "ConfigMap",
    "Secret",
    "Ingress",
    "HorizontalPodAutoscaler",
)


def _ts(value: Any) -> pd.Timestamp | None:
    """An API time (RFC 3339, ``...Z``) as a UTC Timestamp. The standard library parses it three times
    faster than pandas converts zones, and history() makes two per deploy."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _ts_text(value)
    t = pd.Timestamp(value)
    return t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")


@functools.lru_cache(maxsize=65536)
def _ts_text(value: str) -> pd.Timestamp:
    """An API timestamp's text (RFC 3339, ``...Z``), parsed once (the same times recur across objects and their
    versions); the standard library parses it three times faster than pandas converts zones."""
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return pd.Timestamp(d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC))
    t = pd.Timestamp(value)
    return t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")


_GC_LOCK = threading.Lock()
_gc_pause = {"depth": 0, "was_on": False}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a list is parsed and its frame built (nestable, across threads:
    on again when the last reader ends, if it was on). Parsed JSON has no reference cycles, so nothing waits to be
    collected; but its hundred thousand new objects set off collections that walk the whole heap (pandas' too):
    a third to a half of the CPU of reading a namespace. Also a decorator: ``@gc_paused()``."""
    with _GC_LOCK:
        if _gc_pause["depth"] == 0:
            _gc_pause["was_on"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was_on"]:
                gc.enable()


@functools.lru_cache(maxsize=4096)
def _key_label(raw: str) -> str:
    """A managedFields ``k:`` key's JSON (``{"name":"web"}``) as its values (``web``); the same keys recur across
    objects, so each is parsed once."""
    try:
        d = json.loads(raw)
    except ValueError:
        return raw
    return ",".join(str(v) for v in d.values()) if isinstance(d, dict) else raw


def flatten_fields(fields_v1: dict[str, Any] | None, prefix: str = "") -> list[str]:
    """Flatten a managedFields ``fieldsV1`` tree into dotted paths (``spec.template.spec.containers[web].image``)."""
    out: list[str] = []
    _flatten_into(fields_v1 or {}, prefix, out)
    return out


def _flatten_into(tree: dict[str, Any], prefix: str, out: list[str]) -> None:
    """:func:`flatten_fields` appending to ``out``: a leaf (or a node whose only child is ``.``) is one path.
    One list for the whole tree, not one per node: field edits flatten every entry of every object listed."""
    for k, v in tree.items():
        tag = k[:2]
        if tag == "f:":
            path = f"{prefix}.{k[2:]}" if prefix else k[2:]
        elif k == ".":
            continue
        elif tag == "k:":
            path = f"{prefix}[{_key_label(k[2:])}]"
        elif tag in ("v:", "i:"):
            path = f"{prefix}[{k[2:]}]"
        else:
            path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            n = len(out)
            _flatten_into(v, path, out)
            if len(out) > n:
                continue
        out.append(path)


class Cluster:
    """One Kubernetes cluster (a kubeconfig context) and its Argo CD.

    Args:
        context: kubeconfig context; ``None`` for the current one, or in-cluster config in a pod.
        kubeconfig: path of the kubeconfig (default: ``$KUBECONFIG`` or ``~/.kube/config``).
        argocd_namespace: where the Application objects live.
        destinations: destination server URL or cluster name -> the kubeconfig context to read it from,
            for Applications deploying to other clusters (a context whose server matches is found alone).
        argocd_secrets: also resolve destinations from Argo CD's cluster Secrets (opt-in, read-only;
            their credentials are used, never shown).
    """

    def __init__(
        self,
        context: str | None = None,
        kubeconfig: str | None = None,
        argocd_namespace: str = "argocd",
        *,
        destinations: Mapping[str, str] | None = None,
        argocd_secrets: bool = False,
    ) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self.argocd_namespace = argocd_namespace
        self.kubeconfig = kubeconfig
        _check_kubeconfig(kubeconfig, context)
        try:
            if kubeconfig is None and context is None and _in_cluster():
                config.load_incluster_config()
                self.api = client.ApiClient()
                self.context = "in-cluster"
            else:
                self.api = config.new_client_from_config(config_file=kubeconfig, context=context)
                self.context = context or config.list_kube_config_contexts(config_file=kubeconfig)[1]["name"]
        except ConfigException as e:
            known: list[str] = []
            with contextlib.suppress(Exception):
                known = [c["name"] for c in config.list_kube_config_contexts(config_file=kubeconfig)[0]]
            raise UnknownContextError(
                f"cannot use kube context {context!r} from {kubeconfig or '$KUBECONFIG/~/.kube/config'}: {e}. "
                f"Known contexts: {', '.join(known) or 'none'}; pick one with kube_context=...",
                context=context,
            ) from e
        set_retries(self.api, 1)
        self._client = client
        self.destinations = Destinations(self, destinations, argocd_secrets=argocd_secrets)

    @classmethod
    def from_api_client(cls, api: Any, context: str, *, argocd_namespace: str = "argocd") -> Cluster:
        """A Cluster on a ready ``kubernetes.client.ApiClient`` (an Argo CD cluster Secret's credentials),
        named ``context``; its destinations resolve only to itself."""
        from kubernetes import client

        self = cls.__new__(cls)
        self.argocd_namespace, self.kubeconfig, self.context = argocd_namespace, None, context
        self.api = set_retries(api, 1)
        self._client = client
        self.destinations = Destinations(self)
        return self

    def destination(self, app: dict[str, Any]) -> Cluster:
        """The cluster to read a raw Application's resources from (its ``spec.destination``, resolved by
        :attr:`destinations`): this one for in-cluster apps."""
        return self.destinations.cluster_of(*destination_of(app))

    def _dest_context(self, app: dict[str, Any]) -> str | None:
        """The ``cluster`` column of an app's rows: the context its destination is read from, else the
        destination's name or server as Argo CD knows it."""
        server, name = destination_of(app)
        try:
            return self.destinations.context_of(server, name)
        except ClusterError:
            return name or server

    def __repr__(self) -> str:
        return f"Cluster(context={self.context!r}, argocd_namespace={self.argocd_namespace!r})"

    # -- calls, with errors a person can act on -----------------------------------------

    def call(self, verb: str, resource: str, fn: Callable[[], Any]) -> Any:
        """Run one API call; the client's errors become this package's typed :class:`ClusterError` tree."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as e:
            raise self._translate(verb, resource, e) from e
        except (HTTPError, OSError) as e:
            raise ClusterUnreachableError(
                f"the API server of context {self.context!r} ({self.api.configuration.host}) did not answer "
                f"({type(e).__name__}) while trying to {verb} {resource}. Check the network / VPN, or that the "
                "cluster (or `gitops-nb sandbox up`) is running",
                context=self.context,
                resource=resource,
                verb=verb,
            ) from e

    def _translate(self, verb: str, resource: str, e: ApiException) -> ClusterError:
        """The typed error for an ``ApiException`` (returned, for the caller to raise ``from e``)."""
        where = f"{verb} {resource} in context {self.context!r}"
        kw: dict[str, Any] = {"context": self.context, "resource": resource, "verb": verb, "status": e.status}
        if e.status == 403:
            return ForbiddenError(
                f"forbidden: {where}. Ask for RBAC that allows '{verb}' on {resource} "
                f"(kubectl auth can-i {verb} {resource.split('/')[0]} --context {self.context})",
                **kw,
            )
        if (
            e.status == 404
            and "argoproj.io" in resource
            and '"reason":"NotFound"' not in (e.body or "").replace(" ", "")
        ):
            return ArgoCDNotFoundError(
                f"{where}: Argo CD's CRDs (applications.argoproj.io) are not installed here. "
                "Check the context, or install Argo CD",
                **kw,
            )
        if e.status == 401:
            return ClusterError(f"unauthorized: {where}. Your credentials expired or are wrong: log in again", **kw)
        return ClusterError(f"{where} failed: {e.status} {e.reason}", **kw)

    def _pages(self, verb: str, resource: str, lister: Callable[..., Any], **kw: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list call as plain JSON, page by page (``limit``/``continue``).

        Raw JSON, not the client's models: faster, and immune to model validation of
        fields older objects leave null.
        """
        token = None
        while True:
            resp = self.call(
                verb, resource, functools.partial(lister, limit=PAGE, _continue=token, _preload_content=False, **kw)
            )
            page = json.loads(resp.data)
            yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return

    def _custom(self) -> CustomObjectsApi:
        return self._client.CustomObjectsApi(self.api)

    #: a live source: what it reads is gone later, so investigations keep a snapshot of it
    live = True

    # -- an Application's verbs (the one place that patches and watches them) ------------

    def patch_application(self, app: str, ops: list[dict[str, Any]]) -> None:
        """Apply a JSON patch (RFC 6902) to the Application ``app``; a ``test`` op makes it conditional."""
        c = self._custom()
        self.call(
            "patch",
            f"applications.argoproj.io/{app}",
            lambda: c.patch_namespaced_custom_object(
                GROUP, VERSION, self.argocd_namespace, PLURAL, app, ops, _content_type="application/json-patch+json"
            ),
        )

    def refresh_application(self, app: str, *, hard: bool = False) -> None:
        """Ask Argo CD to compare ``app`` with git now (the refresh annotation)."""
        self.call(
            "patch",
            f"applications.argoproj.io/{app}",
            lambda: refresh_app(self.api, app, namespace=self.argocd_namespace, hard=hard),
        )

    def watch_application(self, app: str, resource_version: str, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """The Application's watch events (``type``, ``object``) after ``resource_version``, for at most
        ``timeout_seconds``. A dropped watch (410 Gone, a restarting API server) simply ends the stream:
        the caller reads the object again and watches anew."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        w = watch.Watch()
        try:
            yield from w.stream(
                self._custom().list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.argocd_namespace,
                PLURAL,
                field_selector=f"metadata.name={app}",
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
            )
        except ApiException as e:
            if e.status not in (410, 500, 503, 504):
                raise self._translate("watch", f"applications.argoproj.io/{app}", e) from e
        except (HTTPError, OSError):
            return  # the API server went away mid-watch: the caller re-reads, which says if it is still gone
        finally:
            w.stop()

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """One Deployment as plain JSON."""
        apps = self._client.AppsV1Api(self.api)
        resp = self.call(
            "get",
            "deployments.apps",
            lambda: apps.read_namespaced_deployment(name, namespace, _preload_content=False),
        )
        return dict(json.loads(resp.data))

    def get_object(
        self, group: str, version: str, kind: str, namespace: str | None, name: str, *, cluster: str | None = None
    ) -> dict[str, Any] | None:
        """Any object as plain JSON, read through the API's generic paths; ``None`` if there is none (404).

        ``kind`` is a kind (``Deployment``) or a plural (``deployments``); ``group`` is ``""`` for the
        core group. The kind's plural and scope come from the group version's discovery document
        (read once per group version). ``cluster`` (an app's ``cluster`` column) reads it on that
        destination instead of here.
        """
        if cluster is not None and cluster != self.context:
            return self.destinations.by_context(cluster).get_object(group, version, kind, namespace, name)
        gv = f"{group}/{version}" if group else version
        base = f"/apis/{gv}" if group else f"/api/{version}"
        plural, namespaced = self._resource_of(base, gv, kind)
        path = (
            f"{base}/namespaces/{namespace}/{plural}/{name}" if namespaced and namespace else f"{base}/{plural}/{name}"
        )
        resource = f"{plural}.{group}/{name}" if group else f"{plural}/{name}"
        try:
            resp = self.call("get", resource, functools.partial(self._get_path, path))
        except ClusterError as e:
            if e.status == 404:
                return None
            raise
        return dict(json.loads(resp))

    def _get_path(self, path: str) -> bytes:
        """GET an API path as raw bytes; a status that is not 2xx raises the client's ``ApiException``."""
        from kubernetes.client.exceptions import ApiException

        api: Any = self.api  # the stubs lack param_serialize
        method, url, headers, _, _ = api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        resp = api.call_api(method, url, header_params=headers)
        data: bytes = resp.read()
        if not 200 <= resp.status < 300:
            raise ApiException(http_resp=resp)
        return data

    def _resource_of(self, base: str, gv: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of ``kind`` (or plural) in the group version at ``base``."""
        cache: dict[str, list[dict[str, Any]]] = self.__dict__.setdefault("_discovery", {})
        if gv not in cache:
            resp = self.call("get", f"discovery {gv}", functools.partial(self._get_path, base))
            cache[gv] = list(json.loads(resp).get("resources") or [])
        for r in cache[gv]:
            if "/" not in r.get("name", "") and kind in (r.get("kind"), r.get("name")):
                return str(r["name"]), bool(r.get("namespaced"))
        raise ClusterError(
            f"the API group version {gv} of context {self.context!r} has no kind or resource {kind!r}",
            context=self.context,
            resource=f"{kind}.{gv}",
            verb="get",
        )

    # -- Argo CD ----------------------------------------------------------------------

    @gc_paused()
    def raw_applications(self) -> list[dict[str, Any]]:
        """Every Application object as returned by the API (paged).

        None here while other namespaces hold Applications is a wrong ``argocd_namespace``, not
        "no drift": :class:`ArgoCDNotFoundError` names the namespaces that do hold them.
        """
        c = self._custom()
        items = list(
            self._pages(
                "list",
                "applications.argoproj.io",
                c.list_namespaced_custom_object,
                group=GROUP,
                version=VERSION,
                namespace=self.argocd_namespace,
                plural=PLURAL,
            )
        )
        if not items:
            elsewhere = self._application_namespaces()
            if elsewhere:
                raise ArgoCDNotFoundError(
                    f"no Applications in namespace {self.argocd_namespace!r} of context {self.context!r}, but "
                    f"namespace(s) {', '.join(elsewhere)} hold some: pass argocd_namespace={elsewhere[0]!r} "
                    "(Cluster(..., argocd_namespace=...), or the notebook's argocd_namespace parameter)",
                    context=self.context,
                    resource="applications.argoproj.io",
                    verb="list",
                )
        return items

    def _application_namespaces(self, pages: int = 20) -> list[str]:
        """Namespaces holding Applications, from a cluster-wide list one item per page (a few pages at most);
        empty if listing cluster-wide is not allowed."""
        c, token = self._custom(), None
        found: list[str] = []
        for _ in range(pages):
            try:
                resp = self.call(
                    "list",
                    "applications.argoproj.io",
                    functools.partial(
                        c.list_cluster_custom_object,
                        GROUP,
                        VERSION,
                        PLURAL,
                        limit=1,
                        _continue=token,
                        _preload_content=False,
                    ),
                )
            except ForbiddenError:
                return found
            page = json.loads(resp.data)
            for item in page.get("items") or []:
                ns = (item.get("metadata") or {}).get("namespace")
                if ns and ns not in found:
                    found.append(ns)
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
        return found

    def raw_application(self, app: str) -> dict[str, Any]:
        """One Application object; :class:`UnknownAppError` if there is none."""
        c = self._custom()
        resource = f"applications.argoproj.io/{app}"
        try:
            return dict(
                self.call(
                    "get",
                    resource,
                    lambda: c.get_namespaced_custom_object(GROUP, VERSION, self.argocd_namespace, PLURAL, app),
                )
            )
        except ClusterError as e:
            if e.status != 404 or isinstance(e, ArgoCDNotFoundError):
                raise
            names = sorted(a["metadata"]["name"] for a in self.raw_applications())
            raise UnknownAppError(
                f"no Application {app!r} in namespace {self.argocd_namespace!r} of context {self.context!r}. "
                + did_you_mean(app, names),
                context=self.context,
                resource=resource,
                verb="get",
                status=404,
            ) from None  # the 404 adds nothing, and a notebook shows the whole chain

    def applications(self, raw: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """One row per Application (schema :data:`schema.APPLICATIONS`); ``raw`` reuses a list already read."""
        items = self.raw_applications() if raw is None else raw
        out = schema.frame(schema.APPLICATIONS, [app_row(a) for a in items])
        out["cluster"] = pd.Series([self._dest_context(a) for a in items], index=out.index, dtype=object)
        return out

    def history(self, raw: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """Every Application's deploy history in one frame (schema :data:`schema.APP_HISTORY`)."""
        items = self.raw_applications() if raw is None else raw
        return schema.frame(schema.APP_HISTORY, history_columns(items, self._dest_context))

    def _tag_apps(self, df: pd.DataFrame, items: list[dict[str, Any]]) -> pd.DataFrame:
        """Fill ``cluster`` from each row's ``app``: the app's destination."""
        where = {(a.get("metadata") or {}).get("name"): self._dest_context(a) for a in items}
        df["cluster"] = pd.Series([where.get(a) for a in df["app"]], index=df.index, dtype=object)
        return df

    @gc_paused()
    def argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Applications, history and operations from one list call."""
        raw = self.raw_applications()
        return self.applications(raw), self.history(raw), self.operations(raw)

    def operations(self, raw: list[dict[str, Any]] | None = None) -> pd.DataFrame:
        """Each Application's current or last operation (schema :data:`schema.OPERATIONS`)."""
        items = self.raw_applications() if raw is None else raw
        return self._tag_apps(schema.frame(schema.OPERATIONS, [r for a in items for r in operation_rows(a)]), items)

    def app_history(self, app: str) -> pd.DataFrame:
        """The deploys Argo CD recorded for ``app`` (schema :data:`schema.APP_HISTORY`), oldest first."""
        a = self.raw_application(app)
        return self._tag_apps(schema.frame(schema.APP_HISTORY, history_rows(a)), [a])

    def app_resources(self, app: str) -> pd.DataFrame:
        """The resources ``app`` manages with their sync and health (schema :data:`schema.APP_RESOURCES`)."""
        a = self.raw_application(app)
        return self._tag_apps(schema.frame(schema.APP_RESOURCES, resource_rows(a)), [a])

    # -- Kubernetes ---------------------------------------------------------------------

    @gc_paused()
    def events(
        self,
        namespace: str | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        until: str | datetime | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Kubernetes events, Argo CD's own included (schema :data:`schema.EVENTS`), oldest first.

        Core ``v1`` Events are the same objects as ``events.k8s.io/v1`` ones (one storage);
        ``series`` and the reporting component are read when set. Events expire (one hour
        by default): use :func:`snapshot` to keep them.
        """
        core = self._client.CoreV1Api(self.api)
        if namespace:
            items = self._pages("list", "events", core.list_namespaced_event, namespace=namespace)
        else:
            items = self._pages("list", "events", core.list_event_for_all_namespaces)
        return self._tag(event_frame(items, since, until))

    def _tag(self, df: pd.DataFrame) -> pd.DataFrame:
        """Fill ``cluster`` with this cluster's context: where the rows were read."""
        df["cluster"] = pd.Series([self.context] * len(df), index=df.index, dtype=object)
        return df

    @gc_paused()
    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:
        """Deployments' ReplicaSets: when each rollout happened (schema :data:`schema.ROLLOUTS`).

        ``namespace=None`` lists every namespace in one paged call.
        """
        apps = self._client.AppsV1Api(self.api)
        items = self._list(apps, "replica_set", "replicasets.apps", namespace)
        return self._tag(rollout_frame(items, name, functools.partial(self.events, namespace)))

    @gc_paused()
    def field_edits(self, namespace: str | None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        """Who last set which fields, and when, from ``managedFields`` (schema :data:`schema.FIELD_EDITS`).

        A manual ``kubectl edit`` shows as manager ``kubectl-edit``; Argo CD's own
        writes as ``argocd-controller`` (``is_gitops``). Kubernetes controllers'
        status writes are left out. An update through the ``scale`` subresource
        (``kubectl scale``) has no time in managedFields: its row has ``time`` null and
        ``time_bound`` says so (:func:`~gitops_nb.manual_edits` bounds it by the last sync).

        A kind this role may not list (Secrets, for a read-only responder) is skipped, never
        required: ``attrs["skipped"]`` names it (``"secrets: forbidden for this role"``).
        """
        from concurrent.futures import ThreadPoolExecutor

        wanted = set(kinds or EDIT_KINDS)
        listers = {k: lister for k, lister in self._listers(namespace).items() if k in wanted}
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        # The kinds are listed at once (most are small lists, each a round trip), and each kind's rows are built
        # while the later kinds are still being listed; in the kinds' order, so the rows' order is as before.
        pool = ThreadPoolExecutor(max_workers=min(LIST_WORKERS, len(listers) or 1), thread_name_prefix="gitops-nb-list")
        try:
            lists = {k: pool.submit(_listed, lister) for k, lister in listers.items()}
            for kind, fut in lists.items():
                try:
                    objs = fut.result()
                except ForbiddenError as e:
                    skipped.append(f"{str(e.resource or kind).split('.')[0]}: forbidden for this role")
                    continue
                rows.extend(r for obj in objs for r in field_edit_rows(kind, obj))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # an error above: the other lists are not waited for
        out = self._tag(field_edit_frame(rows))
        out.attrs["skipped"] = skipped
        return out

    def _list(
        self, api: Any, kind: str, resource: str, namespace: str | None, *, metadata_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        """List ``kind`` (a client method stem, e.g. ``deployment``) in one namespace, or all (``None``).

        ``metadata_only`` asks the API server for the objects' metadata alone (``PartialObjectMetadataList``):
        what field edits read, at a fraction of the bytes to send and parse.
        """
        kw: dict[str, Any] = {"_headers": {"Accept": _METADATA_ONLY}} if metadata_only else {}
        if namespace:
            return self._pages("list", resource, getattr(api, f"list_namespaced_{kind}"), namespace=namespace, **kw)
        return self._pages("list", resource, getattr(api, f"list_{kind}_for_all_namespaces"), **kw)

    def _listers(self, namespace: str | None) -> dict[str, Callable[[], Iterator[Any]]]:
        apps, core = self._client.AppsV1Api(self.api), self._client.CoreV1Api(self.api)
        net, auto = self._client.NetworkingV1Api(self.api), self._client.AutoscalingV2Api(self.api)
        table = {
            "Deployment": (apps, "deployment", "deployments.apps"),
            "StatefulSet": (apps, "stateful_set", "statefulsets.apps"),
            "DaemonSet": (apps, "daemon_set", "daemonsets.apps"),
            "Service": (core, "service", "services"),
            "ConfigMap": (core, "config_map", "configmaps"),
            "Secret": (core, "secret", "secrets"),
            "Ingress": (net, "ingress", "ingresses.networking.k8s.io"),
            "HorizontalPodAutoscaler": (auto, "horizontal_pod_autoscaler", "horizontalpodautoscalers.autoscaling"),
        }
        return {
            k: functools.partial(self._list, a, m, r, namespace, metadata_only=True) for k, (a, m, r) in table.items()
        }


def _listed(lister: Callable[[], Iterator[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every item a lister gives (run in a worker thread)."""
    return list(lister())


def set_retries(api: Any, retries: int) -> Any:
    """``api`` (a ``kubernetes.client.ApiClient``) retrying a failed request ``retries`` times, not urllib3's
    default, so an unreachable cluster is given up sooner. The connection pool reads ``retries`` when it is
    made (setting the configuration afterwards changes nothing), so the pool is made again."""
    from kubernetes.client import rest

    api.configuration.retries = retries
    # The kubeconfig loader sets the host again before every request (its token refresh hook), and a proxy taken
    # from the environment is then looked up again (a scan of os.environ: a millisecond a request). Resolved once
    # here, for this host, it is the same proxy.
    api.configuration.proxy = api.configuration.proxy
    api.rest_client.close()
    api.rest_client = rest.RESTClientObject(api.configuration)
    return api


def did_you_mean(name: str, known: Sequence[str], *, shown: int = 20) -> str:
    """``Did you mean …?`` with the closest names, then the known ones (counted when there are more)."""
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    head = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    listed = ", ".join(known[:shown]) + (f" … and {len(known) - shown} more" if len(known) > shown else "")
    return f"{head}Known ({len(known)}): {listed or 'none'}"


def _check_kubeconfig(path: str | None, context: str | None) -> None:
    """A missing or unreadable kubeconfig is named as such (the client says only "no configuration")."""
    import os

    import yaml

    env = os.environ.get("KUBECONFIG", "")
    files = [path] if path else ([env] if env and os.pathsep not in env else [])  # a list may name missing files
    for f in files:
        if not os.path.exists(f):
            raise UnknownContextError(
                f"the kubeconfig {f} does not exist: give the path of an existing kubeconfig "
                "(kubeconfig=..., or $KUBECONFIG), or leave it empty for ~/.kube/config",
                context=context,
            )
        try:
            with open(f) as fh:
                doc = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError) as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise UnknownContextError(
                f"the kubeconfig {f} cannot be read as YAML{at}: {str(e).splitlines()[0]}. Fix or replace the file",
                context=context,
            ) from e
        if not isinstance(doc, dict):
            raise UnknownContextError(
                f"the kubeconfig {f} is not a kubeconfig (a YAML mapping with contexts, clusters and users)",
                context=context,
            )


def _in_cluster() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def _controller_update(meta: dict[str, Any]) -> pd.Timestamp | None:
    """The newest time the Deployment controller wrote an object (not its status), from managedFields."""
    times = [
        _ts(m.get("time"))
        for m in meta.get("managedFields") or []
        if m.get("manager") == "kube-controller-manager" and m.get("subresource") != "status" and m.get("time")
    ]
    return max((t for t in times if t is not None), default=None) or _ts(meta.get("creationTimestamp"))


def _scrub(text: str | None) -> str | None:
    """Event messages are free text: drop anything that looks like a bearer token."""
    if not text:
        return text
    import re

    return re.sub(r"(?i)(bearer\s+|token[=:]\s*)[A-Za-z0-9._\-]{16,}", r"\1<redacted>", text)


def _source(src: dict[str, Any] | None) -> dict[str, Any]:
    get = (src or {}).get
    return {
        "repo_url": get("repoURL"),
        "path": get("path"),
        "target_revision": get("targetRevision"),
        "chart": get("chart"),
        "ref": get("ref"),
        "helm": get("helm"),  # these four None when unset: one shape
        "kustomize": get("kustomize"),
        "directory": get("directory"),
        "plugin": get("plugin"),
    }


def app_row(a: dict[str, Any]) -> dict[str, Any]:
    spec, st, meta = a.get("spec") or {}, a.get("status") or {}, a.get("metadata") or {}
    sources = [_source(s) for s in spec.get("sources") or ([spec["source"]] if spec.get("source") else [])]
    first = sources[0] if sources else _source(None)
    policy = spec.get("syncPolicy") or {}
    on = auto_sync_on(policy)
    auto = policy.get("automated") if on else None
    op = st.get("operationState") or {}
    sync = st.get("sync") or {}
    owner = next(iter(meta.get("ownerReferences") or []), None)
    parent = (
        f"{owner['kind']}/{owner['name']}" if owner else (meta.get("labels") or {}).get("argocd.argoproj.io/instance")
    )
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "project": spec.get("project"),
        "repo_url": first["repo_url"],
        "path": first["path"],
        "target_revision": first["target_revision"],
        "sources": sources,
        "dest_server": (spec.get("destination") or {}).get("server"),
        "dest_name": (spec.get("destination") or {}).get("name"),
        "dest_namespace": (spec.get("destination") or {}).get("namespace"),
        "sync_status": sync.get("status"),
        "sync_revision": sync.get("revision") or next(iter(sync.get("revisions") or []), None),
        "sync_revisions": list(sync.get("revisions") or []),
        "health_status": (st.get("health") or {}).get("status"),
        "automated": on,
        "prune": bool((auto or {}).get("prune")),
        "self_heal": bool((auto or {}).get("selfHeal")),
        "operation_phase": op.get("phase"),
        "operation_revision": next(iter(op_revisions(op)), None),
        "conditions": [_condition(c) for c in st.get("conditions") or []],
        "operation_finished_at": _ts(op.get("finishedAt")),
        "reconciled_at": _ts(st.get("reconciledAt")),
        "parent": parent,
        "created_at": _ts(meta.get("creationTimestamp")),
        **_pause(meta.get("annotations") or {}),
    }


def _pause(anns: dict[str, Any]) -> dict[str, Any]:
    """Who paused the app with gitops-nb, when, why and until when; ``pause_expired`` as of now."""
    if A_POLICY not in anns:
        return {
            "paused_by": None,
            "paused_at": None,
            "pause_reason": None,
            "pause_expires": None,
            "pause_expired": False,
        }
    expires = _ts(anns.get(A_EXPIRES) or None)
    return {
        "paused_by": anns.get(A_BY),
        "paused_at": _ts(anns.get(A_AT) or None),
        "pause_reason": anns.get(A_REASON),
        "pause_expires": expires,
        "pause_expired": expires is not None and expires <= pd.Timestamp.now(tz="UTC"),
    }


def _condition(c: dict[str, Any]) -> dict[str, Any]:
    return {"type": c.get("type"), "message": _scrub(c.get("message")), "time": _ts(c.get("lastTransitionTime"))}


def history_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    """An Application's deploy history as :data:`schema.APP_HISTORY` rows (``cluster`` left out)."""
    cols = _history_lists([a], None)
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def _utc_index(times: list[pd.Timestamp | None]) -> pd.DatetimeIndex:
    """UTC times (``None`` for none) as a DatetimeIndex, from their nanoseconds: no per-value conversion."""
    ns = np.fromiter((_NAT if t is None else t.value for t in times), dtype=np.int64, count=len(times))
    return pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")


_NAT = np.iinfo(np.int64).min  # NaT's nanoseconds


def _utc_column(times: list[Any]) -> pd.DatetimeIndex | list[Any]:
    """A frame's time column: :func:`_utc_index` when every value is a Timestamp or ``None`` (what :func:`_ts`
    gives), else the values for :func:`schema.frame` to convert."""
    if all(t is None or isinstance(t, pd.Timestamp) for t in times):
        return _utc_index(times)
    return times


def _frame_of_rows(sch: schema.Schema, rows: list[dict[str, Any]], times: Sequence[str]) -> pd.DataFrame:
    """:func:`schema.frame` of row dicts, its ``times`` columns built from nanoseconds (pandas' parse of a list of
    Timestamps is most of a small frame's cost)."""
    cols: dict[str, Any] = {c: [r.get(c) for r in rows] for c in sch}
    for c in times:
        cols[c] = _utc_column(cols[c])
    return schema.frame(sch, cols)


def history_columns(
    items: Iterable[dict[str, Any]], cluster_of: Callable[[dict[str, Any]], Any] | None = None
) -> dict[str, Any]:
    """The deploy history of Applications as :data:`schema.APP_HISTORY` columns (a list each, times a
    DatetimeIndex; not a dict per deploy: ten thousand deploys build in a fraction of the time).
    ``cluster_of(app)`` fills ``cluster``, once per app; without it there is no ``cluster`` column."""
    cols = _history_lists(items, cluster_of)
    cols["deploy_started_at"] = _utc_index(cols["deploy_started_at"])
    cols["deployed_at"] = _utc_index(cols["deployed_at"])
    return cols


def _history_lists(
    items: Iterable[dict[str, Any]], cluster_of: Callable[[dict[str, Any]], Any] | None
) -> dict[str, Any]:
    """:func:`history_columns` with its times as Timestamps (``None`` for none)."""
    app: list[Any] = []
    ids: list[Any] = []
    revision: list[Any] = []
    revisions: list[Any] = []
    started: list[Any] = []
    deployed: list[Any] = []
    initiated: list[Any] = []
    source: list[Any] = []
    where: list[Any] = []
    for a in items:
        hist = (a.get("status") or {}).get("history") or []
        if not hist:
            continue
        name = (a.get("metadata") or {}).get("name")
        app.extend([name] * len(hist))
        if cluster_of is not None:
            where.extend([cluster_of(a)] * len(hist))
        for h in hist:
            by = h.get("initiatedBy") or {}
            revs = h.get("revisions") or []
            # a multi-source deploy has ``sources`` and an empty ``source`` ({"repoURL": ""})
            src = h.get("source")
            if not (src or {}).get("repoURL"):
                src = next(iter(h.get("sources") or []), None)
            ids.append(h.get("id"))
            revision.append(h.get("revision") or next(iter(revs), None))
            revisions.append(list(revs))
            started.append(_ts(h.get("deployStartedAt")))
            deployed.append(_ts(h.get("deployedAt")))
            initiated.append("automated" if by.get("automated") else by.get("username"))
            source.append(_source(src))
    cols = {
        "app": app,
        "id": ids,
        "revision": revision,
        "revisions": revisions,
        "deploy_started_at": started,
        "deployed_at": deployed,
        "initiated_by": initiated,
        "source": source,
    }
    if cluster_of is not None:
        cols["cluster"] = where
    return cols


def _sync_scope(op: dict[str, Any]) -> dict[str, Any]:
    """A sync operation's self-heal count (``autoHealAttemptsCount``, set by Argo CD 3.x only on a
    self-heal) and the resources it was limited to (a self-heal syncs only the OutOfSync ones)."""
    sync = (op.get("operation") or {}).get("sync") or {}
    count = sync.get("autoHealAttemptsCount", sync.get("selfHealAttemptsCount"))
    return {
        "self_heal_attempts": int(count) if count is not None else None,
        "sync_resources": [f"{r.get('kind')}/{r.get('name')}" for r in sync.get("resources") or []],
    }


# -- row builders: one object (plain JSON) in, rows out; the live Cluster and a Recording share them ----


def operation_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    """The Application's current or last operation as an :data:`schema.OPERATIONS` row (none if it has none)."""
    op = (a.get("status") or {}).get("operationState")
    if not op:
        return []
    by = (op.get("operation") or {}).get("initiatedBy") or {}
    return [
        {
            "app": (a.get("metadata") or {}).get("name"),
            "phase": op.get("phase"),
            "message": _scrub(op.get("message")),
            "revision": next(iter(op_revisions(op)), None),
            "revisions": op_revisions(op),
            "started_at": _ts(op.get("startedAt")),
            "finished_at": _ts(op.get("finishedAt")),
            "initiated_by": "automated" if by.get("automated") else by.get("username"),
            "retry_count": op.get("retryCount"),
            **_sync_scope(op),
        }
    ]


def resource_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources an Application manages (``status.resources``) as :data:`schema.APP_RESOURCES` rows."""
    app = (a.get("metadata") or {}).get("name")
    return [
        {
            "app": app,
            "group": r.get("group") or "",
            "version": r.get("version"),
            "kind": r.get("kind"),
            "namespace": r.get("namespace"),
            "name": r.get("name"),
            "sync_status": r.get("status"),
            "health_status": (r.get("health") or {}).get("status"),
            "health_message": (r.get("health") or {}).get("message") or None,
            "hook": bool(r.get("hook")),
            "requires_pruning": bool(r.get("requiresPruning")),
        }
        for r in (a.get("status") or {}).get("resources") or []
    ]


def event_frame(
    items: Iterable[dict[str, Any]],
    since: str | datetime | pd.Timestamp | None = None,
    until: str | datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Event objects (core v1 or events.k8s.io) as :data:`schema.EVENTS`, those last seen in [since, until],
    oldest first."""
    lo = parse_at(since) if since is not None else None
    hi = parse_at(until) if until is not None else None
    rows: list[dict[str, Any]] = []
    for e in items:
        meta, series, obj = e.get("metadata") or {}, e.get("series") or {}, e.get("involvedObject") or {}
        last = _ts(
            series.get("lastObservedTime")
            or e.get("lastTimestamp")
            or e.get("eventTime")
            or meta.get("creationTimestamp")
        )
        first = _ts(e.get("firstTimestamp") or e.get("eventTime") or meta.get("creationTimestamp"))
        if last is None or (lo is not None and last < lo) or (hi is not None and last > hi):
            continue
        rows.append(
            {
                "time": last,
                "first_time": first,
                "namespace": meta.get("namespace"),
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": _scrub(e.get("message")),
                "object_kind": obj.get("kind"),
                "object_namespace": obj.get("namespace"),
                "object_name": obj.get("name"),
                "count": series.get("count") or e.get("count") or 1,
                "source": e.get("reportingComponent") or (e.get("source") or {}).get("component"),
            }
        )
    rows.sort(key=lambda r: r["time"])
    return _frame_of_rows(schema.EVENTS, rows, ("time", "first_time"))


def rollout_frame(
    items: Iterable[dict[str, Any]], name: str | None, events: Callable[[], pd.DataFrame]
) -> pd.DataFrame:
    """ReplicaSet objects as :data:`schema.ROLLOUTS` rows (those of Deployment ``name``, or all), oldest first.

    A reused ReplicaSet (a revert to an earlier template) became current when the Deployment scaled it
    up from 0: the newest such ScalingReplicaSet event of ``events()`` (read only when needed) while
    events last, else the controller's last write of the ReplicaSet from managedFields.
    """
    rows = []
    for rs in items:
        meta, spec, st = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Deployment"), None)
        if owner is None or (name is not None and owner["name"] != name):
            continue
        anns = meta.get("annotations") or {}
        rev = anns.get("deployment.kubernetes.io/revision")
        history = [
            int(x)
            for x in str(anns.get("deployment.kubernetes.io/revision-history") or "").split(",")
            if x.strip().isdigit()
        ]
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        created = _ts(meta.get("creationTimestamp"))
        rows.append(
            {
                "namespace": meta.get("namespace"),
                "deployment": owner["name"],
                "replicaset": meta.get("name"),
                "revision": int(rev) if rev and rev.isdigit() else None,
                "revision_history": history,
                "images": [c.get("image") for c in containers],
                "created_at": created,
                # a ReplicaSet made for its revision became current when created; a reused one later
                "rolled_out_at": _controller_update(meta) if history else created,
                "replicas": st.get("replicas") or 0,
                "ready_replicas": st.get("readyReplicas") or 0,
                "current": False,
            }
        )
    rows.sort(key=lambda r: (r["namespace"], r["deployment"], r["revision"] or 0))
    newest = {(r["namespace"], r["deployment"]): r["replicaset"] for r in rows}
    for r in rows:
        r["current"] = newest[(r["namespace"], r["deployment"])] == r["replicaset"]
    if any(r["revision_history"] for r in rows):
        _time_reused(rows, events())
    rows.sort(key=lambda r: r["rolled_out_at"] or r["created_at"])
    return _frame_of_rows(schema.ROLLOUTS, rows, ("created_at", "rolled_out_at"))


def _time_reused(rows: list[dict[str, Any]], ev: pd.DataFrame) -> None:
    ev = ev[(ev["reason"] == "ScalingReplicaSet") & ev["message"].fillna("").str.contains(" from 0 to ")]
    up: dict[tuple[str, str], pd.Timestamp] = {}
    for ns, msg, t in zip(ev["namespace"], ev["message"], ev["time"], strict=True):
        rs = str(msg).removeprefix("Scaled up replica set ").split(" ")[0]
        up[(ns, rs)] = max(t, up.get((ns, rs), t))
    for r in rows:
        t = up.get((r["namespace"], r["replicaset"]))
        if r["revision_history"] and t is not None and t >= r["created_at"]:
            r["rolled_out_at"] = t


def field_edit_rows(kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """One :data:`schema.FIELD_EDITS` row per managedFields entry of ``obj`` (controllers' and status
    writes left out)."""
    meta = obj.get("metadata") or {}
    return [
        {
            "time": _ts(m.get("time")),
            "namespace": meta.get("namespace"),
            "kind": kind,
            "name": meta.get("name"),
            "manager": m.get("manager"),
            "operation": m.get("operation"),
            "subresource": m.get("subresource") or None,
            "fields": flatten_fields(m.get("fieldsV1")),
            "is_gitops": m.get("manager") in GITOPS_MANAGERS,
            "time_bound": None if m.get("time") else "unknown: managedFields has no time",
        }
        for m in meta.get("managedFields") or []
        if m.get("manager") not in CONTROLLER_MANAGERS and m.get("subresource") != "status"
    ]


def field_edit_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """:data:`schema.FIELD_EDITS` rows as a frame, oldest first (untimed rows last)."""
    rows.sort(key=lambda r: (r["time"] is None, r["time"] or pd.Timestamp(0, tz="UTC")))
    return _frame_of_rows(schema.FIELD_EDITS, rows, ("time",))
