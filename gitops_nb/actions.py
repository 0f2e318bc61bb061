"""Actions of an incident: pause and resume self-heal, revert a commit, refresh, sync, and
verify convergence. Every mutating action is dry-run by default, idempotent, and returns a
record (what, target, before, after, who, when, dry_run); none force-pushes or drops a commit.
"""

from __future__ import annotations

import copy
import getpass
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .argocd import refresh_app, status_of
from .errors import (
    ActionError,
    ConvergenceError,
    DetachedHeadError,
    DirtyTreeError,
    InputError,
    NotOnBranchError,
    PushRejectedError,
    RevertConflictError,
)
from .history import DeployRepo
from .times import now_utc, parse_window

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = [
    "RECORD_COLUMNS",
    "TRANSITION_COLUMNS",
    "pause_self_heal",
    "refresh",
    "resume_self_heal",
    "revert",
    "sync",
    "wait_converged",
]

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
ANN = "gitops-nb.io/"
A_POLICY, A_BY, A_AT, A_REASON, A_EXPIRES, A_MODE = (
    ANN + "paused-sync-policy",
    ANN + "paused-by",
    ANN + "paused-at",
    ANN + "pause-reason",
    ANN + "pause-expires",
    ANN + "pause-mode",
)
RECORD_COLUMNS = ["action", "target", "before", "after", "who", "when", "dry_run", "changed", "note"]
TRANSITION_COLUMNS = [
    "time",
    "event",
    "sync_status",
    "sync_revision",
    "health_status",
    "operation_phase",
    "operation_revision",
    "message",
]
_MAX_PUSH_TRIES = 3


def who() -> str:
    """Who acts: the OS user (and ``$GITOPS_NB_ACTOR`` if set, e.g. an on-call handle)."""
    import os

    return os.environ.get("GITOPS_NB_ACTOR") or getpass.getuser()


def _record(
    action: str, target: str, before: Any, after: Any, *, dry_run: bool, changed: bool, note: str | None = None
) -> pd.DataFrame:
    def text(v: Any) -> Any:
        return v if v is None or isinstance(v, str) else json.dumps(v, sort_keys=True)

    row = {
        "action": action,
        "target": target,
        "before": text(before),
        "after": text(after),
        "who": who(),
        "when": now_utc(),
        "dry_run": dry_run,
        "changed": changed and not dry_run,
        "note": note,
    }
    return pd.DataFrame([row], columns=RECORD_COLUMNS)


