"""The cluster reads' cheaper paths give what the plain ones gave, and a fleet reads its members at once.

``flatten_fields`` against the recursive reference it replaced (on the sandbox's real managedFields and on odd
keys); the frames' time columns built from nanoseconds against ``schema.frame``'s own conversion; the garbage
collector paused only while a list is read; a fleet's members read concurrently (and one at a time with
``workers=1``, so the check can fail); a cluster's field edits with every kind listed at once equal to one kind at
a time.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from typing import Any

import pandas as pd
import pytest

from gitops_nb import Cluster, Fleet, schema
from gitops_nb.cluster import live
from gitops_nb.cluster.live import event_frame, field_edit_frame, flatten_fields, gc_paused

from .conftest import unique


def _flatten_then(fields_v1: dict[str, Any] | None, prefix: str = "") -> list[str]:
    """``flatten_fields`` as it was (one list per node, ``k:`` keys parsed every time): the reference."""
    out: list[str] = []
    for k, v in (fields_v1 or {}).items():
        if k == ".":
            continue
        if k.startswith("f:"):
            path = f"{prefix}.{k[2:]}" if prefix else k[2:]
        elif k.startswith("k:"):
            try:
                d = json.loads(k[2:])
            except ValueError:
                label = k[2:]
            else:
                label = ",".join(str(x) for x in d.values()) if isinstance(d, dict) else k[2:]
            path = f"{prefix}[{label}]"
        elif k.startswith("v:") or k.startswith("i:"):
            path = f"{prefix}[{k[2:]}]"
        else:
            path = f"{prefix}.{k}" if prefix else k
        children = _flatten_then(v, path) if isinstance(v, dict) else []
        out.extend(children or [path])
    return out


ODD = {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:annotations": {}},
    "f:spec": {
        "f:containers": {
            'k:{"name":"web"}': {".": {}, "f:image": {}, "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}}},
            "k:not json": {"f:x": {}},
            "k:[1,2]": {},
        },
        "f:finalizers": {"v:foregroundDeletion": {}, "v:x": {".": {}}},
        "f:items": {"i:0": {"f:a": {}}, "i:1": {}},
    },
    "plain": {"f:z": {}},
    ".": {},
    "f:scalar": 5,
}


def test_flatten_fields_equals_the_recursive_reference_on_odd_keys() -> None:
    got = flatten_fields(ODD)
    assert got == _flatten_then(ODD)
    assert "spec.containers[web].ports[80,TCP]" in got and "spec.containers[not json].x" in got
    assert flatten_fields(ODD, "p") == _flatten_then(ODD, "p")
    assert flatten_fields(None) == [] == flatten_fields({}) == flatten_fields({".": {}})


def test_time_columns_from_nanoseconds_equal_schema_frames_own_conversion() -> None:
    t = pd.Timestamp("2026-03-01T10:00:00Z")
    rows = [
        {"time": t, "namespace": "a", "kind": "Deployment", "name": "web", "fields": ["spec.replicas"]},
        {"time": None, "namespace": "a", "kind": "Deployment", "name": "web", "time_bound": "unknown"},
        {"time": pd.Timestamp("2026-03-01T12:00:00.123456+02:00"), "namespace": "b", "kind": "ConfigMap"},
        {"time": pd.Timestamp("2026-03-01T09:00:00", tz="Europe/Paris"), "namespace": "c"},  # another zone
    ]
    got = field_edit_frame([dict(r) for r in rows])
    want = schema.frame(schema.FIELD_EDITS, sorted(rows, key=lambda r: (r["time"] is None, r["time"] or t)))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert str(got["time"].dtype) == "datetime64[ns, UTC]" and got["time"].isna().tolist() == [False] * 3 + [True]
    # a value that is not a Timestamp (text, from a recording) still goes through pandas' conversion
    mixed = [{"time": "2026-03-01T10:00:00Z", "namespace": "a"}, {"time": t, "namespace": "b"}]
    pd.testing.assert_frame_equal(
        live._frame_of_rows(schema.FIELD_EDITS, mixed, ("time",)), schema.frame(schema.FIELD_EDITS, mixed)
    )
    ev = [
        {
            "metadata": {"namespace": "a", "creationTimestamp": "2026-03-01T10:00:00Z"},
            "lastTimestamp": "2026-03-01T10:05:00Z",
            "reason": "ScalingReplicaSet",
            "count": 3,
        },
        {"metadata": {"namespace": "b"}, "eventTime": "2026-03-01T09:00:00.000001Z", "series": {"count": 2}},
    ]
    frame = event_frame(ev)
    assert frame["time"].tolist() == [pd.Timestamp("2026-03-01T09:00:00.000001Z"), pd.Timestamp("2026-03-01T10:05Z")]
    assert frame["first_time"].tolist() == [pd.Timestamp("2026-03-01T09:00:00.000001Z"), pd.Timestamp("2026-03-01T10Z")]
    assert frame["count"].tolist() == [2, 3] and str(frame["first_time"].dtype) == "datetime64[ns, UTC]"


def test_gc_is_paused_only_while_reading_and_left_as_the_caller_had_it() -> None:
    assert gc.isenabled()
    inside: list[bool] = []
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            started.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    started.wait(10)
    with gc_paused():
        inside.append(gc.isenabled())
    inside.append(gc.isenabled())  # the other thread still reads: still paused
    release.set()
    t.join(10)
    assert inside == [False, False] and gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # the caller had it off: left off
    finally:
        gc.enable()
    with pytest.raises(KeyError), gc_paused():
        raise KeyError("x")
    assert gc.isenabled()


@pytest.fixture(scope="module")
def objects(sandbox):  # type: ignore[no-untyped-def]
    """A namespace with Deployments and ConfigMaps written by two managers, on the sandbox."""
    from kubernetes import client

    api = sandbox.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = unique("reads")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for i in range(6):
        name = f"web-{i}"
        apps.create_namespaced_deployment(
            ns,
            {
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {"name": "web", "image": f"ghcr.io/acme/web:{i}", "ports": [{"containerPort": 80}]}
                            ]
                        },
                    },
                },
            },
            field_manager="kubectl-client-side-apply",
        )
        core.create_namespaced_config_map(
            ns, {"metadata": {"name": name}, "data": {"level": "info"}}, field_manager="kubectl-edit"
        )
        core.patch_namespaced_config_map(name, ns, {"data": {"flag": "on"}}, field_manager="helm")
    yield ns
    core.delete_namespace(ns)


@pytest.mark.sandbox
def test_field_edits_listed_at_once_equal_one_kind_at_a_time(sandbox, objects, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = Cluster("gitops-nb-sandbox", kubeconfig=str(sandbox.kubeconfig))
    at_once = c.field_edits(objects)
    monkeypatch.setattr(live, "LIST_WORKERS", 1)  # a setting of the library, not a stand-in for the cluster
    one_by_one = c.field_edits(objects)
    assert len(at_once) >= 18 and set(at_once["manager"]) >= {"kubectl-client-side-apply", "kubectl-edit", "helm"}
    pd.testing.assert_frame_equal(at_once, one_by_one, check_exact=True)
    assert at_once.attrs["skipped"] == []
    # the real managedFields flatten as the reference did
    objs = list(c._listers(objects)["Deployment"]())
    for o in objs:
        for m in o["metadata"]["managedFields"]:
            assert flatten_fields(m.get("fieldsV1")) == _flatten_then(m.get("fieldsV1"))
    web = at_once[(at_once["kind"] == "Deployment") & (at_once["manager"] == "kubectl-client-side-apply")]
    assert any("spec.template.spec.containers[web].ports[80,TCP].containerPort" in f for f in web["fields"])
    assert gc.isenabled()


@pytest.mark.sandbox
def test_a_fleet_reads_its_members_at_once(sandbox, objects) -> None:  # type: ignore[no-untyped-def]
    """Three members (the hub under three names, each its own connection pool): their reads overlap in time;
    with ``workers=1`` they do not (so this check can fail)."""
    members = [
        Cluster.from_api_client(Cluster("gitops-nb-sandbox", kubeconfig=str(sandbox.kubeconfig)).api, f"hub-{i}")
        for i in range(3)
    ]

    def spans(fleet: Fleet) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []

        def read(c: Cluster) -> pd.DataFrame:
            t = time.monotonic()
            f = c.field_edits(objects)
            out.append((t, time.monotonic()))
            return f

        frames, fails = fleet.fan_out("field_edits", read)
        assert not fails and list(frames) == ["hub-0", "hub-1", "hub-2"]
        return out

    at_once = spans(Fleet(members, follow_destinations=False))
    assert max(s for s, _ in at_once) < min(e for _, e in at_once)  # every member started before any ended
    serial = sorted(spans(Fleet(members, follow_destinations=False, workers=1)))
    assert all(serial[i][1] <= serial[i + 1][0] for i in range(2))  # one after another
    ed = Fleet(members, follow_destinations=False).field_edits(objects)
    assert ed.groupby("cluster").size().to_dict() == {f"hub-{i}": len(ed) // 3 for i in range(3)}
