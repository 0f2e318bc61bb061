"""The culprit score, one rule at a time (gitops_nb.investigate.scoring)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import DeployRepo, RowKind, Weights, culprits, schema, what_changed
from gitops_nb.investigate.fields import FieldRef, field_class
from gitops_nb.investigate.scoring import (
    CommitFacts,
    breadth,
    commit_score,
    edit_score,
    field_weight,
    is_tooling_path,
    proximity,
    rank,
)
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import FixtureRepo


def test_proximity_halves_every_half_life() -> None:
    assert proximity(0) == 1.0
    assert proximity(30) == pytest.approx(0.5) and proximity(60) == pytest.approx(0.25)
    assert proximity(30, Weights(half_life_min=60)) == pytest.approx(math.sqrt(0.5))


def test_breadth_grows_with_the_log_of_apps() -> None:
    assert breadth(0) == 1.0 and breadth(1) == 2.0 and breadth(3) == 3.0


def test_the_most_telling_field_counts() -> None:
    assert field_weight(["images[api].newTag", "spec.replicas"]) == (1.0, "images[api].newTag (image)")
    assert field_weight(["spec.replicas", "metadata.labels.team"]) == (0.8, "spec.replicas (scale)")
    assert field_weight(["data.LOG_LEVEL"]) == (0.5, "data.LOG_LEVEL")
    assert field_weight([FieldRef("data.LOG_LEVEL", kind="ConfigMap", via="manifest")]) == (
        0.7,
        "data.LOG_LEVEL (env)",
    )
    assert field_weight([]) == (0.0, "")


K, M, P, J, Y = "kustomization", "manifest", "patch", "json6902", "yaml"
_DEPLOY = {"kind": "Deployment", "via": M, "path": "apps/api/base/deployment.yaml"}
_KUST = {"kind": "Kustomization", "via": K, "path": "apps/api/overlays/prod/kustomization.yaml"}
_VALUES = {"kind": None, "via": Y, "path": "charts/api/values.yaml"}
_CHART = {"kind": None, "via": Y, "path": "charts/api/Chart.yaml"}
_HR = {"kind": "HelmRelease", "via": M, "path": "apps/api/release.yaml"}
_CRD = {"kind": "CustomResourceDefinition", "via": M, "path": "crds/things.yaml"}
_CRD_FIELD = "spec.versions[v1].schema.openAPIV3Schema.properties.images.items.properties.newTag.description"


@pytest.mark.parametrize(
    ("field", "ctx", "cls"),
    [
        # image
        ("images[ghcr.io/acme/api].newTag", _KUST, "image"),
        ("images[ghcr.io/acme/api].newName", _KUST, "image"),
        ("images[ghcr.io/acme/api].digest", _KUST, "image"),
        ("spec.template.spec.containers[app].image", _DEPLOY, "image"),
        ("spec.template.spec.initContainers[migrate].image", _DEPLOY, "image"),
        ("spec.jobTemplate.spec.template.spec.containers[job].image", {**_DEPLOY, "kind": "CronJob"}, "image"),
        ("replace /spec/template/spec/containers/0/image", {**_DEPLOY, "via": J}, "image"),
        ("image.tag", _VALUES, "image"),
        ("image.repository", _VALUES, "image"),
        ("image.digest", _VALUES, "image"),
        ("worker.image.tag", _VALUES, "image"),
        ("image", _VALUES, "image"),  # image: repo:tag
        ("spec.values.image.tag", _HR, "image"),
        ("spec.source.helm.parameters[image.tag].value", {"kind": "Application", "via": M}, "image"),
        ("spec.images[ghcr.io/acme/api].newTag", {"kind": "Kustomization", "via": M}, "image"),
        # chart-version
        ("version", _CHART, "chart-version"),
        ("appVersion", _CHART, "chart-version"),
        ("dependencies[redis].version", _CHART, "chart-version"),
        ("spec.chart.spec.version", _HR, "chart-version"),
        ("spec.chart.spec.version", {**_HR, "via": P}, "chart-version"),
        ("spec.ref.tag", {"kind": "OCIRepository", "via": M}, "chart-version"),
        ("spec.ref.semver", {"kind": "OCIRepository", "via": M}, "chart-version"),
        ("spec.source.targetRevision", {"kind": "Application", "via": M, "value": "15.2.0"}, "chart-version"),
        ("helmCharts[redis].version", _KUST, "chart-version"),
        # scale
        ("spec.replicas", _DEPLOY, "scale"),
        ("replicas[api].count", _KUST, "scale"),
        ("spec.template.spec.containers[app].resources.limits.memory", _DEPLOY, "scale"),
        ("replace /spec/template/spec/containers/0/resources/limits/memory", {**_DEPLOY, "via": J}, "scale"),
        ("resources.limits.cpu", _VALUES, "scale"),
        ("replicaCount", _VALUES, "scale"),
        # env
        ("spec.template.spec.containers[app].env[LOG_LEVEL].value", _DEPLOY, "env"),
        ("spec.template.spec.containers[app].envFrom", _DEPLOY, "env"),
        ("data.LOG_LEVEL", {"kind": "ConfigMap", "via": M}, "env"),
        ("configMapGenerator[app-config].literals", _KUST, "env"),
        # command
        ("spec.template.spec.containers[app].command", _DEPLOY, "command"),
        ("spec.template.spec.containers[app].args", _DEPLOY, "command"),
        # the false positives of the substring match
        ("resources", _KUST, "other"),  # a kustomization's resources: list is no container resources
        (_CRD_FIELD, _CRD, "other"),  # a CRD description mentioning newTag
        ("spec.versions[v1].schema.openAPIV3Schema.properties.env.description", _CRD, "other"),
        ("envoy.enabled", _VALUES, "other"),  # envoy is not env
        ("spec.template.spec.containers[envoy].ports", _DEPLOY, "other"),
        ("spec.values.envoy.logLevel", _HR, "other"),
        ("image.pullPolicy", _VALUES, "other"),
        ("imagePullSecrets", _VALUES, "other"),
        ("spec.source.targetRevision", {"kind": "Application", "via": M, "value": "main"}, "other"),
        ("spec.ref.branch", {"kind": "OCIRepository", "via": M}, "other"),
        ("version", _VALUES, "other"),  # a version in a values file is no chart version
        ("data.image", {"kind": "ConfigMap", "via": M}, "env"),
        ("spec.replicas", {**_DEPLOY, "kind": "CustomResourceDefinition"}, "other"),
        ("metadata.labels.env", _DEPLOY, "other"),
        ("spec.template.metadata.annotations.newTag", _DEPLOY, "other"),
    ],
)
def test_field_classes_are_read_from_the_structure(field: str, ctx: dict[str, str | None], cls: str) -> None:
    assert field_class(FieldRef(field, **ctx)) == cls  # type: ignore[arg-type]


def test_the_old_substring_false_positives_weigh_as_other() -> None:
    """Each of these matched a substring key and got 0.7-1.0 (or a real image/chart bump got 0.5)."""
    assert field_weight([FieldRef("resources", **_KUST)])[0] == 0.5  # was 0.8  # type: ignore[arg-type]
    assert field_weight([FieldRef(_CRD_FIELD, **_CRD)])[0] == 0.5  # was 1.0  # type: ignore[arg-type]
    assert field_weight([FieldRef("envoy.enabled", **_VALUES)])[0] == 0.5  # was 0.7  # type: ignore[arg-type]
    assert field_weight([FieldRef("image.tag", **_VALUES)]) == (1.0, "image.tag (image)")  # type: ignore[arg-type]
    assert field_weight([FieldRef("spec.chart.spec.version", **_HR)]) == (  # type: ignore[arg-type]
        1.0,
        "spec.chart.spec.version (chart-version)",
    )
    assert field_weight([FieldRef("version", **_CHART)])[0] == 1.0  # type: ignore[arg-type]
    assert field_weight([FieldRef("spec.ref.tag", kind="OCIRepository", via="manifest")])[0] == 1.0


def test_a_field_of_a_file_no_app_builds_counts_only_alone() -> None:
    ci = FieldRef("jobs.build.steps[Checkout].with.image", kind=None, via="yaml", deployed=False)
    cm = FieldRef("data.X", kind="ConfigMap", via="manifest")
    assert field_weight([ci, cm]) == (0.7, "data.X (env)")
    assert field_weight([ci])[1] == "jobs.build.steps[Checkout].with.image (image)"


def test_weights_are_keyed_by_field_class() -> None:
    with pytest.raises(ValueError, match="keyed by field class"):
        Weights(fields=(("newTag", 1.0),))
    w = Weights(fields=(("chart-version", 3.0),))
    assert field_weight([FieldRef("spec.chart.spec.version", **_HR)], w)[0] == 3.0  # type: ignore[arg-type]
    assert field_weight(["images[api].newTag"], w)[0] == w.default_field  # a class left out weighs as other


@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/ci.yaml",
        ".gitlab-ci.yml",
        "Taskfile.yml",
        "Taskfile.yaml",
        "mkdocs.yml",
        "docs/index.md",
        "docs/examples/deployment.yaml",
        "renovate.json",
        ".renovaterc",
        ".renovaterc.json",
        ".pre-commit-config.yaml",
        "Makefile",
        "README.md",
        "apps/api/README.md",
        "LICENSE",
        ".fluxschema.yml",
    ],
)
def test_ci_docs_and_tooling_files_are_not_deployed(path: str) -> None:
    assert is_tooling_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "apps/api/base/deployment.yaml",
        "apps/api/overlays/prod/kustomization.yaml",
        "charts/api/values.yaml",
        "charts/api/Chart.yaml",
        "clusters/prod/apps.yaml",
        "apps/api/.argocd-source-api.yaml",
        "apps/docs-site/deployment.yaml",
    ],
)
def test_deploy_files_are_not_tooling(path: str) -> None:
    assert not is_tooling_path(path)


def test_a_commit_touching_only_tooling_files_is_no_candidate() -> None:
    score, why = commit_score(_facts(n_apps=0, fields=["jobs.build"], files=[".github/workflows/ci.yaml", "Makefile"]))
    assert math.isnan(score)
    assert why == "not a candidate: touches only files no controller deploys (.github/workflows/ci.yaml, Makefile)"
    # built by an app, a tooling file is a candidate; so is a commit that also touches other files
    assert commit_score(_facts(n_apps=1, files=["docs/config.yaml"]))[0] > 0
    assert commit_score(_facts(n_apps=0, files=["README.md", "clusters/prod/apps.yaml"]))[0] > 0
    assert commit_score(_facts(n_apps=0, fields=[], files=[]))[0] > 0  # a merge lists no files


def _facts(**kw: object) -> CommitFacts:
    base: dict[str, object] = {"minutes_before": 0.0, "n_apps": 1, "fields": ["images[api].newTag"]}
    return CommitFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_merges_reverts_and_reverted_commits_are_damped() -> None:
    plain, _ = commit_score(_facts())
    assert plain == pytest.approx(2.0)  # 1 (at T) x 1.0 (a tag) x 2 (one app)
    assert commit_score(_facts(is_merge=True))[0] == pytest.approx(plain * 0.3)
    assert commit_score(_facts(is_revert=True))[0] == pytest.approx(plain * 0.5)
    score, why = commit_score(_facts(reverted_by="b" * 40))
    assert score == pytest.approx(plain * 0.2) and "reverted by bbbbbbbbbb before T" in why


def test_a_change_no_app_builds_weighs_little() -> None:
    assert commit_score(_facts(n_apps=0, fields=[]))[0] == pytest.approx(0.1)
    assert commit_score(_facts(n_apps=0))[0] == pytest.approx(0.1)  # even a tag bump, if nothing builds it


def test_deployed_before_t_lifts_and_not_deployed_damps() -> None:
    plain, _ = commit_score(_facts())
    up, why = commit_score(_facts(deployed_at=pd.Timestamp("2026-03-18T14:02Z"), deployed_to="web"))
    assert up == pytest.approx(plain * 1.5) and "deployed 14:02 UTC to web" in why
    down, why = commit_score(_facts(cluster_known=True))
    assert down == pytest.approx(plain * 0.3) and "not deployed before T" in why
    assert commit_score(_facts(cluster_known=False))[0] == plain  # git only: nothing known of deploys


def test_manual_edits_score_like_a_deploy_to_one_app_and_ignore_metadata() -> None:
    score, why = edit_score(0, "kubectl-edit", ["metadata.annotations.x", "spec.replicas"])
    assert score == pytest.approx(0.8 * 2 * 1.5) and "changes spec.replicas" in why
    assert edit_score(0, "kubectl-edit", ["metadata.labels.a"])[0] == pytest.approx(0.5 * 2 * 1.5)


def test_weights_are_one_object_you_can_tune() -> None:
    w = Weights(merge=1.0, fields=(("scale", 2.0),))
    # at T, no tag weight (the default 0.5), merges not damped, one app: 1 x 0.5 x 1.0 x 2
    assert commit_score(_facts(is_merge=True), w)[0] == pytest.approx(1.0)
    assert field_weight(["spec.replicas"], w) == (2.0, "spec.replicas (scale)")


def _tl(rows: list[dict[str, object]]) -> pd.DataFrame:
    return schema.frame(schema.TIMELINE, rows)


def test_rank_takes_only_candidates_at_or_before_t() -> None:
    t = pd.Timestamp("2026-03-18T12:00Z")
    rows = [
        {"time": t - pd.Timedelta("1h"), "kind": RowKind.COMMIT, "score": 0.5, "before_at": pd.Timedelta("1h")},
        {"time": t - pd.Timedelta("2h"), "kind": RowKind.FIELD_EDIT, "score": 0.9, "before_at": pd.Timedelta("2h")},
        {"time": t - pd.Timedelta("1h"), "kind": RowKind.DEPLOY, "score": 5.0, "before_at": pd.Timedelta("1h")},
        {"time": t + pd.Timedelta("5m"), "kind": RowKind.COMMIT, "score": 0.0, "before_at": pd.Timedelta("-5m")},
    ]
    assert list(rank(_tl(rows))) == [2, 1, pd.NA, pd.NA]


def test_rank_has_no_floor_far_from_t_and_ties_go_to_the_later_change() -> None:
    t = pd.Timestamp("2026-03-18T12:00Z")
    rows = [
        {"time": t - pd.Timedelta(f"{h}h"), "kind": RowKind.COMMIT, "score": s, "before_at": pd.Timedelta(f"{h}h")}
        for h, s in [(1, 0.25), (20, 1e-12), (30, 0.0), (2, 0.25)]
    ]
    assert list(rank(_tl(rows))) == [1, 3, 4, 2]


def test_a_one_day_window_ranks_every_commit_before_t(fixture_repo: FixtureRepo) -> None:
    """Scores were rounded to 4 decimals: commits older than ~6 hours scored 0 and got no rank."""
    from gitops_nb import DeployRepo

    repo = DeployRepo(fixture_repo.path)
    commits = repo.commits(first_parent=True)  # what landed on the branch: the merge carries its branch
    at = commits["committed_at"].max() + pd.Timedelta("1m")
    tl = what_changed(repo, at=at, window="30d")
    git_rows = tl[tl["kind"] == RowKind.COMMIT]
    assert len(git_rows) == len(commits)
    # the one commit that only moves README.md under docs/ is no candidate (nothing deploys it)
    docs_only = git_rows["sha"] == fixture_repo.shas["rename"]
    assert git_rows.loc[docs_only, "rank"].isna().all()
    git_rows = git_rows[~docs_only]
    assert git_rows["rank"].notna().all()
    assert sorted(git_rows["rank"].astype(int)) == list(range(1, len(commits)))
    oldest = git_rows.sort_values("time").iloc[0]
    assert oldest["before_at"] > pd.Timedelta("6h") and oldest["score"] > 0


# -- on a synthetic repo: what the classes and the eligibility change in a ranking --------------

_T = pd.Timestamp("2026-03-18T12:00:00Z")


def _overlay(tag: str, extra: list[str] | None = None) -> str:
    res = "".join(f"- {r}\n" for r in ["../../base", *(extra or [])])
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n{res}images:\n- name: ghcr.io/acme/api\n  newTag: '{tag}'\n"
        "configMapGenerator:\n- name: runbook\n  files:\n  - README.md\n"
    )


def _release(version: str) -> str:
    return (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: redis\n  namespace: redis\n"
        "spec:\n  interval: 1h\n  chart:\n    spec:\n      chart: redis\n"
        f"      version: '{version}'\n      sourceRef:\n        kind: HelmRepository\n        name: bitnami\n"
    )


_WEB_RELEASE = (
    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: web\n"
    "spec:\n  interval: 1h\n  chart:\n    spec:\n      chart: ./charts/web\n"
    "      sourceRef:\n        kind: GitRepository\n        name: flux-system\n        namespace: flux-system\n"
)


def _values(tag: str) -> str:
    return f"replicaCount: 2\nimage:\n  repository: ghcr.io/acme/web\n  tag: '{tag}'\nenvoy:\n  enabled: true\n"


def _ranking_repo(path: Path) -> dict[str, str]:
    """An api (Kustomize), a redis HelmRelease (Helm repository) and a web chart in the repo (HelmRelease
    from the GitRepository), then one change of each sort before T; CI and docs changes last."""
    w = RepoWriter(path)
    deploy = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n  template:\n"
        "    spec:\n      containers:\n      - name: api\n        image: ghcr.io/acme/api:latest\n"
    )
    shas = {
        "initial": w.commit(
            "initial",
            when=_T - pd.Timedelta("2h"),
            files={
                "apps/api/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
                "apps/api/base/deployment.yaml": deploy,
                "apps/api/overlays/prod/kustomization.yaml": _overlay("1.0.0"),
                "apps/api/overlays/prod/README.md": "# api runbook\n",
                "apps/redis/kustomization.yaml": "resources:\n- release.yaml\n",
                "apps/redis/release.yaml": _release("17.3.0"),
                "clusters/prod/web.yaml": _WEB_RELEASE,
                "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
                "charts/web/values.yaml": _values("1.0.0"),
                ".github/workflows/ci.yaml": "on: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n",
                "renovate.json": '{"extends": ["config:base"]}\n',
                "Makefile": "lint:\n\tkubeconform apps\n",
            },
        )
    }
    for key, minutes, message, files in [
        ("tag", 20, "api 1.1.0", {"apps/api/overlays/prod/kustomization.yaml": _overlay("1.1.0")}),
        ("chart", 15, "redis chart 18 (major)", {"apps/redis/release.yaml": _release("18.0.0")}),
        ("values", 10, "web 1.1.0", {"charts/web/values.yaml": _values("1.1.0")}),
        (
            "resources",
            5,
            "api: add a PodDisruptionBudget",
            {
                "apps/api/overlays/prod/kustomization.yaml": _overlay("1.1.0", ["pdb.yaml"]),
                "apps/api/overlays/prod/pdb.yaml": "apiVersion: policy/v1\nkind: PodDisruptionBudget\n"
                "metadata:\n  name: api\nspec:\n  minAvailable: 1\n",
            },
        ),
        ("runbook", 3, "runbook: on-call steps", {"apps/api/overlays/prod/README.md": "# api runbook\n\nsteps\n"}),
        (
            "ci",
            2,
            "ci: lint with kubeconform; renovate; make",
            {
                ".github/workflows/ci.yaml": "on: push\njobs:\n  lint:\n    runs-on: ubuntu-24.04\n",
                "renovate.json": '{"extends": ["config:recommended"]}\n',
                "Makefile": "lint:\n\tkubeconform -strict apps\n",
            },
        ),
    ]:
        shas[key] = w.commit(message, when=_T - pd.Timedelta(minutes=minutes), files=files)
    return shas


def test_image_and_chart_bumps_outrank_a_resources_list_change(tmp_path: Path) -> None:
    """Item 7: the resources: list got 0.8 (it matched "resources"), Helm image.tag and a major chart
    bump 0.5: a PDB added 5 minutes before T outranked them all."""
    shas = _ranking_repo(tmp_path / "deploy")
    tl = what_changed(tmp_path / "deploy", at=_T, window="1h", after=None).set_index("sha")
    order = ["resources", "tag", "chart", "values"]
    assert sorted(order, key=lambda k: tl.loc[shas[k], "rank"]) == ["values", "chart", "tag", "resources"]
    assert "changes image.tag (image)" in tl.loc[shas["values"], "why"]
    assert tl.loc[shas["values"], "app"] == "charts/web"
    assert "changes spec.chart.spec.version (chart-version)" in tl.loc[shas["chart"], "why"]
    assert "changes images[ghcr.io/acme/api].newTag (image)" in tl.loc[shas["tag"], "why"]
    assert "changes resources" in tl.loc[shas["resources"], "why"] and "(scale)" not in tl.loc[shas["resources"], "why"]


def test_ci_docs_and_tooling_changes_are_kept_but_not_ranked(tmp_path: Path) -> None:
    """Item 8: a .github / renovate.json / Makefile commit came out as a culprit candidate."""
    shas = _ranking_repo(tmp_path / "deploy")
    repo = DeployRepo(tmp_path / "deploy")
    tl = what_changed(repo, at=_T, window="1h", after=None).set_index("sha")
    ci = tl.loc[shas["ci"]]
    assert pd.isna(ci["rank"]) and math.isnan(ci["score"])
    assert ci["why"].startswith("not a candidate: touches only files no controller deploys (.github/workflows/ci.yaml")
    assert shas["ci"] not in set(culprits(tl.reset_index(), n=20)["sha"])
    # ... kept in the history
    assert shas["ci"] in set(repo.commits()["sha"])
    assert {".github/workflows/ci.yaml", "renovate.json", "Makefile"} <= set(
        repo.file_changes().query("sha == @shas['ci']")["path"]
    )
    assert ".github/workflows/ci.yaml" in set(repo.manifest_changes().query("sha == @shas['ci']")["path"])
    # a README an app is built from (a configMapGenerator file) is a candidate
    assert tl.loc[shas["runbook"], "rank"] >= 1 and tl.loc[shas["runbook"], "app"] == "apps/api/overlays/prod"
    ranked = tl["rank"].dropna()
    assert sorted(ranked.astype(int)) == list(range(1, len(ranked) + 1))
