"""Drift by field, a deleted resource on the timeline, a self-heal labelled: on the sandbox's real Argo CD.

Items of the issue "Right on real Argo CD setups" (the "Also" list); each test fails on the code before its fix.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gitops_nb import Cluster, drift, refresh, wait_converged

from .conftest import remove_app
from .test_argo_setups import Env

pytestmark = pytest.mark.sandbox


@pytest.fixture
def env(sandbox: Any, tmp_path: Path) -> Iterator[Env]:
    e = Env(sandbox, tmp_path)
    yield e
    for name, ns in e.apps:
        remove_app(e.api, name, ns)


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
