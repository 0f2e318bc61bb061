"""Incident actions: revert on real git repos; pause, resume, refresh and convergence on the sandbox."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import (
    Cluster,
    ConvergenceError,
    DeployRepo,
    DetachedHeadError,
    DirtyTreeError,
    NotOnBranchError,
    RevertConflictError,
    pause_self_heal,
    refresh,
    resume_self_heal,
    revert,
    schema,
    sync,
    wait_converged,
)
from gitops_nb.cluster.argocd import application_manifest, apply_application, wait_app
from gitops_nb.sandbox.demo import RepoWriter, bump_tag

from .conftest import app_files, git, remove_app, unique

OVERLAY = "apps/shop/overlays/production/kustomization.yaml"


def _origin_and_clone(tmp: Path) -> tuple[Path, RepoWriter]:
    """A bare 'origin' (what Argo CD reads) and an engineer's clone of it."""
    seed = RepoWriter(tmp / "seed")
    seed.commit(
        "initial",
        when=pd.Timestamp.now(tz="UTC"),
        files=app_files("shop", "1.0.0", env="production"),
    )
    origin = tmp / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed.path), str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(tmp / "work")], check=True)
    return origin, RepoWriter(tmp / "work")


def _bad_commit(w: RepoWriter) -> str:
    sha = bump_tag(w, "shop", "production", "1.1.0-bad")
    w.git("push", "-q", "origin", "HEAD:main")
    return sha


# -- revert: real repositories, a real remote ------------------------------------------


def test_revert_dry_run_changes_nothing(tmp_path: Path) -> None:
    origin, w = _origin_and_clone(tmp_path)
    bad = _bad_commit(w)
    before = (git(w.path, "rev-parse", "HEAD"), git(origin, "rev-parse", "main"))
    rec = revert(w.path, bad[:8], incident="INC-1")
    assert list(rec.columns) == list(schema.ACTION_RECORDS)
    assert rec["dry_run"].iloc[0] and not rec["changed"].iloc[0] and rec["after"].iloc[0] is None
    assert "would revert" in rec["note"].iloc[0] and OVERLAY in rec["note"].iloc[0]
    assert (git(w.path, "rev-parse", "HEAD"), git(origin, "rev-parse", "main")) == before


def test_revert_pushes_with_trailers_and_is_idempotent(tmp_path: Path) -> None:
    origin, w = _origin_and_clone(tmp_path)
    bad = _bad_commit(w)
    rec = revert(w.path, bad, incident="INC-7", dry_run=False)
    new = rec["after"].iloc[0]
    assert rec["changed"].iloc[0] and rec["before"].iloc[0] == bad and rec["note"].iloc[0] == "pushed"
    assert git(origin, "rev-parse", "main").strip() == new
    msg = git(w.path, "log", "-1", "--format=%B", new)
    assert f"This reverts commit {bad}." in msg and "Incident: INC-7" in msg and "Reverted-by:" in msg
    assert 'newTag: "1.0.0"' in (w.path / OVERLAY).read_text()
    assert DeployRepo(w.path).commits().set_index("sha").loc[new, "reverts"] == bad
    again = revert(w.path, bad, incident="INC-7", dry_run=False)
    assert (
        not again["changed"].iloc[0] and again["after"].iloc[0] == new and "already reverted" in again["note"].iloc[0]
    )
    assert git(origin, "rev-parse", "main").strip() == new


def test_revert_push_race_rebases_and_never_forces(tmp_path: Path) -> None:
    origin, w = _origin_and_clone(tmp_path)
    bad = _bad_commit(w)
    subprocess.run(["git", "clone", "-q", str(origin), str(tmp_path / "other")], check=True)
    other = RepoWriter(tmp_path / "other")
    theirs = other.commit("docs: runbook link", when=pd.Timestamp.now(tz="UTC"), files={"README.md": "hi\n"})
    other.git("push", "-q", "origin", "HEAD:main")  # lands first
    rec = revert(w.path, bad, dry_run=False)
    new = rec["after"].iloc[0]
    assert "1 rebase" in rec["note"].iloc[0]
    assert git(origin, "rev-parse", "main").strip() == new
    assert git(origin, "rev-parse", f"{new}^").strip() == theirs  # their commit kept, ours on top


