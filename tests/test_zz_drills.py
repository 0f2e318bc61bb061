"""Disruptive sandbox drills, run last (the file name sorts last): they restart sandbox components."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from gitops_nb import wait_converged

from .test_actions import live  # noqa: F401 - the live fixture is shared


@pytest.mark.sandbox
def test_wait_survives_an_api_server_restart(live: dict, sandbox) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import threading

    c, name, w = live["cluster"], live["name"], live["work"]
    # a change with no rollout (a ConfigMap), so only the wait itself is under test, not fake pods after a restart
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
            result["transitions"] = wait_converged(c, name, sha, timeout="3m")
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(1.5)  # the wait is watching now
    assert sandbox.restart("kube-apiserver") < 60
    t.join(200)
    assert "error" not in result, result.get("error")
    assert result["transitions"]["event"].iloc[-1] == "converged"
    assert c.raw_application(name)["status"]["sync"]["revision"] == sha
