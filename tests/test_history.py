"""DeployRepo on real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import (
    DeployRepo,
    EmptyRepoError,
    GitOpsNbError,
    InputError,
    NotARepoError,
    ShallowHistoryError,
    TimeParseError,
    UnknownRevisionError,
    schema,
)
from gitops_nb.git.manifests import REDACTED
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import PLANTED_SECRET_NEW, PLANTED_SECRET_OLD, T0, FixtureRepo, git, tree_state

PROD = "apps/checkout-api/overlays/production"
STAGING = "apps/checkout-api/overlays/staging"


@pytest.fixture(scope="module")
def repo(fixture_repo: FixtureRepo) -> DeployRepo:
    return DeployRepo(fixture_repo.path)


def _assert_schema(df: pd.DataFrame, sch: schema.Schema) -> None:
    assert list(df.columns) == list(sch)
    for col, dtype in sch.items():
        assert str(df[col].dtype) == dtype, (col, df[col].dtype)


def test_commits_match_git_and_schema(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    df = repo.commits()
    _assert_schema(df, schema.COMMITS)
    assert list(df["sha"]) == git(fixture_repo.path, "rev-list", "HEAD").split()
    assert df["committed_at"].is_monotonic_decreasing
    assert str(df["committed_at"].dt.tz) == "UTC"
    first = df.set_index("sha").loc[fixture_repo.shas["initial"]]
    assert first["committed_at"] == T0 and first["authored_at"] == T0
    assert first["author"] == "Alice Ops" and first["author_email"] == "alice@example.com"
    assert first["parents"] == [] and first["short_sha"] == fixture_repo.shas["initial"][:10]


def test_merge_and_reverts(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    df = repo.commits().set_index("sha")
    s = fixture_repo.shas
    merge = df.loc[s["merge"]]
    assert merge["is_merge"] and len(merge["parents"]) == 2 and merge["files"] == []
    assert df["is_merge"].sum() == 1
    # abbreviated sha in a hand-written revert message resolves to the full sha
    assert df.loc[s["revert-short"], "reverts"] == s["bad"]
    # a real `git revert` message carries the full sha
    assert df.loc[s["revert-full"], "reverts"] == s["bump-staging"]
    assert df.loc[s["bad"], "reverts"] is None
    assert "This reverts commit" in df.loc[s["revert-short"], "body"]


def test_time_bounds_are_inclusive_committer_dates(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    s = fixture_repo.shas
    since, until = T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=3)
    df = repo.commits(since=since, until=until)
    assert list(df["sha"]) == [s["replicas"], s["bump-prod"], s["bump-staging"]]
    # same bounds as ISO strings with another zone
    df2 = repo.commits(since="2026-03-18T10:00:00+01:00", until="2026-03-18T06:00:00-05:00")
    assert list(df2["sha"]) == list(df["sha"])
    # the same walk as the git binary's own date limiting
    expected = git(
        fixture_repo.path, "rev-list", f"--since={since.isoformat()}", f"--until={until.isoformat()}", "HEAD"
    )
    assert list(df["sha"]) == expected.split()


def test_paths_and_rev(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    s = fixture_repo.shas
    df = repo.commits(paths=[f"{STAGING}/kustomization.yaml"])
    assert set(df["sha"]) == {s["initial"], s["bump-staging"], s["revert-full"]}
    df = repo.commits(rev=s["bump-prod"])
    assert list(df["sha"]) == [s["bump-prod"], s["bump-staging"], s["initial"]]
    assert repo.commits(rev="feature/memory")["sha"].iloc[0] == s["feature"]


def test_file_changes(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    s = fixture_repo.shas
    fc = repo.file_changes()
    _assert_schema(fc, schema.FILE_CHANGES)
    ren = fc[fc["sha"] == s["rename"]].iloc[0]
    assert (ren["change"], ren["path"], ren["old_path"], ren["similarity"]) == ("R", "docs/README.md", "README.md", 100)
    misc = fc[fc["sha"] == s["misc"]]
    assert dict(zip(misc["path"], misc["change"], strict=True))["notes.txt"] == "A"
    assert set(fc[fc["sha"] == s["initial"]]["change"]) == {"A"}
    # commits().files agrees with file_changes, and with git's own name-status
    commits = repo.commits().set_index("sha")
    for sha, group in fc.groupby("sha"):
        assert sorted(commits.loc[sha, "files"]) == sorted(group["path"])
    out = git(fixture_repo.path, "show", "--name-status", "--format=", s["misc"]).split()
    assert sorted(out[1::2]) == sorted(misc["path"])


def test_manifest_changes_semantic_rows(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    s = fixture_repo.shas
    mc = repo.manifest_changes()
    _assert_schema(mc, schema.MANIFEST_CHANGES)

    def rows(sha: str) -> list[tuple[str, str, str, str | None, str | None]]:
        part = mc[mc["sha"] == sha]
        return list(zip(part["path"], part["field"], part["via"], part["old"], part["new"], strict=True))

    # a CI tag bump is exactly one row: the newTag of that image
    assert rows(s["bump-prod"]) == [
        (f"{PROD}/kustomization.yaml", "images[ghcr.io/acme/checkout-api].newTag", "kustomization", "1.0.0", "1.1.0")
    ]
    assert rows(s["replicas"]) == [
        (f"{PROD}/kustomization.yaml", "replicas[checkout-api].count", "kustomization", "4", "6")
    ]
    base = mc[mc["sha"] == s["base"]].iloc[0]
    assert (base["kind"], base["name"], base["field"], base["old"], base["new"], base["via"]) == (
        "Deployment",
        "checkout-api",
        "spec.template.spec.containers[checkout-api].resources.limits.memory",
        "512Mi",
        "640Mi",
        "manifest",
    )
    # inline JSON 6902 patch (the merged feature branch's commit)
    feat = mc[mc["sha"] == s["feature"]].iloc[0]
    assert (feat["kind"], feat["name"], feat["via"], feat["old"], feat["new"]) == (
        "Deployment",
        "checkout-api",
        "json6902",
        "1Gi",
        "2Gi",
    )
    assert feat["field"] == "replace /spec/template/spec/containers/0/resources/limits/memory"
    # the merge itself adds no rows (its change is the feature commit's)
    assert rows(s["merge"]) == []
    misc = mc[mc["sha"] == s["misc"]].set_index("field")
    # strategic-merge patch file
    cpu = misc.loc["spec.template.spec.containers[checkout-api].resources.requests.cpu"]
    assert (cpu["path"], cpu["old"], cpu["new"], cpu["kind"]) == (
        f"{PROD}/cpu-patch.yaml",
        "250m",
        "500m",
        "Deployment",
    )
    # second document of a multi-document file
    flag = misc.loc["data.NEW_CART"]
    assert (flag["name"], flag["doc"], flag["old"], flag["new"]) == ("checkout-flags", 1, "off", "on")
    # non-YAML and binary files give no rows
    assert not mc["path"].isin(["notes.txt", "docs/logo.png", "docs/README.md"]).any()
    assert not mc["unreadable"].any()


def test_secret_values_never_reach_the_frame(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    mc = repo.manifest_changes()
    text = mc.to_csv()
    assert PLANTED_SECRET_OLD not in text and PLANTED_SECRET_NEW not in text
    rot = mc[(mc["sha"] == fixture_repo.shas["misc"]) & (mc["kind"] == "Secret")].iloc[0]
    assert rot["field"] == "stringData.password" and rot["change"] == "modified"
    assert REDACTED in rot["old"] and REDACTED in rot["new"]


def test_missing_blob_gives_unreadable_rows(repo_copy: FixtureRepo) -> None:
    from gitops_nb.sandbox.demo import RepoWriter

    w = RepoWriter(repo_copy.path)
    sha = w.commit(
        "add a unique file",
        when=T0 + pd.Timedelta(hours=11),
        files={f"{PROD}/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unique-7f3a}\n"},
    )
    blob = git(repo_copy.path, "rev-parse", f"{sha}:{PROD}/extra.yaml").strip()
    obj = repo_copy.path / ".git" / "objects" / blob[:2] / blob[2:]
    assert obj.exists()
    obj.unlink()
    r = DeployRepo(repo_copy.path)
    mc = r.manifest_changes()
    bad = mc[mc["sha"] == sha]
    assert len(bad) == 1 and bool(bad["unreadable"].iloc[0]) and bad["change"].iloc[0] == "unreadable"
    assert blob[:10] in bad["error"].iloc[0] and "missing" in bad["error"].iloc[0]
    # other commits still read fine, and history queries are unaffected
    assert (~mc[mc["sha"] != sha]["unreadable"]).all()
    assert r.commits()["sha"].iloc[0] == sha


def test_apps_and_affected_apps(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    apps = repo.apps()
    _assert_schema(apps, schema.APPS)
    assert sorted(apps["app"]) == [PROD, STAGING]  # the base is used as a base only
    prod = apps.set_index("app").loc[PROD]
    assert prod["namespace"] == "checkout-production"
    assert {
        f"{PROD}/cpu-patch.yaml",
        "apps/checkout-api/base/deployment.yaml",
        "apps/checkout-api/base/config.yaml",
        "apps/checkout-api/base/kustomization.yaml",
    } <= set(prod["files"])
    s = fixture_repo.shas
    assert sorted(repo.affected_apps(s["base"])["app"]) == [PROD, STAGING]
    assert list(repo.affected_apps(s["bump-prod"])["app"]) == [PROD]
    misc = repo.affected_apps(s["misc"][:8])  # an abbreviated sha works too
    assert list(misc["app"]) == [PROD, STAGING]
    assert misc.set_index("app").loc[STAGING, "matched"] == ["apps/checkout-api/base/config.yaml"]
    assert repo.affected_apps(s["rename"]).empty


def test_manifest_changes_window(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    mc = repo.manifest_changes(since=T0 + pd.Timedelta(hours=2), until=T0 + pd.Timedelta(hours=3))
    assert set(mc["sha"]) == {fixture_repo.shas["bump-prod"], fixture_repo.shas["replicas"]}


# -- bad input: clear errors from the package's tree, nothing written -----------------


def test_missing_path_and_not_a_repo(tmp_path: Path) -> None:
    with pytest.raises(NotARepoError, match="does not exist"):
        DeployRepo(tmp_path / "nope")
    with pytest.raises(NotARepoError, match="not a git repository"):
        DeployRepo(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_empty_repo(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    before = tree_state(tmp_path)
    r = DeployRepo(tmp_path)
    for call in (r.commits, r.file_changes, r.manifest_changes, r.apps):
        with pytest.raises(EmptyRepoError, match="no commits yet"):
            call()
    assert tree_state(tmp_path) == before


def test_unknown_rev_and_bad_times(repo: DeployRepo, fixture_repo: FixtureRepo) -> None:
    before = tree_state(fixture_repo.path)
    with pytest.raises(UnknownRevisionError, match="no-such-branch") as e:
        repo.commits(rev="no-such-branch")
    assert e.value.rev == "no-such-branch"
    with pytest.raises(UnknownRevisionError):
        repo.commits(rev="--all")  # an option smuggled in as a rev
    with pytest.raises(TimeParseError, match="cannot read the time"):
        repo.commits(since="yesterday-ish")
    with pytest.raises(InputError, match="after until"):
        repo.commits(since=T0 + pd.Timedelta(hours=2), until=T0)
    with pytest.raises(UnknownRevisionError):
        repo.affected_apps("deadbeefdeadbeef")
    assert isinstance(e.value, GitOpsNbError)
    assert tree_state(fixture_repo.path) == before


def test_shallow_clone_boundary(fixture_repo: FixtureRepo, tmp_path: Path) -> None:
    dst = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "3", f"file://{fixture_repo.path}", str(dst)], check=True)
    r = DeployRepo(dst)
    with pytest.raises(ShallowHistoryError, match="shallow clone") as e:
        r.commits()
    assert "--unshallow" in str(e.value)
    # a window inside the fetched history works
    recent = r.commits(since=T0 + pd.Timedelta(hours=9))
    assert list(recent["sha"]) == [fixture_repo.shas["revert-full"], fixture_repo.shas["rename"]]
    assert len(DeployRepo(dst, allow_shallow=True).commits()) == 3


@pytest.mark.parametrize("annotated", [False, True], ids=["lightweight-tag", "annotated-tag"])
@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_a_tag_wins_over_a_branch_of_the_same_name_as_in_git(
    repo_copy: FixtureRepo, annotated: bool, packed: bool
) -> None:
    """gitrevisions(7): refs/tags/<name> is tried before refs/heads/<name>."""
    p, s = repo_copy.path, repo_copy.shas
    git(p, "branch", "release", s["bad"])
    git(p, "tag", *(["-a", "-m", "cut"] if annotated else []), "release", s["initial"])
    if packed:
        git(p, "pack-refs", "--all")
    expected = git(p, "rev-parse", "release^{commit}").strip()
    assert expected == s["initial"]  # what git itself says (it warns that the name is ambiguous)
    r = DeployRepo(p)
    assert r.resolve("release") == expected
    assert r.commits(rev="release")["sha"].iloc[0] == expected
    assert r.commits(rev="heads/release")["sha"].iloc[0] == s["bad"]  # the branch, asked for by its longer name


HOSTILE_GITCONFIG = """
[log]
    showSignature = true
    decorate = full
    abbrevCommit = true
    follow = true
    date = relative
    mailmap = true
