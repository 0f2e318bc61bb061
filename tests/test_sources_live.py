"""Every Argo CD source on the real Argo CD (the sandbox): ``what_changed`` with a cluster maps each
commit to the Applications built from its files, through the cluster's Application specs.

Each test builds a real git repo that Argo CD reads over ``file://``: a Helm app with two values
files, a multi-source app with a ``$values`` ref, an ApplicationSet's git directory generator, an
app-of-apps (and pausing self-heal on one of its children).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gitops_nb import Cluster, DeployRepo, pause_self_heal, resume_self_heal, what_changed
from gitops_nb.cluster.argocd import application_manifest, apply_application, refresh_app, wait_app
from gitops_nb.sandbox.control import Sandbox
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import app_files, remove_app, unique
from .test_render import _appset, _chart

pytestmark = pytest.mark.sandbox

GROUP, VERSION = "argoproj.io", "v1alpha1"


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _commit_row(tl: pd.DataFrame, sha: str) -> Any:
    rows = tl[(tl["kind"] == "commit") & (tl["sha"] == sha)]
    assert len(rows) == 1, tl[["kind", "sha", "summary", "app"]]
    return rows.iloc[0]


def _eventually(check: Callable[[], bool], timeout: float = 120, every: float = 1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


class Live:
    """A deploy-config repo Argo CD reads over file://, the sandbox's API and a Cluster; apps removed after."""

    def __init__(self, sandbox: Sandbox, tmp: Path) -> None:
        self.writer = RepoWriter(tmp / "deploy-config")
        self.url = f"file://{self.writer.path}"
        self.api = sandbox.api_client()
        self.cluster = Cluster(kubeconfig=str(sandbox.kubeconfig))
        self.cleanup: list[tuple[str, str | None]] = []

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        return self.writer.commit(message, when=_now(), files=files)

    def apply(self, manifest: dict[str, Any], ns: str | None) -> str:
        self.cleanup.append((manifest["metadata"]["name"], ns))
        apply_application(self.api, manifest)
        return str(manifest["metadata"]["name"])

    def raw(self, name: str) -> dict[str, Any]:
        return self.cluster.raw_application(name)

    def what_changed(self) -> pd.DataFrame:
        return what_changed(DeployRepo(self.writer.path), "now", "15m", cluster=self.cluster, after="5m")


@pytest.fixture
def live(sandbox: Sandbox, tmp_path: Path) -> Iterator[Live]:
    lv = Live(sandbox, tmp_path)
    yield lv
    for name, ns in reversed(lv.cleanup):
        remove_app(lv.api, name, ns)


def _helm_manifest(lv: Live, prefix: str) -> tuple[str, str, dict[str, Any]]:
    name, ns = unique(prefix), unique(f"{prefix}-ns")
    m = application_manifest(name, lv.url, "charts/web", ns)
    return name, ns, m


def test_a_helm_values_image_tag_bump_names_the_helm_app_and_ranks_first(live: Live) -> None:
    first = live.commit("web chart", _chart("1.0.0"))
    name, ns, m = _helm_manifest(live, "t-lh")
    m["spec"]["source"]["helm"] = {"releaseName": "web", "valueFiles": ["values.yaml", "../../envs/prod/values.yaml"]}
    live.apply(m, ns)
    wait_app(live.api, name, revision=first, timeout=180)
    live.commit("docs", {"README.md": "# deploy-config\n"})
    bump = live.commit("web 1.1.0", {"envs/prod/values.yaml": _chart("1.1.0")["envs/prod/values.yaml"]})
    refresh_app(live.api, name)
    wait_app(live.api, name, revision=bump, timeout=180)
    tl = live.what_changed()
    row = _commit_row(tl, bump)
    assert row["apps"] == [name] and row["argocd_app"] == name  # git alone knows no app of envs/prod/values.yaml
    assert "image.tag" in row["detail"] and "image.tag (image)" in row["why"]
    assert row["rank"] == 1 and pd.notna(row["deployed_at"]) and f"to {name}" in row["why"]
    assert _commit_row(tl, first)["argocd_app"] == name


def test_a_multi_source_apps_values_ref_change_credits_the_app(live: Live) -> None:
    first = live.commit("web chart", _chart("1.0.0"))
    name, ns, m = _helm_manifest(live, "t-lm")
    chart = m["spec"].pop("source")
    chart["helm"] = {"releaseName": "web", "valueFiles": ["values.yaml", "$values/envs/prod/values.yaml"]}
    m["spec"]["sources"] = [chart, {"repoURL": live.url, "targetRevision": "main", "ref": "values"}]
    live.apply(m, ns)
    wait_app(live.api, name, revision=first, timeout=180)
    bump = live.commit("web 1.2.0", {"envs/prod/values.yaml": _chart("1.2.0")["envs/prod/values.yaml"]})
    refresh_app(live.api, name)
    wait_app(live.api, name, revision=bump, timeout=180)
    assert live.cluster.applications().set_index("name").loc[name, "sources"][1]["ref"] == "values"
    row = _commit_row(live.what_changed(), bump)
    assert row["apps"] == [name] and row["argocd_app"] == name
    assert "image.tag" in row["detail"] and row["rank"] == 1


