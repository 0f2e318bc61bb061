"""Pause and resume self-heal (or automated sync), keeping the exact previous ``syncPolicy``."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..cluster.argocd import (
    A_AT,
    A_BY,
    A_EXPIRES,
    A_MODE,
    A_POLICY,
    A_REASON,
    PAUSE_ANNOTATIONS,
    REFRESH_ANNOTATION,
    auto_sync_on,
)
from ..cluster.live import Cluster
from ..errors import ActionError, ClusterError, InputError
from ..times import now_utc, parse_window
from .records import record, who

__all__ = ["PAUSE_ANNOTATIONS", "pause_self_heal", "resume_expired", "resume_self_heal"]


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _parents(cluster: Cluster, raw: dict[str, Any]) -> list[str]:
    """Who would undo a change to this Application's spec: an ApplicationSet or a parent app that self-heals."""
    meta = raw.get("metadata") or {}
    notes = []
    for o in meta.get("ownerReferences") or []:
        if o.get("kind") == "ApplicationSet":
            notes.append(
                f"owned by ApplicationSet {o.get('name')}: it re-applies the template's syncPolicy and will undo "
                "this pause. Make it stick by pausing in the ApplicationSet (spec.template.spec.syncPolicy, or "
                "spec.ignoreApplicationDifferences for syncPolicy), or pause the ApplicationSet's own parent"
            )
    parent = (meta.get("labels") or {}).get("argocd.argoproj.io/instance") or (
        (meta.get("annotations") or {}).get("argocd.argoproj.io/tracking-id", "").split(":")[0] or None
    )
    if parent and parent != meta.get("name"):
        try:
            p = cluster.raw_application(parent)
        except ClusterError:  # the parent is not readable here (another namespace, RBAC): nothing to warn of
            p = None
        auto = ((p or {}).get("spec", {}).get("syncPolicy") or {}).get("automated")
        if auto and auto.get("selfHeal"):
            notes.append(
                f"managed by parent Application {parent}, which self-heals: it will restore this app's "
                f"syncPolicy from git. Make it stick by pausing the parent first: "
                f"pause_self_heal(cluster, {parent!r}, reason, dry_run=False), then this app"
            )
    return notes


def _as_argocd_keeps(v: Any, key: str = "") -> Any:
    """``v`` as Argo CD writes it back: its own updates of the Application (setting an operation) go
    through Go types that omit false, zero and empty values (``selfHeal: false`` disappears), so
    policies are compared in that form. Empty objects (``automated: {}``) and ``enabled`` stay."""
    if isinstance(v, dict):
        return {
            k: _as_argocd_keeps(x, k)
            for k, x in v.items()
            if not (x is None or x == [] or (x in (False, "", 0) and not isinstance(x, dict) and k != "enabled"))
        }
    if isinstance(v, list):
        return [_as_argocd_keeps(x) for x in v]
    return v


def _paused(policy: dict[str, Any], mode: str) -> dict[str, Any]:
    """The ``syncPolicy`` a pause in ``mode`` writes over ``policy``."""
    after = copy.deepcopy(policy)
    if mode == "self-heal":
        after["automated"]["selfHeal"] = False
    else:
        after.pop("automated", None)
    return after


def pause_self_heal(
    cluster: Cluster,
    app: str,
    reason: str,
    *,
    mode: str = "self-heal",
    expires: str | pd.Timedelta | None = None,
    dry_run: bool = True,
) -> pd.DataFrame:
    """Turn off self-heal (``mode="self-heal"``) or automated sync altogether (``mode="auto-sync"``,
    like ``argocd app set --sync-policy none``), keeping the exact previous ``syncPolicy``.

    The previous policy, who, when, why and an optional expiry are stored in annotations, so
    :func:`resume_self_heal` restores it exactly (prune, allowEmpty, retry, syncOptions kept).
    Idempotent: pausing a paused app changes nothing. Returns a one-row record; ``note`` says
    if an ApplicationSet or a self-healing parent app would undo the pause, and what sticks.
    """
    if mode not in ("self-heal", "auto-sync"):
        raise InputError(f"mode must be 'self-heal' or 'auto-sync', got {mode!r}")
    if not reason or not reason.strip():
        raise InputError("give a reason for the pause (it is stored with it and shown in the report)")
    return _retrying(lambda: _pause(cluster, app, reason, mode, expires, dry_run))


