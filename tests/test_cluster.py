"""Cluster frames and the merged git + cluster timeline, against the sandbox's real API server and Argo CD."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

import gitops_nb.cluster.live as cluster_mod
from gitops_nb import (
    ArgoCDNotFoundError,
    Cluster,
    ClusterUnreachableError,
    DeployRepo,
    ForbiddenError,
    Snapshot,
    UnknownAppError,
    UnknownContextError,
    schema,
    snapshot,
    what_changed,
)
from gitops_nb.cluster.argocd import application_manifest, apply_application, refresh_app, wait_app
from gitops_nb.sandbox.control import COMPONENTS, Ports, Sandbox
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import app_files, overlay_text, remove_app, unique

pytestmark = pytest.mark.sandbox


@pytest.fixture
def deployed(sandbox: Sandbox, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A repo with apps/api/{base,overlays/prod}, deployed by an automated Application, Synced at HEAD."""
    w = RepoWriter(tmp_path / "deploy-config")
    sha = w.commit(
        "initial",
        when=pd.Timestamp.now(tz="UTC"),
        files=app_files("api", "1.0.0"),
    )
    name, ns = unique("c-api"), unique("c-ns")
    api = sandbox.api_client()
    apply_application(api, application_manifest(name, f"file://{w.path}", "apps/api/overlays/prod", ns))
    refresh_app(api, name)
    wait_app(api, name, revision=sha, timeout=120)
    yield {
        "api": api,
        "name": name,
        "ns": ns,
        "writer": w,
        "sha": sha,
        "cluster": Cluster(kubeconfig=str(sandbox.kubeconfig)),
    }
    remove_app(api, name, ns)


def test_applications_history_resources(deployed: dict) -> None:
    c: Cluster = deployed["cluster"]
    apps = c.applications()
    assert list(apps.columns) == list(schema.APPLICATIONS)
    row = apps.set_index("name").loc[deployed["name"]]
    assert (row["sync_status"], row["health_status"], row["sync_revision"]) == ("Synced", "Healthy", deployed["sha"])
    assert row["path"] == "apps/api/overlays/prod" and row["dest_namespace"] == deployed["ns"]
    assert row["automated"] and row["prune"] and row["self_heal"] and row["operation_phase"] == "Succeeded"
    assert str(apps["reconciled_at"].dt.tz) == "UTC"
    hist = c.app_history(deployed["name"])
    assert (
        list(hist["revision"]) == [deployed["sha"]] and hist["deployed_at"].iloc[0] >= hist["deploy_started_at"].iloc[0]
    )
    res = c.app_resources(deployed["name"])
    assert set(zip(res["kind"], res["name"], strict=True)) == {("Deployment", "api")}
    assert res["health_status"].iloc[0] == "Healthy" and res["sync_status"].iloc[0] == "Synced"


def test_multi_source_application_is_kept(sandbox: Sandbox, deployed: dict) -> None:
    name = unique("c-multi")
    m = application_manifest(name, f"file://{deployed['writer'].path}", "apps/api/overlays/prod", unique("c-ns"))
    src = m["spec"].pop("source")
    m["spec"]["sources"] = [src, {**src, "path": "apps/api/base"}]
    m["spec"]["syncPolicy"] = {}
    apply_application(deployed["api"], m)
    try:
        row = deployed["cluster"].applications().set_index("name").loc[name]
        assert [s["path"] for s in row["sources"]] == ["apps/api/overlays/prod", "apps/api/base"]
        assert row["path"] == "apps/api/overlays/prod" and not row["automated"]
    finally:
        remove_app(deployed["api"], name)  # never synced (no policy): no namespace was made


def test_tag_bump_timeline_commit_then_deploy_then_replicaset(deployed: dict) -> None:
    c: Cluster = deployed["cluster"]
    w: RepoWriter = deployed["writer"]
    w.write({"apps/api/overlays/prod/kustomization.yaml": overlay_text("api", "0.9.0")})
    time.sleep(1.1)  # distinct seconds: commit, then deploy
    sha = w.commit(
        "deploy(api/prod): 1.1.0",
        when=pd.Timestamp.now(tz="UTC"),
        files={"apps/api/overlays/prod/kustomization.yaml": overlay_text("api", "1.1.0")},
    )
    refresh_app(deployed["api"], deployed["name"])
    wait_app(deployed["api"], deployed["name"], revision=sha, timeout=120)
    time.sleep(1)
    tl = what_changed(DeployRepo(w.path), "now", "10m", cluster=c, apps=deployed["name"])
    commit = tl[(tl["source"] == "git") & (tl["sha"] == sha)].iloc[0]
    deploy = tl[(tl["source"] == "argocd") & (tl["sha"] == sha)].iloc[-1]  # the first deploy of it (newest first)
    rollout = tl[(tl["source"] == "rollout") & tl["summary"].str.contains("ghcr.io/acme/api:1.1.0")].iloc[0]
    assert commit["time"] <= deploy["time"] <= rollout["time"] + pd.Timedelta("2s")
    assert commit["deployed_at"] == deploy["time"] and commit["argocd_app"] == deployed["name"], tl[
        ["time", "kind", "sha", "argocd_app", "app", "deployed_at", "summary"]
    ].to_string()
    assert commit["app"] == deploy["app"] == "apps/api/overlays/prod"
    assert commit["rank"] == 1 and "deployed" in commit["why"]
    rs = c.rollouts(deployed["ns"], "api")
    assert (
        list(rs["revision"]) == [1, 2]
        and rs["images"].iloc[-1] == ["ghcr.io/acme/api:1.1.0"]
        and rs["current"].iloc[-1]
    )
    ev = c.events(c.argocd_namespace)
    mine = ev[(ev["object_kind"] == "Application") & (ev["object_name"] == deployed["name"])]
    assert {"OperationStarted", "OperationCompleted"} <= set(mine["reason"])


