"""The timeline, ranking, drift and report logic on a recorded sandbox incident (tests/data/demo/),
in milliseconds and without a cluster. Recorded by tools/record_snapshot.py from the real sandbox; the
sandbox tests (test_cluster.py, test_actions.py) still check the same logic live."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import gitops_nb as g
from gitops_nb import RowKind

DATA = Path(__file__).resolve().parent / "data" / "demo"


@dataclass
class Recorded:
    repo: g.DeployRepo
    snap: g.Snapshot
    facts: dict[str, Any]

    @property
    def at(self) -> pd.Timestamp:
        return pd.Timestamp(self.facts["incident_at"])


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    path = tmp_path_factory.mktemp("recorded") / "deploy-config"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    with (DATA / "repo.fi").open("rb") as stream:
        subprocess.run(["git", "fast-import", "--quiet"], cwd=path, stdin=stream, check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=path, check=True)
    return Recorded(g.DeployRepo(path), g.Snapshot(DATA / "evidence"), json.loads((DATA / "facts.json").read_text()))


def test_the_recording_reimports_with_the_same_shas(rec: Recorded) -> None:
    assert rec.repo.resolve("main") == rec.facts["bad_sha"]  # the bad bump is the newest commit
    deployed = set(rec.snap.history()["revision"])
    assert rec.facts["bad_sha"] in deployed and all(len(s) == 40 for s in deployed)
    assert deployed <= set(rec.repo.commits()["sha"])


def test_the_bad_deploy_ranks_first_and_every_kind_is_there(rec: Recorded) -> None:
    tl = g.what_changed(rec.repo, rec.at, "15m", cluster=rec.snap)
    top = g.culprits(tl).iloc[0]
    assert top["sha"] == rec.facts["bad_sha"] and top["kind"] == RowKind.COMMIT
    assert {RowKind.COMMIT, RowKind.DEPLOY, RowKind.ROLLOUT, RowKind.FIELD_EDIT} <= set(tl["kind"])
    bad = tl[(tl["kind"] == RowKind.COMMIT) & (tl["sha"] == rec.facts["bad_sha"])].iloc[0]
    deploys = tl[(tl["kind"] == RowKind.DEPLOY) & (tl["sha"] == rec.facts["bad_sha"])]
    prod = deploys[deploys["argocd_app"] == "checkout-api-production"]
    assert bad["deployed_at"] == prod["time"].min() and "deployed" in bad["why"]
    assert "checkout-api-production" in bad["argocd_app"]


def test_a_reworded_summary_does_not_change_the_ranking(rec: Recorded) -> None:
    """Ranking finds deploys by kind: rewrite every deploy's summary and the answer stays."""
    tl = g.what_changed(rec.repo, rec.at, "15m", cluster=rec.snap)

    class Reworded:
        def __init__(self, inner: g.Snapshot) -> None:
            self.inner = inner
            self.context, self.argocd_namespace, self.live = inner.context, inner.argocd_namespace, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    from gitops_nb.investigate import evidence_rows

    rows = evidence_rows.cluster_rows(rec.snap, rec.at - pd.Timedelta("15m"), rec.at)
    assert (rows.loc[rows["kind"] == RowKind.DEPLOY, "summary"].str.startswith("Argo CD deployed")).all()
    assert isinstance(Reworded(rec.snap), g.EvidenceSource)
    again = g.what_changed(rec.repo, rec.at, "15m", cluster=Reworded(rec.snap))  # type: ignore[arg-type]
    pd.testing.assert_series_equal(tl["rank"], again["rank"])


def test_manual_edit_is_found_with_its_fields(rec: Recorded) -> None:
    edits = g.manual_edits(rec.snap)
    mine = edits[(edits["manager"] == "kubectl-edit") & (edits["name"] == "checkout-api")]
    assert len(mine) == 1 and set(rec.facts["edit"]["fields"]) <= set(mine["fields"].iloc[0])
    assert mine["apps"].iloc[0] == ["checkout-api-production"]
    assert str(mine["time"].dt.tz) == "UTC"


def test_drift_reads_the_recorded_resources(rec: Recorded) -> None:
    d = g.drift(rec.snap)
    apps = rec.snap.applications()
    out_of_sync = set(apps.loc[apps["sync_status"] != "Synced", "name"])
    assert set(d["app"]) <= out_of_sync
    assert list(d.columns)[:3] == ["app", "app_sync", "app_health"]


def test_the_report_saves_and_reads_back(rec: Recorded, tmp_path: Path) -> None:
    inv = g.investigate(rec.repo, rec.at, "15m", cluster=rec.snap)
    out = inv.save(tmp_path / "results")
    frames, summary = g.load_results(out)
    assert summary["top_culprit"]["sha"] == rec.facts["bad_sha"]
    assert not (out / "evidence").exists()  # a snapshot is not snapshotted again (it is not live)
    assert len(frames["timeline"]) == len(inv.timeline)
    assert str(frames["timeline"]["time"].dt.tz) == "UTC"


def test_a_snapshot_answers_for_a_deleted_app(rec: Recorded) -> None:
    h = rec.snap.app_history("checkout-api-production")
    assert rec.facts["bad_sha"] in set(h["revision"])
    with pytest.raises(g.UnknownAppError, match="no Application 'nope'"):
        rec.snap.app_history("nope")


def test_the_cli_reads_a_snapshot_like_the_notebook(rec: Recorded) -> None:
    """`gitops-nb what-changed --snapshot DIR` adds the cluster side from saved evidence."""
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "what-changed", rec.repo.path, "--at", rec.facts["incident_at"],
         "--window", "15m", "--snapshot", str(DATA / "evidence")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    culprits = res.stdout.split("likely culprits:")[1].splitlines()
    assert culprits[2].split()[0] == "1" and "deployed" in culprits[2]  # the deploy evidence is in the why
    both = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "what-changed", rec.repo.path, "--snapshot", "x", "--context", "y"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr
