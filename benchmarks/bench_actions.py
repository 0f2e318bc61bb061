"""Push-to-verified: how long after a push wait_converged proves convergence, against Argo CD's own sync time.

    python benchmarks/bench_actions.py [--runs 5]

Own sandbox (fresh state, ports from base 20000). Each run commits a tag bump, pushes it
to the bare repo Argo CD reads, sets the refresh annotation and calls wait_converged.
Argo CD's own time is when its operation for that revision finished (operationState.finishedAt,
one-second resolution), measured from the same push. Aim: verified within 2 s of Argo CD's own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gitops_nb import Cluster, refresh, wait_converged
from gitops_nb.cluster.argocd import application_manifest, apply_application
from gitops_nb.sandbox.demo import RepoWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import web_app

from gitops_nb.sandbox.control import Ports, Sandbox


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gitops-nb-bench-actions-"))
    seed = RepoWriter(tmp / "seed")
    seed.commit(
        "initial",
        when=pd.Timestamp.now(tz="UTC"),
        files=web_app(0, replicas=3),
    )
    origin = tmp / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed.path), str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(tmp / "work")], check=True)
    w = RepoWriter(tmp / "work")
    sb = Sandbox(tmp / "state", ports=Ports(base=20000))
    rows = []
    try:
        sb.up(timeout=300)
        apply_application(sb.api_client(), application_manifest("bench", f"file://{origin}", "app", "bench"))
        c = Cluster(kubeconfig=str(sb.kubeconfig))
        refresh(c, "bench")
        wait_converged(c, "bench", w.git("rev-parse", "HEAD").strip(), timeout="2m")
        for i in range(a.runs):
            sha = w.commit(
                f"bump {i + 1}",
                when=pd.Timestamp.now(tz="UTC"),
                files=web_app(i + 1, replicas=3),
            )
            pushed = pd.Timestamp.now(tz="UTC")
            t = time.monotonic()
            w.git("push", "-q", "origin", "HEAD:main")
            refresh(c, "bench")
            tr = wait_converged(c, "bench", sha, timeout="2m", pushed_at=pushed)
            verified = time.monotonic() - t
            op = c.raw_application("bench")["status"]["operationState"]
            argo = (pd.Timestamp(op["finishedAt"]) - pushed).total_seconds()
            rows.append(
                {
                    "run": i + 1,
                    "verified_s": round(verified, 2),
                    "argo_finished_s": round(argo, 2),
                    "gap_s": round(verified - argo, 2),
                    "events": " ".join(tr["event"]),
                }
            )
        df = pd.DataFrame(rows)
        print(df.to_string(index=False))
        print(
            f"median push-to-verified {df['verified_s'].median():.2f}s; Argo CD's own sync finished at "
            f"{df['argo_finished_s'].median():.2f}s (1 s resolution); median gap {df['gap_s'].median():.2f}s "
            f"(aim: within 2 s)"
        )
    finally:
        sb.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
