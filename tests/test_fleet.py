"""Many clusters: spokes in the sandbox, destinations resolved, a fleet read into one frame."""

from __future__ import annotations

import contextlib
import subprocess
import sys
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


# -- destinations resolved: a spoke's evidence is read on the spoke --------------------------------


def _spoke_app(spokes, tmp_path: Path, i: int, *, by: str, self_heal: bool = False) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An app on spoke ``i`` (destination by ``server`` or ``name``), synced; its repo clone and names."""
    origin, w = _origin(tmp_path, "shop")
    head = git(w.path, "rev-parse", "HEAD").strip()
    hub = spokes.api_client()
    name, ns = unique(f"s{i}-shop"), unique(f"s{i}-ns")
    dest = {"dest_name": spokes.spoke_name(i)} if by == "name" else {"dest_server": spokes.spoke_server(i)}
    apply_application(
        hub,
        application_manifest(
            name, f"file://{origin}", "apps/shop/overlays/production", ns, self_heal=self_heal, **dest
        ),
    )
    refresh_app(hub, name)
    wait_app(hub, name, revision=head, timeout=180)
    return {"name": name, "ns": ns, "origin": origin, "work": w, "head": head, "spoke": i}


def _cleanup(spokes, app: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    remove_app(spokes.api_client(), app["name"])
    _drop_ns(spokes.spoke_api_client(app["spoke"]), app["ns"])


def _manual_edit(spokes, app: dict[str, Any], replicas: int) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    client.AppsV1Api(spokes.spoke_api_client(app["spoke"])).patch_namespaced_deployment(
        "shop", app["ns"], {"spec": {"replicas": replicas}}, field_manager="kubectl-edit"
    )


@pytest.mark.sandbox
def test_a_manual_edit_on_a_spoke_appears_in_what_changed_with_its_cluster(spokes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gitops_nb import Cluster, schema, wait_converged, what_changed

    app = _spoke_app(spokes, tmp_path, 1, by="server")
    try:
        hub = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig))
        apps = hub.applications()
        mine = apps[apps["name"] == app["name"]].iloc[0]
        assert mine["cluster"] == "gitops-nb-spoke-1"  # resolved through the kubeconfig context's server
        # the rollout check reads the spoke: the hub has no such Deployment, yet the wait succeeds at once
        tr = wait_converged(hub, app["name"], app["head"], timeout="60s")
        assert tr["event"].iloc[-1] == "converged"
        _manual_edit(spokes, app, 3)
        tl = what_changed(app["work"].path, at="now", window="15m", apps=[app["name"]], cluster=hub)
        assert "cluster" in tl.columns and list(tl.columns[: len(schema.TIMELINE)]) == list(schema.TIMELINE)
        edits = tl[tl["kind"] == "field-edit"]
        assert len(edits) >= 1, tl[["kind", "summary", "cluster"]].to_string()
        assert set(edits["cluster"]) == {"gitops-nb-spoke-1"}
        assert set(edits["argocd_app"]) == {app["name"]}
        assert any("spec.replicas" in d for d in edits["detail"])
        rolls = tl[tl["kind"] == "rollout"]
        assert len(rolls) and set(rolls["cluster"]) == {"gitops-nb-spoke-1"}  # read on the spoke
        deploys = tl[tl["kind"] == "deploy"]
        assert set(deploys["cluster"]) == {"gitops-nb-spoke-1"}  # deployed to the spoke, recorded on the hub
        assert tl.attrs["failures"] == []
    finally:
        _cleanup(spokes, app)


@pytest.mark.sandbox
def test_a_destination_by_name_resolves_from_argo_cds_secrets_only_when_asked_and_never_shows_them(
    spokes,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from gitops_nb import Cluster, UnknownDestinationError, what_changed

    planted = (spokes.spoke_state(2) / "secrets" / "argocd-token").read_text().strip()
    app = _spoke_app(spokes, tmp_path, 2, by="name")
    try:
        plain = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig))
        apps = plain.applications()
        assert apps[apps["name"] == app["name"]]["cluster"].iloc[0] == "spoke-2"  # unresolved: Argo CD's name
        with pytest.raises(UnknownDestinationError, match="argocd_secrets=True"):
            plain.destination(plain.raw_application(app["name"]))
        tl = what_changed(app["work"].path, at="now", window="15m", apps=[app["name"]], cluster=plain)
        assert [f["query"] for f in tl.attrs["failures"]] == ["resolve destination"]
        assert tl[tl["kind"] == "rollout"].empty  # not read from the hub's namespace of that name

        hub = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig), argocd_secrets=True)
        _manual_edit(spokes, app, 4)
        tl = what_changed(app["work"].path, at="now", window="15m", apps=[app["name"]], cluster=hub)
        edits = tl[tl["kind"] == "field-edit"]
        assert set(edits["cluster"]) == {"argocd:spoke-2"} and len(edits) >= 1
        assert tl.attrs["failures"] == []
        spoke = hub.destination(hub.raw_application(app["name"]))
        shown = "\n".join(
            [
                tl.to_json(default_handler=str),
                tl.to_csv(),
                repr(tl.attrs),
                repr(hub),
                repr(spoke),
                repr(hub.destinations),
                repr(hub.destinations.known()),
                hub.applications().to_json(default_handler=str),
            ]
        )
        assert planted not in shown, "the spoke's bearer token leaked"
    finally:
        _cleanup(spokes, app)


# -- a fleet: many clusters at once ----------------------------------------------------------------


@pytest.mark.sandbox
def test_a_revert_of_a_commit_that_reached_two_spokes_converges_on_both(spokes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    from gitops_nb import Cluster, Fleet, refresh, revert, wait_converged, what_changed
    from gitops_nb.sandbox.demo import bump_tag

    origin, w = _origin(tmp_path, "shop")
    hub_api = spokes.api_client()
    apps = []
    try:
        for i in (1, 2):
            name, ns = unique(f"rv{i}-shop"), unique(f"rv{i}-ns")
            m = application_manifest(
                name, f"file://{origin}", "apps/shop/overlays/production", ns, dest_server=spokes.spoke_server(i)
            )
            apply_application(hub_api, m)
            apps.append((i, name, ns))
        hub = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig))
        bad = bump_tag(w, "shop", "production", "1.1.0-bad")
        w.git("push", "-q", "origin", "HEAD:main")
        for _, name, _ in apps:
            refresh(hub, name)
        for _, name, _ in apps:
            wait_converged(hub, name, bad, timeout="3m")

        def images() -> dict[int, str]:
            return {
                i: client.AppsV1Api(spokes.spoke_api_client(i))
                .read_namespaced_deployment("shop", ns)
                .spec.template.spec.containers[0]
                .image
                for i, _, ns in apps
            }

        assert set(images().values()) == {"ghcr.io/acme/shop:1.1.0-bad"}  # the bad change reached both spokes
        rec = revert(w.path, bad, incident="INC-14", dry_run=False)
        new, pushed = rec["after"].iloc[0], rec["when"].iloc[0]
        for _, name, _ in apps:
            refresh(hub, name)
        for _, name, _ in apps:
            tr = wait_converged(hub, name, new, timeout="3m", pushed_at=pushed)
            assert tr["event"].iloc[-1] == "converged"
        assert set(images().values()) == {"ghcr.io/acme/shop:1.0.0"}  # reverted on both
        fleet = Fleet(
            ["gitops-nb-sandbox", "gitops-nb-spoke-1", "gitops-nb-spoke-2"], kubeconfig=str(spokes.kubeconfig)
        )
        tl = what_changed(w.path, at="now", window="15m", apps=[n for _, n, _ in apps], cluster=fleet)
        rolls = tl[tl["kind"] == "rollout"]
        assert set(rolls["cluster"]) == {"gitops-nb-spoke-1", "gitops-nb-spoke-2"}, rolls[["cluster", "summary"]]
        deploys = tl[(tl["kind"] == "deploy") & (tl["sha"] == new)]
        assert set(deploys["cluster"]) == {"gitops-nb-spoke-1", "gitops-nb-spoke-2"}
        assert tl.attrs["failures"] == []
    finally:
        for i, name, ns in apps:
            remove_app(hub_api, name)
            _drop_ns(spokes.spoke_api_client(i), ns)


@pytest.mark.sandbox
def test_a_spoke_stopped_mid_investigation_gives_a_partial_answer_that_names_it(spokes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gitops_nb import Fleet, Snapshot, snapshot, what_changed

    app = _spoke_app(spokes, tmp_path, 1, by="server")
    fleet = Fleet(
        ["gitops-nb-sandbox", "gitops-nb-spoke-1", "gitops-nb-spoke-2"], kubeconfig=str(spokes.kubeconfig), timeout=20
    )
    try:
        before = fleet.events(None)
        assert {"gitops-nb-sandbox", "gitops-nb-spoke-1"} <= set(before["cluster"])  # the app's sync: events
        assert before.attrs["failures"] == []  # all three answered
        _manual_edit(spokes, app, 3)
        assert spokes.stop("spoke-2:kube-apiserver")  # spoke 2 goes away between two reads
        ev = fleet.events(None)
        assert "gitops-nb-spoke-2" not in set(ev["cluster"])
        assert {"gitops-nb-sandbox", "gitops-nb-spoke-1"} <= set(ev["cluster"])
        (fail,) = ev.attrs["failures"]
        assert fail["cluster"] == "gitops-nb-spoke-2" and fail["error"] == "ClusterUnreachableError"
        assert "did not answer" in fail["reason"]
        tl = what_changed(app["work"].path, at="now", window="15m", apps=[app["name"]], cluster=fleet)
        edits = tl[tl["kind"] == "field-edit"]
        assert set(edits["cluster"]) == {"gitops-nb-spoke-1"} and len(edits) >= 1  # the others' rows are there
        assert "gitops-nb-spoke-2" in {f["cluster"] for f in tl.attrs["failures"]}
        failures = fleet.failures
        assert set(failures["cluster"]) == {"gitops-nb-spoke-2"}
        assert {"events", "rollouts", "field_edits"} <= set(failures["query"])
        cli = subprocess.run(
            [
                *(sys.executable, "-m", "gitops_nb", "what-changed", str(app["work"].path), "--window", "15m"),
                *("--apps", app["name"], "--context", "gitops-nb-sandbox", "--kubeconfig", str(spokes.kubeconfig)),
                *("--contexts", "gitops-nb-spoke-1,gitops-nb-spoke-2"),
            ],
            capture_output=True,
            text=True,
        )
        assert cli.returncode == 0, cli.stderr[-2000:]
        assert "NOT READ: gitops-nb-spoke-2" in cli.stderr and "gitops-nb-spoke-1" in cli.stdout
        snap = Snapshot(snapshot(fleet, tmp_path / "snap", formats=("json",)))  # a fleet's evidence, saved
        kept = snap.events()
        assert "gitops-nb-spoke-1" in set(kept["cluster"]) and "gitops-nb-spoke-2" not in set(kept["cluster"])
    finally:
        spokes.restart("spoke-2:kube-apiserver", timeout=120)
        _cleanup(spokes, app)


@pytest.mark.sandbox
def test_the_notebooks_and_the_console_take_a_fleet(spokes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    from gitops_nb import IncidentConsole, load_results

    app = _spoke_app(spokes, tmp_path, 1, by="server")
    try:
        _manual_edit(spokes, app, 3)
        papermill = str(Path(sys.executable).with_name("papermill"))
        common = ["-p", "kube_context", "gitops-nb-sandbox", "-p", "contexts", "gitops-nb-spoke-1,gitops-nb-spoke-2"]
        common += ["-p", "kubeconfig", str(spokes.kubeconfig)]
        root = Path(__file__).resolve().parent.parent
        res = subprocess.run(
            [
                *(papermill, "notebooks/what_changed.ipynb", str(tmp_path / "wc.ipynb"), "-k", "python3"),
                *("-p", "repo_path", str(app["work"].path), "-p", "window", "15m", "-p", "apps", app["name"]),
                *common,
                *("-p", "output_dir", str(tmp_path / "wc")),
            ],
            capture_output=True,
            text=True,
            cwd=root,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        frames, summary = load_results(tmp_path / "wc")
        tl = frames["timeline"]
        edits = tl[tl["kind"] == "field-edit"]
        assert set(edits["cluster"]) == {"gitops-nb-spoke-1"}
        assert "Fleet(['gitops-nb-sandbox', 'gitops-nb-spoke-1', 'gitops-nb-spoke-2']" in json.dumps(summary["cluster"])
        res = subprocess.run(
            [
                *(papermill, "notebooks/drift.ipynb", str(tmp_path / "drift.ipynb"), "-k", "python3"),
                *common,
                *("-p", "output_dir", str(tmp_path / "drift")),
            ],
            capture_output=True,
            text=True,
            cwd=root,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        frames, _ = load_results(tmp_path / "drift")
        mine = frames["manual_edits"][frames["manual_edits"]["namespace"] == app["ns"]]
        assert set(mine["cluster"]) == {"gitops-nb-spoke-1"} and len(mine) >= 1

        con = IncidentConsole(
            repo_path=str(app["work"].path),
            kube_context="gitops-nb-sandbox",
            kubeconfig=str(spokes.kubeconfig),
            contexts="gitops-nb-spoke-1, gitops-nb-spoke-2",
            window="15m",
        )
        con.investigate()
        assert con.timeline is not None, con.status.value
        assert "gitops-nb-spoke-1" in set(con.timeline[con.timeline["kind"] == "field-edit"]["cluster"])
        assert "contexts" in con.replay.value and "gitops-nb-spoke-2" in con.replay.value
        # planted: every spoke's tokens (the kubeconfig's and Argo CD's) stay out of notebooks and results
        planted = [
            (spokes.spoke_state(i) / "secrets" / f).read_text().strip()
            for i in (1, 2)
            for f in ("token", "argocd-token")
        ]
        written = [p for p in tmp_path.rglob("*") if p.is_file() and ".git" not in p.parts]
        assert any(p.suffix == ".ipynb" for p in written) and any(p.suffix == ".parquet" for p in written)
        for p in written:
            data = p.read_bytes()
            assert not [t for t in planted if t.encode() in data], f"a spoke token leaked into {p}"
    finally:
        _cleanup(spokes, app)


@pytest.mark.sandbox
def test_a_spoke_that_hangs_is_given_up_after_the_fleets_timeout(spokes) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import time

    from kubernetes import client

    from gitops_nb import Fleet

    name = unique("hang-cm")
    apis = [spokes.api_client(), spokes.spoke_api_client(1), spokes.spoke_api_client(2)]
    for api in apis:  # one manual edit on each cluster, so each has a row to give
        client.CoreV1Api(api).create_namespaced_config_map(
            "default", {"metadata": {"name": name}, "data": {"a": "1"}}, field_manager="kubectl-edit"
        )
    fleet = Fleet(
        ["gitops-nb-sandbox", "gitops-nb-spoke-1", "gitops-nb-spoke-2"], kubeconfig=str(spokes.kubeconfig), timeout=8
    )

    def mine(df: Any) -> set[str]:
        return set(df[df["name"] == name]["cluster"])

    first = fleet.field_edits("default", ["ConfigMap"])
    assert (
        mine(first) == {"gitops-nb-sandbox", "gitops-nb-spoke-1", "gitops-nb-spoke-2"} and not first.attrs["failures"]
    )
    pid = int(spokes.status().set_index("component").loc["spoke-2:kube-apiserver", "pid"])
    os.kill(pid, signal.SIGSTOP)  # it accepts connections and never answers
    try:
        t = time.monotonic()
        r = fleet.field_edits("default", ["ConfigMap"])
        took = time.monotonic() - t
        assert took < 15, took  # 8 s for the hung one, the others meanwhile
        assert mine(r) == {"gitops-nb-sandbox", "gitops-nb-spoke-1"}
        (fail,) = r.attrs["failures"]
        assert fail["cluster"] == "gitops-nb-spoke-2" and fail["error"] == "timeout" and "8s" in fail["reason"]
    finally:
        os.kill(pid, signal.SIGCONT)
        for api in apis:
            client.CoreV1Api(api).delete_namespaced_config_map(name, "default")


def _recorded_app(name: str, ns: str, path: str, repo_url: str, shas: list[str], times: list[str]) -> dict[str, Any]:
    """An Application in a namespace the sandbox's controller does not watch, with the history a hub's
    Argo CD would have written (one deploy per sha): a second hub, on the real API server."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
        },
        "status": {
            "sync": {"status": "Synced", "revision": shas[-1]},
            "history": [
                {
                    "id": i,
                    "revision": sha,
                    "deployStartedAt": t,
                    "deployedAt": t,
                    "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
                    "initiatedBy": {"automated": True},
                }
                for i, (sha, t) in enumerate(zip(shas, times, strict=True))
            ],
        },
    }


