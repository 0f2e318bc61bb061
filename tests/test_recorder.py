"""The recorder on the sandbox's real API server and Argo CD: the story of issue 13 end to end, the
recording outliving the cluster, the manifests that run it in a cluster, and its faults (API server
restart, expired watch, kill -9, a store it cannot write, a full disk)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from gitops_nb import RowKind, investigate, refresh, wait_converged, what_changed
from gitops_nb.cluster.recorder import (
    Recorder,
    field_changes,
    manager_of,
    recorder_manifests,
)
from gitops_nb.cluster.recording import Recording
from gitops_nb.cluster.store import Store
from gitops_nb.sandbox.demo import bump_tag

from .test_argo_setups import SHOP, Env, env  # noqa: F401 - the env fixture is shared
from .test_drift_heal import _out_of_sync, _until
from .test_store import mount  # noqa: F401 - the tmpfs fixture is shared
from .test_store_s3 import S3, s3, s3_server  # noqa: F401 - the S3 server fixtures are shared

ROOT = Path(__file__).resolve().parents[1]


# -- without a cluster -----------------------------------------------------------------------------


def test_field_changes_paths_old_new_and_noise() -> None:
    old = {
        "metadata": {"resourceVersion": "1", "labels": {"app.kubernetes.io/name": "web"}, "managedFields": [1]},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a:1"}]}}},
        "status": {"reconciledAt": "x"},
    }
    new = {
        "metadata": {"resourceVersion": "2", "labels": {"app.kubernetes.io/name": "shop"}, "managedFields": [2]},
        "spec": {
            "replicas": 6,
            "template": {"spec": {"containers": [{"name": "web", "image": "a:2"}, {"name": "side", "image": "s"}]}},
        },
        "status": {"reconciledAt": "y"},
    }
    got = field_changes(old, new)
    assert got == [
        ["metadata.labels[app.kubernetes.io/name]", "web", "shop"],
        ["spec.replicas", 2, 6],
        ["spec.template.spec.containers[name=web].image", "a:1", "a:2"],
        ["spec.template.spec.containers[name=side]", None, {"name": "side", "image": "s"}],
    ]
    assert field_changes(old, {**old, "status": {"reconciledAt": "z"}}) == []  # noise only


def test_manager_of_names_the_owner_of_the_changed_field() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "argocd-controller",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
                {
                    "manager": "kubectl-edit",
                    "time": "2026-01-01T00:00:05Z",
                    "fieldsV1": {
                        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}
                    },
                },
                {
                    "manager": "kube-controller-manager",
                    "time": "2026-01-02T00:00:00Z",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {}},
                },
            ]
        }
    }
    assert manager_of(obj, ["spec.replicas"]) == ("argocd-controller", pd.Timestamp("2026-01-01T00:00:00Z"))
    assert manager_of(obj, ["spec.template.spec.containers[name=web].image"])[0] == "kubectl-edit"


def test_manifests_are_read_only_and_never_read_secret_values() -> None:
    docs = recorder_manifests("rec-ns", "s3://bucket/rec")
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]  # s3: no volume
    rules = docs[1]["rules"]
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules)
    assert not [r for r in rules if "*" in r.get("apiGroups", [])]  # "*" would include the core group's Secrets
    assert not [r for r in rules if "" in r.get("apiGroups", []) and "*" in r["resources"]]
    secrets = [r for r in rules if "secrets" in r.get("resources", [])]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}]  # no get
    local = recorder_manifests("rec-ns", "/data/rec")
    assert [d["kind"] for d in local][-2:] == ["PersistentVolumeClaim", "Deployment"]


# -- on the sandbox -----------------------------------------------------------------------------------


def _recorder(sandbox: Any, store: Store, **kw: Any) -> Recorder:
    r = Recorder([None], store, kubeconfig=str(sandbox.kubeconfig), flush_seconds=0.5, **kw).start()
    _until("the recorder to list everything", r.synced, timeout=30)
    return r


def _rows(store: Store, **kw: Any) -> pd.DataFrame:
    return store.read(**kw).to_pandas()


def _changes(store: Store, ns: str) -> pd.DataFrame:
    """The recorded field changes in ``ns``: one row per [path, old, new] (Recording.field_edits' ``changes``)."""
    f = Recording(store, cluster="gitops-nb-sandbox").field_edits(ns)
    f = f[f["changes"].notna()]
    rows = [
        {
            "time": t,
            "time_bound": b,
            "operation": o,
            "manager": m,
            "is_gitops": g,
            "path": c[0],
            "old": c[1],
            "new": c[2],
        }
        for t, b, o, m, g, cs in zip(
            f["time"], f["time_bound"], f["operation"], f["manager"], f["is_gitops"], f["changes"], strict=True
        )
        for c in cs
    ]
    return pd.DataFrame(rows, columns=["time", "time_bound", "operation", "manager", "is_gitops", "path", "old", "new"])


def _no_duplicates(store: Store) -> None:
    df = _rows(store, columns=["kind", "uid", "resource_version", "event"])
    twice = df[df.duplicated(["kind", "uid", "resource_version", "event"], keep=False)]
    assert twice.empty, twice.to_string()


def _start_app(env: Env, prefix: str, **kw: Any) -> tuple[str, str]:
    name, m = env.app(prefix, SHOP, self_heal=False, **kw)
    env.apply(m)
    wait_converged(env.cluster, name, env.head(), timeout="90s")
    return name, m["spec"]["destination"]["namespace"]


def _deploy_tag(env: Env, name: str, tag: str) -> str:
    bump_tag(env.work, "shop", "production", tag)
    head = env.push()
    refresh(env.cluster, name)
    wait_converged(env.cluster, name, head, timeout="90s")
    return head


@pytest.mark.sandbox
def test_story_the_routine_deploy_that_reset_a_manual_replicas_edit(sandbox: Any, env: Env, tmp_path: Path) -> None:
    """Self-heal off; `kubectl edit` sets replicas 6 (OutOfSync from then on); later CI bumps the tag, auto-sync
    deploys it and puts git's 2 back. Asked about a window that leaves the edit out, what_changed ranks the
    deploy first and says what it did beyond the tag, who had set the 6 and when, and for how long the
    cluster and git disagreed -- from the recording, and (with less) from the live cluster alone."""
    store = Store(tmp_path / "rec")
    with _recorder(sandbox, store):
        name, ns = _start_app(env, "story")
        apps = client.AppsV1Api(env.api)
        apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 6}}, field_manager="kubectl-edit")
        edited = pd.Timestamp.now(tz="UTC")
        _until("OutOfSync", lambda: _out_of_sync(env.cluster, name))
        time.sleep(12)  # the edit falls outside the window asked about
        head = _deploy_tag(env, name, "1.0.1")
        at = pd.Timestamp.now(tz="UTC")
        assert apps.read_namespaced_deployment("shop", ns).spec.replicas == 2
        time.sleep(2)  # the last rows flushed
    recording = Recording(store, cluster="gitops-nb-sandbox")
    window = f"{int((at - edited).total_seconds()) - 6}s"
    for source, who in ((recording, "set by kubectl-edit at"), (env.cluster, "ScalingReplicaSet")):
        tl = what_changed(env.work.path, at=at, window=window, cluster=source)
        top = tl[tl["rank"] == 1].iloc[0]
        assert top["kind"] == RowKind.COMMIT and top["sha"] == head, tl[["kind", "rank", "summary"]].to_string()
        assert "newTag 1.0.0 → 1.0.1" in top["detail"], top["detail"]
        assert f"spec.replicas 6 → 2 on Deployment/shop in {ns}" in top["detail"], top["detail"]
        assert who in top["detail"] and "the cluster and git disagreed for" in top["detail"], top["detail"]
        assert not (tl["kind"] == RowKind.FIELD_EDIT).any()  # the edit is outside the window
    # from the recording: who and when exactly (the manual edit's managedFields time), never in git
    fc = _changes(store, ns)
    edit = fc[(fc["path"] == "spec.replicas") & (fc["new"] == "6")].iloc[0]
    assert edit["manager"] == "kubectl-edit" and not edit["is_gitops"]
    assert abs(edit["time"] - edited) < pd.Timedelta(seconds=3)
    reset = fc[(fc["path"] == "spec.replicas") & (fc["old"] == "6")].iloc[0]
    assert reset["new"] == "2" and reset["manager"] == "argocd-controller"
    _no_duplicates(store)
    # the incident report keeps its evidence: saved, the recorder's store deleted, reopened: the same answer
    inv = investigate(env.work.path, at=at, window=window, cluster=recording)
    saved = inv.save(tmp_path / "report")
    evidence = json.loads((saved / "summary.json").read_text())["evidence"]
    shutil.rmtree(tmp_path / "rec")
    again = what_changed(env.work.path, at=at, window=window, cluster=Recording(saved / "recording", at=evidence["at"]))
    cols = ["time", "kind", "sha", "summary", "detail", "rank"]
    pd.testing.assert_frame_equal(again[cols], inv.timeline[cols])
    assert "set by kubectl-edit at" in again[again["rank"] == 1].iloc[0]["detail"]


