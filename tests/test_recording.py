"""A Recording is an evidence source: frames rebuilt from stored objects by the live Cluster's own row
builders, answering as of any time the recording covers, keeping what a live cluster forgets (deploys
past Argo CD's 10, deleted ReplicaSets, expired events, every field change with old and new values).

The recording is synthesized through the real StoreWriter from a real git repo's commits
(benchmarks/make_recording.py): each commit that changes a Kustomize root is deployed by its Application.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

import gitops_nb as g
from benchmarks.make_recording import commits_of, write_fleet
from benchmarks.make_repo import generate
from gitops_nb import RowKind, schema
from gitops_nb.cluster.live import app_row, history_rows
from gitops_nb.cluster.recording import Recording
from gitops_nb.cluster.store import Store
from gitops_nb.errors import InputError, UnknownAppError
from gitops_nb.investigate.evidence_rows import cluster_rows


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store]:
    base = tmp_path_factory.mktemp("fleet")
    repo = generate(base / "repo", 500, services=3)  # 6 apps, ~42 hours of commits
    store = Store(base / "store")
    write_fleet(repo, store, progress=False, manual_per_day=1.5)
    return repo, store


def _end(store: Store) -> pd.Timestamp:
    return pd.Timestamp(store.read(columns=["time"]).column("time").to_pandas().max())


def test_frames_are_the_live_builders_as_of_at(fleet: tuple[Path, Store]) -> None:
    _repo, store = fleet
    end = _end(store)
    rec = Recording(store, at=end)
    apps = rec.applications()
    assert len(apps) == 6 and list(apps.columns) == list(schema.APPLICATIONS)
    # the same rows the live Cluster builds from the same objects
    objs = [
        json.loads(o)
        for o in store.read(kinds=["Application"], columns=["uid", "object"])
        .to_pandas()
        .drop_duplicates("uid", keep="last")["object"]
    ]
    want = schema.frame(schema.APPLICATIONS, [app_row(o) for o in objs]).sort_values("name").reset_index(drop=True)
    got = apps.sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(got.drop(columns=["pause_expired"]), want.drop(columns=["pause_expired"]))
    # as of an earlier time, each app's sync revision is the one deployed last before it
    mid = end - pd.Timedelta(hours=10)
    early = Recording(store, at=mid).applications().set_index("name")
    hist = rec.history()
    for name, rev in early["sync_revision"].items():
        h = hist[(hist["app"] == name) & (hist["deployed_at"] <= mid)]
        assert rev == h.sort_values("deployed_at")["revision"].iloc[-1]
    assert (early["sync_revision"] != apps.set_index("name")["sync_revision"].reindex(early.index)).any()


def test_history_keeps_deploys_past_argo_cds_ten(fleet: tuple[Path, Store]) -> None:
    _repo, store = fleet
    rec = Recording(store)
    hist = rec.history()
    live_view = [r for a in rec._raw_apps() for r in history_rows(a)]  # what Argo CD itself still lists
    assert len(live_view) <= 60
    per_app = hist.groupby("app")["id"].apply(list)
    for ids in per_app:
        assert len(ids) > 10 and sorted(ids) == list(range(len(ids)))  # every deploy once, none missing
    # the commits that changed a root were all deployed: one history entry each
    commits = commits_of(_repo)
    deploys = sum(1 for _t, _s, subj in commits[1:] if subj.startswith("deploy("))
    assert (hist["id"] > 0).sum() >= deploys
    one = rec.app_history("svc-00-staging")
    assert set(one["app"]) == {"svc-00-staging"} and len(one) == len(per_app["svc-00-staging"])
    with pytest.raises(UnknownAppError, match="Did you mean"):
        rec.app_history("svc-00-stagin")


def test_rollouts_include_deleted_replicasets(fleet: tuple[Path, Store]) -> None:
    _repo, store = fleet
    rec = Recording(store)
    ro = rec.rollouts("svc-01-production")
    deleted = set(
        store.read(kinds=["ReplicaSet"], columns=["name", "event", "namespace"])
        .to_pandas()
        .query("event == 'DELETED' and namespace == 'svc-01-production'")["name"]
    )
    assert deleted and deleted <= set(ro["replicaset"])
    assert ro["current"].sum() == 1 and list(ro["revision"]) == sorted(ro["revision"])
    assert len(ro) == ro["revision"].max()  # every rollout ever, not the 3 the cluster keeps


def test_field_edits_hold_each_recorded_change_with_old_and_new(fleet: tuple[Path, Store]) -> None:
    _repo, store = fleet
    rec = Recording(store)
    fe = rec.field_edits(None)
    manual = fe[fe["manager"] == "kubectl-edit"]
    assert len(manual) >= 3
    assert all(f == ["spec.replicas"] for f in manual["fields"])
    assert all(int(c[0][2]) > int(c[0][1]) for c in manual["changes"])  # scaled up by hand
    assert not manual["is_gitops"].any()
    # each Deployment's replica changes chain (each old is the previous new): kubectl-edit scales up at
    # 2am, and the next deploy sets git's value back (Argo CD's manager, old = the hand-set value)
    reps = fe[fe["changes"].notna() & fe["fields"].apply(lambda f: "spec.replicas" in f)].sort_values("time")
    resets = 0
    for _ns, d in reps.groupby("namespace"):
        vals = [dict((c[0], c[1:]) for c in ch)["spec.replicas"] for ch in d["changes"]]
        assert all(prev[1] == cur[0] for prev, cur in itertools.pairwise(vals))
        mgr = list(d["manager"])
        resets += sum(
            1
            for i in range(1, len(vals))
            if mgr[i] == "argocd-controller" and mgr[i - 1] == "kubectl-edit" and int(vals[i][1]) < int(vals[i][0])
        )
    assert resets >= 1
    # the managedFields rows of objects as of `at` are there too, once (not doubled by the recorded ones)
    mf = fe[fe["changes"].isna()]
    assert len(mf) and (mf["operation"].isin(["Apply", "Update"])).all()
    keys = list(zip(fe["kind"], fe["namespace"], fe["name"], fe["manager"], fe["time"], strict=True))
    assert len(keys) == len(set(keys))


def test_relisted_change_is_timed_as_a_range_and_gone_objects_leave(tmp_path: Path) -> None:
    store = Store(tmp_path)
    t0 = pd.Timestamp("2026-11-20T01:00:00Z")
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "resourceVersion": "5", "managedFields": []},
        "spec": {"replicas": 3},
    }
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop", "uid": "c1"}}
    base = {"api_version": "apps/v1", "namespace": "shop", "app": "shop"}
    with store.writer("prod") as w:
        w.append(
            {**base, "kind": "Deployment", "name": "web", "uid": "d1", "event": "ADDED", "time": t0, "object": dep}
        )
        w.append({**base, "kind": "ConfigMap", "name": "c", "uid": "c1", "event": "ADDED", "time": t0, "object": cm})
        # the recorder was down from 02:00 to 05:00: found changed, and found missing, on its relist
        w.append(
            {
                **base,
                "kind": "Deployment",
                "name": "web",
                "uid": "d1",
                "event": "RELISTED",
                "time": t0 + pd.Timedelta(hours=4),
                "since": t0 + pd.Timedelta(hours=1),
                "manager": "kubectl-scale",
                "changes": [["spec.replicas", 3, 1]],
                "object": {**dep, "spec": {"replicas": 1}},
            }
        )
        w.append(
            {
                **base,
                "kind": "ConfigMap",
                "name": "c",
                "uid": "c1",
                "event": "GONE",
                "time": t0 + pd.Timedelta(hours=4),
                "since": t0 + pd.Timedelta(hours=1),
            }
        )
    rec = Recording(store, at=t0 + pd.Timedelta(hours=5))
    fe = rec.field_edits("shop")
    row = fe[fe["manager"] == "kubectl-scale"].iloc[0]
    assert row["time_bound"] == "between 2026-11-20 02:00:00 UTC and 2026-11-20 05:00:00 UTC"
    assert row["changes"] == [["spec.replicas", "3", "1"]] and row["operation"] == "Relisted"
    assert rec.get_object("apps", "v1", "Deployment", "shop", "web")["spec"]["replicas"] == 1  # type: ignore[index]
    assert rec.get_object("", "v1", "ConfigMap", "shop", "c") is None  # gone by then
    before = Recording(store, at=t0 + pd.Timedelta(hours=2))
    assert before.get_object("apps", "v1", "Deployment", "shop", "web")["spec"]["replicas"] == 3  # type: ignore[index]
    assert before.get_object("", "v1", "ConfigMap", "shop", "c") is not None


def test_what_changed_takes_a_recording_as_it_takes_a_snapshot(fleet: tuple[Path, Store], tmp_path: Path) -> None:
    repo, store = fleet
    at = _end(store) - pd.Timedelta(hours=3)
    rec = Recording(store, at=at + pd.Timedelta(minutes=15))
    assert isinstance(rec, g.EvidenceSource) and not rec.live
    tl = g.what_changed(repo, at, "2h", cluster=rec)
    assert {RowKind.COMMIT, RowKind.DEPLOY, RowKind.ROLLOUT, RowKind.K8S_EVENT} <= set(tl["kind"])
    fig = g.plot_timeline(tl)
    assert sum(len(t.x) for t in fig.data) == len(tl)
    assert tl["time"].min() >= at - pd.Timedelta(hours=2)
    # a commit joins the deploy that shipped it
    commits = tl[(tl["kind"] == RowKind.COMMIT) & tl["deployed_at"].notna()]
    assert len(commits)
    # the same query on a snapshot taken of the recording's window gives the same timeline
    snap = g.Snapshot(g.snapshot(Recording(store, at=rec.at, since=at - pd.Timedelta(hours=2)), tmp_path / "snap"))
    tl2 = g.what_changed(repo, at, "2h", cluster=snap)
    cols = ["time", "kind", "app", "sha", "summary"]
    pd.testing.assert_frame_equal(tl[cols].reset_index(drop=True), tl2[cols].reset_index(drop=True))
    # what_changed bounds a whole recording to its window (for_window): the rows are the whole recording's
    lo, hi = at - pd.Timedelta(hours=2), at + pd.Timedelta(minutes=15)
    whole = Recording(store, at=rec.at)
    bounded = whole.for_window(lo, hi)
    assert bounded.since == lo and whole.since is None and bounded.at == whole.at
    assert Recording(store).for_window(lo, hi).at == hi  # no `at` given: as of the window's end, not now
    a, b = cluster_rows(whole, lo, hi), cluster_rows(bounded, lo, hi)
    assert len(a) > 50 and len(whole.history()) > len(bounded.history())  # it did read less
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_apps_filter_and_cluster_choice(fleet: tuple[Path, Store], tmp_path: Path) -> None:
    _repo, store = fleet
    rec = Recording(store, apps=["svc-02-production"])
    assert list(rec.applications()["name"]) == ["svc-02-production"]
    assert set(rec.rollouts(None)["namespace"]) == {"svc-02-production"}
    two = Store(tmp_path)
    for c in ("east", "west"):
        with two.writer(c) as w:
            w.append({"kind": "ConfigMap", "uid": c, "name": c, "event": "ADDED", "time": "2026-11-01T00:00:00Z"})
    with pytest.raises(InputError, match="holds 2 clusters \\(east, west\\): pass cluster="):
        Recording(two)
    with pytest.raises(InputError, match="no recording of cluster 'north'"):
        Recording(two, cluster="north")
    with pytest.raises(InputError, match="holds no recording yet"):
        Recording(tmp_path / "empty")
    assert Recording(two, cluster="west").context == "west"


def test_cli_notebooks_and_console_take_a_recording(fleet: tuple[Path, Store], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from gitops_nb.ui.widgets import IncidentConsole

    repo, store = fleet
    at = (_end(store) - pd.Timedelta(hours=3)).isoformat()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "gitops_nb", "what-changed", str(repo), "--at", at, "--recording", store.url]
    cli = subprocess.run(
        [*cmd, "--out", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert cli.returncode == 0, cli.stderr
    assert "Argo CD deployed" in cli.stdout and "rollout #" in cli.stdout
    assert "saving the recording's rows from" in cli.stderr  # the evidence kept beside the report, with progress
    assert Recording(tmp_path / "cli" / "recording").applications()["name"].tolist()
    both = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "what-changed", str(repo), "--recording", store.url, "--snapshot", "x"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert both.returncode == 2 and "not both" in both.stderr
    papermill = str(Path(sys.executable).parent / "papermill")
    for nb, params in (
        ("what_changed", {"repo_path": str(repo), "at": at, "window": "2h", "recording": store.url}),
        ("drift", {"recording": store.url, "at": at}),
    ):
        out = tmp_path / nb
        args = [papermill, f"notebooks/{nb}.ipynb", str(out) + ".ipynb", "-k", "python3"]
        for k, v in {**params, "output_dir": str(out)}.items():
            args += ["-p", k, v]
        res = subprocess.run(args, capture_output=True, text=True, cwd=root, env=env)
        assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "what_changed" / "summary.json").read_text())
    assert summary["commits"] > 0 and summary["evidence"]["recording"] == "recording"
    assert (tmp_path / "what_changed" / "recording" / "objects").is_dir()
    tl = pd.read_parquet(tmp_path / "what_changed" / "timeline.parquet")
    assert {RowKind.DEPLOY, RowKind.ROLLOUT} <= set(tl["kind"])
    drift_apps = pd.read_parquet(tmp_path / "drift" / "applications.parquet")
    assert len(drift_apps) == 6
    con = IncidentConsole(repo_path=str(repo), at=at, window="2h", recording=store.url)
    con.load_apps()
    assert "6 Applications" in con.status.value
    con.investigate()
    assert con.timeline is not None and RowKind.DEPLOY in set(con.timeline["kind"])


def test_drift_and_manual_edits_as_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path)
    t0 = pd.Timestamp("2026-11-02T02:00:00Z")

    def app(sync: str) -> dict[str, object]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd", "uid": "a1"},
            "spec": {"destination": {"namespace": "shop"}, "source": {"repoURL": "r", "path": "apps/web"}},
            "status": {
                "sync": {"status": sync},
                "health": {"status": "Healthy"},
                "resources": [
                    {
                        "group": "apps",
                        "version": "v1",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "status": sync,
                        "health": {"status": "Healthy"},
                    }
                ],
            },
        }

    edit = {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": "2026-11-02T02:00:00Z",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "managedFields": [edit]},
        "spec": {"replicas": 5},
    }
    with store.writer("prod") as w:
        w.append(
            {
                "kind": "Application",
                "uid": "a1",
                "name": "web",
                "app": "web",
                "event": "ADDED",
                "time": t0 - pd.Timedelta(hours=1),
                "object": app("Synced"),
            }
        )
        w.append(
            {
                "kind": "Deployment",
                "uid": "d1",
                "name": "web",
                "namespace": "shop",
                "app": "web",
                "event": "MODIFIED",
                "time": t0,
                "manager": "kubectl-edit",
                "manager_time": t0,
                "changes": [["spec.replicas", 3, 5]],
                "object": dep,
            }
        )
        w.append(
            {
                "kind": "Application",
                "uid": "a1",
                "name": "web",
                "app": "web",
                "event": "MODIFIED",
                "time": t0 + pd.Timedelta(seconds=20),
                "object": app("OutOfSync"),
            }
        )
    before = g.drift(Recording(store, at=t0 - pd.Timedelta(minutes=1)))
    after = g.drift(Recording(store, at=t0 + pd.Timedelta(minutes=1)))
    assert before.empty
    assert list(after[["app", "kind", "name", "sync_status"]].iloc[0]) == ["web", "Deployment", "web", "OutOfSync"]
    edits = g.manual_edits(Recording(store, at=t0 + pd.Timedelta(minutes=1)))
    # one row: the recorded change (old 3, new 5), not doubled by the managedFields entry it came from
    assert len(edits) == 1 and edits.iloc[0]["changes"] == [["spec.replicas", "3", "5"]]
    assert edits.iloc[0]["apps"] == ["web"] and edits.iloc[0]["time"] == t0


def test_drift_spans_say_how_long_each_field_disagreed_with_git(tmp_path: Path) -> None:
    """Edits outside git open a span, Argo CD's next write of the field closes it; a later edit is ongoing."""
    store = Store(tmp_path)
    t0 = pd.Timestamp("2026-11-02T02:00:00Z")
    hour = pd.Timedelta(hours=1)
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "uid": "a1"},
        "spec": {"destination": {"namespace": "shop"}, "source": {"repoURL": "r", "path": "apps/web"}},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
    }
    # (hours after t0, manager, old replicas, new replicas)
    steps = [
        (0, "kubectl-edit", 3, 5),
        (1, "kubectl-edit", 5, 6),
        (3, "argocd-controller", 6, 3),
        (4, "kubectl-edit", 3, 4),
    ]
    with store.writer("prod") as w:
        w.append({"kind": "Application", "uid": "a1", "name": "web", "app": "web", "event": "ADDED",
                  "time": t0 - hour, "object": application})  # fmt: skip
        for h, manager, old, new in steps:
            at = t0 + h * hour
            entry = {"manager": manager, "operation": "Apply" if manager.startswith("argocd") else "Update",
                     "time": f"{at:%Y-%m-%dT%H:%M:%SZ}", "fieldsV1": {"f:spec": {"f:replicas": {}}}}  # fmt: skip
            dep = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": new},
                   "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "managedFields": [entry]}}  # fmt: skip
            w.append({"kind": "Deployment", "uid": "d1", "name": "web", "namespace": "shop", "app": "web",
                      "event": "MODIFIED", "time": at, "manager": manager, "manager_time": at,
                      "changes": [["spec.replicas", old, new]], "object": dep})  # fmt: skip
    rec = Recording(store, at=t0 + 5 * hour)
    spans = g.drift_spans(rec, until=t0 + 5 * hour)
    assert list(spans.columns) == list(schema.DRIFT_SPANS)
    assert str(spans["set_at"].dtype) == schema.UTC
    first, second = spans.to_dict("records")
    assert (first["set_by"], first["set_at"], first["ended_by"], first["ended_at"]) == (
        "kubectl-edit",
        t0,
        "argocd-controller",
        t0 + 3 * hour,
    )
    # the value before the first edit, the last value set outside git, and what Argo CD put back
    assert (first["value_before"], first["value_outside"], first["restored_to"]) == ("3", "6", "3")
    assert first["duration"] == 3 * hour and first["duration_text"] == "3h00m" and not first["ongoing"]
    assert (first["apps"], first["kind"], first["name"], first["path"]) == (
        ["web"],
        "Deployment",
        "web",
        "spec.replicas",
    )
    assert second["ongoing"] and pd.isna(second["ended_at"]) and second["set_at"] == t0 + 4 * hour
    assert second["duration"] == hour and second["duration_text"] == "1h00m so far"
    # a window after the first span was closed keeps only the second; one before the second opened, the first
    assert list(g.drift_spans(rec, since=t0 + 3.5 * hour, until=t0 + 5 * hour)["set_at"]) == [t0 + 4 * hour]
    assert list(g.drift_spans(rec, until=t0 + 2 * hour)["ongoing"]) == [True]  # as of 04:00, the first was open
    # evidence without past values says why it has no spans
    demo = g.drift_spans(g.Snapshot(Path(__file__).parent / "data" / "demo" / "evidence"))
    assert demo.empty and "record" in demo.attrs["why_empty"]


