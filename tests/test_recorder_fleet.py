"""The recorder takes a fleet (issue 14): recording a hub follows each Application to its destination
cluster, on the sandbox's real hub, Argo CD and two spoke API servers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from gitops_nb import RowKind, investigate, what_changed
from gitops_nb.cluster.argocd import application_manifest, apply_application
from gitops_nb.cluster.recorder import Recorder
from gitops_nb.cluster.recording import Recording
from gitops_nb.cluster.store import Store

from .conftest import remove_app, unique
from .test_drift_heal import _until
from .test_fleet import _cleanup, _manual_edit, _spoke_app, spokes  # noqa: F401 - the spokes fixture is shared

HUB = "gitops-nb-sandbox"
DEAD = "https://127.0.0.1:9"  # nothing listens there: a destination that never answers


def _kubeconfig_with_a_dead_cluster(sb: Any, tmp: Path) -> str:
    """The sandbox's kubeconfig plus a context ``dead`` whose server never answers."""
    doc = yaml.safe_load(Path(sb.kubeconfig).read_text())
    user = doc["contexts"][0]["context"]["user"]
    doc["clusters"].append({"name": "dead", "cluster": {"server": DEAD, "insecure-skip-tls-verify": True}})
    doc["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": user}})
    path = tmp / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return str(path)


def _spoke_rows(store: Store, context: str, app: str) -> pd.DataFrame:
    cols = ["cluster", "kind", "namespace", "name", "app", "event", "manager", "changes"]
    return store.read(clusters=[context], columns=cols).to_pandas().query("app == @app")


@pytest.mark.sandbox
def test_recording_a_hub_follows_each_app_to_its_spoke_and_what_changed_reads_it_as_a_fleet(
    spokes: Any, tmp_path: Path
) -> None:
    spoke = spokes.spoke_context(1)
    store = Store(tmp_path / "rec")
    hub_api = spokes.api_client()
    dead_app, dead_ns = unique("dead-shop"), unique("dead-ns")
    rec = Recorder([HUB], store, kubeconfig=_kubeconfig_with_a_dead_cluster(spokes, tmp_path), flush_seconds=0.5)
    rec.start()
    app: dict[str, Any] | None = None
    try:
        _until("the recorder to list the hub", rec.synced, timeout=30)
        # an app whose destination never answers: named in the status lines, retried, stopping nothing
        apply_application(
            hub_api, application_manifest(dead_app, "file:///nowhere", "apps/x", dead_ns, dest_server=DEAD)
        )
        app = _spoke_app(spokes, tmp_path / "repo", 1, by="server")
        name, ns = app["name"], app["ns"]
        _until(
            "the Deployment recorded on the spoke",
            lambda: (_spoke_rows(store, spoke, name)["kind"] == "Deployment").any(),
            timeout=30,
        )
        _manual_edit(spokes, app, 3)
        edited = pd.Timestamp.now(tz="UTC")

        def edit_recorded() -> bool:
            r = _spoke_rows(store, spoke, name)
            return bool(((r["kind"] == "Deployment") & (r["manager"] == "kubectl-edit")).any())

        _until("the manual edit recorded on the spoke", edit_recorded, timeout=30)
        _until(
            "the dead destination named in the status lines",
            lambda: any("dead (destination of" in s and "UNREACHABLE" in s for s in rec.status_lines()),
            timeout=30,
        )
        lines = rec.status_lines()
        assert any(s.startswith(f"[record] {spoke} (destination of {HUB})") for s in lines), lines
        assert rec.error is None  # the dead destination stopped nothing
        time.sleep(1.5)  # the last rows flushed
        at = pd.Timestamp.now(tz="UTC")
    finally:
        rec.stop()
        remove_app(hub_api, dead_app)
        if app is not None:
            _cleanup(spokes, app)
    # a partition per cluster, each with one writer; the app's objects only on its spoke
    assert {HUB, spoke} <= set(store.clusters())
    assert "dead" not in store.clusters()  # nothing was ever read there
    on_hub = store.read(clusters=[HUB], columns=["kind", "namespace", "app"]).to_pandas().query("app == @name")
    assert set(on_hub["kind"]) <= {"Application", "Event"}, on_hub["kind"].value_counts()  # Argo CD's own
    assert set(on_hub["namespace"]) == {"argocd"}
    on_spoke = _spoke_rows(store, spoke, name)
    assert {"Deployment", "ReplicaSet"} <= set(on_spoke["kind"]) and set(on_spoke["namespace"]) == {ns}
    assert len(set(store.read(clusters=[spoke], columns=["recorder"]).to_pandas()["recorder"])) == 1  # one writer
    # read back as one fleet: Argo CD from the hub, the edit from the spoke, each row's cluster filled
    recording = Recording(store)
    assert recording.cluster == HUB and recording.dest.get(name) == spoke
    assert recording.applications().set_index("name").loc[name, "cluster"] == spoke
    tl = what_changed(app["work"].path, at=at, window="15m", apps=[name], cluster=recording)
    edits = tl[tl["kind"] == RowKind.FIELD_EDIT]
    assert len(edits) >= 1, tl[["kind", "summary", "cluster"]].to_string()
    assert set(edits["cluster"]) == {spoke} and set(edits["argocd_app"]) == {name}
    assert any("spec.replicas" in d for d in edits["detail"]), edits["detail"].tolist()
    assert abs(edits["time"].max() - edited) < pd.Timedelta(seconds=5)
    rolls = tl[tl["kind"] == RowKind.ROLLOUT]
    assert len(rolls) and set(rolls["cluster"]) == {spoke}  # recorded on the spoke
    # an incident report keeps the fleet's evidence: hub and spoke partitions, reopened as one fleet
    inv = investigate(app["work"].path, at=at, window="15m", apps=[name], cluster=recording)
    report = inv.save(tmp_path / "report")
    saved = Recording(report / "recording", at=json.loads((report / "summary.json").read_text())["evidence"]["at"])
    assert saved.cluster == HUB and saved.dest.get(name) == spoke
    again = what_changed(app["work"].path, at=at, window="15m", apps=[name], cluster=saved)
    cols = ["time", "kind", "cluster", "argocd_app", "summary", "detail", "rank"]
    pd.testing.assert_frame_equal(again[cols], inv.timeline[cols])
    # the same store asked for the spoke alone: its partition only, no Applications
    alone = Recording(store, cluster=spoke)
    assert not alone.fleet and alone.applications().empty


