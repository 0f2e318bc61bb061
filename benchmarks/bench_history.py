"""Benchmark DeployRepo against raw ``git log`` doing the same walk, in one process.

Prints one line per measurement: our time, the baseline's time (measured in the same
run), the ratio and the target. Exits 1 if a target is missed.

    python benchmarks/bench_history.py                 # 100,000-commit and 2,000-commit repos
    python benchmarks/bench_history.py --commits 20000 # a quicker run
    python benchmarks/bench_history.py --only what_changed

Synthetic repos are generated once (git fast-import) and cached under
``$GITOPS_NB_CACHE/bench`` (default ``~/.cache/gitops-nb/bench``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best
from make_repo import START, STEP, generate

from gitops_nb import DeployRepo, what_changed

CACHE = Path(os.environ.get("GITOPS_NB_CACHE", Path.home() / ".cache" / "gitops-nb")) / "bench"


def git_raw(repo: Path, *args: str) -> Callable[[], object]:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    return lambda: subprocess.run(["git", "log", *args], cwd=repo, capture_output=True, check=True, env=env).stdout


def repo_of(commits: int, secrets_every: int = 0) -> Path:
    """The cached synthetic repo of ``commits`` commits (with a plaintext secret every ``secrets_every``)."""
    path = CACHE / (f"repo-{commits}-secrets{secrets_every}" if secrets_every else f"repo-{commits}")
    if not (path / ".git").exists():
        print(f"generating a {commits}-commit repo in {path} ...", file=sys.stderr, flush=True)
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        generate(path, commits, secrets_every=secrets_every)
    return path


def iso(epoch: int) -> str:
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=100_000, help="size of the large repo")
    ap.add_argument("--small", type=int, default=2_000, help="size of the small repo")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--naive", action="store_true", help="also time naive GitPython (iter_commits + stats) on the small repo"
    )
    ap.add_argument("--only", default="", help="run only the measurements whose name contains this")
    a = ap.parse_args()
    large, small = repo_of(a.commits), repo_of(a.small)
    results: list[tuple[str, float, float, float]] = []

    def measure(name: str, ours: Callable[[], object], raw: Callable[[], object], target: float, repeat: int) -> None:
        if a.only not in name:
            return
        raw()  # warm the page cache for both
        t_raw, t_ours = best(raw, repeat), best(ours, repeat)
        results.append((name, t_ours, t_raw, target))
        ok = "ok" if t_ours / t_raw <= target else "MISSED"
        print(
            f"{name:<58} ours {t_ours * 1000:9.1f} ms  git {t_raw * 1000:9.1f} ms  "
            f"ratio {t_ours / t_raw:5.2f}x  (target {target}x) {ok}",
            flush=True,
        )

    def walk(path: Path, **kw: object) -> Callable[[], object]:
        def run() -> None:
            r = DeployRepo(path)
            r.commits(**kw)  # type: ignore[arg-type]
            r.file_changes(**kw)  # type: ignore[arg-type]

        return run

    measure(
        f"commits()+file_changes(), whole history, {a.commits} commits",
        walk(large),
        git_raw(large, "--name-status", "HEAD"),
        1.5,
        a.repeat,
    )
    measure(
        f"commits()+file_changes(), whole history, {a.small} commits",
        walk(small),
        git_raw(small, "--name-status", "HEAD"),
        2.0,
        a.repeat * 3,
    )
    for label, end in (
        ("mid-history", START + STEP * (a.commits // 2)),
        ("most recent", START + STEP * (a.commits - 1)),
    ):
        lo, hi = end - 7200, end
        measure(
            f"2-hour window ({label}), {a.commits} commits",
            walk(large, since=iso(lo), until=iso(hi)),
            git_raw(large, "--name-status", f"--since={iso(lo)}", f"--until={iso(hi)}", "HEAD"),
            1.5,
            a.repeat * 3,
        )
    for label, end in (
        ("mid-history", START + STEP * (a.commits // 2)),
        ("most recent", START + STEP * (a.commits - 1)),
    ):
        lo, hi = end - 86400, end
        measure(
            f"manifest_changes(), 24-hour window ({label})",
            lambda lo=lo, hi=hi: DeployRepo(large).manifest_changes(since=iso(lo), until=iso(hi)),
            git_raw(large, "-p", f"--since={iso(lo)}", f"--until={iso(hi)}", "HEAD"),
            3.0,
            a.repeat * 3,
        )
    # what_changed end to end: the landed changes (first-parent walk), their semantic diffs, each
    # change's apps mapped at its own trees; against git printing the same window's patches
    for label, n, path, window, target in (
        ("2-hour window, mid-history", a.commits // 2, large, 7200, 3.0),
        ("2-hour window, most recent", a.commits - 1, large, 7200, 15.0),  # git answers in ~5 ms
        (f"whole {a.small}-commit history", a.small - 1, small, STEP * a.small, 18.0),  # YAML parsing dominates
    ):
        hi = START + STEP * n
        measure(
            f"what_changed, {label}",
            lambda path=path, hi=hi, window=window: what_changed(
                DeployRepo(path), iso(hi), pd.Timedelta(seconds=window), after=None
            ),
            git_raw(path, "-p", "--first-parent", f"--since={iso(hi - window)}", f"--until={iso(hi)}", "HEAD"),
            target,
            a.repeat * 3,
        )
    if a.naive:
        import git

        def naive() -> None:
            for c in git.Repo(small).iter_commits("HEAD"):
                _ = c.stats.files

        measure(
            f"naive GitPython iter_commits+stats, {a.small} commits (what not to do)",
            naive,
            git_raw(small, "--name-status", "HEAD"),
            float("inf"),
            1,
        )
    missed = [r for r in results if r[1] / r[2] > r[3]]
    print(f"{len(results) - len(missed)} of {len(results)} within target")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
