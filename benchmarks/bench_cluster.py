"""Cluster frames at scale: 1,000 Applications to a frame, and what_changed over them.

    python benchmarks/bench_cluster.py [--apps 1000]

Starts its own sandbox (fresh state, ports from base 22000) and creates the
Applications in a namespace of their own (``bench-apps``), which the controller does
not watch, each with a realistic status (10 history entries, resources, operation
state). The baseline, measured in the same run, is the raw paged list call
(``limit``/``continue``, JSON parsed): the frame's cost is the ratio to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best
from make_repo import START, STEP, generate

from gitops_nb import Cluster, DeployRepo, what_changed
from gitops_nb.sandbox.control import Ports, Sandbox

NS = "bench-apps"


def app(i: int, shas: list[str], times: list[str], repo_url: str) -> dict:  # type: ignore[type-arg]
    svc, env = f"svc-{i // 2:03d}", ("staging", "production")[i % 2]
    hist = [
        {
            "id": k,
            "revision": shas[k],
            "deployStartedAt": times[k],
            "deployedAt": times[k],
            "source": {"repoURL": repo_url, "path": f"apps/{svc}/overlays/{env}", "targetRevision": "main"},
            "initiatedBy": {"automated": True},
        }
        for k in range(10)
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": f"{svc}-{env}", "namespace": NS, "labels": {"created-by": "gitops-nb-bench"}},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": f"apps/{svc}/overlays/{env}", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": f"{svc}-{env}"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        "status": {
            "sync": {"status": "Synced", "revision": shas[-1]},
            "health": {"status": "Healthy"},
            "reconciledAt": times[-1],
            "history": hist,
            "resources": [
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": f"{svc}-{env}",
                    "name": svc,
                    "status": "Synced",
                    "health": {"status": "Healthy"},
                },
                {
                    "version": "v1",
                    "kind": "Service",
                    "namespace": f"{svc}-{env}",
                    "name": svc,
                    "status": "Synced",
                    "health": {"status": "Healthy"},
                },
            ],
            "operationState": {
                "phase": "Succeeded",
                "message": "successfully synced",
                "startedAt": times[-1],
                "finishedAt": times[-1],
                "syncResult": {"revision": shas[-1]},
                "operation": {"sync": {"revision": shas[-1]}, "initiatedBy": {"automated": True}},
            },
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a profile of what_changed")
    ap.add_argument(
        "--running",
        action="store_true",
        help="use the sandbox at $GITOPS_NB_SANDBOX_PORT_BASE/$GITOPS_NB_STATE (started if down, left running; "
        f"the {NS} namespace is deleted after) instead of a fresh one on port base 22000",
    )
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gitops-nb-bench-cluster-"))
    repo_path = generate(tmp / "repo", 3000, services=a.apps // 2)
    repo = DeployRepo(repo_path)
    commits = repo.commits()
    shas = list(commits["sha"][:10][::-1])
    times = [t.isoformat().replace("+00:00", "Z") for t in commits["committed_at"][:10][::-1]]
    sb = Sandbox() if a.running else Sandbox(tmp / "state", ports=Ports(base=22000))
    try:
        sb.up(timeout=300)
        from kubernetes import client

        api = sb.api_client()
        core = client.CoreV1Api(api)
        for _ in range(300):  # a previous run's namespace may still be being deleted (--running)
            if NS not in [n.metadata.name for n in core.list_namespace().items]:
                break
            time.sleep(1)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        custom = client.CustomObjectsApi(api)
        t = time.perf_counter()
        for i in range(a.apps):
            custom.create_namespaced_custom_object(
                "argoproj.io", "v1alpha1", NS, "applications", app(i, shas, times, f"file://{repo_path}")
            )
        print(f"created {a.apps} Applications in {time.perf_counter() - t:.1f}s")

        def raw() -> list:  # type: ignore[type-arg]
            items, token = [], None
            while True:
                resp = custom.list_namespaced_custom_object(
                    "argoproj.io", "v1alpha1", NS, "applications", limit=500, _continue=token, _preload_content=False
                )
                page = json.loads(resp.data)
                items += page["items"]
                token = page["metadata"].get("continue")
                if not token:
                    return items

        cluster = Cluster(kubeconfig=str(sb.kubeconfig), argocd_namespace=NS)
        assert len(raw()) == len(cluster.applications()) == a.apps
        t_raw = best(raw, a.repeat)
        t_frame = best(cluster.applications, a.repeat)
        print(f"raw paged list ({a.apps} apps, limit 500): {t_raw * 1000:.0f} ms")
        print(
            f"Cluster.applications() frame:            {t_frame * 1000:.0f} ms   ratio {t_frame / t_raw:.2f}x (aim < 1.5x)"
        )
        t_hist = best(cluster.history, a.repeat)
        print(f"Cluster.history() ({a.apps * 10} deploys):      {t_hist * 1000:.0f} ms   ratio {t_hist / t_raw:.2f}x")
        at = pd.Timestamp(START + STEP * 2999, unit="s", tz="UTC")
        t = time.perf_counter()
        tl = what_changed(repo, at, "2h", cluster=cluster)
        t_wc = time.perf_counter() - t
        deploys = int((tl["source"] == "argocd").sum())
        print(
            f"what_changed(window 2h, cluster of {a.apps} apps): {t_wc * 1000:.0f} ms "
            f"({len(tl)} rows, {deploys} deploys joined) = {t_wc / t_raw:.1f}x the raw list (first call, aim < 2x)"
        )
        # again, alternating with the raw list (a busy machine's noise hits both): a new DeployRepo each time,
        # as a notebook makes one per query
        t_raw2 = best(raw, a.repeat)
        t_wc2 = best(lambda: what_changed(DeployRepo(repo_path), at, "2h", cluster=cluster), 3)
        print(
            f"what_changed again (best of 3, new DeployRepo): {t_wc2 * 1000:.0f} ms = "
            f"{t_wc2 / t_raw2:.1f}x the raw list ({t_raw2 * 1000:.0f} ms)"
        )
        if a.profile:  # a warm call (imports done), as the figures above
            import gc

            spent, began = [0.0], [0.0]

            def clock(phase: str, info: dict) -> None:  # type: ignore[type-arg]
                if phase == "start":
                    began[0] = time.perf_counter()
                else:
                    spent[0] += time.perf_counter() - began[0]

            gc.callbacks.append(clock)
            t = time.perf_counter()
            what_changed(DeployRepo(repo_path), at, "2h", cluster=cluster)
            took = time.perf_counter() - t
            gc.callbacks.remove(clock)
            print(f"of a warm what_changed's {took * 1000:.0f} ms, the garbage collector took {spent[0] * 1000:.0f} ms")
            import cProfile
            import pstats

            fresh = DeployRepo(repo_path)
            cProfile.runctx("what_changed(fresh, at, '2h', cluster=cluster)", globals(), locals(), "/tmp/wc.prof")
            pstats.Stats("/tmp/wc.prof").sort_stats("tottime").print_stats(30)
    finally:
        if a.running:
            from kubernetes import client

            client.CoreV1Api(sb.api_client()).delete_namespace(NS)
        else:
            sb.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
