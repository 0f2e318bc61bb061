"""The incident console's overhead: pressing "What changed?" against calling the library directly, in one process.

    python benchmarks/bench_console.py [--commits 100000] [--window 24h] [--repeat 3]

Baseline: ``investigate()`` plus ``plot_timeline()`` (what the console calls). Ours: the
console's ``investigate`` handler (the same calls, plus the FigureWidget, the table and the
change list). The widgets hold no logic, so the aim is a ratio of at most 1.3x. Also prints
how long a timeline click takes to select a change (the handler plotly calls on a click).
Git side only, on the synthetic repo of ``bench_history.py`` (generated once and cached).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_history import iso, repo_of
from common import best
from make_repo import START, STEP

from gitops_nb import investigate, plot_timeline
from gitops_nb.investigate.plot import SHA
from gitops_nb.ui.widgets import IncidentConsole

TARGET = 1.3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--window", default="24h")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    repo = repo_of(a.commits)
    at = iso(START + STEP * (a.commits // 2))  # mid-history

    def library() -> None:
        inv = investigate(str(repo), at, a.window)
        plot_timeline(inv.timeline, inv.at)

    con = IncidentConsole(repo_path=str(repo), at=at, window=a.window)
    library()  # warm the page cache and the lazy imports for both
    con.investigate()
    t_lib, t_con = best(library, a.repeat), best(con.investigate, a.repeat)
    ratio = t_con / t_lib
    rows = len(con.timeline) if con.timeline is not None else 0
    ok = "ok" if ratio <= TARGET else "MISSED"
    print(
        f"What changed? ({a.window} window, {a.commits}-commit repo, {rows} rows)   console {t_con * 1000:8.1f} ms  "
        f"library {t_lib * 1000:8.1f} ms  ratio {ratio:5.2f}x  (target {TARGET}x) {ok}",
        flush=True,
    )

    fig = con.figure
    ti = next(i for i, t in enumerate(fig.data) if t.name == "git")
    picks = list(range(len(fig.data[ti].x)))
    t = time.perf_counter()
    for pi in picks:  # what the front end sends on a click
        fig._js2py_pointsCallback = {
            "event_type": "plotly_click",
            "points": {"trace_indexes": [ti], "point_indexes": [pi], "xs": [None], "ys": [None]},
            "device_state": None,
            "selector": None,
        }
    per_click = (time.perf_counter() - t) / max(1, len(picks))
    assert con.change.value == fig.data[ti].customdata[picks[-1]][SHA], "the last click did not select its change"
    print(f"timeline click -> change selected and marked: {per_click * 1000:.1f} ms per click ({len(picks)} clicks)")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
