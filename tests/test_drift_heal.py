"""Drift by field, a deleted resource on the timeline, a self-heal labelled: on the sandbox's real Argo CD.

Items of the issue "Right on real Argo CD setups" (the "Also" list); each test fails on the code before its fix.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from gitops_nb import Cluster, RowKind, drift, refresh, wait_converged, what_changed

from .test_argo_setups import Env, env  # noqa: F401 - the env fixture is shared

pytestmark = pytest.mark.sandbox


HOTFIX = "ghcr.io/acme/shop:1.0.1-hotfix"


def _until(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _out_of_sync(c: Cluster, name: str) -> bool:
    refresh(c, name)
    apps = c.applications().set_index("name")
    return bool(apps.loc[name, "sync_status"] == "OutOfSync")


def test_drift_shows_each_edited_field_with_git_and_live_values(env: Env) -> None:
    c = env.cluster
    name, m = env.app("d1", self_heal=False)
    env.apply(m)
    ns = m["spec"]["destination"]["namespace"]
    wait_converged(c, name, env.head(), timeout="90s")
    assert "field" not in drift(c).columns or drift(c)["field"].isna().all()
    # a `kubectl edit` of the replicas and the image
    patch = {"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "shop", "image": HOTFIX}]}}}}
    client.AppsV1Api(env.api).patch_namespaced_deployment("shop", ns, patch, field_manager="kubectl-edit")
    _until("the app to go OutOfSync", lambda: _out_of_sync(c, name))
    d = drift(c, repo=env.work.path)
    d = d[d["app"] == name].set_index("field")
    assert (d["kind"] == "Deployment").all() and (d["name"] == "shop").all()
    assert d.loc["spec.replicas", ["git", "live"]].tolist() == ["2", "5"], d
    image = "spec.template.spec.containers[shop].image"
    assert d.loc[image, ["git", "live"]].tolist() == ["ghcr.io/acme/shop:1.0.0", HOTFIX]
    assert set(d.index) == {"spec.replicas", image}, d  # defaults and Argo CD's own fields are not drift
    assert (d["change"] == "modified").all() and d["error"].isna().all()
    # without a repo: the names, as before
    names = drift(c)
    assert names[names["app"] == name]["field"].isna().all() and len(names[names["app"] == name]) == 1


CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\ndata:\n  LOG_LEVEL: info\n"


def test_a_deleted_managed_configmap_is_a_timeline_row(env: Env) -> None:
    c = env.cluster
    base = "apps/shop/base"
    env.work.write(
        {f"{base}/config.yaml": CONFIG, f"{base}/kustomization.yaml": "resources:\n- deployment.yaml\n- config.yaml\n"}
    )
    env.work.commit("shop: a ConfigMap", when=pd.Timestamp.now(tz="UTC"))
    head = env.push()
    name, m = env.app("d2", self_heal=False)
    env.apply(m)
    ns = m["spec"]["destination"]["namespace"]
    wait_converged(c, name, head, timeout="90s")
    before = what_changed(env.work.path, cluster=c, window="30m")
    assert not (before["kind"] == RowKind.RESOURCE_MISSING).any()
    client.CoreV1Api(env.api).delete_namespaced_config_map("shop-config", ns)
    _until("the app to go OutOfSync", lambda: _out_of_sync(c, name))
    tl = what_changed(env.work.path, cluster=c, window="30m")
    gone = tl[(tl["kind"] == RowKind.RESOURCE_MISSING) & (tl["argocd_app"] == name)]
    assert len(gone) == 1, tl[["time", "kind", "summary"]].to_string()
    assert f"ConfigMap/shop-config in {ns} of {name}" in gone["summary"].iloc[0]
    assert "OutOfSync event" in gone["detail"].iloc[0]  # timed by Argo CD's event, not reconciledAt
    res = c.app_resources(name).set_index("name").loc["shop-config"]
    assert (res["sync_status"], res["health_status"]) == ("OutOfSync", "Missing")


def test_a_self_heal_is_labelled_with_the_fields_it_undid(env: Env) -> None:
    """What Argo CD v3.2.11 records for a self-heal (seen on the sandbox): no new ``status.history``
    entry (history keeps the one deploy of the revision); ``status.operationState.operation`` has
    ``initiatedBy: {automated: true}``, ``sync.autoHealAttemptsCount: 1``, ``sync.resources`` = only
    the OutOfSync resources (Deployment/shop) and ``sync.revision`` = the deployed revision; the
    app's events are ``OperationStarted: Initiated automated sync to '<sha>'`` and
    ``OperationCompleted: Partial sync operation to <sha> succeeded`` (plus ``ResourceUpdated``
    Synced -> OutOfSync -> Synced). The heal (a client-side apply by ``argocd-controller``) takes
    spec.replicas back, so the edit's ``kubectl-edit`` managedFields entry is gone afterwards; the
    deployment-controller's ``ScalingReplicaSet`` events (``Scaled up replica set shop-… from 2 to 5``,
    then down from 5 to 2, no new ReplicaSet) still say that spec.replicas was changed and undone.
    """
    c = env.cluster
    name, m = env.app("d3")  # self-heal on
    env.apply(m)
    ns = m["spec"]["destination"]["namespace"]
    head = env.head()
    wait_converged(c, name, head, timeout="90s")
    apps = client.AppsV1Api(env.api)

    def settled() -> bool:  # no operation running, the last one finished 2s ago (a heal at the first deploy)
        op = c.raw_application(name)["status"].get("operationState") or {}
        done = pd.Timestamp(op["finishedAt"]) if op.get("finishedAt") else None
        return op.get("phase") != "Running" and (
            done is None or pd.Timestamp.now(tz="UTC") - done > pd.Timedelta(2, "s")
        )

    _until("Argo CD's operations to settle", settled)
    time.sleep(1.02 - time.time() % 1)  # edit at a fresh second: startedAt has whole seconds, and an operation
    # that started in the edit's second before the edit would pass for its heal
    edited_at = pd.Timestamp.now(tz="UTC").floor("s")
    apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 5}}, field_manager="kubectl-edit")

    def healed() -> bool:  # a heal that started after the edit (an earlier one may have run at the first deploy)
        op = c.raw_application(name)["status"].get("operationState") or {}
        sync = (op.get("operation") or {}).get("sync") or {}
        started = pd.Timestamp(op["startedAt"]) if op.get("startedAt") else None
        return (
            op.get("phase") == "Succeeded"
            and bool(sync.get("autoHealAttemptsCount"))
            and started is not None
            and started >= edited_at
        )

    _until("Argo CD to self-heal", healed)
    # the heal takes replicas back (a heal whose diff came from a cache not yet updated is followed by another)
    _until(
        "the heal to take spec.replicas back to 2",
        lambda: apps.read_namespaced_deployment("shop", ns).spec.replicas == 2,
    )
    assert len(c.app_history(name)) == 1  # no history entry for the heal

    def heal_rows() -> Any:  # the scale-down event lands a moment after the heal
        tl = what_changed(env.work.path, cluster=c, window="30m")
        mine = tl[tl["argocd_app"] == name]
        heal = mine[mine["kind"] == RowKind.HEAL]
        return (mine, heal) if len(heal) == 1 and "from 2 to 5" in str(heal["detail"].iloc[0]) else None

    mine, heal = _until("the heal row with what it undid", heal_rows, timeout=30)
    assert len(heal) == 1, mine[["time", "kind", "summary", "detail"]].to_string()
    h = heal.iloc[0]
    assert h["summary"] == f"Argo CD self-healed {name} at {head[:10]}" and h["sha"] == head
    assert "spec.replicas of Deployment/shop" in h["detail"] and "from 2 to 5" in h["detail"], h["detail"]
    assert (mine["kind"] == RowKind.DEPLOY).sum() == 1  # the first deploy stays a deploy