def test_revert_of_a_merge_uses_the_first_parent(tmp_path: Path) -> None:
    _origin, w = _origin_and_clone(tmp_path)
    w.git("checkout", "-q", "-b", "feature")
    bump_tag(w, "shop", "production", "2.0.0")
    w.git("checkout", "-q", "main")
    w.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    merge = w.git("rev-parse", "HEAD").strip()
    w.git("push", "-q", "origin", "HEAD:main")
    revert(w.path, merge, dry_run=False)
    assert 'newTag: "1.0.0"' in (w.path / OVERLAY).read_text()


def test_revert_refusals_change_nothing(tmp_path: Path) -> None:
    _origin, w = _origin_and_clone(tmp_path)
    bad = _bad_commit(w)
    head = git(w.path, "rev-parse", "HEAD")
    (w.path / OVERLAY).write_text("dirty\n")
    with pytest.raises(DirtyTreeError, match="uncommitted changes"):
        revert(w.path, bad, dry_run=False)
    w.git("checkout", "-q", "--", OVERLAY)
    w.git("checkout", "-q", "--detach")
    with pytest.raises(DetachedHeadError, match="detached"):
        revert(w.path, bad, dry_run=False)
    w.git("checkout", "-q", "main")
    w.git("checkout", "-q", "-b", "side", f"{bad}^")
    side = bump_tag(w, "shop", "production", "9.9.9")
    w.git("checkout", "-q", "main")
    with pytest.raises(NotOnBranchError, match="not on branch main"):
        revert(w.path, side, dry_run=False)
    assert git(w.path, "rev-parse", "HEAD") == head and not git(w.path, "status", "--porcelain").strip()


def test_revert_conflict_aborts_cleanly(tmp_path: Path) -> None:
    _origin, w = _origin_and_clone(tmp_path)
    bad = _bad_commit(w)
    bump_tag(w, "shop", "production", "1.2.0")  # the same line changed again since
    head = git(w.path, "rev-parse", "HEAD")
    with pytest.raises(RevertConflictError, match="does not apply cleanly"):
        revert(w.path, bad, dry_run=False)
    assert git(w.path, "rev-parse", "HEAD") == head and not git(w.path, "status", "--porcelain").strip()


# -- the sandbox: pause, resume, convergence --------------------------------------------


@pytest.fixture
def live(sandbox, tmp_path: Path):  # type: ignore[no-untyped-def]
    origin, w = _origin_and_clone(tmp_path)
    name, ns = unique("a-shop"), unique("a-ns")
    m = application_manifest(name, f"file://{origin}", "apps/shop/overlays/production", ns)
    m["spec"]["syncPolicy"].update(
        {
            "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
            "syncOptions": ["CreateNamespace=true", "ApplyOutOfSyncOnly=true"],
        }
    )
    m["spec"]["syncPolicy"]["automated"]["allowEmpty"] = True
    api = sandbox.api_client()
    apply_application(api, m)
    cluster = Cluster(kubeconfig=str(sandbox.kubeconfig))
    refresh(cluster, name)
    head = git(w.path, "rev-parse", "HEAD").strip()
    wait_app(api, name, revision=head, timeout=120)
    yield {"cluster": cluster, "api": api, "name": name, "ns": ns, "origin": origin, "work": w, "head": head}
    remove_app(api, name, ns)


def _deploy_bad(live: dict) -> str:
    """Push the bad commit and wait until Argo CD has deployed it (Synced, Healthy, rolled out)."""
    bad = _bad_commit(live["work"])
    refresh(live["cluster"], live["name"])
    wait_converged(live["cluster"], live["name"], bad, timeout="2m")
    return bad


def _policy(live: dict) -> dict:
    return live["cluster"].raw_application(live["name"])["spec"]["syncPolicy"]


def _replicas(live: dict) -> int:
    from kubernetes import client

    return client.AppsV1Api(live["api"]).read_namespaced_deployment("shop", live["ns"]).spec.replicas