def _settled(cluster: Cluster, app: str, timeout: float = 10.0) -> dict[str, Any]:
    """The Application once Argo CD has taken any pending refresh request.

    While ``argocd.argoproj.io/refresh`` is set, the controller is about to write the app back
    from its own copy, and when that annotation was the only one it drops every annotation
    (ours too). So the pause waits for the controller to take the refresh first.
    """
    deadline = time.monotonic() + timeout
    raw = cluster.raw_application(app)
    while REFRESH_ANNOTATION in ((raw.get("metadata") or {}).get("annotations") or {}) and time.monotonic() < deadline:
        time.sleep(0.2)
        raw = cluster.raw_application(app)
    return raw


def _pause(
    cluster: Cluster, app: str, reason: str, mode: str, expires: str | pd.Timedelta | None, dry_run: bool
) -> pd.DataFrame:
    raw = cluster.raw_application(app) if dry_run else _settled(cluster, app)
    spec, meta = raw.get("spec") or {}, raw.get("metadata") or {}
    policy = spec.get("syncPolicy") or {}
    anns = meta.get("annotations") or {}
    warnings = _parents(cluster, raw)
    if A_POLICY in anns:
        return record(
            "pause-self-heal",
            app,
            policy,
            policy,
            dry_run=dry_run,
            changed=False,
            note=f"already paused by {anns.get(A_BY)} at {anns.get(A_AT)} ({anns.get(A_MODE)})"
            + ("; " + "; ".join(warnings) if warnings else ""),
        )
    auto = policy.get("automated")
    # Argo CD's rule: the key's presence turns auto-sync on (``automated: {}`` too), ``enabled: false`` off
    if not auto_sync_on(policy) or (mode == "self-heal" and not (auto or {}).get("selfHeal")):
        off = "automated sync" if mode == "auto-sync" or not auto_sync_on(policy) else "self-heal"
        disabled = isinstance(auto, dict) and auto.get("enabled") is False
        return record(
            "pause-self-heal",
            app,
            policy,
            policy,
            dry_run=dry_run,
            changed=False,
            note=f"nothing to pause: {off} is off" + (" (automated.enabled: false)" if disabled else ""),
        )
    after = _paused(policy, mode)
    until = (now_utc() + parse_window(expires, name="expires")).isoformat() if expires is not None else ""
    if not dry_run:
        ops: list[dict[str, Any]] = (
            [] if meta.get("annotations") else [{"op": "add", "path": "/metadata/annotations", "value": {}}]
        )
        for k, v in (
            (A_POLICY, json.dumps(policy, sort_keys=True)),
            (A_BY, who()),
            (A_AT, now_utc().isoformat()),
            (A_REASON, reason),
            (A_EXPIRES, until),
            (A_MODE, mode),
        ):
            ops.append({"op": "add", "path": f"/metadata/annotations/{_esc(k)}", "value": v})
        ops.append({"op": "test", "path": "/spec/syncPolicy", "value": policy})  # nobody changed it meanwhile
        ops.append({"op": "replace", "path": "/spec/syncPolicy", "value": after})
        cluster.patch_application(app, ops)
    return record(
        "pause-self-heal",
        app,
        policy,
        after,
        dry_run=dry_run,
        changed=True,
        note="; ".join([f"mode {mode}" + (f", expires {until}" if until else ""), *warnings]),
    )


def resume_self_heal(cluster: Cluster, app: str, *, on_conflict: str = "error", dry_run: bool = True) -> pd.DataFrame:
    """Restore the exact ``syncPolicy`` :func:`pause_self_heal` stored, and drop its annotations.

    If someone changed the ``syncPolicy`` while it was paused (it is no longer what the pause
    wrote), ``on_conflict`` decides: ``"error"`` (default) raises :class:`ActionError` naming
    both policies and changes nothing; ``"keep-current"`` keeps their policy as it is and only
    drops the pause's annotations; ``"restore"`` restores the policy from before the pause,
    dropping their change. The record's note says which happened.
    Idempotent: resuming an app that is not paused changes nothing.
    """
    if on_conflict not in ("error", "keep-current", "restore"):
        raise InputError(f"on_conflict must be 'error', 'keep-current' or 'restore', got {on_conflict!r}")
    return _retrying(lambda: _resume(cluster, app, on_conflict, dry_run))


