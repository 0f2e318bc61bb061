"""Verify convergence: Synced at exactly a revision, its operation Succeeded, Healthy, rollouts complete."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..cluster.argocd import FAILING_CONDITIONS, status_of
from ..cluster.live import Cluster
from ..errors import ClusterUnreachableError, ConvergenceError, InputError
from ..git.repo import DeployRepo
from ..times import now_utc, parse_window

__all__ = ["wait_converged"]

_STATE_COLUMNS = list(schema.TRANSITIONS)[2:]
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_GRACE = 10.0


def _state(raw: dict[str, Any]) -> dict[str, Any]:
    s = status_of(raw)
    return {k: s[k] for k in [*_STATE_COLUMNS, "sync_revisions", "operation_revisions", "conditions"]}


def _blockers(raw: dict[str, Any]) -> str:
    """The resources that are not Healthy, with Argo CD's reason, and the hooks a running sync waits on."""
    st = raw.get("status") or {}
    out = []
    for r in st.get("resources") or []:
        h = r.get("health") or {}
        if h.get("status") not in (None, "Healthy"):
            msg = f": {h['message']}" if h.get("message") else ""
            out.append(f"{r.get('kind')}/{r.get('name')} {h['status']}{msg}")
    op = st.get("operationState") or {}
    if op.get("phase") == "Running":
        for r in (op.get("syncResult") or {}).get("resources") or []:
            if r.get("hookType") and r.get("hookPhase") not in ("Succeeded", "Failed", "Error"):
                out.append(
                    f"waiting on {r.get('hookType')} hook {r.get('kind')}/{r.get('name')} ({r.get('hookPhase')})"
                )
    return "; ".join(out)


def _why(raw: dict[str, Any]) -> str:
    b = _blockers(raw)
    failing = _failing(_state(raw))
    return (f". Not healthy: {b}" if b else "") + (f". Conditions: {'; '.join(failing)[:1500]}" if failing else "")


def _failing(s: dict[str, Any]) -> list[str]:
    return [f"{c.get('type')}: {c.get('message')}" for c in s["conditions"] if c.get("type") in FAILING_CONDITIONS]


def _resolve(cluster: Cluster, app: str, revision: str, repo: DeployRepo | str | Path | None) -> str:
    """A full sha for ``revision``: a short sha or a branch resolved in ``repo``; refused at once without it
    (Argo CD reports full shas: a wait on anything else would wait out its timeout)."""
    if _FULL_SHA.fullmatch(revision):
        return revision
    if repo is not None:
        return (repo if isinstance(repo, DeployRepo) else DeployRepo(repo)).resolve(revision)
    spec = cluster.raw_application(app).get("spec") or {}
    sources = spec.get("sources") or [spec.get("source") or {}]
    if any(src.get("chart") for src in sources):  # a Helm chart's revision is its version
        return revision
    raise InputError(
        f"wait_converged: {revision!r} is not a full 40-hex commit sha, and Argo CD reports only full shas, so the "
        f"wait could never match. Pass the full sha, or repo=<the deploy repo> to resolve {revision!r} in it"
    )


def _rollouts_complete(cluster: Cluster, raw: dict[str, Any]) -> bool:
    """Every Deployment the app manages has rolled out, read on the app's destination cluster (a spoke's
    Deployments are not on the hub)."""
    dest = None
    for res in (raw.get("status") or {}).get("resources") or []:
        if res.get("kind") != "Deployment":
            continue
        dest = dest or cluster.destination(raw)
        d = dest.deployment(res["namespace"], res["name"])
        spec, st = d.get("spec") or {}, d.get("status") or {}
        want = spec.get("replicas", 1)
        if (
            st.get("observedGeneration", 0) < d["metadata"].get("generation", 0)
            or st.get("updatedReplicas", 0) < want
            or st.get("availableReplicas", 0) < want
            or st.get("replicas", 0) > want
        ):
            return False
    return True


