"""The recorder at fleet scale: CPU, memory and lag while 1,000 Applications and ~5,000 objects change.

    python benchmarks/bench_recorder.py [--apps 1000] [--steady 60] [--edits 10]

On the running sandbox (``$GITOPS_NB_SANDBOX_PORT_BASE`` / ``$GITOPS_NB_STATE``; started if down), in
namespaces of its own: ``--apps`` Applications in ``bench-rec-apps`` (a namespace Argo CD's controller does
not watch, so their status is ours to write), each listing in ``status.resources`` the 5 objects it
"manages" in its own namespace: a Deployment (0 replicas: kwok pods would only load the shared 2 cores),
a Service, two ConfigMaps and a Secret. Then ``gitops-nb record`` runs as its own process; once it has
listed everything, a steady stream of ``--edits`` changes per second (ConfigMap data, Deployment scale
0 <-> 1 with its ReplicaSet and events, Secret data, Application status) runs for ``--steady`` seconds
while the recorder's CPU (fraction of one core) and RSS are sampled (from /proc). Lag: every 2 s one
ConfigMap gets a fresh value and the store is read until a row with that value is there.

Targets (issue 13): CPU <= 10% of a core, RSS <= 300 MiB, lag <= 5 s. The baseline printed beside the CPU
figure is the same stream's cost to the API server (its CPU over the same window), in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitops_nb.cluster.store import Store  # noqa: E402
from gitops_nb.sandbox.control import Sandbox  # noqa: E402

APPS_NS = "bench-rec-apps"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _ns(i: int) -> str:
    return f"bench-rec-{i:04d}"


def objects(i: int) -> list[dict[str, Any]]:
    ns, labels = _ns(i), {"app": f"svc-{i}"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 0,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": f"ghcr.io/acme/svc-{i}:1.0.0"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": labels, "ports": [{"port": 80}]},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config", "namespace": ns}, "data": {"v": "0"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": ns}, "data": {"f": "off"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": ns},
            "data": {"password": base64.b64encode(b"bench-not-a-secret").decode()},
        },
    ]


def application(i: int) -> dict[str, Any]:
    res = [
        {
            "group": o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "",
            "version": o["apiVersion"].split("/")[-1],
            "kind": o["kind"],
            "namespace": o["metadata"]["namespace"],
            "name": o["metadata"]["name"],
            "status": "Synced",
            "health": {"status": "Healthy"},
        }
        for o in objects(i)
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": f"svc-{i:04d}", "namespace": APPS_NS},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://example.invalid/deploy.git",
                "path": f"apps/svc-{i}",
                "targetRevision": "main",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": _ns(i)},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": False}},
        },
        "status": {
            "sync": {"status": "Synced", "revision": "0" * 40},
            "health": {"status": "Healthy"},
            "resources": res,
        },
    }


def setup(api: Any, n: int, progress: Any) -> None:
    from kubernetes import client, utils
    from kubernetes.client.rest import ApiException

    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def ensure_ns(name: str) -> None:
        deadline = time.monotonic() + 300
        while True:
            try:
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
                return
            except ApiException as e:
                if e.status != 409:
                    raise
            if core.read_namespace(name).status.phase != "Terminating":
                return  # there from an earlier run (--keep)
            if time.monotonic() > deadline:  # an earlier run's teardown is still deleting it
                raise TimeoutError(f"namespace {name} is still terminating after 300s")
            time.sleep(1)

    ensure_ns(APPS_NS)

    def one(i: int) -> None:
        ensure_ns(_ns(i))
        for o in objects(i):
            try:
                utils.create_from_dict(api, o)
            except utils.FailToCreateError as e:
                if not all(x.status == 409 for x in e.api_exceptions):
                    raise
        a = application(i)
        try:
            custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", APPS_NS, "applications", a)
        except ApiException as e:
            if e.status != 409:
                raise

    t, done = time.monotonic(), 0
    with ThreadPoolExecutor(8) as ex:
        for _ in ex.map(one, range(n)):
            done += 1
            if done % 100 == 0:
                progress(f"set up {done}/{n} apps ({5 * done} objects) in {time.monotonic() - t:.0f}s")


def teardown(api: Any, n: int) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    for name in [APPS_NS, *(_ns(i) for i in range(n))]:
        try:
            core.delete_namespace(name)
        except ApiException as e:
            if e.status != 404:
                raise


class Stream(threading.Thread):
    """A steady stream of edits across the fleet, ``rate`` per second."""

    def __init__(self, api: Any, n: int, rate: float) -> None:
        super().__init__(daemon=True)
        from kubernetes import client

        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.n, self.rate, self.stop = n, rate, threading.Event()
        self.count = 0

    def run(self) -> None:
        k = 0
        while not self.stop.is_set():
            t = time.monotonic()
            i = (k * 7919) % self.n
            ns, what = _ns(i), k % 4
            if what == 0:
                self.core.patch_namespaced_config_map("flags", ns, {"data": {"f": str(k)}})
            elif what == 1:
                self.apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": k % 2}})
            elif what == 2:
                self.core.patch_namespaced_secret("db", ns, {"stringData": {"password": f"rotated-{k}"}})
            else:
                self.custom.patch_namespaced_custom_object(  # Argo CD's CRD has no status subresource
                    "argoproj.io",
                    "v1alpha1",
                    APPS_NS,
                    "applications",
                    f"svc-{i:04d}",
                    {"status": {"health": {"status": ("Healthy", "Progressing")[k % 2]}}},
                )
            k += 1
            self.count += 1
            self.stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - t)))


def lag_probe(api: Any, store: Store, n: int, k: int) -> float:
    """Seconds from a ConfigMap change to its row being readable from the store."""
    from kubernetes import client

    value = f"probe-{k}-{time.time_ns()}"
    ns = _ns((k * 31) % n)
    t0 = time.time()
    client.CoreV1Api(api).patch_namespaced_config_map("config", ns, {"data": {"v": value}})
    since = pd.Timestamp(t0 - 1, unit="s", tz="UTC").floor("us")
    deadline = t0 + 60
    while time.time() < deadline:
        t = store.read(kinds=["ConfigMap"], since=since, columns=["changes"])
        if any(value in c for c in t.column("changes").to_pylist()):
            return time.time() - t0
        time.sleep(0.1)
    return float("inf")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--steady", type=float, default=60, help="seconds of steady state measured")
    ap.add_argument("--edits", type=float, default=10, help="edits per second in the steady stream")
    ap.add_argument("--keep", action="store_true", help="leave the bench objects in the sandbox")
    args = ap.parse_args()

    def say(m: str) -> None:
        print(f"[bench_recorder] {m}", file=sys.stderr, flush=True)

    sb = Sandbox()
    sb.up(progress=say)
    api = sb.api_client()
    t = time.monotonic()
    setup(api, args.apps, say)
    say(f"set up {args.apps} Applications and {5 * args.apps} objects in {time.monotonic() - t:.0f}s")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    store = Store(tmp / "store")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "gitops_nb",
        "record",
        "--store",
        str(tmp / "store"),
        "--kubeconfig",
        str(sb.kubeconfig),
    ]
    rec = subprocess.Popen(
        [*cmd, "--argocd-namespace", APPS_NS, "--status-seconds", "10"],
        env=env,
        stderr=open(tmp / "recorder.log", "w"),  # noqa: SIM115 - closed with the process
    )
    stream = Stream(api, args.apps, args.edits)
    try:
        t = time.monotonic()
        # synced: every app's 5 objects recorded
        while time.monotonic() - t < 600:
            time.sleep(2)
            try:
                got = store.read(columns=["kind"]).column("kind").to_pylist()
            except Exception:  # nothing written yet
                continue
            if sum(k in ("Deployment", "Service", "ConfigMap", "Secret") for k in got) >= 5 * args.apps:
                break
        initial = time.monotonic() - t
        say(f"recorder listed everything in {initial:.0f}s (RSS {rss_bytes(rec.pid) / 2**20:.0f} MiB)")
        stream.start()
        time.sleep(10)  # into the steady state
        st = sb.status().set_index("component")
        api_pid = int(st.loc["kube-apiserver", "pid"]) if pd.notna(st.loc["kube-apiserver", "pid"]) else None
        c0, w0 = cpu_seconds(rec.pid), time.monotonic()
        a0 = cpu_seconds(api_pid) if api_pid else None
        e0, rss = stream.count, []
        lags: list[float] = []
        k = 0
        while time.monotonic() - w0 < args.steady:
            rss.append(rss_bytes(rec.pid))
            lags.append(lag_probe(api, store, args.apps, k))
            k += 1
            time.sleep(max(0.0, 2 - lags[-1]))
        c1, w1 = cpu_seconds(rec.pid), time.monotonic()
        wall = w1 - w0
        cpu = (c1 - c0) / wall
        api_cpu = (cpu_seconds(api_pid) - a0) / wall if api_pid and a0 is not None else None
        edits = (stream.count - e0) / wall
        rows = store.read(columns=["kind"]).num_rows
        files = len(list((tmp / "store").rglob("*.parquet")))
    finally:
        stream.stop.set()
        rec.send_signal(signal.SIGTERM)
        rec.wait(60)
        if not args.keep:
            teardown(api, args.apps)
    size = sum(f.stat().st_size for f in (tmp / "store").rglob("*") if f.is_file())
    fig = {
        "apps": args.apps,
        "objects": 5 * args.apps,
        "edits_per_s": round(edits, 1),
        "initial_list_s": round(initial, 1),
        "cpu_fraction_of_core": round(cpu, 3),
        "apiserver_cpu_fraction": round(api_cpu, 3) if api_cpu is not None else None,
        "cpu_vs_apiserver": round(cpu / api_cpu, 2) if api_cpu else None,
        "rss_mib_max": round(max(rss) / 2**20, 1),
        "lag_s_median": round(statistics.median(lags), 2),
        "lag_s_max": round(max(lags), 2),
        "lag_probes": len(lags),
        "rows": rows,
        "files": files,
        "store_mib": round(size / 2**20, 1),
        "recorder_exit": rec.returncode,
    }
    print(json.dumps(fig, indent=1))
    ok = cpu <= 0.10 and max(rss) <= 300 * 2**20 and max(lags) <= 5
    print(
        f"recorder: {cpu:.1%} of a core (target <= 10%; the API server spent {api_cpu or 0:.1%} on the same stream), "
        f"RSS {max(rss) / 2**20:.0f} MiB (<= 300), lag median {statistics.median(lags):.2f}s max {max(lags):.2f}s "
        f"(<= 5s) at {edits:.1f} edits/s over {args.apps} apps / {5 * args.apps} objects: "
        + ("all targets met" if ok else "TARGET MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
