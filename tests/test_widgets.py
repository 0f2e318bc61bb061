"""The incident console's behaviour in Python: widget state after simulated input (the browser test is separate)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import incident_records
from gitops_nb.act import pause_self_heal, resume_self_heal
from gitops_nb.investigate.plot import SHA
from gitops_nb.sandbox.demo import DemoRepo
from gitops_nb.ui.widgets import IncidentConsole

from .conftest import git
from .test_actions import _deploy_bad, _eventually, _policy, live  # noqa: F401 - the live fixture is shared


def _click(con: IncidentConsole, source: str, sha: str) -> None:
    """Click a timeline point as the browser does: the front end sets the figure's points-callback trait."""
    fig = con.figure
    ti = next(i for i, t in enumerate(fig.data) if t.name == source)
    pi = next(i for i, row in enumerate(fig.data[ti].customdata) if row[SHA] == sha)
    fig._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {
            "trace_indexes": [ti],
            "point_indexes": [pi],
            "xs": [fig.data[ti].x[pi]],
            "ys": [fig.data[ti].y[pi]],
        },
        "device_state": {"button": 0, "buttons": 1, "ctrl": False, "meta": False, "shift": False, "alt": False},
        "selector": None,
    }


def test_investigate_fills_the_table_and_selects_the_top_culprit(demo_repo: DemoRepo) -> None:
    con = IncidentConsole(repo_path=str(demo_repo.path), at=demo_repo.incident_at.isoformat(), window="6h")
    con.investigate_button.click()
    bad = demo_repo.commits["checkout-prod-bad"]
    assert con.change.value == bad
    assert bad in [v for _, v in con.change.options]
    assert "color:#1b5e20" in con.status.value and "likely culprits" in con.status.value
    assert con.culprits is not None and con.culprits["sha"].iloc[0] == bad
    assert con.table.outputs and con.plot.children == (con.figure,)
    assert con.replay.value.startswith("papermill notebooks/what_changed.ipynb out/what_changed.ipynb")
    assert f"-p at {demo_repo.incident_at.isoformat()}" in con.replay.value
    con.review_button.click()
    assert not con.confirm_button.disabled and "field changes would be undone" in con.status.value
    _click(con, "git", demo_repo.commits["web-prod"])  # another pick, from the timeline: the review no longer applies
    assert con.change.value == demo_repo.commits["web-prod"] and con.confirm_button.disabled
    assert "from the timeline" in con.status.value
    git_trace = next(t for t in con.figure.data if t.name == "git")
    marked = [git_trace.customdata[i][SHA] for i in git_trace.selectedpoints]
    assert marked == [demo_repo.commits["web-prod"]]  # the picked change is marked in the timeline


def test_errors_are_messages_not_tracebacks(tmp_path: Path, demo_repo: DemoRepo) -> None:
    con = IncidentConsole(repo_path=str(tmp_path / "nope"))
    con.investigate()
    assert "NotARepoError" in con.status.value and "does not exist" in con.status.value
    con = IncidentConsole(repo_path=str(demo_repo.path), window="1h")
    con.confirm_revert(background=False)
    assert "review the revert first" in con.status.value
    con.pause()
    assert "pick an Application first" in con.status.value
    con.app.options = ["", "checkout-api-production"]
    con.app.value = "checkout-api-production"
    con.pause()
    assert "pick a kube context first" in con.status.value