def test_drift_spans_of_a_recorded_fleet_match_its_resets(fleet: tuple[Path, Store]) -> None:
    """On the synthetic month: every 2am scale-up outside git is a span, closed by Argo CD's next deploy."""
    _repo, store = fleet
    rec = Recording(store)
    spans = g.drift_spans(rec)
    assert len(spans) >= 3 and (spans["set_by"] == "kubectl-edit").all() and (spans["path"] == "spec.replicas").all()
    closed = spans[~spans["ongoing"]]
    assert len(closed) >= 1 and (closed["ended_by"] == "argocd-controller").all()
    assert (closed["ended_at"] > closed["set_at"]).all()
    assert (closed["duration"] == closed["ended_at"] - closed["set_at"]).all()
    # each closing write is a recorded Argo CD change of that Deployment whose old value is the hand-set one
    fe = rec.field_edits(None)
    argo = fe[fe["manager"] == "argocd-controller"]
    for s in closed.itertuples(index=False):
        at = argo[(argo["namespace"] == s.namespace) & (argo["name"] == s.name) & (argo["time"] == s.ended_at)]
        olds = [c[1] for ch in at["changes"] if isinstance(ch, list) for c in ch if c[0] == "spec.replicas"]
        assert s.value_outside in olds


class _WholeReads:
    """A recording seen only through ``EvidenceSource.field_edits`` (no ``recorded_edits``): beyond_git then
    reads every change of the deployed kinds, as it did before the pushed-down read."""

    def __init__(self, rec: Recording) -> None:
        self.field_edits = rec.field_edits