def _patch(cluster: Cluster, app: str, ops: list[dict[str, Any]]) -> None:
    c = cluster._custom()
    cluster._call(
        "patch",
        f"applications.argoproj.io/{app}",
        lambda: c.patch_namespaced_custom_object(
            GROUP, VERSION, cluster.argocd_namespace, PLURAL, app, ops, _content_type="application/json-patch+json"
        ),
    )


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
        except ActionError:
            p = None
        except Exception:
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
        return _record(
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
        return _record(
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
        _patch(cluster, app, ops)
    return _record(
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
        return _record(
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
        ops += [
            {"op": "remove", "path": f"/metadata/annotations/{_esc(k)}"}
            for k in (A_POLICY, A_BY, A_AT, A_REASON, A_EXPIRES, A_MODE)
            if k in anns
        ]
        _patch(cluster, app, ops)
    return _record(
        "resume-self-heal",
        app,
        policy,
        before_pause,
        dry_run=dry_run,
        changed=True,
        note=f"paused by {anns.get(A_BY)} at {anns.get(A_AT)}: {anns.get(A_REASON)}",
    )


def refresh(cluster: Cluster, app: str, *, hard: bool = False, dry_run: bool = False) -> pd.DataFrame:
    """Ask Argo CD to compare ``app`` with git now (the ``argocd.argoproj.io/refresh`` annotation).

    Harmless, so not dry-run by default: it changes no desired state.
    """
    cluster.raw_application(app)  # a clear UnknownAppError before anything else
    kind = "hard" if hard else "normal"
    if not dry_run:  # the same annotation the sandbox helpers set: one implementation
        cluster._call(
            "patch",
            f"applications.argoproj.io/{app}",
            lambda: refresh_app(cluster.api, app, namespace=cluster.argocd_namespace, hard=hard),
        )
    return _record("refresh", app, None, kind, dry_run=dry_run, changed=True)


def sync(
    cluster: Cluster, app: str, revision: str | None = None, *, prune: bool = False, dry_run: bool = True
) -> pd.DataFrame:
    """Start a sync of ``app`` (to ``revision``, default its target) through the Application's ``operation`` field.

    Refuses while another operation runs (Argo CD would reject it too). Idempotent: an app
    already Synced at exactly ``revision`` (a full sha) is left alone.
    """
    raw = cluster.raw_application(app)
    status = raw.get("status") or {}
    op = status.get("operationState") or {}
    if raw.get("operation") or op.get("phase") == "Running":
        raise ActionError(f"{app} has an operation running ({op.get('phase')}): wait for it, then sync")
    synced = status.get("sync") or {}
    if revision and synced.get("status") == "Synced" and synced.get("revision") == revision:
        return _record(
            "sync", app, revision, revision, dry_run=dry_run, changed=False, note=f"already Synced at {revision[:10]}"
        )
    body = {
        "sync": {
            "revision": revision or ((raw.get("spec") or {}).get("source") or {}).get("targetRevision", "HEAD"),
            "prune": prune,
            "syncStrategy": {"hook": {}},
        },
        "initiatedBy": {"username": who()},
    }
    if not dry_run:
        _patch(cluster, app, [{"op": "add", "path": "/operation", "value": body}])
    return _record(
        "sync", app, op.get("syncResult", {}).get("revision"), body["sync"]["revision"], dry_run=dry_run, changed=True
    )


# -- git ---------------------------------------------------------------------------


def revert(
    repo: DeployRepo | str | Path,
    sha: str,
    *,
    remote: str = "origin",
    branch: str | None = None,
    push: bool = True,
    incident: str | None = None,
    dry_run: bool = True,
) -> pd.DataFrame:
    """Revert ``sha`` on ``branch`` (the checked-out one) and push it.

    ``git revert --no-edit`` (``-m 1`` for a merge) with ``Incident:`` and ``Reverted-by:``
    trailers. On a non-fast-forward push it fetches, rebases the revert onto the remote branch
    and retries (never a force push). Refuses a dirty tree, a detached HEAD and a commit not on
    the branch. Idempotent: if the branch already has a revert of ``sha``, that is reported and
    nothing new is made. The record's ``after`` is the revert's sha (None in a dry run).
    """
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    g = r._repo.git
    if r._repo.bare:
        raise ActionError(f"{r.path} is a bare repository: revert in a work tree (a clone)")
    if r._repo.head.is_detached:
        raise DetachedHeadError(
            f"HEAD is detached in {r.path}: `git switch <branch>` first (the revert needs a branch)"
        )
    current = r._repo.active_branch.name
    branch = branch or current
    if branch != current:
        raise InputError(
            f"branch {branch!r} is not checked out in {r.path} (on {current!r}): `git switch {branch}` first"
        )
    if g.status("--porcelain", "--untracked-files=no").strip():
        raise DirtyTreeError(f"{r.path} has uncommitted changes: commit or stash them first (`git status`)")
    full = r.resolve(sha)
    head = r.resolve("HEAD")
    if full not in r.ancestors(head):
        raise NotOnBranchError(
            f"{full[:10]} is not on branch {branch} of {r.path}: pick a commit from `git log {branch}`"
        )
    commits = r.commits(since=None, rev=head)
    done = commits[commits["reverts"] == full]
    target = f"{r.path}@{branch}"
    if len(done):
        return _record(
            "revert",
            target,
            full,
            done["sha"].iloc[0],
            dry_run=dry_run,
            changed=False,
            note=f"already reverted by {done['sha'].iloc[0][:10]}: {done['subject'].iloc[0]}",
        )
    row = commits[commits["sha"] == full].iloc[0]
    parents = ["-m", "1"] if row["is_merge"] else []
    if dry_run:
        stat = g.show("--stat", "--format=", full).strip()
        return _record(
            "revert",
            target,
            full,
            None,
            dry_run=True,
            changed=True,
            note=f"would revert {full[:10]} {row['subject']!r} and push to {remote}/{branch}: {stat}",
        )
    try:
        g.revert("--no-commit", *parents, full)
    except Exception as e:
        g.execute(["git", "revert", "--abort"], with_exceptions=False)
        raise RevertConflictError(
            f"reverting {full[:10]} does not apply cleanly on {branch} (later commits changed the same lines); "
            f"nothing was changed. Resolve by hand: git revert {full[:10]}"
        ) from e
    trailers = [f"Reverted-by: {who()} via gitops-nb"] + ([f"Incident: {incident}"] if incident else [])
    message = f'Revert "{row["subject"]}"\n\nThis reverts commit {full}.\n\n' + "\n".join(trailers) + "\n"
    g.execute(["git", "commit", "-q", "-m", message])
    new = r.resolve("HEAD")
    note = None
    if push:
        new, note = _push(r, remote, branch, new)
    return _record("revert", target, full, new, dry_run=False, changed=True, note=note)


def _push(r: DeployRepo, remote: str, branch: str, sha: str) -> tuple[str, str | None]:
    g = r._repo.git
    last = ""
    for attempt in range(1, _MAX_PUSH_TRIES + 1):
        status, _, err = g.execute(
            ["git", "push", remote, f"HEAD:refs/heads/{branch}"], with_extended_output=True, with_exceptions=False
        )
        if status == 0:
            return r.resolve("HEAD"), (f"pushed after {attempt - 1} rebase(s)" if attempt > 1 else "pushed")
        last = err.strip()
        if "non-fast-forward" not in err and "fetch first" not in err and "rejected" not in err:
            break
        g.execute(["git", "fetch", "-q", remote, branch])
        status, _, rerr = g.execute(
            ["git", "rebase", "-q", f"{remote}/{branch}"], with_extended_output=True, with_exceptions=False
        )
        if status != 0:
            g.execute(["git", "rebase", "--abort"], with_exceptions=False)
            raise PushRejectedError(
                f"the revert {sha[:10]} is committed locally but does not rebase onto {remote}/{branch} "
                f"(someone changed the same lines): {rerr.strip()}. Resolve the rebase by hand, then push"
            )
    raise PushRejectedError(
        f"{remote} refused the push of {sha[:10]} to {branch}: {last}. The revert is committed "
        "locally; nothing was forced. Check permissions or branch protection, then `git push`"
    )


# -- convergence ---------------------------------------------------------------------


def _state(raw: dict[str, Any]) -> dict[str, Any]:
    s = status_of(raw)
    return {k: s[k] for k in TRANSITION_COLUMNS[2:]}


def _rollouts_complete(cluster: Cluster, raw: dict[str, Any]) -> bool:
    from kubernetes import client

    apps = client.AppsV1Api(cluster.api)
    for res in (raw.get("status") or {}).get("resources") or []:
        if res.get("kind") != "Deployment":
            continue
        d = cluster._call(
            "get",
            "deployments.apps",
            lambda res=res: apps.read_namespaced_deployment(res["name"], res["namespace"], _preload_content=False),
        )
        d = json.loads(d.data)
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
    progress: Any = None,
    cancel: Any = None,
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
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

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
        return pd.DataFrame(rows, columns=TRANSITION_COLUMNS).astype({"time": "datetime64[ns, UTC]"})

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

    custom = cluster._custom()
    while True:
        if cancel is not None and cancel.is_set():
            raise ConvergenceError(
                f"waiting for {app} at {revision[:10]} was cancelled; nothing was undone",
                app=app,
                revision=revision,
                transitions=frame(),
            )
        raw = cluster.raw_application(app)  # the initial read; also after every dropped watch
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
        w = watch.Watch()
        try:
            for ev in w.stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                cluster.argocd_namespace,
                PLURAL,
                field_selector=f"metadata.name={app}",
                resource_version=raw["metadata"]["resourceVersion"],
                timeout_seconds=max(1, min(int(remaining) + 1, 5 if cancel is not None else 30)),
            ):
                obj = ev.get("object")
                if ev.get("type") in ("ADDED", "MODIFIED") and isinstance(obj, dict) and check(obj):
                    w.stop()
                    return frame()
                if time.monotonic() > deadline or "healthy" in seen or (cancel is not None and cancel.is_set()):
                    break  # healthy but a rollout still finishing: its Deployment is not this object, poll it
        except ApiException as e:
            if e.status not in (410, 500, 503, 504):
                raise
        except Exception:
            time.sleep(0.5)
        finally:
            w.stop()
        if "healthy" in seen:  # Healthy but a rollout still finishing: its Deployment is not this object
            time.sleep(0.3)
