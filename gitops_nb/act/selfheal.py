"""Pause and resume self-heal (or automated sync), keeping the exact previous ``syncPolicy``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pandas as pd

from ..cluster.argocd import A_AT, A_BY, A_EXPIRES, A_MODE, A_POLICY, A_REASON, PAUSE_ANNOTATIONS
from ..cluster.live import Cluster
from ..errors import ClusterError, InputError
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
    raw = cluster.raw_application(app)
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
    if not auto or (mode == "self-heal" and not auto.get("selfHeal")):
        return record(
            "pause-self-heal",
            app,
            policy,
            policy,
            dry_run=dry_run,
            changed=False,
            note=f"nothing to pause: {'automated sync' if mode == 'auto-sync' else 'self-heal'} is off",
        )
    after = copy.deepcopy(policy)
    if mode == "self-heal":
        after["automated"]["selfHeal"] = False
    else:
        after.pop("automated")
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


def resume_self_heal(cluster: Cluster, app: str, *, dry_run: bool = True) -> pd.DataFrame:
    """Restore the exact ``syncPolicy`` :func:`pause_self_heal` stored, and drop its annotations.

    Idempotent: resuming an app that is not paused changes nothing.
    """
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
    if not dry_run:
        ops: list[dict[str, Any]] = [
            {"op": "replace" if "syncPolicy" in spec else "add", "path": "/spec/syncPolicy", "value": before_pause}
        ]
        ops += [{"op": "remove", "path": f"/metadata/annotations/{_esc(k)}"} for k in PAUSE_ANNOTATIONS if k in anns]
        cluster.patch_application(app, ops)
    return record(
        "resume-self-heal",
        app,
        policy,
        before_pause,
        dry_run=dry_run,
        changed=True,
        note=f"paused by {anns.get(A_BY)} at {anns.get(A_AT)}: {anns.get(A_REASON)}",
    )


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
