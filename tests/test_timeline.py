"""what_changed and the culprit ranking, on the demo repo and the fixture repo."""

from __future__ import annotations

import pandas as pd
import pytest

from gitops_nb import (
    DeployRepo,
    InputError,
    NaiveTimeWarning,
    TimeParseError,
    UnknownContextError,
    culprits,
    investigate,
    load_results,
    schema,
    what_changed,
)
from gitops_nb.sandbox.demo import DemoRepo

from .conftest import T0, FixtureRepo


def test_demo_incident_ranks_the_bad_deploy_first(demo_repo: DemoRepo) -> None:
    tl = what_changed(demo_repo.path, demo_repo.incident_at, "3h")
    assert list(tl.columns) == list(schema.TIMELINE)
    assert tl["time"].is_monotonic_decreasing and str(tl["time"].dt.tz) == "UTC"
    top = culprits(tl)
    assert top["sha"].iloc[0] == demo_repo.commits["checkout-prod-bad"]
    assert list(top["rank"]) == list(range(1, len(top) + 1))
    bad = tl.set_index("sha").loc[demo_repo.commits["checkout-prod-bad"]]
    assert bad["app"] == "apps/checkout-api/overlays/production"
    assert "newTag 2026.3.17-4f2c9e1 → 2026.3.18-a1b9f04" in bad["detail"]
    assert bad["before_at"] == pd.Timedelta("10m")
    # the commit after T is shown but never a candidate
    after = tl.set_index("sha").loc[demo_repo.commits["docs"]]
    assert pd.isna(after["rank"]) and after["score"] == 0
    # a commit reverted before T ranks below the revert that undid it
    ranks = tl.set_index("sha")["rank"]
    assert ranks[demo_repo.commits["payments-bad"]] > ranks[demo_repo.commits["payments-revert"]]
    assert "reverted by" in tl.set_index("sha").loc[demo_repo.commits["payments-bad"], "why"]


def test_base_change_reaches_both_overlays(fixture_repo: FixtureRepo) -> None:
    tl = what_changed(fixture_repo.path, T0 + pd.Timedelta(hours=4, minutes=5), "30m")
    assert list(tl["sha"]) == [fixture_repo.shas["base"]]
    assert tl["apps"].iloc[0] == ["apps/checkout-api/overlays/production", "apps/checkout-api/overlays/staging"]
    assert tl["rank"].iloc[0] == 1


def test_window_and_apps_filter(demo_repo: DemoRepo) -> None:
    wide = what_changed(demo_repo.path, demo_repo.incident_at, "6h", after="20m")
    assert len(wide) == len(demo_repo.commits)
    only = what_changed(demo_repo.path, demo_repo.incident_at, "6h", apps=["payments-worker"])
    assert set(only["sha"]) == {demo_repo.commits[k] for k in ("initial", "payments-bad", "payments-revert")}
    narrow = what_changed(demo_repo.path, demo_repo.incident_at, "11m", after=None)
    assert list(narrow["sha"]) == [demo_repo.commits["checkout-prod-bad"]]
    with pytest.raises(InputError, match="no Kustomize root matches"):
        what_changed(demo_repo.path, demo_repo.incident_at, "1h", apps="no-such-app")


def test_at_forms(demo_repo: DemoRepo) -> None:
    t = demo_repo.incident_at
    zoned = what_changed(demo_repo.path, t.tz_convert("Europe/Berlin").isoformat(), "1h")
    assert zoned.attrs["at"] == t
    with pytest.warns(NaiveTimeWarning, match="taken as UTC"):
        naive = what_changed(demo_repo.path, t.tz_localize(None).isoformat(), "1h")
    assert list(naive["sha"]) == list(zoned["sha"])
    rel = what_changed(demo_repo.path, "-30m", "1h")
    now = pd.Timestamp.now(tz="UTC")
    assert abs(rel.attrs["at"] - (now - pd.Timedelta("30m"))) < pd.Timedelta("1m")
    assert abs(what_changed(demo_repo.path, "now", "1h").attrs["at"] - now) < pd.Timedelta("1m")


@pytest.mark.parametrize("window", ["0m", "-2h", "0", "soon"])
def test_bad_window(demo_repo: DemoRepo, window: str) -> None:
    with pytest.raises(TimeParseError, match="window"):
        what_changed(demo_repo.path, "now", window)


def test_bad_at(demo_repo: DemoRepo) -> None:
    with pytest.raises(TimeParseError, match="cannot read the time 'half past two'"):
        what_changed(demo_repo.path, "half past two")


def test_investigate_saves_results(demo_repo: DemoRepo, tmp_path) -> None:
    inv = investigate(DeployRepo(demo_repo.path), demo_repo.incident_at, "3h")
    out = inv.save(tmp_path / "results")
    frames, summary = load_results(out)
    assert summary["top_culprit"]["sha"] == demo_repo.commits["checkout-prod-bad"]
    assert summary["commits"] == len(inv.commits) == 6
    assert pd.Timestamp(summary["at"]) == demo_repo.incident_at
    assert list(frames["timeline"]["sha"]) == list(inv.timeline["sha"])
    assert str(frames["timeline"]["time"].dt.tz) == "UTC"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{name: a, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: a, user: {}}]\ncontexts: [{name: a, context: {cluster: a, user: a}}, {name: staging, context: {cluster: a, user: a}}]\n"
    )
    with pytest.raises(UnknownContextError, match=r"'prod'.*Known contexts: a, staging"):
        investigate(demo_repo.path, demo_repo.incident_at, "3h", kube_context="prod", kubeconfig=str(kubeconfig))
