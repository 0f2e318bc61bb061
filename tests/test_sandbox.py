"""The sandbox: a real kube-apiserver and the real Argo CD controller reconciling real git repos."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb.cluster.argocd import application_manifest, apply_application, refresh_app, wait_app
from gitops_nb.errors import SandboxStartError
from gitops_nb.sandbox.control import COMPONENTS, Ports, Sandbox
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import app_files, overlay_text, remove_app, unique

pytestmark = pytest.mark.sandbox


def _repo(path: Path, tag: str = "1.0.0", replicas: int = 2) -> tuple[RepoWriter, str]:
    w = RepoWriter(path)
    sha = w.commit(
        "initial",
        when=pd.Timestamp.now(tz="UTC"),
        files=app_files("web", tag, replicas=replicas),
    )
    return w, sha


@pytest.fixture
def app(sandbox: Sandbox, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh repo and an Application (automated, prune, self-heal) deploying it into its own namespace."""
    w, sha = _repo(tmp_path / "deploy-config")
    name, ns = unique("t-web"), unique("t-ns")
    api = sandbox.api_client()
    apply_application(api, application_manifest(name, f"file://{w.path}", "apps/web/overlays/prod", ns))
    refresh_app(api, name)
    yield {"api": api, "name": name, "ns": ns, "writer": w, "sha": sha}
    remove_app(api, name, ns)


def _deployment(api, ns: str):  # type: ignore[no-untyped-def]
    from kubernetes import client

    return client.AppsV1Api(api).read_namespaced_deployment("web", ns)


def _wait(cond, timeout: float = 60, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s")


def test_app_syncs_and_deployment_runs_on_kwok(sandbox: Sandbox, app: dict) -> None:
    from kubernetes import client

    state = wait_app(app["api"], app["name"], revision=app["sha"], timeout=120)
    assert (state["sync_status"], state["health_status"], state["sync_revision"]) == ("Synced", "Healthy", app["sha"])
    dep = _deployment(app["api"], app["ns"])
    assert dep.spec.replicas == 2 and dep.status.available_replicas == 2
    assert dep.spec.template.spec.containers[0].image == "ghcr.io/acme/web:1.0.0"
    pods = client.CoreV1Api(app["api"]).list_namespaced_pod(app["ns"]).items
    assert len(pods) == 2
    assert all(p.spec.node_name.startswith("kwok-node-") and p.status.phase == "Running" for p in pods)
    assert state["history"] and state["history"][-1]["revision"] == app["sha"]


def test_fake_nodes_renew_their_leases_so_pods_stay_ready(sandbox: Sandbox) -> None:
    """Fake nodes heartbeat like kubelets (a node Lease renewed every 10 s), so the node controller never marks
    them NotReady and never marks their pods not Ready (kwok would not ready them again: Progressing for good)."""
    from kubernetes import client

    coord = client.CoordinationV1Api(sandbox.api_client())
    names = [f"kwok-node-{i}" for i in range(2)]
    first = {n: coord.read_namespaced_lease(n, "kube-node-lease").spec.renew_time for n in names}
    time.sleep(12)
    now = pd.Timestamp.now(tz="UTC")
    for n in names:
        renewed = pd.Timestamp(coord.read_namespaced_lease(n, "kube-node-lease").spec.renew_time)
        assert renewed > pd.Timestamp(first[n]) and now - renewed < pd.Timedelta("15s"), n
    nodes = client.CoreV1Api(sandbox.api_client()).list_node(label_selector="type=kwok").items
    assert {n.metadata.name: [c.status for c in n.status.conditions if c.type == "Ready"] for n in nodes} == {
        n: ["True"] for n in names
    }


def test_new_commit_is_picked_up_without_a_refresh(sandbox: Sandbox, app: dict) -> None:
    wait_app(app["api"], app["name"], revision=app["sha"], timeout=120)
    t = time.monotonic()
    sha = app["writer"].commit(
        "deploy web 1.1.0",
        when=pd.Timestamp.now(tz="UTC"),
        files={"apps/web/overlays/prod/kustomization.yaml": overlay_text("web", "1.1.0")},
    )
    state = wait_app(app["api"], app["name"], revision=sha, timeout=90)  # the controller's own polling
    latency = time.monotonic() - t
    assert [h["revision"] for h in state["history"]][-2:] == [app["sha"], sha]
    assert _deployment(app["api"], app["ns"]).spec.template.spec.containers[0].image == "ghcr.io/acme/web:1.1.0"
    print(f"push-to-Synced latency without refresh: {latency:.1f}s")


def test_manual_replica_edit_is_self_healed(sandbox: Sandbox, app: dict) -> None:
    from kubernetes import client

    wait_app(app["api"], app["name"], revision=app["sha"], timeout=120)
    apps = client.AppsV1Api(app["api"])
    edited_at = pd.Timestamp.now(tz="UTC").floor("s")
    apps.patch_namespaced_deployment("web", app["ns"], {"spec": {"replicas": 5}}, field_manager="kubectl-edit")
    edited = _deployment(app["api"], app["ns"])
    assert edited.spec.replicas == 5 and "kubectl-edit" in {m.manager for m in edited.metadata.managed_fields}
    _wait(lambda: _deployment(app["api"], app["ns"]).spec.replicas == 2, timeout=60)
    # it was Argo CD's self-heal: a sync of the same revision started after the edit, and it owns the field again
    healed = _deployment(app["api"], app["ns"])
    owner = [m.manager for m in healed.metadata.managed_fields if "f:replicas" in (m.fields_v1 or {}).get("f:spec", {})]
    assert owner == ["argocd-controller"]
    raw = client.CustomObjectsApi(app["api"]).get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "argocd", "applications", app["name"]
    )
    op = raw["status"]["operationState"]
    assert pd.Timestamp(op["startedAt"]) >= edited_at and op["phase"] == "Succeeded"
    assert op["syncResult"]["revision"] == app["sha"]
    state = wait_app(app["api"], app["name"], revision=app["sha"], timeout=60)
    assert state["sync_status"] == "Synced"