def test_who_set_what_a_deploy_reset_is_read_for_its_objects_alone(fleet: tuple[Path, Store]) -> None:
    """beyond_git looks up who set the values a deploy in the window reset however long before it; on a
    recording it reads only the objects those deploys changed (EditHistory.recorded_edits: namespace and
    name pushed down), with the same rows, and so the same answers, as reading every change of their kinds."""
    from gitops_nb.cluster.evidence import EditHistory
    from gitops_nb.investigate.evidence_rows import beyond_git, recorded_changes

    _repo, store = fleet
    end = _end(store)
    whole = Recording(store, at=end)
    assert isinstance(whole, EditHistory)
    fe = recorded_changes(whole.field_edits(None))
    assert fe is not None
    resets = fe[fe["is_gitops"] & (fe["path"] == "spec.replicas")]
    # the pushed-down read gives exactly the full read's recorded rows of those objects, in its order
    objects = set(sorted(set(zip(resets["namespace"], resets["kind"], resets["name"], strict=True)))[:3])
    assert len(objects) == 3
    kinds = sorted({k for _ns, k, _n in objects})
    full = whole.field_edits(None, kinds)
    keep = [o in objects for o in zip(full["namespace"], full["kind"], full["name"], strict=True)]
    want = full[pd.Series(keep, index=full.index, dtype=bool) & full["changes"].notna()].reset_index(drop=True)
    got = Recording(store, at=end).recorded_edits(objects)
    assert len(got) > len(objects) and got["changes"].notna().all()
    pd.testing.assert_frame_equal(got, want)
    assert len(full) > len(got)  # it did read less
    assert len(Recording(store, at=end).recorded_edits([])) == 0
    # beyond_git over a window starting after each manual edit that a deploy then reset: the same answers
    checked = found = 0
    manual = fe[fe["manager"] == "kubectl-edit"]
    for t in manual["time"]:
        later = resets[resets["time"] > t]
        if not len(later):
            continue
        deployed = later["time"].iloc[0]
        lo, hi = t + pd.Timedelta(minutes=1), deployed + pd.Timedelta(minutes=5)
        window = whole.for_window(lo, hi)
        hist = window.history()
        hist = hist[(hist["deployed_at"] >= lo) & (hist["deployed_at"] <= hi)]
        apps = window.applications()
        ns_of = dict(zip(apps["name"], apps["dest_namespace"], strict=True))
        edits, events = window.field_edits(None), window.events(None)
        pushed = beyond_git(window, hist, ns_of, edits=edits, events=events, before=Recording(store, at=end))
        read_all = beyond_git(window, hist, ns_of, edits=edits, events=events, before=_WholeReads(whole))  # type: ignore[arg-type]
        alone = beyond_git(window, hist, ns_of, edits=edits, events=events)
        assert pushed == read_all
        checked += 1
        found += sum("had been set by kubectl-edit" in text for v in pushed.values() for _f, text in v)
        assert sum(len(v) for v in alone.values()) <= sum(len(v) for v in pushed.values())
    assert checked >= 2 and found >= 1  # the earlier edit was found, from before the window


