"""YAML read the way Argo CD, Kustomize and Flux read it (gopkg.in/yaml.v3), on real git repos.

Each test builds a small deploy-config repo, commits the YAML that real histories hold, and
reads it back through :meth:`DeployRepo.manifest_changes` (and the timeline where it shows).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from gitops_nb import DeployRepo, what_changed
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import T0, git

KUST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n"


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def start(path: Path) -> RepoWriter:
    w = RepoWriter(path)
    w.commit(
        "Initial layout",
        when=at(0),
        files={
            "app/kustomization.yaml": KUST,
            "app/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
        },
    )
    return w


def rows_of(mc: pd.DataFrame, sha: str) -> pd.DataFrame:
    return mc[mc["sha"] == sha].set_index("field")


# -- 1. valid YAML that the controllers read is read ---------------------------------------


def test_duplicate_anchors_are_read_later_definition_winning(tmp_path: Path) -> None:
    """A Renovate-kept HelmRelease redefining an anchor: yaml.v3 and Flux read it; so do we."""
    w = start(tmp_path)

    def release(tag: str) -> str:
        return textwrap.dedent(f"""\
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {{name: podinfo, namespace: apps}}
            spec:
              values:
                image: &tag "{tag}"
                sidecar: *tag
                resources: &res {{cpu: 100m}}
                init:
                  image: &tag "init-{tag}"
                  resources: &res {{cpu: 50m}}
                migrate: *tag
                jobResources: *res
            """)

    w.commit("add podinfo", when=at(1), files={"app/podinfo.yaml": release("6.5.0")})
    sha = w.commit("bump podinfo", when=at(2), files={"app/podinfo.yaml": release("6.5.1")})
    mc = DeployRepo(tmp_path).manifest_changes()
    assert not mc["unreadable"].any(), mc[mc["unreadable"]]["error"].tolist()
    bump = rows_of(mc, sha)
    assert bump.loc["spec.values.sidecar", ["old", "new"]].tolist() == ["6.5.0", "6.5.1"]
    # the aliases after the second definition read the second value
    assert bump.loc["spec.values.migrate", ["old", "new"]].tolist() == ["init-6.5.0", "init-6.5.1"]
    assert "spec.values.jobResources.cpu" not in bump.index  # 50m both times: unchanged
    added = mc[(mc["path"] == "app/podinfo.yaml") & (mc["change"] == "added")]
    assert json.loads(added["new"].iloc[0])["spec"]["values"]["jobResources"] == {"cpu": "50m"}


def test_a_bare_equals_sign_is_the_string(tmp_path: Path) -> None:
    """``matchType: =`` (an operator's CRDs) is the string "=", not PyYAML's YAML 1.1 value tag."""
    w = start(tmp_path)

    def rule(match: str, value: str) -> str:
        return textwrap.dedent(f"""\
            apiVersion: monitoring.example.com/v1
            kind: SilenceRule
            metadata: {{name: quiet-nights}}
            spec:
              matchers:
              - name: severity
                matchType: {match}
                value: {value}
            """)

    w.commit("add rule", when=at(1), files={"app/rule.yaml": rule("=", "info")})
    sha = w.commit("regex rule", when=at(2), files={"app/rule.yaml": rule("=~", "info|warning")})
    mc = DeployRepo(tmp_path).manifest_changes()
    assert not mc["unreadable"].any(), mc[mc["unreadable"]]["error"].tolist()
    change = rows_of(mc, sha)
    assert change.loc["spec.matchers[severity].matchType", ["old", "new"]].tolist() == ["=", "=~"]


def test_unknown_tags_read_as_the_plain_value_under_them(tmp_path: Path) -> None:
    """``!env_var``, ``!Ref`` and custom ``!!`` tags: the scalar, sequence or mapping they tag."""
    w = start(tmp_path)

    def config(port: str) -> str:
        return textwrap.dedent(f"""\
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: agent}}
            data:
              token: !env_var AGENT_TOKEN
              port: !port {port}
              subnets: !Ref [subnet-a, subnet-b]
              extra: !!custom {{level: {port}}}
              obj: !!python/object:os.system {{cmd: ls}}
            """)

    w.commit("add agent", when=at(1), files={"app/agent.yaml": config("8080")})
    sha = w.commit("agent port", when=at(2), files={"app/agent.yaml": config("9090")})
    mc = DeployRepo(tmp_path).manifest_changes()
    assert not mc["unreadable"].any(), mc[mc["unreadable"]]["error"].tolist()
    change = rows_of(mc, sha)
    assert change.loc["data.port", ["old", "new"]].tolist() == ["8080", "9090"]  # a string, as yaml.v3 reads it
    assert change.loc["data.extra.level", ["old", "new"]].tolist() == ["8080", "9090"]
    added = json.loads(mc[(mc["path"] == "app/agent.yaml") & (mc["change"] == "added")]["new"].iloc[0])
    assert added["data"]["token"] == "AGENT_TOKEN"
    assert added["data"]["subnets"] == ["subnet-a", "subnet-b"]
    assert added["data"]["obj"] == {"cmd": "ls"}  # never a Python object


# -- 2. billion laughs: refused in bounded time and memory ---------------------------------

_MEASURE = """
import json, resource, sys, time, tracemalloc
from gitops_nb import DeployRepo
r = DeployRepo(sys.argv[1])
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
mc = r.manifest_changes()
elapsed = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = mc[["sha", "path", "field", "new", "unreadable", "error"]].astype(object).to_dict("records")
print(json.dumps({"elapsed": elapsed, "peak": peak, "rss_growth_kb": rss1 - rss0, "rows": rows}, default=str))
"""


def _limit_memory() -> None:  # a regression must fail the test, not take the machine's memory
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_billion_laughs_is_an_unreadable_row_in_bounded_time_and_memory(tmp_path: Path) -> None:
    w = start(tmp_path)
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "".join(f"  {x}\n" for x in levels)
    assert len(bomb) < 800  # 10**10 strings once expanded
    sha = w.commit(
        "innocent",
        when=at(1),
        files={
            "app/lol.yaml": bomb,
            "app/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n",
        },
    )
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    rows = [r for r in out["rows"] if r["path"] == "app/lol.yaml"]
    assert len(rows) == 1 and rows[0]["unreadable"] is True and rows[0]["sha"] == sha
    assert "excessive aliasing (billion laughs?)" in rows[0]["error"]
    assert "YAML refused at line 7," in rows[0]["error"]  # where the expansion got out of hand
    # the rest of the commit is still read
    same = [(r["path"], r["field"], r["new"], r["unreadable"]) for r in out["rows"] if r["sha"] == sha]
    assert ("app/deployment.yaml", "spec.replicas", "3", False) in same
    assert out["elapsed"] < 5, out["elapsed"]
    assert out["peak"] < 50 << 20, out["peak"]  # Python allocations during the read
    assert out["rss_growth_kb"] < 200 << 10, out["rss_growth_kb"]


def test_alias_expansion_is_capped_where_yaml_v3_would_still_read_it(tmp_path: Path) -> None:
    """120,000 nodes from aliases at a 98% ratio: yaml.v3's rule allows it, the diff's walk would not."""
    w = start(tmp_path)
    big = "&big [" + ", ".join(f"v{i}" for i in range(2000)) + "]"
    ok = "x-common: &common {cpu: 100m, memory: 64Mi}\n" + "".join(
        f"s{i}: {{<<: *common, n: {i}}}\n" for i in range(50)
    )
    sha = w.commit(
        "large anchors",
        when=at(1),
        files={
            "app/wide.yaml": f"base: {big}\n" + "".join(f"copy{i}: *big\n" for i in range(60)),
            "app/merge.yaml": ok,
        },
    )
    mc = DeployRepo(tmp_path).manifest_changes()
    wide = mc[(mc["sha"] == sha) & (mc["path"] == "app/wide.yaml")]
    assert len(wide) == 1 and bool(wide["unreadable"].iloc[0])
    assert "excessive aliasing (billion laughs?): 100,0" in wide["error"].iloc[0]
    merged = mc[(mc["sha"] == sha) & (mc["path"] == "app/merge.yaml")].set_index("field")
    assert not merged["unreadable"].any() and len(merged) == 2 + 150  # ordinary anchors and merge keys read
    assert merged.loc["s49.memory", "new"] == "64Mi"


# -- 3. invalid YAML says so, and where -----------------------------------------------------

BROKEN = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 2
      template:
        image: web: 1.2
    """)