def test_manual_replica_edit_is_a_field_edit(sandbox: Sandbox, deployed: dict) -> None:
    from kubernetes import client

    # pause self-heal so the edit stays, as an on-call engineer would
    client.CustomObjectsApi(deployed["api"]).patch_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        "argocd",
        "applications",
        deployed["name"],
        {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": False}}}},
    )
    time.sleep(1.5)  # managedFields and deploy times have one-second resolution: the edit comes after the deploy
    before = pd.Timestamp.now(tz="UTC").floor("s")
    client.AppsV1Api(deployed["api"]).patch_namespaced_deployment(
        "api", deployed["ns"], {"spec": {"replicas": 7}}, field_manager="kubectl-edit"
    )
    edits = deployed["cluster"].field_edits(deployed["ns"], kinds=["Deployment"])
    mine = edits[edits["manager"] == "kubectl-edit"].iloc[0]
    assert "spec.replicas" in mine["fields"] and not mine["is_gitops"] and mine["time"] >= before
    assert edits[edits["is_gitops"]]["manager"].str.startswith("argocd").all() and edits["is_gitops"].any()
    tl = what_changed(
        DeployRepo(deployed["writer"].path), "now", "10m", cluster=deployed["cluster"], apps=deployed["name"]
    )
    edit = tl[tl["source"] == "field-edit"].iloc[0]
    assert edit["author"] == "kubectl-edit" and "spec.replicas" in edit["detail"] and edit["rank"] == 1


def test_snapshot_reads_back_the_same_frames(deployed: dict, tmp_path: Path) -> None:
    c: Cluster = deployed["cluster"]
    out = snapshot(c, tmp_path / "snap", namespaces=[deployed["ns"]])
    snap = Snapshot(out)
    live = c.applications().set_index("name").loc[[deployed["name"]]].reset_index()
    saved = snap.applications().set_index("name").loc[[deployed["name"]]].reset_index()
    pd.testing.assert_frame_equal(saved.drop(columns=["reconciled_at"]), live.drop(columns=["reconciled_at"]))
    pd.testing.assert_frame_equal(snap.app_history(deployed["name"]), c.app_history(deployed["name"]))
    pd.testing.assert_frame_equal(snap.rollouts(deployed["ns"]), c.rollouts(deployed["ns"]))
    pd.testing.assert_frame_equal(snap.field_edits(deployed["ns"]), c.field_edits(deployed["ns"]))
    repo = DeployRepo(deployed["writer"].path)
    a = what_changed(repo, "now", "10m", cluster=snap, apps=deployed["name"])
    b = what_changed(repo, a.attrs["at"], "10m", cluster=c, apps=deployed["name"])
    keep = ["time", "source", "app", "sha", "summary", "rank"]
    pd.testing.assert_frame_equal(
        a[a["source"].isin(["git", "argocd", "rollout"])][keep].reset_index(drop=True),
        b[b["source"].isin(["git", "argocd", "rollout"])][keep].reset_index(drop=True),
    )
    with pytest.raises(UnknownAppError):
        snap.app_history("no-such-app")


