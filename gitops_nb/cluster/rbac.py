"""Least privilege: the two roles gitops-nb needs, as Kubernetes RBAC manifests (``gitops-nb rbac``).

* **investigator** (a ClusterRole, read-only): every query, the notebooks' investigations and the
  console's "What changed?": Argo CD's Applications, ApplicationSets and AppProjects; Deployments,
  ReplicaSets and the other workloads; Services, ConfigMaps, Ingresses, HPAs; events; namespaces.
  ``get``, ``list``, ``watch`` only. No Secrets: Kubernetes RBAC authorizes a verb on a resource, never
  some of its fields, so ``list secrets`` would hand over their data too. Without it, field edits skip
  Secrets and say so (``attrs["skipped"]``: ``secrets: forbidden for this role``); gitops-nb itself lists
  objects' metadata only when it reads field edits (``PartialObjectMetadataList``).
* **responder** (a Role in Argo CD's namespace): ``patch`` Applications (pause, resume, refresh, sync,
  terminate), with the ``get``/``list``/``watch`` that reading the app before patching it needs. Nothing
  else: no delete, no create, nothing outside Argo CD's namespace, no Secrets.

A call outside a role is a :class:`~gitops_nb.errors.ForbiddenError` naming the verb and the resource,
raised before anything changed (the patch itself is what was refused).
"""

from __future__ import annotations

from typing import Any

__all__ = ["INVESTIGATOR", "RESPONDER", "RUNBOOK_ROLES", "investigator_role", "rbac_yaml", "responder_role"]

INVESTIGATOR = "gitops-nb-investigator"
RESPONDER = "gitops-nb-responder"
_READ = ["get", "list", "watch"]

#: which roles each shipped runbook needs (an investigation alone: the investigator)
RUNBOOK_ROLES: dict[str, tuple[str, ...]] = {
    "pause": ("responder",),  # pause_self_heal, then the report from the incident folder
    "resume": ("responder",),
    "resume-expired": ("responder",),
    # what_changed reads the cluster; revert_and_verify pauses, pushes to git (git credentials, not RBAC),
    # refreshes, and wait_converged reads the Deployments' rollouts on the destination
    "rollback-by-revert": ("investigator", "responder"),
    # git alone; with a context, whether each finding was deployed: Applications' history (read-only)
    "secrets-audit": ("investigator (only with a context)",),
}


def investigator_role(name: str = INVESTIGATOR) -> dict[str, Any]:
    """The read-only ClusterRole every query needs (no Secrets: see the module's docstring)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "gitops-nb"}},
        "rules": [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["applications", "applicationsets", "appprojects"],
                "verbs": _READ,
            },
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
                "verbs": _READ,
            },
            {
                "apiGroups": [""],
                "resources": ["pods", "services", "configmaps", "events", "namespaces", "serviceaccounts"],
                "verbs": _READ,
            },
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": _READ},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _READ},
        ],
    }


def responder_role(namespace: str = "argocd", name: str = RESPONDER) -> dict[str, Any]:
    """The Role that patches Applications in Argo CD's namespace, and nothing more."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "gitops-nb"}},
        "rules": [{"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": [*_READ, "patch"]}],
    }


def rbac_yaml(namespace: str = "argocd") -> str:
    """Both roles as one YAML stream, with how to bind them and which runbook needs which."""
    import yaml

    needs = "\n".join(f"#   {book}: {' + '.join(roles)}" for book, roles in RUNBOOK_ROLES.items())
    head = (
        "# gitops-nb least privilege. Bind the investigator to whoever investigates:\n"
        f"#   kubectl create clusterrolebinding {INVESTIGATOR} --clusterrole {INVESTIGATOR} --user <who>\n"
        "# and the responder, in Argo CD's namespace, to whoever pauses, resumes, refreshes and syncs:\n"
        f"#   kubectl -n {namespace} create rolebinding {RESPONDER} --role {RESPONDER} --user <who>\n"
        "# Runbooks:\n"
        f"{needs}\n"
        "# Secrets are in neither role: RBAC cannot grant their metadata without their data.\n"
    )
    docs = [investigator_role(), responder_role(namespace)]
    return head + "---\n" + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
