"""Right on real Argo CD setups: the shapes of Applications that real installations have, on the sandbox.

Each test is named after its item of the issue "Right on real Argo CD setups" and fails on the code
before its fix.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gitops_nb import (
    ActionError,
    ArgoCDNotFoundError,
    Cluster,
    ConvergenceError,
    InputError,
    pause_self_heal,
    refresh,
    resume_self_heal,
    sync,
    wait_converged,
)
from gitops_nb.cluster.argocd import application_manifest, apply_application
from gitops_nb.investigate.evidence_rows import cluster_rows
from gitops_nb.sandbox.demo import RepoWriter, bump_tag

from .conftest import app_files, git, remove_app, unique

pytestmark = pytest.mark.sandbox

SHOP = "apps/shop/overlays/production"
CART = "apps/cart/overlays/production"


class Env:
    """An origin repo Argo CD reads (file://), an engineer's clone, the sandbox's cluster; apps removed after."""

    def __init__(self, sandbox: Any, tmp: Path) -> None:
        seed = RepoWriter(tmp / "seed")
        seed.commit(
            "initial",
            when=pd.Timestamp.now(tz="UTC"),
            files={**app_files("shop", "1.0.0", env="production"), **app_files("cart", "1.0.0", env="production")},
        )
        self.origin = tmp / "origin.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(seed.path), str(self.origin)], check=True)
        subprocess.run(["git", "clone", "-q", str(self.origin), str(tmp / "work")], check=True)
        self.work = RepoWriter(tmp / "work")
        self.api = sandbox.api_client()
        self.cluster = Cluster(kubeconfig=str(sandbox.kubeconfig))
        self.apps: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"file://{self.origin}"

    def head(self) -> str:
        return git(self.work.path, "rev-parse", "HEAD").strip()

    def push(self) -> str:
        self.work.git("push", "-q", "origin", "HEAD:main")
        return self.head()

    def app(self, prefix: str, path: str = SHOP, **kw: Any) -> tuple[str, dict[str, Any]]:
        """A new Application (``application_manifest``'s defaults, ``kw`` passed on); not yet applied."""
        name, ns = unique(prefix), unique(f"{prefix}-ns")
        self.apps.append((name, ns))
        return name, application_manifest(name, self.url, path, ns, **kw)

    def apply(self, m: dict[str, Any]) -> str:
        apply_application(self.api, m)
        refresh(self.cluster, m["metadata"]["name"])
        return str(m["metadata"]["name"])

    def policy(self, name: str) -> dict[str, Any]:
        return dict(self.cluster.raw_application(name)["spec"].get("syncPolicy") or {})

    def set_policy(self, name: str, policy: dict[str, Any]) -> None:
        self.cluster.patch_application(name, [{"op": "replace", "path": "/spec/syncPolicy", "value": policy}])


@pytest.fixture
def env(sandbox: Any, tmp_path: Path) -> Iterator[Env]:
    e = Env(sandbox, tmp_path)
    yield e
    for name, ns in e.apps:
        remove_app(e.api, name, ns)


def _shape(policy: dict[str, Any]) -> tuple[Any, ...]:
    """What a syncPolicy does: Argo CD's own writes drop false values (``selfHeal: false``)."""
    auto = policy.get("automated")
    return (
        None if auto is None else (auto.get("prune", False), auto.get("selfHeal", False)),
        policy.get("syncOptions"),
    )


def _row(c: Cluster, name: str) -> Any:
    apps = c.applications()
    return apps.set_index("name").loc[name]


def test_item1_automated_presence_counts_and_enabled_false_is_off(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s1")
    m["spec"]["syncPolicy"]["automated"] = {}  # auto-sync on, no prune, no self-heal
    env.apply(m)
    assert env.policy(name)["automated"] == {}
    row = _row(c, name)
    assert row["automated"] and not row["self_heal"]
    assert not pause_self_heal(c, name, "freeze", dry_run=False)["changed"].iloc[0]  # self-heal is off: right
    paused = pause_self_heal(c, name, "freeze", mode="auto-sync", dry_run=False)
    assert paused["changed"].iloc[0], paused["note"].iloc[0]
    assert "automated" not in env.policy(name) and not _row(c, name)["automated"]
    anns = c.raw_application(name)["metadata"]["annotations"]
    rec = resume_self_heal(c, name, dry_run=False)
    assert env.policy(name).get("automated") == {}, (paused.to_dict("records"), anns, rec.to_dict("records"))
    # Argo CD 3.x: enabled: false turns auto-sync (and so self-heal) off whatever else is set
    env.set_policy(name, {"automated": {"enabled": False, "selfHeal": True, "prune": True}})
    row = _row(c, name)
    assert not row["automated"] and not row["self_heal"] and not row["prune"]
    for mode in ("self-heal", "auto-sync"):
        rec = pause_self_heal(c, name, "freeze", mode=mode, dry_run=False)
        assert not rec["changed"].iloc[0] and "nothing to pause" in rec["note"].iloc[0]
        assert "enabled: false" in rec["note"].iloc[0]
    assert env.policy(name) == {"automated": {"enabled": False, "selfHeal": True, "prune": True}}


def test_item2_multi_source_app_waits_reads_and_syncs(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s2")
    src = m["spec"].pop("source")
    m["spec"]["sources"] = [src, {**src, "path": CART}]
    env.apply(m)
    head = env.head()
    tr = wait_converged(c, name, head, timeout="90s")
    assert tr["event"].iloc[-1] == "converged"
    ops = c.operations().set_index("app").loc[name]
    assert ops["revision"] == head and list(ops["revisions"]) == [head, head]
    assert _row(c, name)["operation_revision"] == head
    hist = c.app_history(name)
    assert hist["source"].iloc[-1]["repo_url"] == env.url and hist["source"].iloc[-1]["path"] == SHOP
    # a manual sync sends one revision per source, as Argo CD's API server does
    pause_self_heal(c, name, "manual syncs", mode="auto-sync", dry_run=False)
    new = bump_tag(env.work, "shop", "production", "1.1.0")
    env.push()
    refresh(c, name)
    rec = sync(c, name, new, dry_run=False)
    assert rec["changed"].iloc[0]
    assert wait_converged(c, name, new, timeout="90s")["event"].iloc[-1] == "converged"
    sent = c.raw_application(name)["status"]["operationState"]["operation"]
    assert sent["sync"].get("revisions") == [new, new] and not sent["sync"].get("revision")
    assert sent["initiatedBy"].get("username")  # ours, not an auto-sync
    assert not sync(c, name, new, dry_run=False)["changed"].iloc[0]  # already there
    resume_self_heal(c, name, dry_run=False)


def test_item4_comparison_error_is_shown_and_fails_the_wait(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s4")
    env.apply(m)
    wait_converged(c, name, env.head(), timeout="90s")
    since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)
    env.work.commit(
        "broken overlay", when=pd.Timestamp.now(tz="UTC"), files={f"{SHOP}/kustomization.yaml": "resources: [\n"}
    )
    bad = env.push()
    refresh(c, name)
    t = time.monotonic()
    with pytest.raises(ConvergenceError, match="ComparisonError") as e:
        wait_converged(c, name, bad, timeout="90s")
    assert time.monotonic() - t < 60, "a manifest-generation error must fail the wait, not wait out its timeout"
    assert "kustomization" in str(e.value).lower() or "yaml" in str(e.value).lower()
    conds = _row(c, name)["conditions"]
    assert any(x["type"] == "ComparisonError" for x in conds)
    rows = cluster_rows(c, since, "now", [name])
    cond = rows[rows["kind"] == "app-condition"]
    assert len(cond) and (cond["argocd_app"] == name).all() and "ComparisonError" in cond["summary"].iloc[0]


def test_item5_degraded_names_the_resource_and_reason(env: Env) -> None:
    c = env.cluster
    env.work.write(
        {
            "apps/stuck/deployment.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 1\n"
                "  progressDeadlineSeconds: 5\n  selector:\n    matchLabels: {app: stuck}\n  template:\n"
                "    metadata:\n      labels: {app: stuck}\n    spec:\n      nodeSelector: {no-such-node: 'true'}\n"
                "      containers:\n      - name: stuck\n        image: ghcr.io/acme/stuck:1\n"
            )
        }
    )
    env.work.commit("a Deployment that cannot be scheduled", when=pd.Timestamp.now(tz="UTC"))
    head = env.push()
    name, m = env.app("s5", path="apps/stuck")
    env.apply(m)
    with pytest.raises(ConvergenceError) as e:
        wait_converged(c, name, head, timeout="100s")
    msg = str(e.value)
    assert "Deployment/stuck" in msg and "progress deadline" in msg, msg
    res = c.app_resources(name).set_index("kind").loc["Deployment"]
    assert res["health_status"] == "Degraded" and "progress deadline" in res["health_message"]


def test_item8_sync_carries_the_apps_sync_options_and_retry(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s8", automated=False)  # CreateNamespace=true, no auto-sync: the namespace does not exist
    retry = {"limit": 2, "backoff": {"duration": "1s", "factor": 2, "maxDuration": "10s"}}
    m["spec"]["syncPolicy"]["retry"] = retry
    env.apply(m)
    head = env.head()
    sync(c, name, head, dry_run=False)
    assert wait_converged(c, name, head, timeout="90s")["event"].iloc[-1] == "converged"
    op = c.raw_application(name)["status"]["operationState"]["operation"]
    assert "CreateNamespace=true" in op["sync"]["syncOptions"] and op["retry"]["limit"] == 2


def test_item9_wait_on_a_short_sha_or_branch(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s9")
    env.apply(m)
    head = env.head()
    assert wait_converged(c, name, head[:8], timeout="90s", repo=env.work.path)["event"].iloc[-1] == "converged"
    assert wait_converged(c, name, "main", timeout="30s", repo=env.work.path)["event"].iloc[-1] == "converged"
    for rev in (head[:8], "main"):
        t = time.monotonic()
        with pytest.raises(InputError, match="full 40-hex"):
            wait_converged(c, name, rev, timeout=5)
        assert time.monotonic() - t < 3


def test_item10_resume_after_the_policy_changed_while_paused(env: Env) -> None:
    c = env.cluster
    name, m = env.app("s10")
    env.apply(m)
    original = env.policy(name)
    pause_self_heal(c, name, "hot-fix", dry_run=False)
    theirs = {**env.policy(name), "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]}
    env.set_policy(name, theirs)  # someone's change while paused
    with pytest.raises(ActionError, match="changed while paused") as e:
        resume_self_heal(c, name, dry_run=False)
    assert "ServerSideApply=true" in str(e.value) and '"selfHeal": true' in str(e.value)
    assert _shape(env.policy(name)) == _shape(theirs)  # nothing changed: still paused
    assert "gitops-nb.io/paused-sync-policy" in c.raw_application(name)["metadata"]["annotations"]
    rec = resume_self_heal(c, name, on_conflict="keep-current", dry_run=False)
    assert rec["changed"].iloc[0] and "kept the current" in rec["note"].iloc[0]
    assert _shape(env.policy(name)) == _shape(theirs)
    assert "gitops-nb.io/paused-sync-policy" not in c.raw_application(name)["metadata"].get("annotations", {})
    env.set_policy(name, original)
    again = pause_self_heal(c, name, "hot-fix again", dry_run=False)
    assert again["changed"].iloc[0], again.to_dict("records")
    assert "gitops-nb.io/paused-sync-policy" in c.raw_application(name)["metadata"]["annotations"]
    env.set_policy(name, {**env.policy(name), "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]})
    rec = resume_self_heal(c, name, on_conflict="restore", dry_run=False)
    assert "restored the one from before the pause" in rec["note"].iloc[0]
    assert _shape(env.policy(name)) == _shape(original)
    # an untouched pause resumes as before, without a conflict
    pause_self_heal(c, name, "plain", dry_run=False)
    assert "changed while paused" not in resume_self_heal(c, name, dry_run=False)["note"].iloc[0]
    assert _shape(env.policy(name)) == _shape(original)


def test_item6_wrong_argocd_namespace_says_so(env: Env, sandbox: Any) -> None:
    _name, m = env.app("s6")
    apply_application(env.api, m)  # at least one Application, in namespace argocd
    wrong = Cluster(kubeconfig=str(sandbox.kubeconfig), argocd_namespace="argo-cd")
    for read in (wrong.applications, wrong.argocd_frames):
        with pytest.raises(ArgoCDNotFoundError, match="no Applications in namespace 'argo-cd'") as e:
            read()
        assert "argocd" in str(e.value).split("hold some")[0] and "argocd_namespace='argocd'" in str(e.value)
    assert len(env.cluster.applications())  # the right namespace reads as before
