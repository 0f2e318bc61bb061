"""The culprit score, one rule at a time (gitops_nb.investigate.scoring)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gitops_nb import RowKind, Weights, schema, what_changed
from gitops_nb.investigate.scoring import (
    CommitFacts,
    breadth,
    commit_score,
    edit_score,
    field_weight,
    proximity,
    rank,
)

from .conftest import FixtureRepo


def test_proximity_halves_every_half_life() -> None:
    assert proximity(0) == 1.0
    assert proximity(30) == pytest.approx(0.5) and proximity(60) == pytest.approx(0.25)
    assert proximity(30, Weights(half_life_min=60)) == pytest.approx(math.sqrt(0.5))


def test_breadth_grows_with_the_log_of_apps() -> None:
    assert breadth(0) == 1.0 and breadth(1) == 2.0 and breadth(3) == 3.0


def test_the_most_telling_field_counts() -> None:
    assert field_weight(["images[api].newTag", "spec.replicas"]) == (1.0, "images[api].newTag")
    assert field_weight(["spec.replicas", "metadata.labels.team"]) == (0.8, "spec.replicas")
    assert field_weight(["data.LOG_LEVEL"]) == (0.5, "data.LOG_LEVEL")
    assert field_weight([]) == (0.0, "")


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
    w = Weights(merge=1.0, fields=(("replicas", 2.0),))
    # at T, no tag weight (the default 0.5), merges not damped, one app: 1 x 0.5 x 1.0 x 2
    assert commit_score(_facts(is_merge=True), w)[0] == pytest.approx(1.0)
    assert field_weight(["spec.replicas"], w) == (2.0, "spec.replicas")


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
    assert git_rows["rank"].notna().all()
    assert sorted(git_rows["rank"].astype(int)) == list(range(1, len(commits) + 1))
    oldest = git_rows.sort_values("time").iloc[0]
    assert oldest["before_at"] > pd.Timedelta("6h") and oldest["score"] > 0
