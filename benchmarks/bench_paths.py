"""Benchmark per-app history (``commits(paths=[app])``) against plain ``git log -- path``, in one process.

The baseline is plain ``git log -- <app>`` on the same repo without changed-path filters
(``commitGraph.readChangedPaths=false``: the commit-graph ``make_repo`` writes, as ``git gc``
does, has none). Ours runs on a copy of the repo after ``DeployRepo.optimize()`` (what
``gitops-nb repo optimize PATH`` does): the target is 0.2x the baseline. Ours without the
filters is printed too, for reference (it cannot beat git's own walk).

    python benchmarks/bench_paths.py                 # the 100,000-commit repo
    python benchmarks/bench_paths.py --commits 20000

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_history import CACHE, repo_of
from common import best

from gitops_nb import DeployRepo


def git_log(repo: Path, *args: str, bloom: bool) -> Callable[[], object]:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    cfg = [] if bloom else ["-c", "commitGraph.readChangedPaths=false"]
    return lambda: subprocess.run(["git", *cfg, "log", *args], cwd=repo, capture_output=True, check=True, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    plain = repo_of(a.commits)
    optimized = CACHE / f"repo-{a.commits}-optimized"
    if not optimized.exists():
        print(f"copying to {optimized} and writing a changed-paths commit-graph ...", file=sys.stderr, flush=True)
        shutil.copytree(plain, optimized, symlinks=True)
        DeployRepo(optimized).optimize()
    missed = 0
    for app in ("apps/svc-07/overlays/production", "apps/svc-23/base"):

        def ours(path: Path = optimized, app: str = app) -> None:
            r = DeployRepo(path)
            r.commits(paths=[app])
            r.file_changes(paths=[app])

        def ours_plain(app: str = app) -> None:
            r = DeployRepo(plain)
            r.commits(paths=[app])
            r.file_changes(paths=[app])

        base = git_log(plain, "--", app, bloom=False)
        base()  # warm the page cache
        t_base = best(base, a.repeat)
        t_git_bloom = best(git_log(optimized, "--", app, bloom=True), a.repeat)
        t_ours = best(ours, a.repeat)
        t_ours_plain = best(ours_plain, a.repeat)
        n = len(DeployRepo(optimized).commits(paths=[app]))
        ok = t_ours / t_base <= 0.2
        missed += not ok
        print(
            f"{app} ({n} of {a.commits} commits): plain git log -- path {t_base * 1000:7.1f} ms | "
            f"git with the filters {t_git_bloom * 1000:6.1f} ms ({t_git_bloom / t_base:.2f}x) | "
            f"ours, optimized {t_ours * 1000:6.1f} ms ({t_ours / t_base:.2f}x, target 0.2x) "
            f"{'ok' if ok else 'MISSED'} | ours, not optimized {t_ours_plain * 1000:6.1f} ms "
            f"({t_ours_plain / t_base:.2f}x)",
            flush=True,
        )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
