"""A fleet's fan-out: hub and spokes read at once, against the slowest cluster read alone; and the
frames' memory for 20 clusters x 500 Applications.

    python benchmarks/bench_fleet.py [--spokes 2] [--deployments 200] [--apps 500] [--clusters 20] [--fan-out-only]

Uses the sandbox at ``$GITOPS_NB_SANDBOX_PORT_BASE`` / ``$GITOPS_NB_STATE`` with ``--spokes`` spoke
clusters (started if they are not up; left running). Each cluster gets ``--deployments`` Deployments
(0 replicas: a ReplicaSet each, no Pods) and ConfigMaps in namespace ``bench-fleet``; the query is
what ``what_changed`` asks each cluster for a namespace: rollouts, events and field edits.

Beside the ratio it prints the floor the machine allows: the sandbox's API servers run on the same cores as this
process, so the clusters read at once cannot take less than all the CPU they use alone (this process's and the
sandbox's, from /proc) over the cores, nor less than this process's own CPU (JSON parsing and frame building run
under the GIL, one thread at a time).

Memory: 20 clusters x 500 Applications are simulated on the hub: ``--apps`` Applications (10 deploys
of history each) in a namespace the controller does not watch, read by ``--clusters`` fleet members
that are all the hub under different context names (``Cluster.from_api_client``), so the fleet's
frames hold clusters x apps rows, each tagged with its member's name.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster import app as bench_app
from common import best

from gitops_nb import Cluster, Fleet
from gitops_nb.sandbox.control import Sandbox

NS = "bench-fleet"
APPS_NS = "bench-fleet-apps"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _load(api: object, n: int) -> None:
    """``n`` Deployments (0 replicas) and ConfigMaps in NS, once."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    except ApiException as e:
        if e.status != 409:
            raise
    have = len(apps.list_namespaced_deployment(NS).items)
    for i in range(have, n):
        name = f"web-{i:04d}"
        apps.create_namespaced_deployment(
            NS,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "web", "image": f"ghcr.io/acme/web:{i}"}]},
                    },
                },
            },
            field_manager="kubectl-edit",
        )
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": name}, "data": {"level": "info"}}, field_manager="kubectl-edit"
        )


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` have used (those that still run)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _timed(fn: Callable[[], object], repeat: int, pids: list[int]) -> tuple[float, float, float, float, float]:
    """The fastest of ``repeat`` runs of ``fn``: its wall time and this process's CPU in that run; the CPU of
    ``pids`` (the sandbox's API servers, etcd, controllers and Argo CD) per run, a mean (/proc counts in ticks of
    10 ms); and the mean wall time and CPU of this process over the runs (a garbage collection lands in some runs
    only: the fastest run hides it), in seconds."""
    runs = []
    other0 = _cpu_of(pids)
    for _ in range(repeat):
        cpu0, t = time.process_time(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t, time.process_time() - cpu0))
    wall, cpu = min(runs)
    mean_wall, mean_cpu = (sum(r[i] for r in runs) / repeat for i in (0, 1))
    return wall, cpu, (_cpu_of(pids) - other0) / repeat, mean_wall, mean_cpu


def _per_namespace(c: Cluster | Fleet) -> int:
    """What what_changed reads of each cluster for one namespace."""
    return len(c.rollouts(NS)) + len(c.events(NS)) + len(c.field_edits(NS))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spokes", type=int, default=2)
    ap.add_argument("--deployments", type=int, default=200)
    ap.add_argument("--apps", type=int, default=500)
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's namespaces (faster next run)")
    ap.add_argument("--fan-out-only", action="store_true", help="skip the memory part (20 clusters x 500 apps)")
    a = ap.parse_args()
    sb = Sandbox(spokes=a.spokes)
    t = time.perf_counter()
    sb.up(timeout=300, progress=lambda m: print(f"[sandbox] {m}", file=sys.stderr))
    print(f"sandbox with {a.spokes} spokes up in {time.perf_counter() - t:.1f}s")
    kc = str(sb.kubeconfig)
    contexts = ["gitops-nb-sandbox", *(sb.spoke_context(i) for i in range(1, a.spokes + 1))]
    t = time.perf_counter()
    for ctx in contexts:
        _load(Cluster(ctx, kubeconfig=kc).api, a.deployments)
    print(
        f"{a.deployments} Deployments + ConfigMaps on each of {len(contexts)} clusters ({time.perf_counter() - t:.1f}s)"
    )
    time.sleep(3)  # the controllers make the ReplicaSets

    # -- fan-out against the slowest single cluster ---------------------------------------------
    singles = {ctx: Cluster(ctx, kubeconfig=kc) for ctx in contexts}
    for c in singles.values():
        _per_namespace(c)  # warm: discovery, connections
    pids = [int(p) for p in sb.status()["pid"].dropna()]
    alone = {ctx: _timed(lambda c=c: _per_namespace(c), a.repeat, pids) for ctx, c in singles.items()}
    fleet = Fleet(list(singles.values()), follow_destinations=False)
    serial = Fleet(list(singles.values()), follow_destinations=False, workers=1)
    rows = _per_namespace(fleet)
    assert fleet.failures.empty, fleet.failures
    t_fleet, cpu, sb_cpu, mean_fleet, mean_cpu = _timed(lambda: _per_namespace(fleet), a.repeat, pids)
    t_serial = best(lambda: _per_namespace(serial), a.repeat)
    slowest = max(r[0] for r in alone.values())
    cores = os.cpu_count() or 1
    ours = sum(r[1] for r in alone.values())
    floor = max(ours, sum(r[1] + r[2] for r in alone.values()) / cores)
    for ctx, (w, c, s, _, _) in alone.items():
        print(
            f"  {ctx:<22} alone: {w * 1000:6.0f} ms (this process's CPU {c * 1000:.0f} ms, the sandbox's {s * 1000:.0f} ms)"
        )
    print(
        f"fleet of {len(contexts)} (rollouts + events + field edits of {NS}, {rows} rows): {t_fleet * 1000:.0f} ms "
        f"= {t_fleet / slowest:.2f}x the slowest cluster alone (aim <= 1.3x); the same fleet one cluster at a "
        f"time (workers=1) {t_serial * 1000:.0f} ms; sum of all alone {sum(r[0] for r in alone.values()) * 1000:.0f} "
        f"ms; this process's CPU per fleet query {cpu * 1000:.0f} ms, the sandbox's {sb_cpu * 1000:.0f} ms"
    )
    print(
        f"CPU floor on {cores} cores: {floor * 1000:.0f} ms = {floor / slowest:.2f}x the slowest alone (the larger of "
        f"this process's CPU for the three reads alone, {ours * 1000:.0f} ms, which the GIL runs one thread at a "
        f"time, and all CPU, ours and the API servers', / {cores} cores); the fan-out is {t_fleet / floor:.2f}x its "
        f"floor (load now {os.getloadavg()[0]:.1f})"
    )
    slowest_mean = max(r[3] for r in alone.values())
    print(
        f"means of {a.repeat} runs: fleet {mean_fleet * 1000:.0f} ms (this process's CPU {mean_cpu * 1000:.0f} ms), "
        f"slowest cluster alone {slowest_mean * 1000:.0f} ms (CPU {max(r[4] for r in alone.values()) * 1000:.0f} ms): "
        f"{mean_fleet / slowest_mean:.2f}x"
    )

    # -- memory: clusters x apps Applications ---------------------------------------------------
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    if a.fan_out_only:
        if not a.keep:
            for c in singles.values():
                with contextlib.suppress(ApiException):
                    client.CoreV1Api(c.api).delete_namespace(NS)
        return 0
    hub = singles["gitops-nb-sandbox"]
    try:
        client.CoreV1Api(hub.api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=APPS_NS)))
    except ApiException as e:
        if e.status != 409:
            raise
    custom = client.CustomObjectsApi(hub.api)
    have = len(custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", APPS_NS, "applications")["items"])
    shas = [f"{i:040x}" for i in range(10)]
    stamps = [(pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=i)).isoformat() for i in range(10)]
    stamps = [s.replace("+00:00", "Z") for s in stamps]
    t = time.perf_counter()
    for i in range(have, a.apps):
        body = bench_app(i, shas, stamps, "https://git.example/deploy-config.git")
        body["metadata"]["namespace"] = APPS_NS
        custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", APPS_NS, "applications", body)
    print(f"{a.apps} Applications on the hub ({time.perf_counter() - t:.1f}s to create the missing ones)")
    members = [
        Cluster.from_api_client(
            Cluster("gitops-nb-sandbox", kubeconfig=kc).api, f"hub-{i:02d}", argocd_namespace=APPS_NS
        )
        for i in range(a.clusters)
    ]
    one = Fleet(members[:1], follow_destinations=False, argocd_namespace=APPS_NS)
    t_one = best(one.argocd_frames, 3)
    big = Fleet(members, follow_destinations=False, argocd_namespace=APPS_NS, timeout=120)
    gc.collect()
    rss0 = _rss_mb()
    t = time.perf_counter()
    apps, hist, ops = big.argocd_frames()
    t_big = time.perf_counter() - t
    rss1 = _rss_mb()
    assert big.failures.empty, big.failures
    assert len(apps) == a.apps * a.clusters and apps["cluster"].nunique() == a.clusters
    mb = {
        n: f.memory_usage(deep=True).sum() / 2**20
        for n, f in (("applications", apps), ("history", hist), ("operations", ops))
    }
    print(
        f"{a.clusters} clusters x {a.apps} Applications: applications {len(apps)} rows {mb['applications']:.1f} MiB, "
        f"history {len(hist)} rows {mb['history']:.1f} MiB, operations {len(ops)} rows {mb['operations']:.1f} MiB "
        f"(deep); total {sum(mb.values()):.1f} MiB; process RSS +{rss1 - rss0:.0f} MiB while reading"
    )
    print(
        f"read in {t_big:.1f}s with {big.workers} workers; one cluster of {a.apps} alone {t_one:.2f}s "
        f"({t_big / t_one:.1f}x for {a.clusters}x the data, 2 cores: {os.cpu_count()})"
    )
    if not a.keep:  # the sandbox is shared with the tests: Applications left in another namespace mislead them
        for c in singles.values():
            with contextlib.suppress(ApiException):
                client.CoreV1Api(c.api).delete_namespace(NS)
        with contextlib.suppress(ApiException):
            client.CoreV1Api(hub.api).delete_namespace(APPS_NS)
        print(f"deleted the namespaces {NS} (every cluster) and {APPS_NS} (--keep keeps them for the next run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