def test_invalid_yaml_gives_its_line_and_the_fix_says_was(tmp_path: Path) -> None:
    w = start(tmp_path)
    bad = w.commit("typo", when=at(1), files={"app/deployment.yaml": BROKEN})
    fix = w.commit(
        "fix typo",
        when=at(2),
        files={"app/deployment.yaml": BROKEN.replace("image: web: 1.2", 'image: "web:1.2"')},
    )
    mc = DeployRepo(tmp_path).manifest_changes()
    broke, fixed = mc[mc["sha"] == bad], mc[mc["sha"] == fix]
    assert len(broke) == 1 and len(fixed) == 1
    assert broke["change"].iloc[0] == "unreadable" and bool(broke["unreadable"].iloc[0])
    assert broke["error"].iloc[0] == "invalid YAML at line 7, column 15: mapping values are not allowed here"
    assert fixed["error"].iloc[0] == (
        "before this commit: invalid YAML at line 7, column 15: mapping values are not allowed here"
    )
    tl = what_changed(tmp_path, at(3), "1h").set_index("sha")
    assert tl.loc[bad, "detail"] == "app: invalid YAML (line 7)"
    assert tl.loc[fix, "detail"] == "app: was invalid YAML (line 7)"


def test_a_missing_new_blob_is_reported_not_the_old_blobs_yaml_error(tmp_path: Path) -> None:
    w = start(tmp_path)
    w.commit("typo", when=at(1), files={"app/deployment.yaml": BROKEN})
    fixed = BROKEN.replace("image: web: 1.2", 'image: "web:1.2-unique-5c1e"')
    fix = w.commit("fix typo", when=at(2), files={"app/deployment.yaml": fixed})
    blob = git(tmp_path, "rev-parse", f"{fix}:app/deployment.yaml").strip()
    (tmp_path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    mc = DeployRepo(tmp_path).manifest_changes()
    row = mc[mc["sha"] == fix]
    assert len(row) == 1 and bool(row["unreadable"].iloc[0])
    error = row["error"].iloc[0]
    assert error.startswith(f"blob {blob[:10]} is missing from the object store"), error
    assert "YAML" not in error
    tl = what_changed(tmp_path, at(3), "1h").set_index("sha")
    assert tl.loc[fix, "detail"] == "app: unreadable (blob missing)"
