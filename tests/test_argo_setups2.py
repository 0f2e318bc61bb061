"""Right on real Argo CD setups (second part): culprits of a failed sync, reverted rollouts, a least-privilege
responder, edits without a time; on the sandbox.

Each test is named after its item of the issue "Right on real Argo CD setups" and fails on the code
before its fix.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from gitops_nb import Cluster, ConvergenceError, manual_edits, refresh, snapshot, wait_converged, what_changed
from gitops_nb.investigate.evidence_rows import cluster_rows
from gitops_nb.sandbox.demo import bump_tag
from gitops_nb.schema import RowKind

from .conftest import git, unique
from .test_argo_setups import Env, env  # noqa: F401 - the env fixture is shared

pytestmark = pytest.mark.sandbox

BASE = "apps/shop/base/deployment.yaml"


def _eventually(cond: Callable[[], Any], timeout: float = 90) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(1)
    return bool(cond())


def _op(c: Cluster, name: str) -> dict[str, Any]:
    return dict(c.raw_application(name).get("status", {}).get("operationState") or {})


def _failed_at(c: Cluster, name: str, rev: str) -> bool:
    op = _op(c, name)
    return op.get("phase") in ("Failed", "Error") and (op.get("syncResult") or {}).get("revision") == rev


def _ns(c: Cluster, name: str) -> str:
    return str(c.raw_application(name)["spec"]["destination"]["namespace"])


def test_item3_the_commit_that_broke_the_sync_ranks_first(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s3")
    m["spec"]["syncPolicy"]["retry"] = {"limit": 1, "backoff": {"duration": "1s", "factor": 1, "maxDuration": "1s"}}
    env.apply(m)
    since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=5)
    wait_converged(c, name, env.head(), timeout="90s")
    bump_tag(env.work, "shop", "production", "1.1.0")  # harmless, and deployed
    harmless = env.push()
    refresh(c, name)
    wait_converged(c, name, harmless, timeout="90s")
    text = (
        (env.work.path / BASE)
        .read_text()
        .replace(
            "image: ghcr.io/acme/shop:latest",
            "image: ghcr.io/acme/shop:latest\n        ports:\n        - containerPort: 70000",
        )
    )
    env.work.commit("shop: expose the port", when=pd.Timestamp.now(tz="UTC"), files={BASE: text})
    bad = env.push()  # kustomize builds it; the API server rejects it
    refresh(c, name)
    with pytest.raises(ConvergenceError):
        wait_converged(c, name, bad, timeout="90s")
    assert _eventually(lambda: _failed_at(c, name, bad)), _op(c, name)
    time.sleep(2)
    bump_tag(env.work, "shop", "production", "1.1.1")  # pushed on top: its sync fails too, for the bad field
    later = env.push()
    refresh(c, name)
    assert _eventually(lambda: _failed_at(c, name, later)), _op(c, name)
    at = pd.Timestamp.now(tz="UTC")
    tl = what_changed(env.work.path, at=at, window=at - since, apps=[name], cluster=c, after="0")
    failed = tl[tl["kind"] == RowKind.SYNC_FAILED]
    assert {bad, later} <= set(failed["sha"]), failed[["time", "sha", "summary"]]  # each its own operation's
    ranked = tl[tl["rank"].notna()].sort_values("rank")
    top = ranked.iloc[0]
    assert top["sha"] == bad, ranked[["rank", "sha", "summary", "score", "why"]].to_string()
    assert "failed to deploy at" in top["why"] and "not deployed before T" not in top["why"]
    first = failed[failed["sha"] == bad]["time"].min()
    assert f"{first:%H:%M}" in top["why"]
    by_sha = ranked.set_index("sha")
    assert by_sha.loc[harmless, "rank"] > 1 and by_sha.loc[later, "rank"] > 1


def test_item7_a_reverts_rollout_is_timed_when_it_became_current(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s7")
    env.apply(m)
    wait_converged(c, name, env.head(), timeout="90s")
    ns = _ns(c, name)
    since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=2)
    bump_tag(env.work, "shop", "production", "9.9.9-bad")
    bad = env.push()
    refresh(c, name)
    wait_converged(c, name, bad, timeout="90s")
    time.sleep(6)  # the revert's rollout comes measurably after the first one
    env.work.git("revert", "--no-edit", "HEAD")
    revert = env.push()
    t_revert = pd.Timestamp.now(tz="UTC")
    refresh(c, name)
    wait_converged(c, name, revert, timeout="90s")
    assert _eventually(lambda: c.rollouts(ns)["current"].any() and _current_image(c, ns).endswith(":1.0.0"), 60)
    r = c.rollouts(ns).set_index("revision")
    assert list(r.index) == [2, 3], r  # the first ReplicaSet was reused: revision 1 became 3
    reused, bad_rs = r.loc[3], r.loc[2]
    assert reused["images"] == ["ghcr.io/acme/shop:1.0.0"] and reused["current"]
    # created_at is kept: the ReplicaSet is the old one (both can fall in one second on a fast sandbox)
    assert reused["created_at"] <= bad_rs["created_at"] and reused["created_at"] < t_revert
    assert reused["rolled_out_at"] >= t_revert - pd.Timedelta(seconds=2), r
    assert bad_rs["rolled_out_at"] == bad_rs["created_at"]
    rows = cluster_rows(c, since, "now", [name])
    rolls = rows[rows["kind"] == RowKind.ROLLOUT].sort_values("time")
    assert "1.0.0" in rolls["summary"].iloc[-1] and "9.9.9-bad" in rolls["summary"].iloc[-2], rolls
    assert rolls["time"].iloc[-1] >= t_revert - pd.Timedelta(seconds=2)


def _current_image(c: Cluster, ns: str) -> str:
    r = c.rollouts(ns)
    return str(r[r["current"]]["images"].iloc[0][0])


def _reader_kubeconfig(sandbox: Any, api: Any, tmp: Path) -> tuple[Path, str]:
    """A read-only ServiceAccount that cannot read Secrets, its token from the TokenRequest API, a kubeconfig
    (and the name of the ServiceAccount, ClusterRole and binding, to delete them)."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    sa, ns = unique("reader"), "default"
    core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
    read = ["get", "list", "watch"]
    rules = [
        {"apiGroups": [""], "resources": ["pods", "services", "configmaps", "events", "namespaces"], "verbs": read},
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
            "verbs": read,
        },
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": read},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read},
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": read},
    ]
    rbac.create_cluster_role({"metadata": {"name": sa}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": sa},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        }
    )
    token = core.create_namespaced_service_account_token(sa, ns, {"spec": {"expirationSeconds": 3600}}).status.token
    own = yaml.safe_load(Path(sandbox.kubeconfig).read_text())
    cluster = own["clusters"][0]["cluster"]
    ca = (
        cluster.get("certificate-authority-data")
        or base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    )
    conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": cluster["server"], "certificate-authority-data": ca}}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "reader", "context": {"cluster": "sandbox", "user": sa}}],
        "current-context": "reader",
    }
    path = tmp / "reader.kubeconfig"
    path.write_text(yaml.safe_dump(conf))
    return path, sa