def _cli(store: str, sandbox: Any, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gitops_nb", "record", "--store", store, "--kubeconfig", str(sandbox.kubeconfig)]
    return subprocess.Popen([*cmd, "--status-seconds", "1", *extra], stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.sandbox
def test_kill_9_then_restart_records_what_changed_while_down_once(sandbox: Any, env: Env, tmp_path: Path) -> None:
    store_dir = tmp_path / "rec"
    _name, ns = _start_app(env, "kill")
    apps = client.AppsV1Api(env.api)
    store = Store(store_dir)
    p = _cli(str(store_dir), sandbox)
    try:
        _until("the first rows", lambda: store_dir.exists() and len(_rows(store, kinds=["Deployment"])) > 0, timeout=60)
        apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 3}}, field_manager="kubectl-edit")
        _until("the edit to be flushed", lambda: (_changes(store, ns)["new"] == "3").any(), timeout=30)
        apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 4}}, field_manager="kubectl-edit")
        time.sleep(0.2)  # killed while this edit may still be in its unflushed batch
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert p.returncode == -signal.SIGKILL
    killed = pd.Timestamp.now(tz="UTC")
    before = _rows(store)
    # while nobody records: a replicas change
    apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 5}}, field_manager="kubectl-scale")
    time.sleep(1)
    p = _cli(str(store_dir), sandbox, "--compact-minutes", "0.05")  # compacts every 3 s while it writes
    try:
        _until("the relist", lambda: (_changes(store, ns)["new"] == "5").any(), timeout=60)
        time.sleep(1.5)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err[-2000:]
    assert "[record] gitops-nb-sandbox:" in err and "rows written" in err  # the status line a person reads
    assert "[record] compacted" in err
    files = [f for f in store_dir.rglob("*.parquet") if not f.name.startswith(".")]
    assert len(files) <= len(store.partitions()) + 6, len(files)  # merged: about one file a partition
    fc = _changes(store, ns)
    five = fc[(fc["path"] == "spec.replicas") & (fc["new"] == "5")]
    assert len(five) == 1 and five["operation"].iloc[0] == "Relisted", five.to_string()
    assert str(five["time_bound"].iloc[0]).startswith("between ")  # "between since and time"
    assert five["manager"].iloc[0] == "kubectl-scale"
    raw = _rows(store, kinds=["Deployment"])
    relisted = raw[raw["event"] == "RELISTED"]
    assert len(relisted) == 1 and relisted["since"].iloc[0] <= killed <= relisted["time"].iloc[0]
    assert (fc["new"] == "3").sum() == 1  # recorded before the kill: kept, once
    four = fc[(fc["path"] == "spec.replicas") & (fc["new"] == "4")]
    # the edit in the batch the kill lost: recorded once, or never (then 5's old value says where it came from)
    assert len(four) <= 1 and five["old"].iloc[0] == ("4" if len(four) else "3"), fc.to_string()
    after = _rows(store)
    assert len(after) > len(before)
    old = before.set_index(["uid", "resource_version", "event"]).index
    assert old.isin(after.set_index(["uid", "resource_version", "event"]).index).all()  # nothing recorded lost
    _no_duplicates(store)


