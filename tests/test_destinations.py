"""Destinations resolved from a kubeconfig and a mapping (no API call: resolving reads the kubeconfig only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_nb import Cluster, EvidenceSource, Fleet, InputError, UnknownDestinationError


def _kubeconfig(tmp: Path) -> str:
    clusters = {"hub": "https://10.0.0.1:6443", "eu-1": "https://10.0.1.1:6443/", "us-1": "https://US-1.example:443"}
    conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "hub",
        "clusters": [
            {"name": f"c-{n}", "cluster": {"server": s, "insecure-skip-tls-verify": True}} for n, s in clusters.items()
        ],
        "users": [{"name": "u", "user": {"token": "not-a-real-token-0123456789"}}],
        "contexts": [{"name": n, "context": {"cluster": f"c-{n}", "user": "u"}} for n in clusters],
    }
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(conf))
    return str(path)


def test_a_destination_resolves_in_cluster_by_mapping_then_by_a_contexts_server_or_name(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path)
    hub = Cluster("hub", kubeconfig=kc, destinations={"https://10.9.9.9:6443": "us-1", "prod-eu": "eu-1"})
    d = hub.destinations
    assert d.context_of("https://kubernetes.default.svc", None) == "hub"
    assert d.context_of(None, "in-cluster") == "hub"
    assert d.context_of("https://10.0.0.1:6443", None) == "hub"  # the hub's own server
    assert d.context_of("https://10.9.9.9:6443/", None) == "us-1"  # the mapping, trailing slash or not
    assert d.context_of(None, "prod-eu") == "eu-1"
    assert d.context_of("https://10.0.1.1:6443", None) == "eu-1"  # a context whose server matches
    assert d.context_of("https://us-1.example:443", None) == "us-1"  # case-insensitive host
    assert d.context_of(None, "eu-1") == "eu-1"  # a context with the destination's name
    spoke = d.cluster_of("https://10.0.1.1:6443", None)
    assert spoke.context == "eu-1" and spoke is d.cluster_of(None, "eu-1")  # opened once
    assert d.by_context("eu-1") is spoke and d.by_context("hub") is hub
    assert {(k["cluster"], k["via"]) for k in d.known()} >= {
        ("hub", "hub"),
        ("us-1", "mapping"),
        ("eu-1", "kubeconfig"),
    }
    assert "not-a-real-token" not in repr(d) + repr(d.known()) + repr(hub) + repr(spoke)


def test_an_unknown_destination_says_how_to_add_it(tmp_path: Path) -> None:
    hub = Cluster("hub", kubeconfig=_kubeconfig(tmp_path))
    with pytest.raises(
        UnknownDestinationError, match=r"name 'ap-2'.*destinations=\{'ap-2': '<context>'\}.*argocd_secrets=True"
    ) as e:
        hub.destinations.cluster_of(None, "ap-2")
    assert e.value.verb == "resolve" and e.value.context == "hub"
    with pytest.raises(UnknownDestinationError, match="no kubeconfig context"):
        hub.destinations.by_context("nowhere")


def test_a_fleet_is_an_evidence_source_and_refuses_bad_settings(tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path)
    fleet = Fleet("hub, eu-1,,us-1", kubeconfig=kc)
    assert fleet.members == ["hub", "eu-1", "us-1"] and isinstance(fleet, EvidenceSource)
    assert fleet.context == "fleet(hub, eu-1, us-1)" and fleet.failures.empty
    bad = Fleet(["hub", "no-such-context"], kubeconfig=kc)  # an unknown context is a failure row, not a raise
    assert bad.members == ["hub"]
    assert list(bad.failures[["cluster", "query", "error"]].iloc[0]) == [
        "no-such-context",
        "open",
        "UnknownContextError",
    ]
    with pytest.raises(InputError, match="positive timeout"):
        Fleet(["hub"], kubeconfig=kc, timeout=0)
    with pytest.raises(InputError, match="at least one context"):
        Fleet([], kubeconfig=kc)
    with pytest.raises(InputError, match="cluster= one of hub, eu-1, us-1"):
        fleet.get_object("apps", "v1", "Deployment", "ns", "web")


def test_a_cluster_that_drops_every_connection_is_tried_twice_not_four_times(tmp_path: Path) -> None:
    """The kubernetes client reads ``retries`` when it builds its connection pool; a Cluster sets it to one
    retry before that, so a dead cluster (a fleet member, a spoke) is given up after two attempts."""
    import socket
    import threading

    from gitops_nb import ClusterError

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()  # drop it before any response

    threading.Thread(target=serve, daemon=True).start()
    conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dead",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{srv.getsockname()[1]}"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token-0123456789"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(conf))
    try:
        c = Cluster("dead", kubeconfig=str(path))
        with pytest.raises(ClusterError):
            c.applications()
        assert len(accepted) == 2  # the first attempt and one retry (urllib3's default would make four)
    finally:
        srv.close()