def _remove_reader(api: Any, sa: str) -> None:
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(api)
    rbac.delete_cluster_role_binding(sa)
    rbac.delete_cluster_role(sa)
    client.CoreV1Api(api).delete_namespaced_service_account(sa, "default")


def test_item11_a_least_privilege_responder_can_investigate(env: Env, sandbox: Any, tmp_path: Path) -> None:
    name, m = env.app("s11")
    env.apply(m)
    wait_converged(env.cluster, name, env.head(), timeout="90s")
    kubeconfig, sa = _reader_kubeconfig(sandbox, env.api, tmp_path)
    try:
        _investigate_as_reader(env, name, Cluster(kubeconfig=str(kubeconfig)), tmp_path)
    finally:
        _remove_reader(env.api, sa)


def _investigate_as_reader(env: Env, name: str, reader: Cluster, tmp_path: Path) -> None:
    from kubernetes import client

    from gitops_nb.errors import ForbiddenError

    with pytest.raises(ForbiddenError):  # the role really cannot read Secrets
        reader.call("list", "secrets", lambda: client.CoreV1Api(reader.api).list_namespaced_secret(_ns(reader, name)))
    skipped = "secrets: forbidden for this role"
    edits = manual_edits(reader)
    assert skipped in edits.attrs["skipped"]
    assert "secrets" not in str(manual_edits(reader, kinds=["Deployment"]).attrs.get("skipped", []))
    at = pd.Timestamp.now(tz="UTC")
    tl = what_changed(env.work.path, at=at, window="1h", apps=[name], cluster=reader)
    assert skipped in tl.attrs["skipped"] and (tl["kind"] == RowKind.DEPLOY).any()
    assert "secrets" not in str(
        what_changed(env.work.path, at=at, window="1h", apps=[name], cluster=reader, kinds=["Deployment"]).attrs.get(
            "skipped", []
        )
    )
    out = snapshot(reader, tmp_path / "snap")
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert skipped in summary["skipped"]
    assert snapshot(reader, tmp_path / "snap2", kinds=["Deployment"]).exists()


def test_item12_a_scale_subresource_edit_is_kept_with_a_time_bound(env: Env) -> None:
    from kubernetes import client

    c = env.cluster
    name, m = env.app("s12")
    m["spec"]["syncPolicy"]["automated"]["selfHeal"] = False  # the scale stays
    env.apply(m)
    since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=5)
    wait_converged(c, name, env.head(), timeout="90s")
    ns = _ns(c, name)
    client.AppsV1Api(env.api).patch_namespaced_deployment_scale(
        "shop", ns, {"spec": {"replicas": 5}}, field_manager="kubectl"
    )  # kubectl scale deployment/shop --replicas=5
    raw = c.deployment(ns, "shop")["metadata"]["managedFields"]
    scale = next(f for f in raw if f.get("subresource") == "scale")
    assert scale["manager"] == "kubectl" and scale["operation"] == "Update" and "time" not in scale  # no time
    synced = c.applications().set_index("name").loc[name, "operation_finished_at"]
    edits = manual_edits(c, since=since)
    row = edits[(edits["manager"] == "kubectl") & (edits["subresource"] == "scale")]
    assert len(row) == 1, edits
    assert row["time"].iloc[0] == synced and row["time_bound"].iloc[0] == f"after {synced:%Y-%m-%d %H:%M:%S} UTC"
    assert "spec.replicas" in row["fields"].iloc[0]
    at = pd.Timestamp.now(tz="UTC")
    tl = what_changed(env.work.path, at=at, window=at - since, apps=[name], cluster=c, after="0")
    edit = tl[(tl["kind"] == RowKind.FIELD_EDIT) & (tl["author"] == "kubectl")]
    assert len(edit) == 1 and pd.notna(edit["rank"].iloc[0]), tl[["time", "kind", "summary"]]
    assert "after" in str(edit["detail"].iloc[0]) and edit["time"].iloc[0] == synced
    assert git(env.work.path, "status", "--porcelain") == ""
