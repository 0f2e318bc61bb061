"""Right on real histories: changes that land by merge, apps that move, per-app history at scale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import DeployRepo, schema, what_changed
from gitops_nb.sandbox.demo import ALICE, BOB, CI, RepoWriter

from .conftest import app_files, git, overlay_text, tree_state

T = pd.Timestamp("2026-05-04T12:00:00Z")
CAROL = ("Carol Sre", "carol@example.com")
WEB, API = "apps/web/overlays/prod", "apps/api/overlays/prod"


def _date(t: pd.Timestamp) -> dict[str, str]:
    d = t.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {"GIT_AUTHOR_DATE": d, "GIT_COMMITTER_DATE": d}


def _merge(w: RepoWriter, branch: str, when: pd.Timestamp, message: str) -> str:
    w.git("merge", "-q", "--no-ff", "-m", message, branch, env=_date(when))
    return w.git("rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A pull request written days before it is merged, with a back-merge of main; a rebased commit."""
    w = RepoWriter(tmp_path_factory.mktemp("landed") / "deploy-config")
    s: dict[str, str] = {}
    s["init"] = w.commit(
        "init", when=T - pd.Timedelta(days=10), files={**app_files("web", "1.0"), **app_files("api", "1.0")}
    )
    w.git("checkout", "-q", "-b", "feature/web")
    s["bob"] = w.commit(
        "web 2.0",
        when=T - pd.Timedelta(days=3),
        author=BOB,
        files={f"{WEB}/kustomization.yaml": overlay_text("web", "2.0")},
    )
    s["carol"] = w.commit(
        "web: 4 replicas",
        when=T - pd.Timedelta(days=2),
        author=CAROL,
        files={f"{WEB}/kustomization.yaml": overlay_text("web", "2.0", 4)},
    )
    w.git("checkout", "-q", "main")
    s["api"] = w.commit(
        "api 1.1",
        when=T - pd.Timedelta("100m"),
        author=CI,
        files={f"{API}/kustomization.yaml": overlay_text("api", "1.1")},
    )
    w.git("checkout", "-q", "feature/web")
    s["backmerge"] = _merge(w, "main", T - pd.Timedelta("90m"), "Merge branch 'main' into feature/web")
    w.git("checkout", "-q", "main")
    s["merge"] = _merge(w, "feature/web", T - pd.Timedelta("30m"), "Merge pull request #7 from bob/feature/web")
    # a rebased (or squashed) change: written a day ago, landed 10 minutes before T
    w.write({f"{API}/kustomization.yaml": overlay_text("api", "1.2")})
    w.git("add", "-A")
    env = {
        **_date(T - pd.Timedelta("10m")),
        "GIT_AUTHOR_DATE": (T - pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    w.git("commit", "-q", "-m", "api 1.2", env={**env, "GIT_AUTHOR_NAME": ALICE[0], "GIT_AUTHOR_EMAIL": ALICE[1]})
    s["rebased"] = w.git("rev-parse", "HEAD").strip()
    return w.path, s


# -- item 1: a change that lands by merge ------------------------------------------------


def test_a_merged_pull_request_is_one_row_at_its_landing_with_its_diff_and_authors(pr_repo) -> None:
    path, s = pr_repo
    tl = what_changed(path, T, "2h", after=None)
    assert list(tl["sha"]) == [s["rebased"], s["merge"], s["api"]]  # the branch's own line, newest first
    m = tl.set_index("sha").loc[s["merge"]]
    assert m["time"] == T - pd.Timedelta("30m")  # when it landed, not when it was written
    assert m["apps"] == [WEB] and m["landed_via"] == "merge"
    assert "newTag 1.0 → 2.0" in m["detail"] and "count 2 → 4" in m["detail"]
    assert m["authored_at"] == T - pd.Timedelta(days=3)
    assert m["merged_commits"] == [s["backmerge"], s["carol"], s["bob"]]  # main's own commit is not the PR's
    assert m["author"] == f"{CI[0]}, {CAROL[0]}, {BOB[0]}"  # the PR's authors (the back-merge's too), not the merger
    assert "merge" not in m["why"] and "1 app" in m["why"]  # a merge that carries the change is not damped
    assert m["rank"] == 2 and tl.set_index("sha").loc[s["rebased"], "rank"] == 1
    direct = tl.set_index("sha").loc[s["rebased"]]
    assert direct["landed_via"] == "direct" and direct["merged_commits"] == []
    assert direct["authored_at"] == T - pd.Timedelta(days=1) and direct["time"] == T - pd.Timedelta("10m")


def test_landed_mirrors_git_first_parent(pr_repo) -> None:
    path, s = pr_repo
    repo = DeployRepo(path)
    landed = repo.landed()
    assert list(landed.columns) == list(schema.LANDED)
    assert list(landed["sha"]) == git(path, "rev-list", "--first-parent", "HEAD").split()
    merge = landed.set_index("sha").loc[s["merge"]]
    assert merge["merged_commits"] == git(path, "rev-list", f"{s['merge']}^1..{s['merge']}^2").split()
    assert merge["merged_authors"][:1] == [CI[0]] and set(merge["merged_authors"]) == {CI[0], CAROL[0], BOB[0]}
    # commits()/file_changes() stay mirrors of git log; first_parent=True of git log --first-parent -m
    assert list(repo.commits()["sha"]) == git(path, "rev-list", "HEAD").split()
    assert repo.file_changes().set_index("sha").index.isin([s["merge"]]).sum() == 0
    fp = repo.file_changes(first_parent=True)
    assert (
        list(fp[fp["sha"] == s["merge"]]["path"])
        == git(path, "diff", "--name-only", f"{s['merge']}^1", s["merge"]).split()
    )
    assert list(repo.commits(first_parent=True)["sha"]) == list(landed["sha"])
    mc = repo.manifest_changes(first_parent=True)
    assert set(mc[mc["sha"] == s["merge"]]["field"]) == {"images[ghcr.io/acme/web].newTag", "replicas[web].count"}
    assert list(repo.affected_apps(s["merge"])["app"]) == [WEB]


def test_an_empty_merge_is_still_damped(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    w.commit("init", when=T - pd.Timedelta(days=1), files=app_files("web", "1.0"))
    w.git("checkout", "-q", "-b", "done")
    w.commit(
        "web 0.9 (abandoned)",
        when=T - pd.Timedelta("3h"),
        files={f"{WEB}/kustomization.yaml": overlay_text("web", "0.9")},
    )
    w.git("checkout", "-q", "main")
    w.commit("web 2.0", when=T - pd.Timedelta("2h"), files={f"{WEB}/kustomization.yaml": overlay_text("web", "2.0")})
    w.git(
        "merge", "-q", "--no-ff", "-s", "ours", "-m", "Merge branch 'done'", "done", env=_date(T - pd.Timedelta("5m"))
    )
    tl = what_changed(w.path, T, "3h", after=None)
    merge = tl.iloc[0]
    assert merge["landed_via"] == "merge" and merge["apps"] == [] and "merge" in merge["why"]


def test_a_revert_merged_through_a_pull_request_marks_the_merge_it_reverts(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    w.commit("init", when=T - pd.Timedelta(days=1), files=app_files("web", "1.0"))
    w.git("checkout", "-q", "-b", "a")
    bad = w.commit(
        "web 2.0", when=T - pd.Timedelta("3h"), files={f"{WEB}/kustomization.yaml": overlay_text("web", "2.0")}
    )
    w.git("checkout", "-q", "main")
    first = _merge(w, "a", T - pd.Timedelta("2h"), "Merge pull request #1")
    w.git("checkout", "-q", "-b", "b")
    w.git("revert", "--no-edit", bad, env=_date(T - pd.Timedelta("90m")))
    w.git("checkout", "-q", "main")
    second = _merge(w, "b", T - pd.Timedelta("1h"), "Merge pull request #2")
    tl = what_changed(w.path, T, "4h", after=None).set_index("sha")
    assert list(tl.index) == [second, first]
    assert f"reverted by {second[:10]} before T" in tl.loc[first, "why"] and "a revert" in tl.loc[second, "why"]


# -- item 3: each change mapped with its own tree -------------------------------------


@pytest.fixture(scope="module")
def moved_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """apps/ moves to deploy/apps/, then the api app is deleted; a merge lands after the move."""
    w = RepoWriter(tmp_path_factory.mktemp("moved") / "deploy-config")
    s: dict[str, str] = {}
    h = pd.Timedelta("1h")
    s["init"] = w.commit("init", when=T - 10 * h, files={**app_files("web", "1.0"), **app_files("api", "1.0")})
    s["web-old"] = w.commit("web 1.1", when=T - 9 * h, files={f"{WEB}/kustomization.yaml": overlay_text("web", "1.1")})
    s["base-old"] = w.commit(
        "api base", when=T - 8 * h, files={"apps/api/base/deployment.yaml": "kind: Deployment\nmetadata: {name: api}\n"}
    )
    (w.path / "deploy").mkdir()
    w.git("mv", "apps", "deploy/apps")
    s["move"] = w.commit("move apps under deploy/", when=T - 7 * h)
    s["web-new"] = w.commit(
        "web 1.2", when=T - 6 * h, files={f"deploy/{WEB}/kustomization.yaml": overlay_text("web", "1.2")}
    )
    s["api-new"] = w.commit(
        "api 1.3", when=T - 5 * h, files={f"deploy/{API}/kustomization.yaml": overlay_text("api", "1.3")}
    )
    w.git("checkout", "-q", "-b", "pr")
    w.commit("web 1.4", when=T - 4 * h, files={f"deploy/{WEB}/kustomization.yaml": overlay_text("web", "1.4")})
    w.git("checkout", "-q", "main")
    s["merge"] = _merge(w, "pr", T - 3 * h, "Merge pull request #9")
    w.git("rm", "-q", "-r", "deploy/apps/api")
    s["delete"] = w.commit("retire api", when=T - 2 * h)
    s["docs"] = w.commit("docs", when=T - 1 * h, files={"README.md": "hi\n"})
    return w.path, s


def test_apps_are_mapped_at_each_commit_and_agree_with_affected_apps(moved_repo) -> None:
    path, s = moved_repo
    assert git(path, "ls-tree", "--name-only", "HEAD").split() == ["README.md", "deploy"]
    repo = DeployRepo(path)
    tl = what_changed(repo, T, "12h", after=None).set_index("sha")
    for name, sha in s.items():
        expected = sorted(repo.affected_apps(sha)["app"])
        assert tl.loc[sha, "apps"] == expected, name
    assert len(tl) == len(s)
    assert tl.loc[s["web-old"], "apps"] == [WEB]  # HEAD's layout has no apps/: it used to say "0 apps"
    assert tl.loc[s["base-old"], "apps"] == [API]
    assert tl.loc[s["api-new"], "apps"] == [f"deploy/{API}"]  # the app is deleted after T
    assert tl.loc[s["delete"], "apps"] == [f"deploy/{API}"]
    assert tl.loc[s["move"], "apps"] == sorted([WEB, API, f"deploy/{WEB}", f"deploy/{API}"])
    assert tl.loc[s["merge"], "apps"] == [f"deploy/{WEB}"]
    assert tl.loc[s["web-old"], "detail"] == "web/prod: images[ghcr.io/acme/web].newTag 1.0 → 1.1"  # an app, not a path
    # apps= finds an app that no longer exists at the tip
    only = what_changed(repo, T, "12h", apps="api", after=None)
    assert set(only["sha"]) == {s[k] for k in ("init", "base-old", "move", "api-new", "delete")}


def test_apps_layouts_are_shared_not_rebuilt(moved_repo) -> None:
    path, s = moved_repo
    repo = DeployRepo(path)
    repo.landed()
    layouts = len(repo._layouts)
    for sha in s.values():  # every tree of the history: three layouts (before the move, after it, without api)
        repo.apps(sha)
    assert len(repo._layouts) == layouts == 3


# -- item 11: per-app history at scale ----------------------------------------------------


def _many_commits(path: Path, n: int) -> None:
    """``n`` commits, alternating between two apps' files, written with git fast-import."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines = []
    for i in range(n):
        f = f"apps/{'a' if i % 2 else 'b'}/x.yaml"
        data = f"n: {i}\n"
        lines.append(
            f"commit refs/heads/main\ncommitter A <a@x> {1_700_000_000 + i} +0000\ndata 1\nc\n"
            f"M 100644 inline {f}\ndata {len(data)}\n{data}\n"
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="".join(lines).encode(), check=True)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops_nb", *args], capture_output=True, text=True)


def test_repo_optimize_writes_a_changed_paths_graph_and_only_that(tmp_path: Path) -> None:
    path = tmp_path / "big"
    _many_commits(path, 10_050)
    repo = DeployRepo(path)
    assert repo.commit_graph() == {"exists": False, "bloom": False, "commits": 0}
    df = repo.commits(paths=["apps/a"])
    assert len(df) == 5025 and "gitops-nb repo optimize" in df.attrs["note"]
    assert "note" not in repo.commits().attrs  # only path queries gain
    refs, status = git(path, "show-ref"), git(path, "status", "--porcelain")
    res = _run("repo", "optimize", str(path))
    assert res.returncode == 0, res.stderr
    assert "now has a commit-graph with changed-path filters (10050 commits)" in res.stdout
    assert "local metadata only" in res.stderr
    assert DeployRepo(path).commit_graph() == {"exists": True, "bloom": True, "commits": 10050}
    assert "note" not in DeployRepo(path).commits(paths=["apps/a"]).attrs
    again = _run("repo", "optimize", str(path))  # idempotent
    assert again.returncode == 0 and "already had" in again.stdout
    state = tree_state(path / "apps")
    assert git(path, "show-ref") == refs and git(path, "status", "--porcelain") == status
    assert tree_state(path / "apps") == state


def test_path_queries_use_the_changed_paths_graph_despite_the_config(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "r"
    _many_commits(path, 400)
    git(path, "commit-graph", "write", "--reachable", "--changed-paths")
    git(path, "config", "core.commitGraph", "false")  # a user's config must not slow our queries down
    trace = tmp_path / "trace.json"
    monkeypatch.setenv("GIT_TRACE2_EVENT", str(trace))
    assert len(DeployRepo(path).commits(paths=["apps/a"])) == 200
    stats = [json.loads(line)["value"] for line in trace.read_text().splitlines() if '"bloom"' in line]
    assert stats and max(s.get("definitely_not", 0) for s in stats) >= 150


def _flux(path: str) -> str:
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: web\n"
        f"spec:\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  path: {path}\n"
    )


def _deploy(tag: str) -> str:
    return f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web:{tag}\n"


def test_flux_apps_are_mapped_at_each_commits_tree(tmp_path: Path) -> None:
    """A Flux Kustomization whose path moves in the window: the change before the move keeps its app."""
    w = RepoWriter(tmp_path / "flux")
    w.commit(
        "init",
        when=T - pd.Timedelta(days=1),
        files={"clusters/prod/web.yaml": _flux("./workloads/web"), "workloads/web/deploy.yaml": _deploy("1")},
    )
    before = w.commit("web 2", when=T - pd.Timedelta("3h"), files={"workloads/web/deploy.yaml": _deploy("2")})
    move = w.commit(
        "move web",
        when=T - pd.Timedelta("2h"),
        files={
            "clusters/prod/web.yaml": _flux("./apps/web"),
            "workloads/web/deploy.yaml": None,
            "apps/web/deploy.yaml": _deploy("2"),
        },
    )
    after = w.commit("web 3", when=T - pd.Timedelta("1h"), files={"apps/web/deploy.yaml": _deploy("3")})
    repo = DeployRepo(tmp_path / "flux")
    landed = repo.landed(since=T - pd.Timedelta("4h"), until=T).set_index("sha")
    assert landed.loc[before, "apps"] == ["workloads/web"]  # HEAD has no such app: mapped at its own tree
    assert landed.loc[move, "apps"] == ["apps/web", "workloads/web"]
    assert landed.loc[after, "apps"] == ["apps/web"]
    for sha in (before, move, after):
        hit = repo.affected_apps(sha)
        assert dict(zip(hit["app"], hit["matched"], strict=True)) == landed.loc[sha, "matched"]
    tl = what_changed(repo, at=T, window="4h").set_index("sha")
    assert tl.loc[before, "apps"] == ["workloads/web"] and "image" in tl.loc[before, "why"]
