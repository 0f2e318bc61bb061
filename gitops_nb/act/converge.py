"""Verify convergence: Synced at exactly a revision, its operation Succeeded, Healthy, rollouts complete."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from .. import schema
from ..cluster.argocd import status_of
from ..cluster.live import Cluster
from ..errors import ClusterUnreachableError, ConvergenceError
from ..times import now_utc, parse_window

__all__ = ["wait_converged"]

_STATE_COLUMNS = list(schema.TRANSITIONS)[2:]


def _state(raw: dict[str, Any]) -> dict[str, Any]:
    s = status_of(raw)
    return {k: s[k] for k in _STATE_COLUMNS}


def _rollouts_complete(cluster: Cluster, raw: dict[str, Any]) -> bool:
    for res in (raw.get("status") or {}).get("resources") or []:
        if res.get("kind") != "Deployment":
            continue
        d = cluster.deployment(res["namespace"], res["name"])
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
) -> pd.DataFrame:
    """Wait until ``app`` is Synced at exactly ``revision``, its operation for that revision
    Succeeded, health is Healthy and every Deployment's rollout is complete.

    Reads the current state first (an app already converged returns at once), then watches;
    a dropped watch or an API server restart is survived by reading again and re-watching.
    Fails fast with :class:`ConvergenceError` on Degraded health or a failed operation for the
    revision. Returns the status transitions with timestamps (pushed, detected, synced, healthy,
    converged), oldest first. ``cancel`` (a ``threading.Event``) stops the wait with a
    :class:`ConvergenceError` saying so; nothing is undone.
    """
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

    def check(raw: dict[str, Any]) -> bool:
        s = _state(raw)
        at_rev = s["sync_revision"] == revision
        if s["operation_revision"] == revision or at_rev:
            note("detected", s)
        if s["operation_revision"] == revision and s["operation_phase"] in ("Failed", "Error"):
            note("failed", s)
            raise ConvergenceError(
                f"{app}: the sync to {revision[:10]} {s['operation_phase']}: {s['message']}",
                app=app,
                revision=revision,
                transitions=frame(),
            )
        if at_rev and s["sync_status"] == "Synced" and s["operation_phase"] in (None, "Succeeded"):
            note("synced", s)
            if s["health_status"] == "Degraded":
                note("degraded", s)
                raise ConvergenceError(
                    f"{app} is Degraded at {revision[:10]}: {s['message']}",
                    app=app,
                    revision=revision,
                    transitions=frame(),
                )
            if s["health_status"] == "Healthy":
                note("healthy", s)
                if _rollouts_complete(cluster, raw):
                    note("converged", s)
                    return True
        return False

    while True:
        if cancel is not None and cancel.is_set():
            raise ConvergenceError(
                f"waiting for {app} at {revision[:10]} was cancelled; nothing was undone",
                app=app,
                revision=revision,
                transitions=frame(),
            )
        try:
            raw = cluster.raw_application(app)  # the initial read; also after every dropped watch
        except ClusterUnreachableError as e:  # an API server restart: keep trying until the deadline
            if time.monotonic() > deadline:
                raise ConvergenceError(
                    f"{app}: the API server stayed unreachable until the {seconds:.0f}s timeout: {e}",
                    app=app,
                    revision=revision,
                    transitions=frame(),
                ) from e
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
            raise ConvergenceError(
                f"{app} did not converge at {revision[:10]} within {seconds:.0f}s: sync {s['sync_status']} at "
                f"{str(s['sync_revision'])[:10]}, health {s['health_status']}, operation {s['operation_phase']}",
                app=app,
                revision=revision,
                transitions=frame(),
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
