"""Many clusters: spokes in the sandbox, destinations resolved, a fleet read into one frame."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gitops_nb.cluster.argocd import application_manifest, apply_application, refresh_app, wait_app
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import app_files, git, remove_app, unique

SPOKES = 2


@pytest.fixture(scope="session")
def spokes(sandbox):  # type: ignore[no-untyped-def]
    """The session's sandbox with two spoke clusters up (started on first use, left running like the hub)."""
    from gitops_nb.sandbox.control import Sandbox

    sb = Sandbox(sandbox.state, ports=sandbox.ports, spokes=SPOKES)
    sb.up(timeout=240)
    return sb


def _origin(tmp: Path, name: str) -> tuple[Path, RepoWriter]:
    seed = RepoWriter(tmp / "seed")
    seed.commit("initial", when=pd.Timestamp.now(tz="UTC"), files=app_files(name, "1.0.0", env="production"))
    origin = tmp / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed.path), str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(tmp / "work")], check=True)
    return origin, RepoWriter(tmp / "work")


def _deployment(api: Any, ns: str, name: str) -> Any:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, ns)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


@pytest.mark.sandbox
def test_spokes_are_registered_clusters_with_contexts(spokes) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client, config

    contexts = {c["name"] for c in config.list_kube_config_contexts(config_file=str(spokes.kubeconfig))[0]}
    assert {"gitops-nb-sandbox", "gitops-nb-spoke-1", "gitops-nb-spoke-2"} <= contexts
    hub = client.CoreV1Api(spokes.api_client())
    secrets = hub.list_namespaced_secret("argocd", label_selector="argocd.argoproj.io/secret-type=cluster").items
    by_name = {s.metadata.name: s for s in secrets}
    for i in (1, 2):
        s = by_name[f"cluster-spoke-{i}"]
        import base64
        import json

        assert base64.b64decode(s.data["server"]).decode() == spokes.spoke_server(i)
        cfg = json.loads(base64.b64decode(s.data["config"]))
        assert cfg["bearerToken"] and cfg["tlsClientConfig"]["caData"]
        # each spoke is its own cluster: its own nodes, its own namespaces
        nodes = [n.metadata.name for n in spokes.spoke_core(i).list_node().items]
        assert sorted(nodes) == ["kwok-node-0", "kwok-node-1"]
    st = spokes.status()
    assert {"spoke-1:kube-apiserver", "spoke-2:kwok"} <= set(st["component"])
    assert bool(st["ready"].all())


@pytest.mark.sandbox
def test_an_app_deploying_to_a_spoke_syncs_there_not_on_the_hub(spokes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    origin, w = _origin(tmp_path, "shop")
    head = git(w.path, "rev-parse", "HEAD").strip()
    hub = spokes.api_client()
    apps = []
    try:
        for i, by in ((1, "name"), (2, "server")):
            name, ns = unique(f"spoke{i}-shop"), unique(f"s{i}-ns")
            dest = {"dest_name": spokes.spoke_name(i)} if by == "name" else {"dest_server": spokes.spoke_server(i)}
            apply_application(
                hub, application_manifest(name, f"file://{origin}", "apps/shop/overlays/production", ns, **dest)
            )
            apps.append((i, name, ns))
        for i, name, ns in apps:
            refresh_app(hub, name)
            state = wait_app(hub, name, revision=head, timeout=180)
            assert (state["sync_status"], state["health_status"]) == ("Synced", "Healthy")
            on_spoke = _deployment(spokes.spoke_api_client(i), ns, "shop")
            assert on_spoke is not None and on_spoke.spec.replicas == 2
            assert _deployment(hub, ns, "shop") is None  # nothing of it on the hub
            other = 3 - i
            assert _deployment(spokes.spoke_api_client(other), ns, "shop") is None
    finally:
        for _i, name, ns in apps:
            remove_app(hub, name)
            for j in (1, 2):
                _drop_ns(spokes.spoke_api_client(j), ns)


def _drop_ns(api: Any, ns: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(api).delete_namespace(ns)
    except ApiException as e:
        if e.status != 404:
            raise