def wait_converged(
    cluster: Cluster,
    app: str,
    revision: str,
    timeout: str | float = "5m",
    *,
    pushed_at: pd.Timestamp | None = None,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    repo: DeployRepo | str | Path | None = None,
) -> pd.DataFrame:
    """Wait until ``app`` is Synced at exactly ``revision``, its operation for that revision
    Succeeded, health is Healthy and every Deployment's rollout is complete.

    Reads the current state first (an app already converged returns at once), then watches;
    a dropped watch or an API server restart is survived by reading again and re-watching.
    Fails fast with :class:`ConvergenceError` on Degraded health or a failed operation for the
    revision, or on a ComparisonError / SyncError condition (manifests that cannot be generated),
    quoting Argo CD; every failure and timeout names the resources that are not Healthy, with
    their reason, and a hook a running sync waits on. A multi-source app converges when
    ``revision`` is one of its sources' revisions. ``revision`` must be a full sha, unless
    ``repo`` (the deploy repo) is given to resolve a short sha or a branch in; otherwise it is
    refused at once with :class:`InputError`. Returns the status transitions with timestamps
    (pushed, detected, synced, healthy, converged), oldest first. ``cancel`` (a
    ``threading.Event``) stops the wait with a :class:`ConvergenceError` saying so; nothing is undone.
    """
    revision = _resolve(cluster, app, revision, repo)
    seconds = timeout if isinstance(timeout, int | float) else parse_window(timeout, name="timeout").total_seconds()
    deadline = time.monotonic() + seconds
    rows: list[dict[str, Any]] = []
    if pushed_at is not None:
        rows.append({"time": pushed_at, "event": "pushed"})
    seen: set[str] = set()
    say = progress or (lambda _m: None)
    start = said = time.monotonic()
    beat = 5 if cancel is not None else 30  # an interactive wait hears from us more often

    def note(event: str, s: dict[str, Any]) -> None:
        if event in seen:
            return
        nonlocal said
        seen.add(event)
        said = time.monotonic()
        rows.append({"time": now_utc(), "event": event, **s})
        say(
            f"{app}: {event} (sync {s['sync_status']} at {str(s['sync_revision'])[:10]}, health {s['health_status']}, "
            f"operation {s['operation_phase']})"
        )

    def frame() -> pd.DataFrame:
        return schema.frame(schema.TRANSITIONS, rows)

    def fail(message: str) -> ConvergenceError:
        """The error to raise, carrying the transitions seen so far."""
        return ConvergenceError(message, app=app, revision=revision, transitions=frame())

    def check(raw: dict[str, Any]) -> bool:
        s = _state(raw)
        at_rev = revision in s["sync_revisions"]
        op_at_rev = revision in s["operation_revisions"]
        if op_at_rev or at_rev:
            note("detected", s)
        failing = _failing(s)
        # a condition left from an earlier revision clears on the next comparison: a short grace for it
        if failing and (at_rev or op_at_rev or time.monotonic() - start > _GRACE):
            note("failed", s)
            raise fail(f"{app}: Argo CD cannot deploy it at {revision[:10]}{_why(raw)}")
        if op_at_rev and s["operation_phase"] in ("Failed", "Error"):
            note("failed", s)
            raise fail(f"{app}: the sync to {revision[:10]} {s['operation_phase']}: {s['message']}{_why(raw)}")
        if at_rev and s["sync_status"] == "Synced" and s["operation_phase"] in (None, "Succeeded"):
            note("synced", s)
            if s["health_status"] == "Degraded":
                note("degraded", s)
                raise fail(f"{app} is Degraded at {revision[:10]}: {s['message']}{_why(raw)}")
            if s["health_status"] == "Healthy":
                note("healthy", s)
                if _rollouts_complete(cluster, raw):
                    note("converged", s)
                    return True
        return False

    while True:
        if cancel is not None and cancel.is_set():
            raise fail(f"waiting for {app} at {revision[:10]} was cancelled; nothing was undone")
        try:
            raw = cluster.raw_application(app)  # the initial read; also after every dropped watch
        except ClusterUnreachableError as e:  # an API server restart: keep trying until the deadline
            if time.monotonic() > deadline:
                raise fail(f"{app}: the API server stayed unreachable until the {seconds:.0f}s timeout: {e}") from e
            if time.monotonic() - said >= beat:
                said = time.monotonic()
                say(f"{app}: the API server does not answer; retrying ({e.__class__.__name__})")
            time.sleep(0.5)
            continue
        if check(raw):
            return frame()
        if time.monotonic() - said >= beat:  # a long wait still shows progress
            said, s = time.monotonic(), _state(raw)
            say(
                f"{app}: still waiting for {revision[:10]} after {said - start:.0f}s: sync {s['sync_status']} at "
                f"{str(s['sync_revision'])[:10]}, health {s['health_status']}, operation {s['operation_phase']}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            s = _state(raw)
            raise fail(
                f"{app} did not converge at {revision[:10]} within {seconds:.0f}s: sync {s['sync_status']} at "
                f"{str(s['sync_revision'])[:10]}, health {s['health_status']}, operation {s['operation_phase']}"
                + _why(raw)
            )
        # a dropped watch just ends the stream; the loop reads again and re-watches
        for ev in cluster.watch_application(
            app, raw["metadata"]["resourceVersion"], max(1, min(int(remaining) + 1, 5 if cancel is not None else 30))
        ):
            obj = ev.get("object")
            if ev.get("type") in ("ADDED", "MODIFIED") and isinstance(obj, dict) and check(obj):
                return frame()
            if time.monotonic() > deadline or "healthy" in seen or (cancel is not None and cancel.is_set()):
                break
        if "healthy" in seen:  # Healthy but a rollout still finishing: its Deployment is not this object, poll it
            time.sleep(0.3)