@pytest.mark.sandbox
def test_two_hubs_with_an_app_of_the_same_name_are_two_apps_never_one(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    from gitops_nb import Cluster, DeployRepo, Fleet, what_changed
    from gitops_nb.errors import UnknownAppError

    w = RepoWriter(tmp_path / "repo")
    t0 = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta("50m")
    w.commit(
        "both envs",
        when=t0,
        files={**app_files("web", "1.0", env="staging"), **app_files("web", "1.0", env="production")},
    )
    w.commit("staging 1.1", when=t0 + pd.Timedelta("10m"), files=app_files("web", "1.1", env="staging"))
    w.commit("production 1.2", when=t0 + pd.Timedelta("20m"), files=app_files("web", "1.2", env="production"))
    shas = git(w.path, "log", "--format=%H", "--reverse").split()
    stamp = [(t0 + pd.Timedelta(minutes=10 * i + 5)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(3)]
    api = sandbox.api_client()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    hubs = {unique("hub-a"): "apps/web/overlays/staging", unique("hub-b"): "apps/web/overlays/production"}
    url = f"file://{w.path}"
    try:
        for ns, path in hubs.items():  # each "hub": its own Applications namespace, the same app names
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            deployed = shas[:2] if "staging" in path else [shas[0], shas[2]]
            for name in ("web", f"only-{ns}"):
                custom.create_namespaced_custom_object(
                    "argoproj.io",
                    "v1alpha1",
                    ns,
                    "applications",
                    _recorded_app(name, ns, path, url, deployed, stamp[: len(deployed)]),
                )
        (a, path_a), (b, path_b) = hubs.items()
        fleet = Fleet([Cluster.from_api_client(api, ns, argocd_namespace=ns) for ns in hubs], follow_destinations=False)
        apps = fleet.applications()
        assert sorted(apps["name"]) == sorted([f"{a}/web", f"{b}/web", f"only-{a}", f"only-{b}"])  # unique: plain
        assert dict(zip(apps["name"], apps["path"], strict=True))[f"{b}/web"] == path_b
        hist = fleet.history()
        assert sorted(hist.loc[hist["app"] == f"{a}/web", "revision"]) == sorted(shas[:2])
        assert sorted(hist.loc[hist["app"] == f"{b}/web", "revision"]) == sorted([shas[0], shas[2]])
        with pytest.raises(UnknownAppError) as e:
            fleet.app_history("web")
        assert f"'{a}/web'" in str(e.value) and f"'{b}/web'" in str(e.value)
        only_b = fleet.app_history(f"{b}/web")
        assert set(only_b["app"]) == {f"{b}/web"} and sorted(only_b["revision"]) == sorted([shas[0], shas[2]])
        assert len(fleet.app_history(f"only-{a}")) == 2

        tl = what_changed(DeployRepo(w.path), t0 + pd.Timedelta("40m"), "1h", cluster=fleet)
        deploys = tl[tl["kind"] == "deploy"]
        by_app = {app: set(zip(g["app"], g["sha"], strict=True)) for app, g in deploys.groupby("argocd_app")}
        assert by_app[f"{b}/web"] == {(path_b, shas[0]), (path_b, shas[2])}  # hub B's own source, own deploys
        assert by_app[f"{a}/web"] == {(path_a, shas[0]), (path_a, shas[1])}
        # the production commit deployed by hub B's web only, the staging one by hub A's only
        commits = tl[tl["kind"] == "commit"].set_index("summary")
        assert f"{b}/web" in commits.loc["production 1.2", "argocd_app"]
        assert f"{a}/web" not in commits.loc["production 1.2", "argocd_app"]
        assert f"{a}/web" in commits.loc["staging 1.1", "argocd_app"]
    finally:
        for ns in hubs:
            with contextlib.suppress(Exception):
                core.delete_namespace(ns)