@pytest.mark.sandbox
def test_a_store_it_cannot_write_or_a_full_disk_stops_it_with_a_clear_error(sandbox: Any, env: Env, mount: Any) -> None:
    _start_app(env, "full")  # something to record
    ro = mount("ro,size=1m")
    p = _cli(str(ro / "rec"), sandbox)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "gitops-nb: error:" in err and "Read-only file system" in err, err[-2000:]
    assert "Traceback" not in err
    full = mount("size=64k")
    (full / "filler").write_bytes(b"x" * 40_000)
    p = _cli(str(full / "rec"), sandbox)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 2 and "gitops-nb: error:" in err and "no space left" in err.lower(), err[-2000:]
    assert "Traceback" not in err


@pytest.mark.sandbox
def test_records_into_s3(sandbox: Any, env: Env, s3: S3) -> None:
    """`--store s3://bucket/prefix`: the same recording on a real S3 server (versitygw)."""
    _name, ns = _start_app(env, "s3")
    store = Store(f"s3://{s3.bucket()}/recordings/prod")
    with _recorder(sandbox, store):
        client.AppsV1Api(env.api).patch_namespaced_deployment(
            "shop", ns, {"spec": {"replicas": 3}}, field_manager="kubectl-edit"
        )
        _until("the edit on S3", lambda: (_changes(store, ns)["new"] == "3").any(), timeout=30)
    fc = _changes(store, ns)
    assert fc[fc["new"] == "3"]["manager"].tolist() == ["kubectl-edit"]
    _no_duplicates(store)


