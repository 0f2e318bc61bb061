"""Argo CD Applications through the Kubernetes API (the official client, imported lazily)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from ..errors import InputError, SandboxError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = [
    "FAILING_CONDITIONS",
    "PAUSE_ANNOTATIONS",
    "app_state",
    "application_manifest",
    "apply_application",
    "auto_sync_on",
    "op_revisions",
    "refresh_app",
    "status_of",
    "wait_app",
]

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
#: Application conditions that mean Argo CD cannot deploy the app as it is (manifests, sync)
FAILING_CONDITIONS = ("ComparisonError", "SyncError")


def auto_sync_on(policy: dict[str, Any] | None) -> bool:
    """Whether Argo CD auto-syncs under ``policy`` (a ``spec.syncPolicy``), as Argo CD decides it:
    the ``automated`` key being there (``automated: {}`` counts), unless ``automated.enabled`` is false."""
    auto = (policy or {}).get("automated")
    return isinstance(auto, dict) and auto.get("enabled", True) is not False


def op_revisions(op: dict[str, Any] | None) -> list[str]:
    """The revisions of an ``operationState`` (its result's, else the requested ones): one for a
    single-source app, one per source for a multi-source app (where ``revision`` is empty)."""
    op = op or {}
    for part in ((op.get("syncResult") or {}), ((op.get("operation") or {}).get("sync") or {})):
        if part.get("revision"):
            return [part["revision"]]
        if part.get("revisions"):
            return [r for r in part["revisions"] if r]
    return []


#: the annotations a gitops-nb pause writes on an Application (and a resume removes): the exact previous
#: syncPolicy, who paused, when, why, until when, and the mode
PAUSE_PREFIX = "gitops-nb.io/"
A_POLICY, A_BY, A_AT, A_REASON, A_EXPIRES, A_MODE = (
    PAUSE_PREFIX + "paused-sync-policy",
    PAUSE_PREFIX + "paused-by",
    PAUSE_PREFIX + "paused-at",
    PAUSE_PREFIX + "pause-reason",
    PAUSE_PREFIX + "pause-expires",
    PAUSE_PREFIX + "pause-mode",
)
PAUSE_ANNOTATIONS = (A_POLICY, A_BY, A_AT, A_REASON, A_EXPIRES, A_MODE)


def application_manifest(
    name: str,
    repo_url: str,
    path: str,
    dest_namespace: str,
    *,
    revision: str = "main",
    namespace: str = "argocd",
    project: str = "default",
    automated: bool = True,
    prune: bool = True,
    self_heal: bool = True,
    labels: dict[str, str] | None = None,
    dest_server: str | None = None,
    dest_name: str | None = None,
) -> dict[str, Any]:
    """An Application with (by default) automated sync, prune and self-heal.

    It deploys to the cluster Argo CD runs in, or to ``dest_server`` (a URL) or ``dest_name`` (the
    name of a cluster registered with Argo CD): one of the two, as Argo CD requires.
    """
    if dest_server and dest_name:
        raise InputError("an Application's destination has a server or a name, not both: give one")
    dest = {"name": dest_name} if dest_name else {"server": dest_server or "https://kubernetes.default.svc"}
    policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"]}
    if automated:
        policy["automated"] = {"prune": prune, "selfHeal": self_heal}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "labels": {"created-by": "gitops-nb", **(labels or {})}},
        "spec": {
            "project": project,
            "source": {"repoURL": repo_url, "targetRevision": revision, "path": path},
            "destination": {**dest, "namespace": dest_namespace},
            "syncPolicy": policy,
        },
    }


def apply_application(api_client: ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create the Application, or update its spec and labels if it exists."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom = client.CustomObjectsApi(api_client)
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    try:
        return dict(
            cast("dict[str, Any]", custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest))
        )
    except ApiException as e:
        if e.status != 409:
            raise
    patch = {"metadata": {"labels": manifest["metadata"].get("labels", {})}, "spec": manifest["spec"]}
    return dict(cast("dict[str, Any]", custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, patch)))


def refresh_app(api_client: ApiClient, name: str, *, namespace: str = "argocd", hard: bool = False) -> None:
    """Ask the controller to compare the app with git now (the refresh annotation)."""
    from kubernetes import client

    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"metadata": {"annotations": {REFRESH_ANNOTATION: "hard" if hard else "normal"}}},
    )


def status_of(app: dict[str, Any]) -> dict[str, Any]:
    """The fields of an Application object's status that say whether it converged."""
    st = app.get("status") or {}
    op = st.get("operationState") or {}
    sync = st.get("sync") or {}
    sync_revisions = [sync["revision"]] if sync.get("revision") else [r for r in sync.get("revisions") or [] if r]
    op_revs = op_revisions(op)
    return {
        "sync_status": sync.get("status"),
        "sync_revision": next(iter(sync_revisions), None),
        "sync_revisions": sync_revisions,  # one per source for a multi-source app
        "health_status": (st.get("health") or {}).get("status"),
        "operation_phase": op.get("phase"),
        "operation_revision": next(iter(op_revs), None),
        "operation_revisions": op_revs,
        "message": op.get("message") or (st.get("health") or {}).get("message"),
        "history": st.get("history") or [],
        "conditions": st.get("conditions") or [],
    }


def app_state(api_client: ApiClient, name: str, *, namespace: str = "argocd") -> dict[str, Any]:
    """:func:`status_of` the Application ``name``, read now."""
    from kubernetes import client

    app = client.CustomObjectsApi(api_client).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return status_of(cast("dict[str, Any]", app))  # the client types custom objects as object: they are JSON dicts


def wait_app(
    api_client: ApiClient,
    name: str,
    *,
    revision: str,
    timeout: float = 120,
    namespace: str = "argocd",
    interval: float = 0.5,
) -> dict[str, Any]:
    """Poll until the app is Synced and Healthy at exactly ``revision``; returns the final state.

    (The watch-based, convergence-proving wait of the runbooks is built on top of this later.)
    """
    deadline = time.monotonic() + timeout
    nudge = time.monotonic() + 15
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = app_state(api_client, name, namespace=namespace)
        if time.monotonic() > nudge:  # still not there: ask for a fresh comparison rather than wait for the poll
            refresh_app(api_client, name, namespace=namespace)
            nudge = time.monotonic() + 15
        if (
            state["sync_status"] == "Synced"
            and state["health_status"] == "Healthy"
            and state["sync_revision"] == revision
            and state["operation_phase"] in (None, "Succeeded")
        ):
            return state
        time.sleep(interval)
    conds = "; ".join(c.get("message", "") for c in state.get("conditions", []))[:500]
    raise SandboxError(
        f"Application {name} did not reach Synced+Healthy at {revision[:10]} within {timeout:.0f}s: "
        f"sync={state.get('sync_status')} at {str(state.get('sync_revision'))[:10]}, "
        f"health={state.get('health_status')}, operation={state.get('operation_phase')}"
        + (f", conditions: {conds}" if conds else "")
    )