[diff]
    noprefix = true
    mnemonicPrefix = true
    renames = copies
    relative = true
[core]
    quotePath = false
    pager = less
[color]
    ui = always
    diff = always
[i18n]
    logOutputEncoding = ISO-8859-1
[format]
    pretty = oneline
"""


def test_a_hostile_user_gitconfig_does_not_change_the_answers(
    repo_copy: FixtureRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings that shape git's output are pinned on the command line. With signed commits,
    ``log.showSignature=true`` made git print verification lines into our log stream (a raw ValueError)."""
    p = repo_copy.path
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    for k, v in (("gpg.format", "ssh"), ("user.signingkey", str(tmp_path / "key.pub")), ("commit.gpgsign", "true")):
        git(p, "config", k, v)
    prod = p / "apps/checkout-api/overlays/production/kustomization.yaml"
    prod.write_text(
        prod.read_text().replace("newTag:", "newTag: signed-")
        if "newTag:" in prod.read_text()
        else prod.read_text() + "\n"
    )
    git(p, "commit", "-qam", "A signed tag bump")
    plain = DeployRepo(p)
    want = (plain.commits(), plain.file_changes(), plain.manifest_changes(), plain.apps())
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(HOSTILE_GITCONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    shown = git(p, "log", "-1", "--format=%H")  # really in force: git prints a signature check first
    assert "signature" in shown.lower(), shown
    hostile = DeployRepo(p)
    got = (hostile.commits(), hostile.file_changes(), hostile.manifest_changes(), hostile.apps())
    for a, b in zip(want, got, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_revisions_that_name_something_else_say_what(repo_copy: FixtureRepo, tmp_path: Path) -> None:
    """An ambiguous short sha lists its candidates; a tree sha says it is a tree (both said 'not in repo')."""
    p = repo_copy.path
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for i in range(600):  # enough objects that some 4-digit prefix is shared (deterministic content)
        (blobs / f"{i}.txt").write_text(f"object {i}\n")
    listing = "\n".join(str(f) for f in sorted(blobs.iterdir()))
    subprocess.run(["git", "hash-object", "-w", "--stdin-paths"], cwd=p, input=listing, text=True, check=True)
    objects = git(p, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    seen: dict[str, str] = {}
    prefix = next(o[:4] for o in objects if seen.setdefault(o[:4], o) != o)
    r = DeployRepo(p)
    with pytest.raises(UnknownRevisionError, match=f"short sha '{prefix}' is ambiguous") as err:
        r.resolve(prefix)
    assert sum(o.startswith(prefix) for o in objects) >= 2 and all(
        o[:12] in str(err.value) for o in objects if o.startswith(prefix)
    )
    tree = git(p, "rev-parse", "HEAD^{tree}").strip()
    with pytest.raises(UnknownRevisionError, match=r"is a tree .* not a commit"):
        r.resolve(tree)


def test_affected_apps_keeps_its_columns_when_no_app_is_reached(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    w.commit("one", files={"notes/a.yaml": "x: 1\n"}, when=T0)
    sha = w.commit("two", files={"notes/a.yaml": "x: 2\n"}, when=T0 + pd.Timedelta("1m"))
    got = DeployRepo(tmp_path / "r").affected_apps(sha)
    assert got.empty and list(got.columns) == list(schema.AFFECTED_APPS)
    assert got["app"].tolist() == []


# -- Flux objects (item 9) ------------------------------------------------------------------------


def _flux_kustomization(name: str, path: str, source: str = "GitRepository") -> str:
    return f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: 10m0s
  retryInterval: 1m0s
  timeout: 5m0s
  dependsOn:
  - name: infrastructure
  sourceRef:
    kind: {source}
    name: flux-system
  path: {path}
  prune: true
  wait: true
  targetNamespace: {name}
  healthChecks:
  - kind: Deployment
    name: {name}
    namespace: {name}
"""


def _flux_repo(path: Path) -> tuple[Path, dict[str, str]]:
    from gitops_nb.sandbox.demo import RepoWriter

    w = RepoWriter(path)
    web_release = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: web\n"
        "spec:\n  chart:\n    spec:\n      chart: ./charts/web\n      valuesFiles:\n      - ./charts/web/values-prod.yaml\n"
        "      sourceRef:\n        kind: GitRepository\n        name: flux-system\n"
        "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: redis\n"
        "spec:\n  chart:\n    spec:\n      chart: redis\n      version: 17.0.0\n"
        "      sourceRef:\n        kind: HelmRepository\n        name: bitnami\n"
    )
    deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: {n}\n"
    shas = {
        "initial": w.commit(
            "initial",
            when=T0,
            files={
                "clusters/prod/shop.yaml": _flux_kustomization("shop", "./workloads/shop"),
                "clusters/prod/oci.yaml": _flux_kustomization("oci", "./workloads/oci", source="OCIRepository"),
                # a tenant's Kustomization: path ./ of the tenant's own GitRepository, another repo
                "tenants/dev/sync.yaml": _flux_kustomization("dev", "./").replace("name: flux-system", "name: dev"),
                "clusters/prod/releases.yaml": web_release,
                # a Flux Kustomization in a file named like a kustomization file
                "clusters/prod/edge/kustomization.yaml": _flux_kustomization("edge", "./workloads/edge"),
                "workloads/shop/deployment.yaml": deploy.format(n=2),
                "workloads/shop/cache/kustomization.yaml": "resources:\n- redis.yaml\n",
                "workloads/shop/cache/redis.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis\n",
                "workloads/oci/deployment.yaml": deploy.format(n=1),
                "workloads/edge/deployment.yaml": deploy.format(n=1),
                "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
                "charts/web/values.yaml": "image:\n  tag: '1.0'\n",
                "charts/web/values-prod.yaml": "replicaCount: 3\n",
                "charts/web/templates/deployment.yaml": "kind: Deployment\n",
            },
        )
    }
    shas["scale"] = w.commit(
        "shop: 4 replicas", when=T0 + pd.Timedelta("1h"), files={"workloads/shop/deployment.yaml": deploy.format(n=4)}
    )
    shas["edge-path"] = w.commit(
        "edge: new path",
        when=T0 + pd.Timedelta("2h"),
        files={"clusters/prod/edge/kustomization.yaml": _flux_kustomization("edge", "./workloads/edge2")},
    )
    shas["remove"] = w.commit("retire shop", when=T0 + pd.Timedelta("3h"), files={"clusters/prod/shop.yaml": None})
    return path, shas


def test_a_removed_flux_kustomization_is_one_object_removed_row(tmp_path: Path) -> None:
    """It was read as a kustomization file: one row per field (11 here) instead of one."""
    path, shas = _flux_repo(tmp_path / "flux")
    mc = DeployRepo(path).manifest_changes()
    removed = mc[mc["sha"] == shas["remove"]]
    assert len(removed) == 1
    row = removed.iloc[0]
    assert (row["kind"], row["name"], row["field"], row["change"], row["via"]) == (
        "Kustomization",
        "shop",
        "",
        "removed",
        "manifest",
    )
    # in a file named kustomization.yaml, told apart by its apiVersion
    edge = mc[mc["sha"] == shas["edge-path"]]
    assert list(zip(edge["via"], edge["kind"], edge["name"], edge["field"], edge["new"], strict=True)) == [
        ("manifest", "Kustomization", "edge", "spec.path", "./workloads/edge2")
    ]


def test_flux_kustomizations_and_helm_releases_are_apps(tmp_path: Path) -> None:
    path, shas = _flux_repo(tmp_path / "flux")
    repo = DeployRepo(path)
    frame = repo.apps(shas["initial"])
    _assert_schema(frame, schema.APPS)
    apps = frame.set_index("app")
    assert apps.loc["workloads/shop", "kustomization"] == "clusters/prod/shop.yaml"
    assert apps.loc["workloads/shop", "namespace"] == "shop"
    assert apps.loc["workloads/shop", "files"] == [
        "workloads/shop/cache/kustomization.yaml",
        "workloads/shop/cache/redis.yaml",
        "workloads/shop/deployment.yaml",
    ]
    assert "workloads/shop/cache" not in apps.index  # taken in by the Flux Kustomization's build
    assert apps.loc["workloads/edge", "kustomization"] == "clusters/prod/edge/kustomization.yaml"
    assert "clusters/prod/edge" not in apps.index  # a Flux object, not a kustomization
    assert apps.loc["charts/web", "kustomization"] == "clusters/prod/releases.yaml"
    assert apps.loc["charts/web", "files"] == [
        "charts/web/Chart.yaml",
        "charts/web/templates/deployment.yaml",
        "charts/web/values-prod.yaml",
        "charts/web/values.yaml",
    ]
    assert "workloads/oci" not in apps.index  # its source is an OCI artifact, not this tree
    assert "." not in apps.index  # the tenant's ./ is in the tenant's repo
    assert not any("redis" in a for a in apps.index if a.startswith("charts"))  # a Helm repository chart
    hit = repo.affected_apps(shas["scale"])
    assert list(hit["app"]) == ["workloads/shop"] and list(hit["matched"]) == [["workloads/shop/deployment.yaml"]]


def test_the_string_form_of_kustomize_patches_is_followed(tmp_path: Path) -> None:
    """`patches: [file.yaml]` (Kustomize's short form) was not followed: its file reached no app."""
    w = RepoWriter(tmp_path / "r")
    root = "apps/web"
    w.commit(
        "web",
        files={
            f"{root}/kustomization.yaml": "resources:\n- deployment.yaml\npatches:\n- replicas-patch.yaml\n",
            f"{root}/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n",
            f"{root}/replicas-patch.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
        },
        when=T0,
    )
    sha = w.commit(
        "more replicas",
        files={
            f"{root}/replicas-patch.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n"
        },
        when=T0 + pd.Timedelta("5m"),
    )
    r = DeployRepo(tmp_path / "r")
    assert f"{root}/replicas-patch.yaml" in r.apps().set_index("app").loc[root, "files"]
    assert list(r.affected_apps(sha)["app"]) == [root]


def test_control_characters_in_names_subjects_and_paths_lose_no_row(tmp_path: Path) -> None:
    """\\x1e and \\x1f (our fast parser's separators) in a subject, an author or a file name: every
    commit, file and field is still there, as git reports them (they crashed or dropped rows)."""
    w = RepoWriter(tmp_path / "r")
    dep = "apps/a/deploy.yaml"
    odd = "apps/a/we\x1fird\x1ename.yaml"

    def deployment(n: int) -> str:
        return f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: {n}\n"

    w.commit("initial", files={dep: deployment(1)}, when=T0)
    w.commit(
        "sub\x1eject with\x1f control",
        files={dep: deployment(2), odd: "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n"},
        when=T0 + pd.Timedelta("1m"),
        author=("Ro\x1fbot\x1e", "robot@example.com"),
    )
    w.commit("after", files={dep: deployment(3)}, when=T0 + pd.Timedelta("2m"))
    r = DeployRepo(tmp_path / "r")
    c = r.commits()
    assert list(c["sha"]) == git(w.path, "rev-list", "HEAD").split()
    assert list(c["subject"]) == git(w.path, "log", "-z", "--format=%s").split("\0")[:-1]
    assert list(c["author"]) == git(w.path, "log", "-z", "--format=%an").split("\0")[:-1]
    assert "\x1f" in c["author"].iloc[1]  # git keeps an inner control character (it trims a trailing one)
    want = [p for p in git(w.path, "log", "-z", "--name-only", "--format=").split("\0") if p.strip("\n")]
    assert sorted(r.file_changes()["path"]) == sorted(p.lstrip("\n") for p in want)
    m = r.manifest_changes()
    assert odd in set(m["path"]) and (m["field"] == "spec.replicas").sum() == 2
    assert not m["unreadable"].any()
