"""Sandbox figures: warm ``up`` to ready, resident memory, push-to-Synced latency.

    python benchmarks/bench_sandbox.py

Uses a fresh state directory (a separate sandbox on ports from base 21000) so it
never touches a sandbox you have running. Baselines measured in the same run: the
controller's own polling (no refresh) against a push followed by the refresh
annotation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gitops_nb.cluster.argocd import application_manifest, apply_application, refresh_app, wait_app
from gitops_nb.sandbox.demo import RepoWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import web_app

from gitops_nb.sandbox.control import Ports, Sandbox


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="gitops-nb-bench-"))
    sb = Sandbox(tmp / "state", ports=Ports(base=21000))
    t = time.monotonic()
    sb.build(quiet=True)
    print(f"build (cached): {time.monotonic() - t:.1f}s")
    try:
        t = time.monotonic()
        first = sb.up(timeout=300)
        print(f"first up (new state: certs, CRDs, bootstrap): {time.monotonic() - t:.1f}s  {first}")
        sb.down()
        t = time.monotonic()
        sb.up(timeout=300)
        print(f"warm up to ready (state kept): {time.monotonic() - t:.1f}s")
        w = RepoWriter(tmp / "repo")
        sha = w.commit(
            "initial",
            when=pd.Timestamp.now(tz="UTC"),
            files=web_app(1),
        )
        api = sb.api_client()
        apply_application(api, application_manifest("bench", f"file://{w.path}", "app", "bench"))
        refresh_app(api, "bench")
        wait_app(api, "bench", revision=sha, timeout=120)
        poll, refreshed = [], []
        for i in range(3):
            t = time.monotonic()
            sha = w.commit(f"bump {i}", when=pd.Timestamp.now(tz="UTC"), files=web_app(f"p{i}"))
            wait_app(api, "bench", revision=sha, timeout=120, interval=0.1)
            poll.append(time.monotonic() - t)
            t = time.monotonic()
            sha = w.commit(
                f"bump r{i}",
                when=pd.Timestamp.now(tz="UTC"),
                files=web_app(f"r{i}"),
            )
            refresh_app(api, "bench")
            wait_app(api, "bench", revision=sha, timeout=120, interval=0.1)
            refreshed.append(time.monotonic() - t)
        print(
            f"push-to-Synced+Healthy, controller polling (app-resync {sb.app_resync_seconds}s): "
            f"median {sorted(poll)[1]:.1f}s  {[round(x, 1) for x in poll]}"
        )
        print(
            f"push-to-Synced+Healthy, with the refresh annotation: median {sorted(refreshed)[1]:.1f}s  "
            f"{[round(x, 1) for x in refreshed]}  (ratio to polling {sorted(refreshed)[1] / sorted(poll)[1]:.2f})"
        )
        st = sb.status()
        print(st[["component", "pid", "rss_mb"]].to_string(index=False))
        print(f"total resident memory: {st['rss_mb'].sum():.0f} MiB")
    finally:
        sb.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
