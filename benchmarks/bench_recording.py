"""Benchmark the recording store: what_changed over a 2-hour window from a 30-day recording, against the
same query over a Snapshot holding only those 2 hours; the store's size per day; Store.read with
pushdown against a full scan. Ratios are measured in the same process.

The 30-day recording is synthesized through the real StoreWriter (benchmarks/make_recording.py) from a
generated deploy-config repo: 500 services x 2 environments = 1,000 Applications, each with a
Deployment, a Service, a ConfigMap and its ReplicaSets (~5,000 live objects), one deploy per commit that
changes a root (~300 a day), ReplicaSets made and deleted, events, and manual night-time scale-ups.

    python benchmarks/bench_recording.py            # cached under $GITOPS_NB_CACHE/bench
    python benchmarks/bench_recording.py --days 7   # a quicker run

Exits 1 if the what_changed target (<= 2x the snapshot) is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best
from make_recording import write_fleet
from make_repo import STEP, generate

from gitops_nb import Snapshot, snapshot, what_changed
from gitops_nb.cluster.recording import Recording
from gitops_nb.cluster.store import Store

CACHE = Path(os.environ.get("GITOPS_NB_CACHE", Path.home() / ".cache" / "gitops-nb")) / "bench"
HERE = Path(__file__).resolve().parent


def _key(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--services", type=int, default=500)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    commits = a.days * 86400 // STEP + 1
    repo = CACHE / f"rec-repo-{commits}-{a.services}"
    if not (repo / ".git").exists():
        print(f"generating a {commits}-commit repo with {a.services * 2} apps in {repo} ...", file=sys.stderr)
        shutil.rmtree(repo, ignore_errors=True)
        generate(repo, commits, services=a.services)
    key = _key(HERE / "make_recording.py", HERE.parent / "gitops_nb" / "cluster" / "store.py")
    root = CACHE / f"rec-store-{commits}-{a.services}-{key}"
    if not (root / "objects").exists():
        print(
            f"recording {a.days} days of {a.services * 2} apps through the StoreWriter into {root} ...", file=sys.stderr
        )
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        n = write_fleet(repo, Store(root))
        print(f"  {n} rows in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    store = Store(root)
    parts = store.partitions()
    days = sorted({d for _c, _k, d, _f in parts})
    size = sum(Path(f).stat().st_size for *_x, files in parts for f in files)
    rows = store.read(columns=["time"]).num_rows
    full_days = days[1:-1] or days  # the first and last are partial
    per_day = [
        sum(Path(f).stat().st_size for _c, _k, d, files in parts if d == day for f in files) for day in full_days
    ]
    print(
        f"store: {rows} rows, {len(days)} days, {size / 1e6:.1f} MB; "
        f"per full day {sum(per_day) / len(per_day) / 1e6:.2f} MB (max {max(per_day) / 1e6:.2f} MB)"
    )

    # the incident: 14:00 UTC on the recording's last full day; a 2-hour window, 15 minutes after
    at = pd.Timestamp(days[-2] + "T14:00:00Z")
    seen = at + pd.Timedelta(minutes=15)
    lo = at - pd.Timedelta(hours=2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    try:
        snap_dir = snapshot(Recording(store, at=seen, since=lo), tmp / "snap", formats=("parquet",))

        def from_snapshot() -> pd.DataFrame:
            return what_changed(repo, at, "2h", cluster=Snapshot(snap_dir))

        def from_recording() -> pd.DataFrame:  # as a person writes it: what_changed bounds it to the window
            return what_changed(repo, at, "2h", cluster=Recording(store, at=seen))

        def from_bounded_recording() -> pd.DataFrame:
            return what_changed(repo, at, "2h", cluster=Recording(store, at=seen, since=lo))

        def whole_read() -> object:  # what the 2-hour query would cost if every recorded day were read
            rec = Recording(store, at=seen)
            return rec.argocd_frames(), rec.rollouts(None), rec.field_edits(None)

        a_tl, b_tl = from_snapshot(), from_recording()
        cols = ["time", "kind", "app", "summary"]
        same = a_tl[cols].reset_index(drop=True).equals(b_tl[cols].reset_index(drop=True))
        print(f"what_changed 2h window: {len(b_tl)} rows, same as the snapshot's: {same}")
        t_snap = best(from_snapshot, a.repeat)
        t_rec = best(from_recording, a.repeat)
        t_bounded = best(from_bounded_recording, a.repeat)
        t_git = best(lambda: what_changed(repo, at, "2h"), a.repeat)
        t_whole = best(whole_read, 1)
        ratio = t_rec / t_snap
        print(f"what_changed, snapshot of the 2 hours : {t_snap:7.3f}s  (git alone {t_git:.3f}s)")
        print(f"what_changed, {len(days)}-day recording      : {t_rec:7.3f}s  ratio {ratio:4.2f}x  target <= 2.00x")
        print(f"what_changed, recording with since=    : {t_bounded:7.3f}s  ratio {t_bounded / t_snap:4.2f}x")
        print(f"(reading every recorded day's frames instead: {t_whole:.3f}s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Store.read: pushdown against a full scan filtered afterwards
    app = "svc-07-production"

    def pushdown() -> int:
        return int(store.read(kinds=["Deployment"], apps=[app], since=lo, until=at).num_rows)

    def full_scan() -> int:
        t = store.dataset().to_table().to_pandas()
        t = t[(t["kind"] == "Deployment") & (t["app"] == app) & (t["time"] >= lo) & (t["time"] <= at)]
        return len(t)

    assert pushdown() == full_scan()
    t_push, t_full = best(pushdown, a.repeat), best(full_scan, 1)
    print(
        f"Store.read 2h x 1 app x Deployment: pushdown {t_push * 1000:7.1f}ms, full scan {t_full * 1000:7.1f}ms "
        f"({t_full / t_push:.0f}x faster)"
    )
    sys.exit(0 if ratio <= 2.0 else 1)


if __name__ == "__main__":
    main()