def test_a_bad_destination_mapping_is_a_clear_error_that_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitops_nb.ui.cli import main

    store = tmp_path / "rec"
    assert main(["record", "--store", str(store), "--destination", "https://10.0.0.7:6443"]) == 2
    err = capsys.readouterr().err
    assert "SERVER_OR_NAME=CONTEXT" in err, err
    assert not store.exists()


@pytest.mark.sandbox
def test_a_fleet_of_hub_and_spoke_records_the_spoke_once_as_the_hubs_destination(spokes: Any, tmp_path: Path) -> None:
    from gitops_nb.cluster.fleet import Fleet

    spoke = spokes.spoke_context(2)
    store = Store(tmp_path / "rec")
    rec = Recorder(Fleet([HUB, spoke], kubeconfig=str(spokes.kubeconfig)), store, flush_seconds=0.5).start()
    app: dict[str, Any] | None = None
    try:
        # the spoke has no Argo CD: recorded as a destination only, not an error
        _until(
            "the spoke taken as a destination",
            lambda: any(s.startswith(f"[record] {spoke}:") and "no Argo CD here" in s for s in rec.status_lines()),
            timeout=30,
        )
        app = _spoke_app(spokes, tmp_path / "repo", 2, by="server")
        name = app["name"]
        _until(
            "the Deployment recorded on the spoke",
            lambda: (_spoke_rows(store, spoke, name)["kind"] == "Deployment").any(),
            timeout=30,
        )
        assert rec.error is None
        contexts = [c.context for c in rec.clusters]
        assert sorted(contexts) == sorted([HUB, spoke]), contexts  # the given spoke: no second writer for it
        assert not any("(destination of" in s for s in rec.status_lines())
    finally:
        rec.stop()
        if app is not None:
            _cleanup(spokes, app)
    assert len(set(store.read(clusters=[spoke], columns=["recorder"]).to_pandas()["recorder"])) == 1
