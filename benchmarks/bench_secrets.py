"""Benchmark the secrets audit (``DeployRepo.secret_findings``) against ``git log -p`` over the same history.

The 100,000-commit synthetic repo (benchmarks/make_repo.py) with a plaintext secret planted every 500
commits (Secrets in clear and base64, chart values, secretGenerator literals, AWS keys in scripts, and
removals). Two measurements: the whole history, and a 2-hour window around the last planted secret. Prints our time, the
baseline's (measured in the same run), the ratio and the target; exits 1 if a target is missed.

    python benchmarks/bench_secrets.py
    python benchmarks/bench_secrets.py --commits 20000 --repeat 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_history import git_raw, iso, repo_of
from common import best
from make_repo import START, STEP

from gitops_nb import DeployRepo

SALT = "benchmark-salt-0123456789"
EVERY = 500


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--target", type=float, default=3.0, help="the whole-history target ratio (default 3x)")
    a = ap.parse_args()
    path = repo_of(a.commits, EVERY)
    missed = 0

    def measure(name: str, ours: Callable[[], object], raw: Callable[[], object], target: float | None) -> None:
        nonlocal missed
        raw()  # warm the page cache for both
        t_raw, t_ours = best(raw, a.repeat), best(ours, a.repeat)
        ratio = t_ours / t_raw
        ok = "" if target is None else "ok" if ratio <= target else "MISSED"
        missed += ok == "MISSED"
        print(
            f"{name:<44} ours {t_ours * 1000:9.1f} ms  git log -p {t_raw * 1000:9.1f} ms  ratio {ratio:6.2f}x"
            + (f"  (target {target}x) {ok}" if target is not None else "  (no target: fixed costs dominate)"),
            flush=True,
        )

    found = DeployRepo(path).secret_findings(salt=SALT)
    planted = (a.commits - 1) // EVERY
    print(
        f"{a.commits} commits, {planted} planted changes: {len(found)} findings, "
        f"{found['fingerprint'].nunique()} values, {int(found['still_at_head'].sum())} still at HEAD, "
        f"{int(found['removed_by_sha'].notna().sum())} removed later; skipped {found.attrs['skipped'] or 'none'}",
        flush=True,
    )
    measure(
        f"secret_findings, whole history ({a.commits} commits)",
        lambda: DeployRepo(path).secret_findings(salt=SALT),
        git_raw(path, "-p"),
        a.target,
    )
    # a 2-hour window around the last planted secret (the audit still reads on to HEAD for removals)
    mid = START + ((a.commits - 1) // EVERY * EVERY) * STEP
    since, until = iso(mid - 3600), iso(mid + 3600)
    window = DeployRepo(path).secret_findings(since=since, until=until, salt=SALT)
    n = len(DeployRepo(path).commits(since=since, until=until))
    print(f"2-hour window: {n} commits, {len(window)} findings", flush=True)
    measure(
        "secret_findings, 2-hour window",
        lambda: DeployRepo(path).secret_findings(since=since, until=until, salt=SALT),
        git_raw(path, "-p", f"--since={since}", f"--until={until}"),
        None,
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