def _retrying(fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Run ``fn`` again (reading anew) when its patch's ``test`` op failed: the Application changed between
    the read and the patch (Argo CD rewrites it when it starts an auto-sync)."""
    for attempt in range(3):
        try:
            return fn()
        except ClusterError as e:
            if e.status != 422 or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _resume(cluster: Cluster, app: str, on_conflict: str, dry_run: bool) -> pd.DataFrame:
    raw = cluster.raw_application(app)
    spec, meta = raw.get("spec") or {}, raw.get("metadata") or {}
    policy = spec.get("syncPolicy") or {}
    anns = meta.get("annotations") or {}
    if A_POLICY not in anns:
        return record(
            "resume-self-heal",
            app,
            policy,
            policy,
            dry_run=dry_run,
            changed=False,
            note="not paused by gitops-nb: nothing to resume",
        )
    before_pause = json.loads(anns[A_POLICY])
    mode = anns.get(A_MODE) or "self-heal"
    wrote = _paused(before_pause, mode) if mode in ("self-heal", "auto-sync") else policy
    note = f"paused by {anns.get(A_BY)} at {anns.get(A_AT)}: {anns.get(A_REASON)}"
    target = before_pause
    if _as_argocd_keeps(policy) != _as_argocd_keeps(wrote):
        both = (
            f"syncPolicy now {json.dumps(policy, sort_keys=True)}; the pause wrote {json.dumps(wrote, sort_keys=True)}; "
            f"before the pause it was {json.dumps(before_pause, sort_keys=True)}"
        )
        if on_conflict == "error":
            raise ActionError(
                f"{app}: its syncPolicy was changed while paused ({both}). Nothing was changed. Call "
                "resume_self_heal(..., on_conflict='keep-current') to keep the current policy, or "
                "on_conflict='restore' to restore the one from before the pause"
            )
        if on_conflict == "keep-current":
            target = policy
            note += f"; syncPolicy changed while paused: kept the current one ({both})"
        else:
            note += f"; syncPolicy changed while paused: restored the one from before the pause ({both})"
    if not dry_run:
        # nobody changed the policy since it was read here (a test op: the patch fails rather than overwrite)
        ops: list[dict[str, Any]] = (
            [{"op": "test", "path": "/spec/syncPolicy", "value": policy}] if "syncPolicy" in spec else []
        )
        if target is not policy:
            ops.append(
                {"op": "replace" if "syncPolicy" in spec else "add", "path": "/spec/syncPolicy", "value": target}
            )
        ops += [{"op": "remove", "path": f"/metadata/annotations/{_esc(k)}"} for k in PAUSE_ANNOTATIONS if k in anns]
        cluster.patch_application(app, ops)
    return record("resume-self-heal", app, policy, target, dry_run=dry_run, changed=True, note=note)


def resume_expired(cluster: Cluster, *, dry_run: bool = True) -> pd.DataFrame:
    """Resume every Application whose gitops-nb pause is past its expiry (a dry run unless ``dry_run=False``).

    One record per expired pause (none when nothing has expired); each resume is :func:`resume_self_heal`.
    """
    apps = cluster.applications()
    expired = apps[apps["pause_expired"]]
    records = [resume_self_heal(cluster, name, dry_run=dry_run) for name in expired["name"]]
    for rec, by, until in zip(records, expired["paused_by"], expired["pause_expires"], strict=True):
        rec["note"] = f"pause by {by} expired at {until.isoformat()}; " + str(rec["note"].iloc[0])
    if not records:
        from .. import schema

        return schema.frame(schema.ACTION_RECORDS)
    return pd.concat(records, ignore_index=True)
