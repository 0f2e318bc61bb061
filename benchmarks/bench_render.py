"""rendered_diff of one commit that touches a base used by 20 overlays: cold and cached.

    python benchmarks/bench_render.py [--overlays 20] [--runs 3]

Uses the sandbox's kustomize (``Sandbox().bin``; built if missing). The baseline, measured in
the same process, is one plain ``kustomize build`` of one overlay on a checked-out tree. Cold:
a fresh, empty render cache (memory and disk), so every overlay is rendered at the parent and
at the commit (2 x N tool runs). Cached: the same call again (from memory), and in a new
"process" (memory cache dropped, disk cache kept).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gitops_nb import rendered_diff
from gitops_nb.investigate import render
from gitops_nb.sandbox.control import Sandbox
from gitops_nb.sandbox.demo import RepoWriter

BASE = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
    "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
    "    spec:\n      containers:\n      - name: web\n        image: ghcr.io/acme/web:latest\n"
    "        resources:\n          limits:\n            memory: MEM\n"
    "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n"
    "  ports:\n  - port: 80\n"
)


def make_repo(path: Path, overlays: int) -> tuple[RepoWriter, str]:
    w = RepoWriter(path)
    files = {
        "apps/web/base/kustomization.yaml": "resources:\n- resources.yaml\n",
        "apps/web/base/resources.yaml": BASE.replace("MEM", "256Mi"),
    }
    for i in range(overlays):
        files[f"apps/web/overlays/env{i:02d}/kustomization.yaml"] = (
            f"resources:\n- ../../base\nnamespace: env{i:02d}\nnamePrefix: env{i:02d}-\n"
            f'images:\n- name: ghcr.io/acme/web\n  newTag: "1.{i}.0"\n'
        )
    t = pd.Timestamp("2026-03-18T12:00:00Z")
    w.commit("initial", when=t, files=files)
    sha = w.commit(
        "web: more memory",
        when=t + pd.Timedelta("1h"),
        files={"apps/web/base/resources.yaml": BASE.replace("MEM", "512Mi")},
    )
    return w, sha


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--overlays", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    bin_dir = Sandbox().bin
    tmp = Path(tempfile.mkdtemp(prefix="gitops-nb-bench-render-"))
    w, sha = make_repo(tmp / "deploy-config", a.overlays)
    kustomize = str(bin_dir / "kustomize")

    def baseline() -> None:
        subprocess.run([kustomize, "build", "apps/web/overlays/env00"], cwd=w.path, capture_output=True, check=True)

    base = timed(baseline, a.runs * 3)

    def cold() -> pd.DataFrame:
        render._memo.clear()
        return rendered_diff(w.path, sha, bin_dir=bin_dir, cache=Path(tempfile.mkdtemp(dir=tmp)))

    n0 = render.tool_runs["kustomize"]
    d = cold()
    runs_cold = render.tool_runs["kustomize"] - n0
    assert d["app"].nunique() == a.overlays and len(d) == a.overlays, d
    t_cold = timed(cold, a.runs)

    disk = tmp / "warm-cache"
    rendered_diff(w.path, sha, bin_dir=bin_dir, cache=disk)
    n0 = render.tool_runs["kustomize"]
    t_memory = timed(lambda: rendered_diff(w.path, sha, bin_dir=bin_dir, cache=disk), a.runs)

    def from_disk() -> None:
        render._memo.clear()
        rendered_diff(w.path, sha, bin_dir=bin_dir, cache=disk)

    t_disk = timed(from_disk, a.runs)
    assert render.tool_runs["kustomize"] == n0, "a cached call ran kustomize"

    print(f"overlays: {a.overlays}; kustomize runs, cold: {runs_cold}; cached: 0")
    print(f"{'what':<44} {'seconds':>8} {'x baseline':>11}")
    for name, secs in (
        ("baseline: one `kustomize build` of one overlay", base),
        (f"rendered_diff, cold ({a.overlays} overlays x 2 renders)", t_cold),
        ("rendered_diff, cached (memory)", t_memory),
        ("rendered_diff, cached (disk, new process)", t_disk),
    ):
        print(f"{name:<44} {secs:8.3f} {secs / base:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
