"""Disruptive sandbox drills. Each runs on a small sandbox of its own (other ports, fresh state), so a
restarted component never disturbs the session's sandbox or depends on how busy it is."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import Cluster, refresh, wait_converged
from gitops_nb.cluster.argocd import application_manifest, apply_application
from gitops_nb.sandbox.control import Ports, Sandbox

from .test_actions import _origin_and_clone

pytestmark = pytest.mark.sandbox


@pytest.fixture
def own_sandbox(tmp_path: Path):  # type: ignore[no-untyped-def]
    sb = Sandbox(tmp_path / "state", ports=Ports(base=25000))
    try:
        sb.up(timeout=240)
        yield sb
    finally:
        sb.down()


def test_wait_survives_an_api_server_restart(own_sandbox: Sandbox, tmp_path: Path) -> None:
    origin, w = _origin_and_clone(tmp_path)
    apply_application(
        own_sandbox.api_client(),
        application_manifest("drill", f"file://{origin}", "apps/shop/overlays/production", "drill"),
    )
    c = Cluster(kubeconfig=str(own_sandbox.kubeconfig))
    refresh(c, "drill")
    wait_converged(c, "drill", w.git("rev-parse", "HEAD").strip(), timeout="2m")
    # a change with no rollout (a ConfigMap): only the wait is under test
    sha = w.commit(
        "add a ConfigMap",
        when=pd.Timestamp.now(tz="UTC"),
        files={
            "apps/shop/base/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-flags\ndata:\n  x: '1'\n",
            "apps/shop/base/kustomization.yaml": "resources:\n- deployment.yaml\n- configmap.yaml\n",
        },
    )
    w.git("push", "-q", "origin", "HEAD:main")  # no refresh: the controller's own polling finds it in ~10-20 s
    result: dict = {}

    def waiter() -> None:
        try:
            result["transitions"] = wait_converged(c, "drill", sha, timeout="3m")
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(1.5)  # the wait is watching now
    assert own_sandbox.restart("kube-apiserver") < 60
    t.join(200)
    assert "error" not in result, result.get("error")
    assert result["transitions"]["event"].iloc[-1] == "converged"
    assert c.raw_application("drill")["status"]["sync"]["revision"] == sha