def _edit(live: dict, replicas: int) -> None:
    from kubernetes import client

    client.AppsV1Api(live["api"]).patch_namespaced_deployment(
        "shop", live["ns"], {"spec": {"replicas": replicas}}, field_manager="kubectl-edit"
    )


def _eventually(cond, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.sandbox
def test_pause_and_resume_restore_the_exact_policy(live: dict) -> None:
    c, name = live["cluster"], live["name"]
    original = _policy(live)
    dry = pause_self_heal(c, name, "hot-patching memory")
    assert dry["dry_run"].iloc[0] and _policy(live) == original
    rec = pause_self_heal(c, name, "hot-patching memory", expires="2h", dry_run=False)
    assert rec["changed"].iloc[0] and "expires" in rec["note"].iloc[0]
    paused = _policy(live)
    assert paused["automated"].get("selfHeal", False) is False and paused["retry"] == original["retry"]
    anns = c.raw_application(name)["metadata"]["annotations"]
    assert anns["gitops-nb.io/pause-reason"] == "hot-patching memory" and anns["gitops-nb.io/paused-by"]
    again = pause_self_heal(c, name, "again", dry_run=False)
    assert not again["changed"].iloc[0] and "already paused" in again["note"].iloc[0]
    resumed = resume_self_heal(c, name, dry_run=False)
    assert resumed["changed"].iloc[0] and _policy(live) == original
    assert not any(k.startswith("gitops-nb.io/") for k in c.raw_application(name)["metadata"].get("annotations", {}))
    assert not resume_self_heal(c, name, dry_run=False)["changed"].iloc[0]
    pause_self_heal(c, name, "freeze", mode="auto-sync", dry_run=False)
    assert "automated" not in _policy(live)
    resume_self_heal(c, name, dry_run=False)
    assert _policy(live) == original


@pytest.mark.sandbox
def test_wait_on_a_converged_app_returns_at_once(live: dict) -> None:
    t = time.monotonic()
    tr = wait_converged(live["cluster"], live["name"], live["head"], timeout="1m")
    assert time.monotonic() - t < 3
    assert list(tr.columns) == list(schema.TRANSITIONS) and tr["event"].iloc[-1] == "converged"
    with pytest.raises(ConvergenceError, match="did not converge"):
        wait_converged(live["cluster"], live["name"], "0" * 40, timeout=2)


@pytest.mark.sandbox
def test_manual_sync_while_auto_sync_is_paused(live: dict) -> None:
    """Auto-sync off: a push is only detected; sync() deploys exactly that revision; a second sync is a no-op."""
    c, name = live["cluster"], live["name"]
    pause_self_heal(c, name, "manual syncs only", mode="auto-sync", dry_run=False)
    try:
        bad = _bad_commit(live["work"])
        refresh(c, name)
        assert _eventually(lambda: c.raw_application(name)["status"]["sync"]["status"] == "OutOfSync", 60)
        dry = sync(c, name, bad)
        assert dry["dry_run"].iloc[0] and "operation" not in c.raw_application(name)
        rec = sync(c, name, bad, dry_run=False)
        assert rec["changed"].iloc[0] and rec["after"].iloc[0] == bad
        tr = wait_converged(c, name, bad, timeout="2m")
        assert tr["event"].iloc[-1] == "converged"
        assert c.raw_application(name)["status"]["operationState"]["syncResult"]["revision"] == bad
        again = sync(c, name, bad, dry_run=False)
        assert not again["changed"].iloc[0] and "already Synced" in again["note"].iloc[0]
        assert "operation" not in c.raw_application(name)
    finally:
        resume_self_heal(c, name, dry_run=False)


@pytest.mark.sandbox
def test_incident_story_end_to_end(live: dict) -> None:
    """Bad commit deploys; pause; the hot-fix stays; revert; converged at the revert; resume; edits heal again."""
    c, name, w = live["cluster"], live["name"], live["work"]
    bad = _deploy_bad(live)
    pause_self_heal(c, name, "INC-9: hot-fix replicas while we revert", dry_run=False)
    _edit(live, 4)  # the hot-fix
    time.sleep(12)  # longer than self-heal would take (it heals within seconds when on)
    assert _replicas(live) == 4
    rec = revert(w.path, bad, incident="INC-9", dry_run=False)
    new = rec["after"].iloc[0]
    pushed = rec["when"].iloc[0]
    refresh(c, name)
    tr = wait_converged(c, name, new, timeout="2m", pushed_at=pushed)
    assert list(tr["event"]) == ["pushed", "detected", "synced", "healthy", "converged"]
    assert tr["time"].is_monotonic_increasing
    raw = c.raw_application(name)
    assert raw["status"]["sync"]["revision"] == new and raw["status"]["operationState"]["phase"] == "Succeeded"
    resume_self_heal(c, name, dry_run=False)
    assert _eventually(lambda: _replicas(live) == 2)  # the hot-fix is healed back to git once resumed
    _edit(live, 7)  # a later manual edit
    assert _eventually(lambda: _replicas(live) == 2)


@pytest.mark.sandbox
def test_pause_warns_about_a_self_healing_parent(live: dict) -> None:
    c, name = live["cluster"], live["name"]
    parent = unique("a-parent")
    pm = application_manifest(parent, f"file://{live['origin']}", "apps", "argocd")
    pm["spec"]["syncPolicy"] = {"automated": {"prune": False, "selfHeal": True}}
    apply_application(live["api"], pm)
    from kubernetes import client

    custom = client.CustomObjectsApi(live["api"])
    custom.patch_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        "argocd",
        "applications",
        name,
        {"metadata": {"labels": {"argocd.argoproj.io/instance": parent}}},
    )
    try:
        rec = pause_self_heal(c, name, "test", dry_run=True)
        assert f"managed by parent Application {parent}" in rec["note"].iloc[0]
        assert "pause_self_heal(cluster, " in rec["note"].iloc[0]
    finally:
        remove_app(live["api"], parent)


