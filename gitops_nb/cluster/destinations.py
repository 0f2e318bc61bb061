"""Where an Application's destination is read from: the hub, a kubeconfig context, a mapping, or Argo CD's Secrets.

Argo CD (the hub) keeps the Applications and their deploy history; the Deployments, ReplicaSets,
events and manual edits live on the cluster each Application deploys to (``spec.destination``:
a ``server`` URL or a registered cluster's ``name``). :class:`Destinations` finds how to read it:

1. the hub itself, for ``https://kubernetes.default.svc`` (or the name ``in-cluster``), or a server
   equal to the hub's own;
2. an explicit mapping the user gives: destination server or name -> kubeconfig context;
3. a kubeconfig context whose cluster server is the destination's server (or whose name is the
   destination's name);
4. opt-in (``argocd_secrets=True``), Argo CD's own cluster Secrets on the hub (read-only: ``get``/``list``
   on Secrets in Argo CD's namespace). Their credentials stay inside the kubernetes client's
   configuration: never in a frame, a log, a ``repr`` or an error message.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError, ForbiddenError, UnknownDestinationError

if TYPE_CHECKING:
    from .live import Cluster

__all__ = ["IN_CLUSTER", "IN_CLUSTER_NAME", "Destinations", "destination_of"]

#: the server Argo CD uses for the cluster it runs in
IN_CLUSTER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
_SECRET_LABEL = "argocd.argoproj.io/secret-type=cluster"


def _norm(server: str | None) -> str:
    return (server or "").rstrip("/").lower()


def destination_of(app: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(server, name) of a raw Application's ``spec.destination``."""
    dest = (app.get("spec") or {}).get("destination") or {}
    return dest.get("server") or None, dest.get("name") or None