def test_up_twice_is_a_no_op(sandbox: Sandbox) -> None:
    before = sandbox.status()
    t = time.monotonic()
    sandbox.up()
    assert time.monotonic() - t < 10
    after = sandbox.status()
    assert list(before["pid"]) == list(after["pid"]) and after["ready"].all()
    # the hub's components, then those of any spoke an earlier `up --spokes N` started (tests/test_fleet.py)
    assert list(after["component"])[: len(COMPONENTS)] == list(COMPONENTS)
    assert all(re.fullmatch(r"spoke-\d:[\w-]+", c) for c in list(after["component"])[len(COMPONENTS) :])


def test_env_and_status_leak_no_token(sandbox: Sandbox) -> None:
    token = (sandbox.state / "secrets" / "token").read_text().strip()
    env = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "sandbox", "env"],
        capture_output=True,
        text=True,
        env={"GITOPS_NB_STATE": str(sandbox.state), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert env.stdout.strip() == f"export KUBECONFIG={sandbox.kubeconfig}"
    assert token not in sandbox.status().to_string() and token not in sandbox.kubeconfig.read_text()
    for log in (sandbox.state / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace"), log


def test_down_with_nothing_running(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "state", ports=Ports(base=26000))
    assert sb.down() == []
    st = sb.status()
    assert not st["running"].any() and not st["ready"].any()


def test_stale_pid_file_is_ignored_and_never_kills_a_stranger(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "state", ports=Ports(base=26000))
    (sb.state / "pids").mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # a pid file left behind, whose pid now belongs to another program
        (sb.state / "pids" / "etcd.pid").write_text(f'{{"pid": {stranger.pid}, "exe": "/nowhere/bin/etcd"}}')
        assert sb.status().set_index("component").loc["etcd", "running"] == False  # noqa: E712
        assert not (sb.state / "pids" / "etcd.pid").exists()
        assert sb.down() == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_port_taken_by_another_process(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path / "state", ports=Ports(base=27000))
    with socket.socket() as s:
        s.bind(("127.0.0.1", sb.ports.redis))
        s.listen()
        with pytest.raises(
            SandboxStartError, match=r"127\.0\.0\.1:27379 is already in use.*GITOPS_NB_SANDBOX_PORT_BASE"
        ):
            sb.up(timeout=20)
    assert not list((sb.state / "pids").glob("*.pid"))