@pytest.mark.sandbox
def test_rollback_runbook_end_to_end_and_no_secrets_out(live: dict, sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`gitops-nb runbook run rollback-by-revert`: what changed, pause, revert, verify, resume, report; twice.

    Known secret values are planted in git, in the cluster and in the sandbox's credentials;
    none may appear in any file the runbook writes, nor in a recording made meanwhile (which keeps
    only that the Secrets changed).
    """
    import base64
    import sys

    from kubernetes import client

    from gitops_nb.cluster.recorder import Recorder
    from gitops_nb.cluster.store import Store

    c, name, w = live["cluster"], live["name"], live["work"]
    planted = {
        "git": "PLANTED-git-secret-3f9a1c",
        "cluster": "PLANTED-cluster-secret-8d2e7b",
        "token": (sandbox.state / "secrets" / "token").read_text().strip(),
        "rotated": "PLANTED-rotated-secret-51c0de",
    }
    store = Store(tmp_path / "recording")
    recorder = Recorder([None], store, kubeconfig=str(sandbox.kubeconfig), flush_seconds=0.5).start()
    w.commit(
        "add db secret (do not do this at home)",
        when=pd.Timestamp.now(tz="UTC"),
        files={
            "apps/shop/base/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n"
            f"  password: {planted['git']}\n",
            "apps/shop/base/kustomization.yaml": "resources:\n- deployment.yaml\n- secret.yaml\n",
        },
    )
    client.CoreV1Api(live["api"]).create_namespaced_secret(
        live["ns"],
        client.V1Secret(metadata=client.V1ObjectMeta(name="api-key"), string_data={"key": planted["cluster"]}),
    )
    time.sleep(1)  # recorded as created, then as changed
    client.CoreV1Api(live["api"]).patch_namespaced_secret(
        "api-key", live["ns"], {"stringData": {"key": planted["rotated"]}}, field_manager="kubectl-edit"
    )
    bad = _deploy_bad(live)
    incidents = tmp_path / "incidents"
    cmd = [
        sys.executable,
        "-m",
        "gitops_nb",
        "runbook",
        "run",
        "rollback-by-revert",
        "--incident",
        "INC-42",
        "--root",
        str(incidents),
        "-p",
        f"repo_path={w.path}",
        "-p",
        f"sha={bad[:10]}",
        "-p",
        f"app={name}",
        "-p",
        "kube_context=gitops-nb-sandbox",
        "-p",
        f"kubeconfig={sandbox.kubeconfig}",
        "-p",
        "at=now",
        "-p",
        "window=30m",
        "-p",
        "incident=INC-42",
        "-p",
        "confirm=true",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = incidents / "INC-42"
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    assert names == ["01-what_changed.ipynb", "02-revert_and_verify.ipynb", "03-post_incident_report.ipynb"]
    from gitops_nb import incident_records, incident_summary

    assert list(incident_summary(folder)["status"]) == ["succeeded"] * 3
    recs = incident_records(folder)
    assert list(recs["action"]) == ["pause-self-heal", "revert", "refresh", "resume-self-heal"]
    assert not recs["dry_run"].any() and recs["changed"].all()
    new = recs.set_index("action").loc["revert", "after"]
    assert c.raw_application(name)["status"]["sync"]["revision"] == new
    assert _policy(live)["automated"]["selfHeal"] is True  # resumed
    html = (folder / "03-post_incident_report.html").read_text()
    assert "pause-self-heal" in html and "g.incident_summary" not in html  # records shown, code hidden
    # a re-run after the fact is safe: nothing is reverted twice
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    recs = incident_records(folder)
    reverts = recs[recs["action"] == "revert"]
    assert list(reverts["after"]) == [new, new] and not reverts["changed"].iloc[-1]
    assert git(live["origin"], "rev-parse", "main").strip() == new
    # no secret anywhere in what the runbook wrote (notebooks, HTML, CSV, Parquet, JSON)
    forms = [v for s in planted.values() for v in (s, base64.b64encode(s.encode()).decode())]
    for f in folder.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for s in forms:
                assert s.encode() not in data, f"a planted secret leaked into {f}"
    assert all(s not in first.stdout + first.stderr for s in forms)
    # the recording: that the Secret changed (which key, who), never a value
    recorder.stop()
    rows = store.read(kinds=["Secret"]).to_pandas()
    key = rows[(rows["name"] == "api-key") & (rows["event"] == "MODIFIED")]
    assert len(key) >= 1 and json.loads(key["changes"].iloc[-1]) == [["data.key", None, None]], rows.to_string()
    assert key["manager"].iloc[-1] == "kubectl-edit"
    for f in (tmp_path / "recording").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for s in forms:
                assert s.encode() not in data, f"a planted secret leaked into the recording: {f}"
    text = store.read().to_pandas().astype(str).to_csv()  # decompressed: every column of every row
    assert not [s for s in forms if s in text], "a planted secret leaked into the recording"
    # an incident report from the recording keeps its evidence (recording/: the Secrets' rows too), no value
    from gitops_nb import investigate

    report = investigate(w.path, at="now", window="30m", recording=str(tmp_path / "recording")).save(tmp_path / "rep")
    saved = Store(report / "recording")
    assert len(saved.read(kinds=["Secret"]).to_pandas().query("name == 'api-key'")) >= 1
    text = saved.read().to_pandas().astype(str).to_csv()
    assert not [s for s in forms if s in text], "a planted secret leaked into a report's saved recording"
    for f in report.rglob("*"):
        if f.is_file():
            assert not [s for s in forms if s.encode() in f.read_bytes()], f"a planted secret leaked into {f}"


def test_applications_show_who_paused_and_resume_expired_resumes_only_expired_pauses(live: dict) -> None:
    """applications() shows the pause (who, why, until when, expired); resume_expired is a dry run first."""
    import time

    from gitops_nb import resume_expired

    c, name = live["cluster"], live["name"]
    before = c.raw_application(name)["spec"]["syncPolicy"]
    pause_self_heal(c, name, "INC-9: hot-patch", expires="2s", dry_run=False)
    row = c.applications().set_index("name").loc[name]
    assert row["paused_by"] and row["pause_reason"] == "INC-9: hot-patch" and not row["self_heal"]
    assert row["pause_expires"] > row["paused_at"] and str(row["pause_expires"].tz) == "UTC"
    time.sleep(3)
    assert c.applications().set_index("name").loc[name, "pause_expired"]
    plan = resume_expired(c)
    mine = plan[plan["target"] == name]
    assert len(mine) == 1 and mine["dry_run"].iloc[0] and not mine["changed"].iloc[0]
    assert "expired at" in mine["note"].iloc[0]
    assert c.raw_application(name)["spec"]["syncPolicy"] != before  # the dry run changed nothing
    done = resume_expired(c, dry_run=False)
    assert done[done["target"] == name]["changed"].iloc[0]
    assert c.raw_application(name)["spec"]["syncPolicy"] == before
    row = c.applications().set_index("name").loc[name]
    assert row["paused_by"] is None and not row["pause_expired"] and row["self_heal"]
    assert (resume_expired(c, dry_run=False)["target"] == name).sum() == 0  # nothing left to resume


HOOK = """apiVersion: v1
kind: Pod
metadata:
  name: migrate
  annotations:
    argocd.argoproj.io/hook: PreSync
spec:
  restartPolicy: Never
  containers:
  - name: migrate
    image: ghcr.io/acme/migrate:1
"""


def test_an_operation_stuck_on_a_hook_can_be_terminated(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A PreSync hook Pod that never finishes (kwok keeps it Running) holds the sync; terminate it."""
    from gitops_nb import terminate_operation

    origin, w = _origin_and_clone(tmp_path)
    w.commit(
        "add a migration hook",
        when=pd.Timestamp.now(tz="UTC"),
        files={
            "apps/shop/overlays/production/migrate-hook.yaml": HOOK,
            OVERLAY: (w.path / OVERLAY).read_text().replace("resources:\n", "resources:\n- migrate-hook.yaml\n"),
        },
    )
    w.git("push", "-q", "origin", "HEAD:main")
    name, ns = unique("a-hook"), unique("a-ns")
    api = sandbox.api_client()
    apply_application(api, application_manifest(name, f"file://{origin}", "apps/shop/overlays/production", ns))
    c = Cluster(kubeconfig=str(sandbox.kubeconfig))
    try:
        refresh(c, name)

        def running() -> bool:
            op = (c.raw_application(name).get("status") or {}).get("operationState") or {}
            return op.get("phase") == "Running" and "hook" in (op.get("message") or "")

        assert _eventually(running, 90), c.raw_application(name).get("status", {}).get("operationState")
        plan = terminate_operation(c, name)
        assert plan["dry_run"].iloc[0] and not plan["changed"].iloc[0] and "hook" in plan["note"].iloc[0]
        assert running()  # the dry run changed nothing
        rec = terminate_operation(c, name, dry_run=False)
        assert rec["changed"].iloc[0] and rec["after"].iloc[0] == "Terminating"

        def terminated() -> bool:
            op = (c.raw_application(name).get("status") or {}).get("operationState") or {}
            return op.get("phase") in ("Failed", "Error") and "terminat" in (op.get("message") or "").lower()

        assert _eventually(terminated, 60), c.raw_application(name).get("status", {}).get("operationState")
        again = terminate_operation(c, name, dry_run=False)
        assert not again["changed"].iloc[0] and again["note"].iloc[0] == "no operation is running"
    finally:
        remove_app(api, name, ns)


def test_an_unknown_app_under_plain_papermill_ends_in_the_typed_message(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The notebook's error is the typed message, not three chained tracebacks with HTTP headers."""
    import sys

    nb = Path(__file__).resolve().parent.parent / "notebooks" / "pause_self_heal.ipynb"
    res = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), str(nb), str(tmp_path / "out.ipynb"), "-p", "app", "nope-app",
         "-p", "reason", "x", "-p", "kube_context", "gitops-nb-sandbox", "-p", "kubeconfig", str(sandbox.kubeconfig)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "UnknownAppError: no Application 'nope-app'" in out.strip().splitlines()[-1]
    assert "HTTP response headers" not in out and "direct cause" not in out