class Destinations:
    """Resolves an Application's destination to the :class:`~gitops_nb.cluster.live.Cluster` to read it from.

    Args:
        hub: the cluster where Argo CD and its Applications live.
        mapping: destination server URL or cluster name -> kubeconfig context (the user's explicit say).
        argocd_secrets: also read Argo CD's cluster Secrets on the hub (opt-in; needs ``list`` on Secrets
            in Argo CD's namespace). Their tokens and keys are used, never shown.
    """

    def __init__(self, hub: Cluster, mapping: Mapping[str, str] | None = None, *, argocd_secrets: bool = False) -> None:
        self.hub = hub
        self.mapping = {(_norm(k) if "://" in k else k): v for k, v in (mapping or {}).items()}
        self.argocd_secrets = argocd_secrets
        self._clusters: dict[str, Cluster] = {}
        self._contexts: list[tuple[str, str]] | None = None  # (context name, server)
        self._secrets: dict[str, dict[str, Any]] | None = None  # server -> name, config (credentials: in memory)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Destinations(hub={self.hub.context!r}, mapping={self.mapping!r}, argocd_secrets={self.argocd_secrets})"

    # -- what is known --------------------------------------------------------------------

    def _kube_contexts(self) -> list[tuple[str, str]]:
        if self._contexts is None:
            from kubernetes import config

            out: list[tuple[str, str]] = []
            try:
                contexts, _ = config.list_kube_config_contexts(config_file=self.hub.kubeconfig)
                import yaml

                path = self.hub.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
                files = [p for p in path.split(os.pathsep) if p and os.path.exists(p)]
                servers: dict[str, str] = {}
                for f in files:
                    with open(f) as fh:
                        doc = yaml.safe_load(fh) or {}
                    for c in doc.get("clusters") or []:
                        servers.setdefault(c.get("name"), (c.get("cluster") or {}).get("server") or "")
                out = [(c["name"], servers.get(str((c.get("context") or {}).get("cluster")), "")) for c in contexts]
            except Exception:  # in a pod, or no kubeconfig: no contexts to match
                out = []
            self._contexts = out
        return self._contexts

    def _argocd_clusters(self) -> dict[str, dict[str, Any]]:
        """server -> {"name", "config"} from Argo CD's cluster Secrets (read once, kept in memory only)."""
        if self._secrets is None:
            from kubernetes import client

            core = client.CoreV1Api(self.hub.api)
            resp = self.hub.call(
                "list",
                "secrets",
                lambda: core.list_namespaced_secret(
                    self.hub.argocd_namespace, label_selector=_SECRET_LABEL, _preload_content=False
                ),
            )
            found: dict[str, dict[str, Any]] = {}
            for item in json.loads(resp.data).get("items") or []:
                data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (item.get("data") or {}).items()}
                if not data.get("server"):
                    continue
                try:
                    cfg = json.loads(data.get("config") or "{}")
                except ValueError:
                    cfg = {}
                found[_norm(data["server"])] = {"name": data.get("name") or data["server"], "config": cfg}
            self._secrets = found
        return self._secrets

    def known(self) -> list[dict[str, str]]:
        """How each known cluster is read: ``{"cluster", "server", "via"}`` (no credential, ever)."""
        rows = [{"cluster": self.hub.context, "server": IN_CLUSTER, "via": "hub"}]
        rows += [{"cluster": v, "server": k, "via": "mapping"} for k, v in self.mapping.items()]
        rows += [{"cluster": c, "server": s, "via": "kubeconfig"} for c, s in self._kube_contexts() if s]
        if self.argocd_secrets:
            rows += [
                {"cluster": f"argocd:{v['name']}", "server": k, "via": "argocd-secret"}
                for k, v in self._argocd_clusters().items()
            ]
        return rows

    # -- resolving ------------------------------------------------------------------------

    def context_of(self, server: str | None, name: str | None) -> str:
        """The context name the destination is read from (:meth:`cluster_of` without connecting)."""
        return self._resolve(server, name)[0]

    def cluster_of(self, server: str | None, name: str | None) -> Cluster:
        """The :class:`Cluster` to read the destination from; :class:`UnknownDestinationError` says how to add one."""
        ctx, how = self._resolve(server, name)
        if how == "hub":
            return self.hub
        with self._lock:
            if ctx not in self._clusters:
                self._clusters[ctx] = self._open(ctx, how, server, name)
            return self._clusters[ctx]

    def by_context(self, context: str) -> Cluster:
        """The cluster a ``cluster`` column names: the hub, one already opened, a kubeconfig context, or
        (opted in) ``argocd:<name>`` from Argo CD's cluster Secrets."""
        if context == self.hub.context:
            return self.hub
        with self._lock:
            if context in self._clusters:
                return self._clusters[context]
        if context.startswith("argocd:") and self.argocd_secrets:
            return self.cluster_of(None, context.removeprefix("argocd:"))
        if any(c == context for c, _ in self._kube_contexts()):
            with self._lock:
                return self._clusters.setdefault(context, self._open(context, "kubeconfig", None, None))
        raise UnknownDestinationError(
            f"no way to read cluster {context!r} from hub {self.hub.context!r}: it is no kubeconfig context"
            + ("" if self.argocd_secrets else " (and Argo CD's cluster Secrets were not read: argocd_secrets=True)"),
            context=self.hub.context,
            resource=f"destination {context}",
            verb="resolve",
        )

    def _resolve(self, server: str | None, name: str | None) -> tuple[str, str]:
        """(context, how): how is hub, mapping, kubeconfig or argocd-secret."""
        s = _norm(server)
        if s == IN_CLUSTER or name == IN_CLUSTER_NAME or (s and s == _norm(self.hub.api.configuration.host)):
            return self.hub.context, "hub"
        for key in (s, name):
            if key and key in self.mapping:
                return self.mapping[key], "mapping"
        ctxs = self._kube_contexts()
        if s:
            hit = next((c for c, cs in ctxs if _norm(cs) == s), None)
            if hit:
                return hit, "kubeconfig"
        if name:
            hit = next((c for c, _ in ctxs if c == name), None)
            if hit:
                return hit, "kubeconfig"
        if self.argocd_secrets:
            try:
                known = self._argocd_clusters()
            except ForbiddenError as e:
                raise UnknownDestinationError(
                    f"cannot read Argo CD's cluster Secrets on {self.hub.context!r} to resolve the destination "
                    f"{server or name!r}: {e}. Map it instead: destinations={{{(server or name)!r}: '<context>'}}",
                    context=self.hub.context,
                    resource="secrets",
                    verb="list",
                ) from e
            if s in known:
                return f"argocd:{known[s]['name']}", "argocd-secret"
            byname = next((k for k, v in known.items() if v["name"] == name), None) if name else None
            if byname:
                return f"argocd:{name}", "argocd-secret"
        where = f"server {server!r}" if server else f"name {name!r}"
        raise UnknownDestinationError(
            f"an Application deploys to the cluster with {where}, and no kubeconfig context "
            f"{'has that server' if server else 'has that name'}"
            + ("" if self.argocd_secrets else ", and Argo CD's cluster Secrets were not read")
            + ". Add a context for it to the kubeconfig, map it (destinations={"
            + repr(server or name)
            + ": '<context>'}), or let gitops-nb read Argo CD's cluster Secrets (argocd_secrets=True)",
            context=self.hub.context,
            resource=f"destination {server or name}",
            verb="resolve",
        )

    def _open(self, ctx: str, how: str, server: str | None, name: str | None) -> Cluster:
        Cluster = type(self.hub)  # the hub's class: live.py imports this module, not the other way round
        if how in ("mapping", "kubeconfig"):
            return Cluster(ctx, kubeconfig=self.hub.kubeconfig, argocd_namespace=self.hub.argocd_namespace)
        known = self._argocd_clusters()
        key = _norm(server) or next(k for k, v in known.items() if v["name"] == name)
        return Cluster.from_api_client(
            _api_client(key, known[key]["config"]), ctx, argocd_namespace=self.hub.argocd_namespace
        )


def _api_client(server: str, cfg: Mapping[str, Any]) -> Any:
    """A kubernetes ``ApiClient`` for an Argo CD cluster config: bearer token, or basic auth, or client
    certificate; CA data or ``insecure``. Certificates and keys go to 0600 files in a private temp dir
    (the client reads only files), deleted when the process exits."""
    import atexit
    import shutil

    from kubernetes import client

    conf = client.Configuration()
    conf.host = server
    tls = cfg.get("tlsClientConfig") or {}
    private = tempfile.mkdtemp(prefix="gitops-nb-tls-")
    os.chmod(private, 0o700)
    atexit.register(shutil.rmtree, private, True)

    def write(field: str) -> str | None:
        if not tls.get(field):
            return None
        path = os.path.join(private, field)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(tls[field]))
        return path

    conf.verify_ssl = not tls.get("insecure", False)
    conf.ssl_ca_cert = write("caData")
    conf.cert_file = write("certData")
    conf.key_file = write("keyData")
    if tls.get("serverName"):
        conf.tls_server_name = tls["serverName"]
    if cfg.get("bearerToken"):
        conf.api_key = {"authorization": cfg["bearerToken"]}
        conf.api_key_prefix = {"authorization": "Bearer"}
    elif cfg.get("username"):
        conf.username, conf.password = cfg.get("username"), cfg.get("password")
    elif not conf.cert_file:
        raise ClusterError(
            f"Argo CD's cluster Secret for {server} has neither a bearer token, a password nor a client certificate "
            "(exec or AWS/GCP auth are not supported): map the destination to a kubeconfig context instead",
            resource=f"destination {server}",
            verb="resolve",
        )
    return client.ApiClient(conf)