def _reset_window(store: Store) -> tuple[pd.Timestamp, str]:
    """(at, window) of an incident just after a deploy that reset a manual edit made before the window."""
    fe = g.Recording(store).field_edits(None)
    rows = fe[fe["changes"].notna()].sort_values("time")
    edits = rows[rows["manager"] == "kubectl-edit"]
    for t, ns, name in zip(edits["time"], edits["namespace"], edits["name"], strict=True):
        same = rows[(rows["namespace"] == ns) & (rows["name"] == name) & (rows["time"] > t)]
        later = same[same["is_gitops"] & same["fields"].apply(lambda f: "spec.replicas" in f)]
        if len(later) and later["time"].iloc[0] - t > pd.Timedelta(minutes=30):
            at = later["time"].iloc[0] + pd.Timedelta(minutes=2)
            return at, f"{int((at - t).total_seconds() // 60) - 10}m"
    raise AssertionError("the fleet holds no deploy resetting an earlier manual edit")


def test_a_saved_report_keeps_its_recorded_evidence_past_retention(fleet: tuple[Path, Store], tmp_path: Path) -> None:
    """Investigation.save() of a Recording-backed investigation writes the rows its timeline read beside
    the report (recording/: the window's rows, the state before it, and the earlier changes beyond git
    read); after retention drops those days from the recorder's store, the saved evidence reopened as a
    Recording gives the same timeline, who set a value a deploy reset weeks before included."""
    import shutil

    repo, fleet_store = fleet
    root = tmp_path / "store"
    shutil.copytree(fleet_store.url, root)
    store = Store(root)
    at, window = _reset_window(store)
    seen = at + pd.Timedelta(minutes=15)
    whole = g.investigate(repo, at, window, cluster=Recording(store, at=seen))  # reads before the window too
    bounded = g.investigate(repo, at, window, recording=root)  # bounded to the window (since=)
    cols = ["time", "kind", "app", "sha", "summary", "detail", "score", "rank"]
    assert whole.timeline["detail"].fillna("").str.contains("had been set by kubectl-edit").any()
    saved = {name: inv.save(tmp_path / name) for name, inv in (("whole", whole), ("bounded", bounded))}
    summary = json.loads((saved["whole"] / "summary.json").read_text())
    assert summary["evidence"]["recording"] == "recording" and pd.Timestamp(summary["evidence"]["at"]) == seen
    copy = Store(saved["whole"] / "recording")
    n = copy.read(columns=["time"]).num_rows
    assert 0 < n < store.read(columns=["time"]).num_rows / 2  # small
    lines: list[str] = []
    whole.save(saved["whole"], progress=lines.append)  # saved again into the same folder: replaced, not doubled
    assert Store(saved["whole"] / "recording").read(columns=["time"]).num_rows == n
    assert lines[0].startswith("saving the recording's rows from") and lines[-1] == f"  saved {n} rows", lines
    # retention drops every day the reports rest on
    days = sorted({d for _c, _k, d, _f in store.partitions()})
    assert store.retain("1d", now=pd.Timestamp(days[-1]) + pd.Timedelta(days=2)) >= len(days)
    assert store.read(columns=["time"]).num_rows == 0
    for name, inv in (("whole", whole), ("bounded", bounded)):
        again = g.what_changed(repo, at, window, cluster=Recording(saved[name] / "recording", at=seen))
        pd.testing.assert_frame_equal(again[cols], inv.timeline[cols], check_dtype=False)
        frames, _ = g.load_results(saved[name])
        assert len(frames["timeline"]) == len(again)
    # saved again now: nothing left to copy; the evidence saved before is kept
    with pytest.raises(InputError, match="holds nothing up to"):
        whole.save(saved["whole"])
    assert Store(saved["whole"] / "recording").read(columns=["time"]).num_rows == n
    with pytest.raises(InputError, match="already holds a recording"):
        Recording(saved["whole"] / "recording", at=seen).save_window(saved["whole"] / "recording", at, seen)