def test_an_applicationsets_new_directory_becomes_an_app_named_once_argo_cd_made_it(live: Live) -> None:
    from kubernetes import client

    suffix = unique("ls")[3:]
    appset = _appset(f"t-lset-{suffix}", live.writer.path, suffix)
    files = {k: v for k, v in app_files("alpha", "1.0").items() if "/base/" in k}
    import yaml

    live.commit("alpha, and the ApplicationSet", {**files, "appsets/apps.yaml": yaml.safe_dump(appset)})
    custom = client.CustomObjectsApi(live.api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "argocd", "applicationsets", appset)
    live.cleanup += [(f"alpha-{suffix}", f"alpha-{suffix}"), (f"gamma-{suffix}", f"gamma-{suffix}")]

    def names() -> set[str]:
        return set(live.cluster.applications()["name"])

    try:
        assert _eventually(lambda: f"alpha-{suffix}" in names())
        gamma = live.commit("a new app: gamma", {k: v for k, v in app_files("gamma", "1.0").items() if "/base/" in k})
        repo = DeployRepo(live.writer.path)
        changes = repo.app_changes(gamma).set_index("app")
        assert changes.loc[f"gamma-{suffix}", "change"] == "added"  # from the ApplicationSet in git
        assert _eventually(lambda: f"gamma-{suffix}" in names())  # the controller made it
        row = _commit_row(live.what_changed(), gamma)
        assert row["apps"] == [f"gamma-{suffix}"] and row["argocd_app"] == f"gamma-{suffix}"
        assert f"alpha-{suffix}" not in row["argocd_app"]
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "argocd", "applicationsets", appset["metadata"]["name"])


def _child(lv: Live, name: str, ns: str, values: str, revision: str = "main") -> dict[str, Any]:
    m = application_manifest(name, lv.url, "charts/web", ns, revision=revision)
    m["metadata"].pop("labels")
    m["spec"]["source"]["helm"] = {"releaseName": "web", "valueFiles": ["values.yaml", f"../../{values}"]}
    return m


def test_app_of_apps_a_childs_change_names_that_child_and_its_self_heal_pauses_and_resumes(live: Live) -> None:
    import yaml

    a, b = unique("t-child-a"), unique("t-child-b")
    chart = _chart("1.0.0")
    children = {
        "argocd/children/a.yaml": yaml.safe_dump(_child(live, a, a, "envs/a/values.yaml")),
        "argocd/children/b.yaml": yaml.safe_dump(_child(live, b, b, "envs/b/values.yaml")),
    }
    first = live.commit(
        "web chart, two child apps",
        {
            **chart,
            "envs/a/values.yaml": chart["envs/prod/values.yaml"],
            "envs/b/values.yaml": chart["envs/prod/values.yaml"],
            **children,
        },
    )
    parent = unique("t-parent")
    live.cleanup += [(a, a), (b, b)]
    live.apply(application_manifest(parent, live.url, "argocd/children", "argocd"), None)
    wait_app(live.api, parent, revision=first, timeout=180)
    wait_app(live.api, a, revision=first, timeout=180)
    # a child's values: that child, not its sibling nor the parent
    values = live.commit("child a: web 1.3.0", {"envs/a/values.yaml": _chart("1.3.0")["envs/prod/values.yaml"]})
    # a child's source (its targetRevision, in the parent's path): that child, and the parent that holds it
    source = live.commit(
        "child b: track HEAD",
        {"argocd/children/b.yaml": yaml.safe_dump(_child(live, b, b, "envs/b/values.yaml", "HEAD"))},
    )
    tl = live.what_changed()
    assert _commit_row(tl, values)["argocd_app"] == a and _commit_row(tl, values)["apps"] == [a]
    assert _commit_row(tl, source)["argocd_app"] == ", ".join(sorted([b, parent]))
    # no new commit from here on: with self-heal paused the parent still auto-syncs a new revision of its path
    wait_app(live.api, parent, revision=source, timeout=180)
    # pausing the child while the parent self-heals: the parent would undo it, and the note says so
    original = {n: live.raw(n)["spec"]["syncPolicy"] for n in (parent, a)}
    note = pause_self_heal(live.cluster, a, "incident", dry_run=True)["note"].iloc[0]
    assert f"managed by parent Application {parent}, which self-heals" in note
    # the parent first, then the child: the pause sticks
    assert pause_self_heal(live.cluster, parent, "incident", dry_run=False)["changed"].iloc[0]
    rec = pause_self_heal(live.cluster, a, "incident", dry_run=False)
    assert rec["changed"].iloc[0] and "managed by parent" not in rec["note"].iloc[0]
    refresh_app(live.api, parent, hard=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # (Argo CD drops a false selfHeal when it rewrites the Application to start an auto-sync: absent is false)
        assert live.raw(a)["spec"]["syncPolicy"]["automated"].get("selfHeal", False) is False, (
            "the parent undid the pause"
        )
        time.sleep(2)
    assert "gitops-nb.io/paused-sync-policy" in live.raw(a)["metadata"]["annotations"]
    resume_self_heal(live.cluster, a, dry_run=False)
    resume_self_heal(live.cluster, parent, dry_run=False)
    assert {n: live.raw(n)["spec"]["syncPolicy"] for n in (parent, a)} == original
    for n in (parent, a):
        assert "gitops-nb.io/paused-sync-policy" not in (live.raw(n)["metadata"].get("annotations") or {})