@pytest.mark.sandbox
def test_manifests_pass_a_server_side_dry_run(sandbox: Any) -> None:
    import yaml

    from .conftest import unique

    ns = unique("rec-manifests")
    out = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "record", "manifests", "--namespace", ns, "--store", "/data/recording"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    docs = list(yaml.safe_load_all(out.stdout))
    assert {d["kind"] for d in docs} >= {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"}
    from kubernetes import utils

    api = sandbox.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        for d in docs:
            utils.create_from_dict(api, d, dry_run="All")  # the API server validates, admits and stores nothing
        assert (
            not client.RbacAuthorizationV1Api(api)
            .list_cluster_role(label_selector="app.kubernetes.io/part-of=gitops-nb")
            .items
        )
    finally:
        core.delete_namespace(ns)
    json.dumps(docs)  # plain data


# -- last: these restart the API server (Argo CD's own watches back off for a while after) ----------


def _restart_apiserver(sandbox: Any, event_ttl: str | None = None, *, env: Env | None = None, app: str = "") -> None:
    """Restart the sandbox's kube-apiserver (with ``event_ttl``); with ``app``, wait until Argo CD, whose
    watches back off while the API server is down, reconciles it again (so later tests find Argo CD working)."""
    from gitops_nb.sandbox.control import Sandbox

    sb = Sandbox(sandbox.state, cache_dir=sandbox.cache, ports=sandbox.ports, event_ttl=event_ttl)
    sb.restart("kube-apiserver", timeout=90)
    if env is not None and app:
        back = pd.Timestamp.now(tz="UTC").floor("s")

        def reconciled() -> bool:
            refresh(env.cluster, app)
            at = env.cluster.applications().set_index("name").loc[app, "reconciled_at"]
            return bool(pd.notna(at) and at >= back)

        _until("Argo CD to reconcile again after the API server restart", reconciled, timeout=150)


@pytest.mark.sandbox
def test_the_recording_outlives_the_cluster(sandbox: Any, env: Env, tmp_path: Path) -> None:
    """Events expire (API server restarted with --event-ttl=15s) and old ReplicaSets are deleted
    (revisionHistoryLimit: 1); the recording still has both. The restart is also a fault the recorder rides."""
    store = Store(tmp_path / "rec")
    base = "apps/shop/base/deployment.yaml"
    text = (env.work.path / base).read_text()
    env.work.commit(
        "shop: keep one old ReplicaSet",
        when=pd.Timestamp.now(tz="UTC"),
        files={base: text.replace("spec:\n  replicas: 1\n", "spec:\n  replicas: 1\n  revisionHistoryLimit: 1\n", 1)},
    )
    env.push()
    _restart_apiserver(sandbox, "15s")
    name = ""
    try:
        with _recorder(sandbox, store) as r:
            name, ns = _start_app(env, "outlive")
            for tag in ("1.0.1", "1.0.2"):
                _deploy_tag(env, name, tag)
            apps = client.AppsV1Api(env.api)
            live_rs = {rs.metadata.name for rs in apps.list_namespaced_replica_set(ns).items}
            assert len(live_rs) == 2  # the first ReplicaSet is deleted
            core = client.CoreV1Api(env.api)
            _until("the events to expire", lambda: not core.list_namespaced_event(ns).items, timeout=90)
            time.sleep(1)
            assert r.error is None
    finally:
        _restart_apiserver(sandbox, env=env, app=name)
    rec = Recording(store, cluster="gitops-nb-sandbox")
    rolls = rec.rollouts(ns)
    assert len(rolls) == 3 and set(rolls["replicaset"]) > live_rs, rolls.to_string()
    assert sorted(rolls["revision"].dropna().astype(int)) == [1, 2, 3]
    ev = rec.events(ns)
    assert (ev["reason"] == "ScalingReplicaSet").sum() >= 3, ev[["reason", "message"]].to_string()
    assert len(rec.app_history(name)) == 3
    _no_duplicates(store)


@pytest.mark.sandbox
def test_api_server_restart_and_expired_watch_lose_nothing_and_duplicate_nothing(
    sandbox: Any, env: Env, tmp_path: Path
) -> None:
    store = Store(tmp_path / "rec")
    name, ns = _start_app(env, "fault")
    apps = client.AppsV1Api(env.api)
    with _recorder(sandbox, store) as r:
        st = r.stats["gitops-nb-sandbox"]
        relists = st.relists
        _restart_apiserver(sandbox, env=env, app=name)  # every watch drops and reconnects
        apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 3}}, field_manager="kubectl-edit")

        def seen(n: int) -> Any:
            fc = _changes(store, ns)
            return fc[(fc["path"] == "spec.replicas") & (fc["new"] == str(n))]

        got = _until("the edit after the restart to be recorded", lambda: len(seen(3)) == 1, timeout=60)
        assert got and st.reconnects + (st.relists - relists) >= 1
        # an expired watch (410): resume the Deployment watch from a resourceVersion long compacted
        before = st.relists
        r.expire_watch("Deployment")
        apps.patch_namespaced_deployment("shop", ns, {"spec": {"replicas": 4}}, field_manager="kubectl-edit")
        _until("the relist after the 410", lambda: st.relists > before, timeout=30)
        _until("the edit after the 410 to be recorded", lambda: len(seen(4)) == 1, timeout=30)
        time.sleep(1.5)
        assert len(seen(3)) == 1
    _no_duplicates(store)
