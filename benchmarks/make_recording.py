"""Synthesize a recording of a fleet through the real store writer: what ``gitops-nb record`` would have
written while Argo CD deployed the commits of a deploy-config repo made by ``make_repo.py``.

Each of the repo's Kustomize roots (``apps/svc-NN/overlays/{staging,production}``) is one Application
deploying a Deployment, a Service and a ConfigMap into ``svc-NN-<env>``. Every commit that changes a root
is deployed one to three minutes later: the Application's ``status.history`` grows (Argo CD keeps 10), its
operation and sync revision change, the Deployment's image (or replicas) changes under
``argocd-controller``, a new ReplicaSet is made, the one past ``revisionHistoryLimit`` (2) is deleted, and
ScalingReplicaSet events are recorded. Now and then someone scales a Deployment by hand at night
(``kubectl-edit``), which the next deploy resets. Objects carry managedFields as the API server returns
them. Deterministic for a given seed.

    python benchmarks/make_recording.py REPO STORE     # REPO made by make_repo.py
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from gitops_nb.cluster.store import Store

ARGO_NS = "argocd"
_SUBJECT = re.compile(r"^(?:deploy\((svc-\d+)/(\w+)\)|(svc-\d+) (\w+): \d+ replicas|(svc-\d+) base: memory)")


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _f(*path: str) -> dict[str, Any]:
    """A managedFields fieldsV1 tree for one dotted path (``spec``, ``replicas``)."""
    out: dict[str, Any] = {}
    cur = out
    for p in path:
        cur[f"f:{p}"] = {}
        cur = cur[f"f:{p}"]
    return out


class _App:
    """One Application and the objects it manages, as a recorder sees them."""

    def __init__(self, svc: str, env: str, repo_url: str, created: pd.Timestamp, rng: random.Random) -> None:
        self.svc, self.env, self.rng = svc, env, rng
        self.name = f"{svc}-{env}"
        self.ns = f"{svc}-{env}"
        self.path = f"apps/{svc}/overlays/{env}"
        self.repo_url = repo_url
        self.created = created
        self.history: list[dict[str, Any]] = []
        self.op: dict[str, Any] = {}
        self.rev = ""
        self.replicas = 2 if env == "staging" else 4
        self.tag = "1.0.0"
        self.rs: list[dict[str, Any]] = []  # live ReplicaSets, oldest first
        self.rs_rev = 0
        self.manual: dict[str, Any] | None = None  # a kubectl-edit managedFields entry standing now
        self.uid = {k: f"{self.name}-{k}" for k in ("app", "deploy", "svc", "cm")}

    # -- objects ------------------------------------------------------------------------------
    def application(self, t: pd.Timestamp, sync: str = "Synced", health: str = "Healthy") -> dict[str, Any]:
        res = [
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": self.ns, "name": self.svc},
            {"group": "", "version": "v1", "kind": "Service", "namespace": self.ns, "name": self.svc},
            {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": self.ns, "name": f"{self.svc}-config"},
        ]
        for r in res:
            r.update({"status": "Synced", "health": {"status": "Healthy"}})
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": self.name,
                "namespace": ARGO_NS,
                "uid": self.uid["app"],
                "creationTimestamp": _iso(self.created),
                "resourceVersion": str(int(t.timestamp() * 1000)),
                "managedFields": [
                    {
                        "manager": "argocd-application-controller",
                        "operation": "Update",
                        "time": _iso(t),
                        "fieldsV1": _f("status"),
                    },
                ],
            },
            "spec": {
                "project": "default",
                "source": {"repoURL": self.repo_url, "path": self.path, "targetRevision": "main"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": self.ns},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
            "status": {
                "sync": {
                    "status": sync,
                    "revision": self.rev,
                    "comparedTo": {"source": {"repoURL": self.repo_url, "path": self.path}},
                },
                "health": {"status": health},
                "history": self.history[-10:],
                "operationState": self.op or None,
                "reconciledAt": _iso(t),
                "resources": res,
                "summary": {"images": [f"ghcr.io/acme/{self.svc}:{self.tag}"]},
            },
        }

    def deployment(self, t: pd.Timestamp) -> dict[str, Any]:
        mf = [
            {
                "manager": "argocd-controller",
                "operation": "Apply",
                "apiVersion": "apps/v1",
                "time": _iso(self.history[-1]["deployedAt"] if self.history else self.created),
                "fieldsV1": {
                    "f:spec": {
                        "f:replicas": {},
                        "f:template": {
                            "f:spec": {"f:containers": {f'k:{{"name":"{self.svc}"}}': {"f:image": {}, "f:name": {}}}}
                        },
                    }
                },
            },
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "subresource": "status",
                "time": _iso(t),
                "fieldsV1": _f("status"),
            },
        ]
        if self.manual:
            mf.append(self.manual)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.svc,
                "namespace": self.ns,
                "uid": self.uid["deploy"],
                "creationTimestamp": _iso(self.created),
                "generation": self.rs_rev,
                "resourceVersion": str(int(t.timestamp() * 1000) + 1),
                "labels": {"app.kubernetes.io/instance": self.name},
                "managedFields": mf,
            },
            "spec": {
                "replicas": self.replicas,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": {"app": self.svc}},
                "template": {
                    "metadata": {"labels": {"app": self.svc}},
                    "spec": {
                        "containers": [
                            {
                                "name": self.svc,
                                "image": f"ghcr.io/acme/{self.svc}:{self.tag}",
                                "resources": {"limits": {"memory": "512Mi"}},
                            }
                        ]
                    },
                },
            },
            "status": {"replicas": self.replicas, "readyReplicas": self.replicas, "observedGeneration": self.rs_rev},
        }

    def replicaset(self, t: pd.Timestamp) -> dict[str, Any]:
        self.rs_rev += 1
        h = f"{self.rng.getrandbits(40):010x}"
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{self.svc}-{h}",
                "namespace": self.ns,
                "uid": f"{self.name}-rs-{h}",
                "creationTimestamp": _iso(t),
                "resourceVersion": str(int(t.timestamp() * 1000) + 2),
                "annotations": {"deployment.kubernetes.io/revision": str(self.rs_rev)},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": self.svc,
                        "uid": self.uid["deploy"],
                        "controller": True,
                    }
                ],
                "managedFields": [
                    {
                        "manager": "kube-controller-manager",
                        "operation": "Update",
                        "time": _iso(t),
                        "fieldsV1": _f("spec"),
                    }
                ],
            },
            "spec": {
                "replicas": self.replicas,
                "template": {
                    "spec": {"containers": [{"name": self.svc, "image": f"ghcr.io/acme/{self.svc}:{self.tag}"}]}
                },
            },
            "status": {"replicas": self.replicas, "readyReplicas": self.replicas},
        }

    def event(
        self,
        t: pd.Timestamp,
        message: str,
        reason: str = "ScalingReplicaSet",
        obj: tuple[str, str] | None = None,
        component: str = "deployment-controller",
    ) -> dict[str, Any]:
        h = f"{self.rng.getrandbits(40):010x}"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{self.svc}.{h}",
                "namespace": self.ns,
                "uid": f"ev-{self.name}-{h}",
                "creationTimestamp": _iso(t),
                "resourceVersion": str(int(t.timestamp() * 1000) + 3),
            },
            "involvedObject": {
                "kind": (obj or ("Deployment",))[0],
                "namespace": self.ns,
                "name": (obj or ("", self.svc))[1],
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "count": 1,
            "firstTimestamp": _iso(t),
            "lastTimestamp": _iso(t),
            "source": {"component": component},
        }

    def static(self, kind: str, t: pd.Timestamp) -> dict[str, Any]:
        name = self.svc if kind == "Service" else f"{self.svc}-config"
        body: dict[str, Any] = (
            {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": self.svc}}}
            if kind == "Service"
            else {"data": {"LOG_LEVEL": "info", "FEATURE_X": "off"}}
        )
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "uid": self.uid["svc" if kind == "Service" else "cm"],
                "creationTimestamp": _iso(t),
                "resourceVersion": str(int(t.timestamp() * 1000) + 4),
                "managedFields": [
                    {
                        "manager": "argocd-controller",
                        "operation": "Apply",
                        "time": _iso(t),
                        "fieldsV1": _f("spec" if kind == "Service" else "data"),
                    }
                ],
            },
            **body,
        }


def _row(kind: str, obj: dict[str, Any], app: str, event: str, t: pd.Timestamp, **kw: Any) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": kind,
        "api_version": obj["apiVersion"],
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta["uid"],
        "app": app,
        "resource_version": meta["resourceVersion"],
        "event": event,
        "time": t,
        "object": obj,
        "changes": kw.pop("changes", []),
        **kw,
    }


def commits_of(repo: Path) -> list[tuple[pd.Timestamp, str, str]]:
    """(time, sha, subject) of the repo's first-parent commits, oldest first."""
    out = subprocess.run(
        ["git", "log", "--first-parent", "--reverse", "--format=%H %ct %s"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        sha, ct, subject = line.split(" ", 2)
        rows.append((pd.Timestamp(int(ct), unit="s", tz="UTC"), sha, subject))
    return rows


def fleet_rows(repo: Path, *, manual_per_day: float = 0.02, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Store rows, oldest first, for one Application per root of ``repo`` over the repo's whole history."""
    rng = random.Random(seed)
    commits = commits_of(repo)
    t0 = commits[0][0]
    roots = sorted(
        {
            m.group(0)
            for m in re.finditer(
                r"apps/(svc-\d+)/overlays/(\w+)",
                subprocess.run(
                    ["git", "ls-tree", "-r", "--name-only", "HEAD", "apps"],
                    cwd=repo,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout,
            )
        }
    )
    apps = {}
    for root in roots:
        _, svc, _, env = root.split("/")
        apps[(svc, env)] = _App(svc, env, f"file://{repo}", t0, rng)
    pending: list[tuple[pd.Timestamp, int, Callable[[], list[dict[str, Any]]]]] = []
    seq = 0

    def at(t: pd.Timestamp, fn: Callable[[], list[dict[str, Any]]]) -> None:
        nonlocal seq
        seq += 1
        pending.append((t, seq, fn))

    def initial(a: _App, sha: str) -> Callable[[], list[dict[str, Any]]]:
        def go() -> list[dict[str, Any]]:
            t = t0 + pd.Timedelta(seconds=30)
            a.rev = sha
            a.history.append(
                {
                    "id": 0,
                    "revision": sha,
                    "deployStartedAt": _iso(t),
                    "deployedAt": _iso(t),
                    "source": {"repoURL": a.repo_url, "path": a.path, "targetRevision": "main"},
                    "initiatedBy": {"automated": True},
                }
            )
            a.history[-1]["deployedAt"] = t
            rs = a.replicaset(t)
            a.rs.append(rs)
            return [
                _row("Application", _ser(a.application(t)), a.name, "ADDED", t),
                _row("Deployment", a.deployment(t), a.name, "ADDED", t),
                _row("Service", a.static("Service", t), a.name, "ADDED", t),
                _row("ConfigMap", a.static("ConfigMap", t), a.name, "ADDED", t),
                _row("ReplicaSet", rs, a.name, "ADDED", t),
            ]

        return go

    def deploy(a: _App, sha: str, subject: str, t: pd.Timestamp) -> Callable[[], list[dict[str, Any]]]:
        def go() -> list[dict[str, Any]]:
            rows = []
            old_rev, old_tag, old_repl = a.rev, a.tag, a.replicas
            a.rev = sha
            if subject.startswith("deploy("):
                a.tag = subject.rsplit(": ", 1)[1]
            m = re.search(r": (\d+) replicas", subject)
            if m:
                a.replicas = int(m.group(1))
            hid = len(a.history)
            started = t - pd.Timedelta(seconds=rng.randrange(5, 40))
            s = pd.Timedelta(seconds=1)
            a.op = {
                "operation": {"sync": {"revision": sha}, "initiatedBy": {"automated": True}},
                "phase": "Running",
                "message": "one or more tasks are running",
                "startedAt": _iso(started),
            }
            rows.append(
                _row(
                    "Application",
                    _ser(a.application(started, sync="OutOfSync")),
                    a.name,
                    "MODIFIED",
                    started,
                    changes=[
                        ["status.sync.status", "Synced", "OutOfSync"],
                        ["status.operationState.phase", "Succeeded", "Running"],
                    ],
                    manager="argocd-application-controller",
                    manager_time=started,
                )
            )
            a.history.append(
                {
                    "id": hid,
                    "revision": sha,
                    "deployStartedAt": _iso(started),
                    "deployedAt": t,
                    "source": {"repoURL": a.repo_url, "path": a.path, "targetRevision": "main"},
                    "initiatedBy": {"automated": True},
                }
            )
            a.op = {
                "operation": {"sync": {"revision": sha}, "initiatedBy": {"automated": True}},
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": _iso(started),
                "finishedAt": _iso(t),
                "syncResult": {"revision": sha},
            }
            changes: list[list[Any]] = [
                ["status.sync.revision", old_rev, sha],
                [f"status.history[id={hid}]", None, sha],
            ]
            for when, health, ch in (
                (t, "Progressing", changes),
                (t + 25 * s, "Healthy", [["status.health.status", "Progressing", "Healthy"]]),
            ):
                rows.append(
                    _row(
                        "Application",
                        _ser(a.application(when, health=health)),
                        a.name,
                        "MODIFIED",
                        when,
                        changes=ch,
                        manager="argocd-application-controller",
                        manager_time=when,
                    )
                )
            dchanges: list[list[Any]] = []
            if a.tag != old_tag:
                dchanges.append(
                    [
                        f"spec.template.spec.containers[name={a.svc}].image",
                        f"ghcr.io/acme/{a.svc}:{old_tag}",
                        f"ghcr.io/acme/{a.svc}:{a.tag}",
                    ]
                )
            live = old_repl if a.manual is None else a.manual["_value"]
            if live != a.replicas:  # git's replicas win over a manual edit
                dchanges.append(["spec.replicas", live, a.replicas])
            a.manual = None
            if not dchanges:
                dchanges.append(["metadata.annotations.argocd.argoproj.io/tracking-id", None, a.name])
            rows.append(
                _row(
                    "Deployment",
                    a.deployment(t),
                    a.name,
                    "MODIFIED",
                    t,
                    changes=dchanges,
                    manager="argocd-controller",
                    manager_time=t,
                )
            )
            for when, field in ((t + 5 * s, "updatedReplicas"), (t + 25 * s, "readyReplicas")):  # the controller
                rows.append(
                    _row(
                        "Deployment",
                        a.deployment(when),
                        a.name,
                        "MODIFIED",
                        when,
                        changes=[[f"status.{field}", 0, a.replicas]],
                        manager="kube-controller-manager",
                        manager_time=when,
                    )
                )
            if a.tag != old_tag:
                rs = a.replicaset(t + s)
                a.rs.append(rs)
                rows.append(_row("ReplicaSet", rs, a.name, "ADDED", t + s))
                rows.append(
                    _row(
                        "ReplicaSet",
                        rs,
                        a.name,
                        "MODIFIED",
                        t + 20 * s,
                        changes=[["status.readyReplicas", 0, a.replicas]],
                        manager="kube-controller-manager",
                    )
                )
                rs_name = rs["metadata"]["name"]
                ev = a.event(t + 2 * s, f"Scaled up replica set {rs_name} to {a.replicas}")
                rows.append(_row("Event", ev, a.name, "ADDED", t + 2 * s))
                for i in range(a.replicas):  # each new pod: pulled, started
                    pod = f"{rs_name}-{rng.getrandbits(20):05x}"
                    for k, reason in enumerate(("Pulled", "Started")):
                        when = t + (8 + i + 3 * k) * s
                        msg = (
                            f"Successfully pulled image ghcr.io/acme/{a.svc}:{a.tag}"
                            if k == 0
                            else f"Started container {a.svc}"
                        )
                        rows.append(
                            _row("Event", a.event(when, msg, reason, ("Pod", pod), "kubelet"), a.name, "ADDED", when)
                        )
                if len(a.rs) > 1:  # the previous ReplicaSet scaled down to 0
                    old = a.rs[-2]
                    old["spec"] = {**old["spec"], "replicas": 0}
                    old_name = old["metadata"]["name"]
                    rows.append(
                        _row(
                            "ReplicaSet",
                            old,
                            a.name,
                            "MODIFIED",
                            t + 22 * s,
                            changes=[["spec.replicas", old_repl, 0]],
                            manager="kube-controller-manager",
                        )
                    )
                    ev = a.event(t + 22 * s, f"Scaled down replica set {old_name} to 0 from {old_repl}")
                    rows.append(_row("Event", ev, a.name, "ADDED", t + 22 * s))
                while len(a.rs) > 3:  # revisionHistoryLimit 2 + the current one
                    gone = a.rs.pop(0)
                    rows.append(_row("ReplicaSet", gone, a.name, "DELETED", t + 23 * s))
            return rows

        return go

    def manual(a: _App, t: pd.Timestamp) -> Callable[[], list[dict[str, Any]]]:
        def go() -> list[dict[str, Any]]:
            old = a.replicas if a.manual is None else a.manual["_value"]
            new = old + rng.choice([1, 2, 3])
            a.manual = {
                "manager": "kubectl-edit",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": _iso(t),
                "fieldsV1": _f("spec", "replicas"),
                "_value": new,
            }
            obj = a.deployment(t)
            obj["spec"]["replicas"] = new
            return [
                _row(
                    "Deployment",
                    _ser(obj),
                    a.name,
                    "MODIFIED",
                    t,
                    changes=[["spec.replicas", old, new]],
                    manager="kubectl-edit",
                    manager_time=t,
                )
            ]

        return go

    for a in apps.values():
        at(t0, initial(a, commits[0][1]))
    end = commits[-1][0]
    for t, sha, subject in commits[1:]:
        m = _SUBJECT.match(subject)
        if not m:
            continue
        svc = m.group(1) or m.group(3) or m.group(5)
        env = m.group(2) or m.group(4)
        for e in [env] if env else ["staging", "production"]:
            if (svc, e) in apps:
                td = t + pd.Timedelta(seconds=rng.randrange(60, 180))  # Argo CD polls, then syncs
                at(td, deploy(apps[(svc, e)], sha, subject, td))
    days = (end - t0) / pd.Timedelta(days=1)
    for a in apps.values():
        for _ in range(int(rng.random() < manual_per_day * days) + int(manual_per_day * days)):
            day = t0.normalize() + pd.Timedelta(days=rng.randrange(1, max(2, int(days))))
            te = day + pd.Timedelta(hours=2, minutes=rng.randrange(60))  # someone at 2am
            if te < end:
                at(te, manual(a, te))
    pending.sort(key=lambda p: (p[0], p[1]))
    for _t, _s, fn in pending:
        yield from fn()


def _ser(obj: dict[str, Any]) -> dict[str, Any]:
    """Timestamps inside an object (history entries) as the API's text; private keys dropped."""

    def fix(v: Any) -> Any:
        if isinstance(v, pd.Timestamp):
            return _iso(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items() if not str(k).startswith("_")}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    out: dict[str, Any] = fix(obj)
    return out


def write_fleet(repo: Path, store: Store, cluster: str = "prod", *, progress: bool = True, **kw: Any) -> int:
    """Write the fleet's rows into ``store`` through a StoreWriter; returns the row count."""
    n = 0
    started = time.perf_counter()
    day = None
    with store.writer(cluster, flush_seconds=3600, max_rows=20_000, max_buffer=40_000) as w:
        for r in fleet_rows(repo, **kw):
            r = {k: (_ser(v) if k == "object" else v) for k, v in r.items()}
            d = r["time"].strftime("%Y-%m-%d")
            if day is None or d > day:  # about one batch per day, as a compacted store holds it
                w.flush()
                if progress and day is not None:
                    print(
                        f"  recorded {day}: {n} rows ({time.perf_counter() - started:.0f}s)",
                        file=sys.stderr,
                        flush=True,
                    )
                day = d
            w.append(r)
            n += 1
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("repo", type=Path)
    p.add_argument("store")
    a = p.parse_args()
    t = time.perf_counter()
    n = write_fleet(a.repo, Store(a.store))
    print(f"{n} rows in {a.store} ({time.perf_counter() - t:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