@pytest.mark.sandbox
def test_console_acts_on_the_sandbox(live: dict, sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = _deploy_bad(live)
    con = IncidentConsole(
        repo_path=str(live["work"].path),
        kubeconfig=str(sandbox.kubeconfig),
        window="30m",
        output_dir=str(tmp_path / "INC-5" / "console"),
    )
    con.load_apps()
    assert con.context.value == "gitops-nb-sandbox" and live["name"] in con.app.options
    con.app.value = live["name"]
    con.reason.value = "console test"
    con.pause()
    assert _policy(live)["automated"].get("selfHeal", False) is False
    con.resume()
    assert _policy(live)["automated"]["selfHeal"] is True
    con.investigate()
    con.change.value = live["head"]
    _click(con, "argocd", bad)  # the deploy of the bad revision selects the bad commit
    assert con.change.value == bad
    rollout = next(t for t in con.figure.data if t.name == "rollout")
    _click(con, "rollout", rollout.customdata[0][SHA])  # a rollout is no commit: a message, the pick stays
    assert con.change.value == bad and "not a commit in this window" in con.status.value
    con.review_button.click()
    con.confirm_revert(background=False)
    assert con.transitions is not None and con.transitions["event"].iloc[-1] == "converged"
    lines = con.replay.value.splitlines()
    assert [line.split()[1] for line in lines] == [
        "notebooks/pause_self_heal.ipynb",
        "notebooks/pause_self_heal.ipynb",
        "notebooks/what_changed.ipynb",
        "notebooks/revert_and_verify.ipynb",
    ]
    assert f"-p sha {bad}" in lines[-1] and "-p confirm True" in lines[-1]
    assert [r["action"].iloc[0] for r in con.records] == ["pause-self-heal", "resume-self-heal", "revert", "refresh"]
    trail = incident_records(tmp_path / "INC-5")  # the audit trail the post-incident report reads
    assert list(trail["action"]) == ["pause-self-heal", "resume-self-heal", "revert", "refresh"]
    assert set(trail["step"]) == {"console"} and trail["after"].iloc[2] == con.records[2]["after"].iloc[0]


@pytest.mark.sandbox
def test_console_convergence_wait_shows_progress_and_can_be_cancelled(live: dict, sandbox) -> None:  # type: ignore[no-untyped-def]
    """With auto-sync paused the revert cannot converge: the monitor waits in the background until Cancel."""
    bad = _deploy_bad(live)
    con = IncidentConsole(repo_path=str(live["work"].path), kubeconfig=str(sandbox.kubeconfig), window="30m")
    con.load_apps()
    con.app.value = live["name"]
    pause_self_heal(live["cluster"], live["name"], "cancel test", mode="auto-sync", dry_run=False)
    try:
        con.investigate()
        con.change.value = bad
        con.review_revert()
        con.confirm_revert()  # background: the console stays usable while it waits
        assert con.watcher is not None and con.watcher.is_alive()
        assert _eventually(lambda: not con.cancel_button.disabled, 10)
        con.review_revert()  # a second revert while one is being watched is refused, readably
        con.confirm_revert()
        assert "still running" in con.status.value
        monitor = lambda: "".join(o.get("text", "") for o in con.monitor.outputs)  # noqa: E731
        assert _eventually(lambda: "still waiting for" in monitor(), 20)  # a long wait shows progress
        assert "sync OutOfSync" in monitor() and con.watcher.is_alive()  # nothing converges with auto-sync off
        con.cancel_button.click()
        con.watcher.join(15)
        assert not con.watcher.is_alive() and con.cancel_button.disabled
        assert "ConvergenceError" in con.status.value and "was cancelled; nothing was undone" in con.status.value
        revert_sha = con.records[-2]["after"].iloc[0]
        assert git(live["origin"], "rev-parse", "main").strip() == revert_sha  # the revert stays pushed
    finally:
        resume_self_heal(live["cluster"], live["name"], dry_run=False)


def _monitor_text(con: IncidentConsole) -> str:
    return "".join(o.get("text", "") for o in con.monitor.outputs)


def test_review_shows_the_rendered_diff_below_the_semantic_one(demo_repo: DemoRepo, tmp_path: Path) -> None:
    from gitops_nb.sandbox.demo import RepoWriter

    from .conftest import app_files

    con = IncidentConsole(repo_path=str(demo_repo.path), at=demo_repo.incident_at.isoformat(), window="6h")
    con.investigate()
    bad = demo_repo.commits["checkout-prod-bad"]
    assert con.change.value == bad and con.rendered.value  # on by default
    con.review_revert()
    r = con.rendered_review
    assert r is not None and set(r["app"]) == {"apps/checkout-api/overlays/production"}
    image = r[(r["kind"] == "Deployment") & r["field"].str.endswith(".image")].iloc[0]
    assert image["change"] == "modified" and image["old"] != image["new"]
    assert f"What {bad[:10]} changed in the rendered manifests" in _monitor_text(con)
    assert len(con.monitor.outputs) == 4  # the semantic diff, then the rendered one
    assert not con.confirm_button.disabled and "field changes would be undone" in con.status.value
    con.rendered.value = False
    con.review_revert()
    assert con.rendered_review is None and len(con.monitor.outputs) == 2
    # a render that fails is a row in the review, not a traceback; the review still stands
    w = RepoWriter(tmp_path / "deploy-config")
    now = pd.Timestamp.now(tz="UTC")
    w.commit("app", when=now - pd.Timedelta("10m"), files=app_files("shop", "1.0"))
    broken = w.commit(
        "shop: a base that is not there",
        when=now - pd.Timedelta("5m"),
        files={"apps/shop/overlays/prod/kustomization.yaml": "resources:\n- ../../missing\n"},
    )
    con = IncidentConsole(repo_path=str(w.path), window="1h")
    con.investigate()
    con.change.value = broken
    con.review_revert()
    r = con.rendered_review
    assert r is not None and list(r["change"]) == ["render-error"] and "missing" in r["error"].iloc[0]
    assert "render-error" in str(con.monitor.outputs[-1]) and not con.confirm_button.disabled