def test_a_saved_window_holds_no_secret_value(tmp_path: Path) -> None:
    """The saved evidence never holds a Secret's value, even from a store written by something other than
    the recorder's writer (which strips them): Secret rows are sanitized again as they are copied -- the
    state before the window, the window's rows and the earlier changes alike."""
    import base64

    planted = ["PLANTED-old-secret-7a1f", "PLANTED-new-secret-2b9e", "PLANTED-first-secret-c4d0"]
    store = Store(tmp_path / "rec")
    t0 = pd.Timestamp("2026-11-02T08:00:00Z")

    def secret(value: str, event: str, at: pd.Timestamp, changes: list[list[str]]) -> dict[str, object]:
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "db",
                "namespace": "shop",
                "uid": "s1",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": f'{{"stringData":"{value}"}}'},
            },
            "data": {"password": base64.b64encode(value.encode()).decode()},
            "stringData": {"password": value},
        }
        row = {
            "kind": "Secret",
            "namespace": "shop",
            "name": "db",
            "uid": "s1",
            "event": event,
            "manager": "kubectl-edit",
        }
        return {
            **row,
            "time": at.to_pydatetime(),
            "day": at.strftime("%Y-%m-%d"),
            "object": json.dumps(obj),
            "changes": json.dumps(changes),
        }

    rows = [
        secret(planted[2], "ADDED", t0, []),
        secret(planted[0], "MODIFIED", t0 + pd.Timedelta(days=1), [["data.password", planted[2], planted[0]]]),
        secret(planted[1], "MODIFIED", t0 + pd.Timedelta(days=3), [["data.password", planted[0], planted[1]]]),
    ]
    for i, r in enumerate(rows):  # straight to Parquet, as another tool might have written it
        store.write_rows("c", [r], recorder="other", seq=i)
    assert planted[1] in store.read(columns=["object"]).column("object").to_pylist()[-1]  # it is there
    lo, hi = t0 + pd.Timedelta(days=3, hours=-1), t0 + pd.Timedelta(days=3, hours=1)
    saved = Recording(store, at=hi).save_window(tmp_path / "saved", lo, hi)
    copied = saved.read().to_pandas()
    assert set(copied["event"]) == {"MODIFIED"} and len(copied) == 2  # the window's change and the earlier one
    for col in copied.columns:
        for v in map(str, copied[col]):
            assert not any(p in v or base64.b64encode(p.encode()).decode() in v for p in planted), (col, v)
    assert json.loads(copied["changes"].iloc[-1]) == [["data.password", None, None]]  # that it changed, not to what
    assert "data" not in json.loads(copied["object"].iloc[-1])
    for f in (tmp_path / "saved").rglob("*"):
        if f.is_file():
            assert not any(p.encode() in f.read_bytes() for p in planted)