def test_paging_with_limit_and_continue(deployed: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    full = deployed["cluster"].applications()
    monkeypatch.setattr(cluster_mod, "PAGE", 1)
    paged = deployed["cluster"].applications()
    assert len(full) >= 1 and sorted(paged["name"]) == sorted(full["name"])


def test_unknown_app_and_context(sandbox: Sandbox, deployed: dict) -> None:
    with pytest.raises(UnknownAppError, match=rf"no Application 'nope'.*Known \(\d+\): .*{deployed['name']}"):
        deployed["cluster"].app_history("nope")
    typo = deployed["name"][:-1] + ("x" if deployed["name"][-1] != "x" else "y")
    with pytest.raises(UnknownAppError, match=rf"Did you mean '{deployed['name']}'\?"):
        deployed["cluster"].app_history(typo)
    with pytest.raises(UnknownContextError, match="gitops-nb-sandbox"):
        Cluster("prod-eu", kubeconfig=str(sandbox.kubeconfig))


def test_a_missing_or_broken_kubeconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownContextError, match=r"kubeconfig .*missing-config does not exist"):
        Cluster(kubeconfig=str(tmp_path / "missing-config"))
    bad = tmp_path / "bad-config"
    bad.write_text("apiVersion: v1\nclusters: [\n  - name: x\n  bad: : :\n")
    with pytest.raises(UnknownContextError, match=r"cannot be read as YAML at line \d+"):
        Cluster(kubeconfig=str(bad))


def test_unreachable_api(tmp_path: Path, sandbox: Sandbox) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(sandbox.kubeconfig.read_text().replace(f":{sandbox.ports.apiserver}", ":1"))
    with pytest.raises(ClusterUnreachableError, match=r"did not answer.*list applications") as e:
        Cluster(kubeconfig=str(kc)).applications()
    assert e.value.context == "gitops-nb-sandbox" and e.value.verb == "list"


def test_rbac_forbidden(sandbox: Sandbox, tmp_path: Path) -> None:
    from kubernetes import client

    core = client.CoreV1Api(sandbox.api_client())
    sa = unique("nobody")
    core.create_namespaced_service_account("default", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa)))
    token = core.create_namespaced_service_account_token(
        sa,
        "default",
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)),
    ).status.token
    tok = tmp_path / "token"
    tok.write_text(token)
    kc = tmp_path / "kubeconfig"
    kc.write_text(sandbox.kubeconfig.read_text().replace(str(sandbox.state / "secrets" / "token"), str(tok)))
    with pytest.raises(ForbiddenError, match=r"forbidden: list applications.argoproj.io.*kubectl auth can-i list") as e:
        Cluster(kubeconfig=str(kc)).applications()
    assert e.value.status == 403 and token not in str(e.value)


def test_argocd_crds_absent(tmp_path: Path) -> None:
    """A second, bare API server (no Argo CD CRDs) on other ports."""
    bare = Sandbox(tmp_path / "bare", ports=Ports(base=_free_port_base()))
    bare._prepare()
    try:
        for c in ("etcd", "kube-apiserver"):
            bare._start(c, 60)
        with pytest.raises(ArgoCDNotFoundError, match=r"CRDs .* are not installed"):
            Cluster(kubeconfig=str(bare.kubeconfig)).applications()
    finally:
        bare.down()


def _free_port_base() -> int:
    """A port base whose every sandbox port is free on loopback (another sandbox may hold a fixed one)."""
    import socket

    for base in range(24000, 60000, 2500):
        ports = Ports(base=base)
        free = True
        for c in COMPONENTS:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", ports.of(c))) == 0:
                    free = False
                    break
        if free and all(_bindable(base + off) for off in (2379, 2380)):
            return base
    raise AssertionError("no free port base for a second sandbox on 127.0.0.1")


def _bindable(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_the_cli_takes_a_context_like_the_notebook(sandbox: Sandbox, deployed: dict) -> None:
    """`gitops-nb what-changed --context ... --kubeconfig ...` joins the live Argo CD deploys in."""
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "what-changed", str(deployed["writer"].path), "--window", "30m",
         "--context", "gitops-nb-sandbox", "--kubeconfig", str(sandbox.kubeconfig), "--apps", deployed["name"]],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"Argo CD deployed {deployed['sha'][:10]} to {deployed['name']}" in res.stdout


def test_an_app_deployed_by_destination_name_keeps_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """`destination.name` (the cluster's name in Argo CD) was lost: applications() has `dest_name`."""
    w = RepoWriter(tmp_path / "deploy-config")
    sha = w.commit("initial", when=pd.Timestamp.now(tz="UTC"), files=app_files("api", "1.0.0"))
    name, ns = unique("c-named"), unique("c-ns")
    m = application_manifest(name, f"file://{w.path}", "apps/api/overlays/prod", ns)
    m["spec"]["destination"] = {"name": "in-cluster", "namespace": ns}  # Argo CD's name for its own cluster
    api = sandbox.api_client()
    apply_application(api, m)
    try:
        refresh_app(api, name)
        wait_app(api, name, revision=sha, timeout=120)
        row = Cluster(kubeconfig=str(sandbox.kubeconfig)).applications().set_index("name").loc[name]
        assert row["dest_name"] == "in-cluster" and row["dest_server"] is None and row["dest_namespace"] == ns
    finally:
        remove_app(api, name, ns)
