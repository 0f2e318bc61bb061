"""Column schemas of every frame gitops_nb returns, defined once.

Each schema maps a column name to its pandas dtype. Timestamps are always
``datetime64[ns, UTC]``; list-valued columns are ``object`` holding Python lists.
Functions build frames through :func:`frame` so the columns and dtypes are the
same whether a query finds rows or not.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ACTION_RECORDS",
    "AFFECTED_APPS",
    "APPS",
    "APP_CHANGES",
    "COMMITS",
    "CULPRITS",
    "DRIFT_SPANS",
    "FILE_CHANGES",
    "LANDED",
    "MANIFEST_CHANGES",
    "RENDERED_DIFF",
    "SECRET_FINDINGS",
    "TIMELINE",
    "TRANSITIONS",
    "UTC",
    "RowKind",
    "frame",
]

UTC = "datetime64[ns, UTC]"

Schema = Mapping[str, str]

#: One column's values for :func:`frame`: a list, a numpy array, or (timestamps) a DatetimeIndex.
Column = list[Any] | np.ndarray | pd.DatetimeIndex

#: One row per commit (``DeployRepo.commits``).
COMMITS: Schema = {
    "sha": "object",  # full 40-hex sha
    "short_sha": "object",  # first 10 hex digits
    "parents": "object",  # list[str] of parent shas
    "author": "object",
    "author_email": "object",
    "authored_at": UTC,
    "committer": "object",
    "committer_email": "object",
    "committed_at": UTC,
    "subject": "object",
    "body": "object",  # message without the subject line
    "is_merge": "bool",
    "reverts": "object",  # full sha this commit reverts, or None
    "files": "object",  # list[str] of paths touched (new path for renames)
}

#: One row per (commit, path) (``DeployRepo.file_changes``).
FILE_CHANGES: Schema = {
    "sha": "object",
    "committed_at": UTC,
    "path": "object",  # path after the change
    "change": "object",  # A, M, D, R, C or T, as git reports it
    "old_path": "object",  # path before a rename or copy, else None
    "similarity": "Int64",  # rename/copy score 0-100, else <NA>
}

#: One row per changed field (``DeployRepo.manifest_changes``).
MANIFEST_CHANGES: Schema = {
    "sha": "object",
    "committed_at": UTC,
    "author": "object",
    "path": "object",  # file in the repo
    "kind": "object",  # Kubernetes kind, Kustomization, or the patch target kind
    "name": "object",  # object name, or the patch target name
    "field": "object",  # dotted path; list items keyed by name: containers[app].image
    "old": "object",  # rendered as text; None when the field was added
    "new": "object",  # rendered as text; None when the field was removed
    "change": "object",  # added, removed, modified, unreadable
    "via": "object",  # manifest, kustomization, patch (strategic merge), json6902, yaml
    "doc": "Int64",  # index of the YAML document in the file
    "unreadable": "bool",  # True when a blob could not be read or parsed
    "error": "object",  # why the row is unreadable, else None
}

#: One row per changed field of a rendered resource (``rendered_diff``): what ``kustomize build`` /
#: ``helm template`` output at a commit differs in from its first parent's.
RENDERED_DIFF: Schema = {
    "app": "object",  # the Application's name, or the path given
    "path": "object",  # the Kustomize root / chart directory in the repo
    "sha": "object",
    "parent": "object",  # the commit's first parent (None for a root commit: everything is added)
    "tool": "object",  # kustomize, helm, directory (plain YAML files)
    "kind": "object",
    "namespace": "object",  # metadata.namespace as rendered (None when the tool leaves it to Argo CD)
    "name": "object",
    "field": "object",  # dotted path, list items keyed by name: spec.template.spec.containers[web].image; "" = whole object
    "old": "object",  # rendered as text; None when added; Secret values are <redacted>
    "new": "object",
    "change": "object",  # added, removed, modified, render-error
    "error": "object",  # render-error rows: which side failed and the tool's first lines of stderr
}

#: One row per app: Kustomize root, Flux object, Argo CD Application (``DeployRepo.apps``).
APPS: Schema = {
    "app": "object",  # the root's directory (apps/checkout-api/overlays/production), or the Application's name
    "kustomization": "object",  # its kustomization file, the Flux object's file, or the file defining the Application
    "namespace": "object",  # the kustomization's namespace, or the Application's destination namespace
    "files": "object",  # list[str]: every repo file the build reads
    "dirs": "object",  # list[str]: every kustomization directory (or source path, chart) it builds from
    "remote": "object",  # list[str]: remote resources (URLs, charts, other repos), not followed
    "source_type": "object",  # kustomize, flux, or the Application's: helm, helm-repo, directory, jsonnet, plugin, ... (+ joined)
    "error": "object",  # what could not be read (broken chart, values not YAML, missing value file, ...), else None
}

#: The roots one commit reaches (``DeployRepo.affected_apps``): :data:`APPS` plus the files it changed.
AFFECTED_APPS: Schema = {**APPS, "matched": "object"}  # list[str]: the changed files the root is built from

#: The apps one commit adds, removes or changes (``DeployRepo.app_changes``).
APP_CHANGES: Schema = {
    "app": "object",
    "change": "object",  # added, removed, changed
    "source_type": "object",  # as in APPS
    "matched": "object",  # list[str]: the changed files the app is built from
    "error": "object",  # as in APPS
}

#: One row per change that landed on a branch (``DeployRepo.landed``): its first-parent line, newest first.
LANDED: Schema = {
    "sha": "object",  # the commit on the branch: a merge, or a direct (squashed, rebased) commit
    "short_sha": "object",
    "parents": "object",  # list[str]; the first is the branch before the change landed
    "landed_at": UTC,  # when it landed: the commit's committer time (a merge's, for a pull request)
    "landed_via": "object",  # merge or direct
    "author": "object",  # of the landed commit (for a merge: who merged)
    "committer": "object",
    "subject": "object",
    "authored_at": UTC,  # when the change was written: the earliest author time of the merged commits, else its own
    "merged_commits": "object",  # list[str]: the commits a merge brought in, newest first; [] for a direct commit
    "merged_authors": "object",  # list[str]: their authors, newest first, each once
    "reverts": "object",  # the sha it (or a commit it merged) reverts, or None
    "files": "object",  # list[str]: paths changed against the first parent
    "apps": "object",  # list[str]: apps it reaches (roots, Flux apps at its own and parent's tree; Applications at the newest)
    "matched": "object",  # dict[str, list[str]]: app -> the files it was reached through
}


#: The merged timeline (``what_changed``), newest first.
class RowKind:
    """What a timeline row is (its ``kind`` column). Code matches on these, never on ``summary`` text."""

    COMMIT = "commit"  # a commit that landed on the branch
    DEPLOY = "deploy"  # an Argo CD deploy (a status.history entry): ``sha`` is the revision it shipped
    SYNC_FAILED = "sync-failed"  # an Argo CD sync operation that Failed or Errored
    APP_EVENT = "app-event"  # an event about an Application, from Argo CD
    K8S_EVENT = "k8s-event"  # a Kubernetes event in a destination namespace
    ROLLOUT = "rollout"  # a Deployment's ReplicaSet: a rollout began
    FIELD_EDIT = "field-edit"  # a change made outside git (managedFields: kubectl edit, scale, ...)
    APP_CONDITION = "app-condition"  # an Application condition (ComparisonError, SyncError, ...) standing now
    RESOURCE_MISSING = "resource-missing"  # a resource the app manages is Missing: deleted outside git
    HEAL = "heal"  # an Argo CD self-heal: an automated re-sync of the revision already deployed

    ALL = (
        COMMIT,
        DEPLOY,
        SYNC_FAILED,
        APP_EVENT,
        K8S_EVENT,
        ROLLOUT,
        FIELD_EDIT,
        APP_CONDITION,
        RESOURCE_MISSING,
        HEAL,
    )


TIMELINE: Schema = {
    "time": UTC,
    "kind": "object",  # one of RowKind.ALL
    "source": "object",  # where the row comes from: git, argocd, argocd-event, k8s-event, rollout, field-edit
    "app": "object",  # comma-separated apps the row concerns, or None
    "apps": "object",  # list[str] form of ``app``
    "sha": "object",
    "author": "object",
    "summary": "object",
    "detail": "object",
    "before_at": "timedelta64[ns]",  # from the row to T (negative: after T)
    "score": "float64",  # culprit score, 0 for rows after T; NaN for a commit that is no candidate (CI/docs only)
    "rank": "Int64",  # 1 = most likely culprit; <NA> for rows that are not candidates
    "why": "object",  # how the score was made
    "deployed_at": UTC,  # git rows: when Argo CD first deployed a revision containing the commit (cluster given)
    "argocd_app": "object",  # cluster rows: the Argo CD Application the row is about; commit rows (cluster
    # given): the cluster's Applications built from the files it touches, and those that deployed it
    "authored_at": UTC,  # git rows: when the change was written (the earliest merged commit's author time)
    "landed_via": "object",  # git rows: merge or direct (``time`` is when it landed on the branch)
    "merged_commits": "object",  # git rows: list[str] of the commits a merge brought in ([] for direct)
    "cluster": "object",  # cluster rows: the cluster (context) the row was read from or deployed to; git rows: None
}

#: The ranked culprits (``culprits``): the candidate rows of a timeline, best first.
CULPRITS: Schema = {
    "rank": "Int64",
    "time": UTC,
    "kind": "object",
    "sha": "object",
    "app": "object",
    "author": "object",
    "summary": "object",
    "score": "float64",
    "why": "object",
}


def frame(
    schema: Schema,
    rows: Iterable[Mapping[str, Any] | Mapping[Hashable, Any]] | Mapping[str, Column] = (),
) -> pd.DataFrame:
    """Build a frame with exactly ``schema``'s columns and dtypes.

    ``rows`` is either an iterable of row dicts or a dict of column lists.
    Missing columns are filled with nulls; extra keys are dropped.
    """
    if isinstance(rows, Mapping):
        n = max((len(v) for v in rows.values()), default=0)
        data = {c: rows.get(c, [None] * n) for c in schema}
    else:
        records = list(rows)
        data = {c: [r.get(c) for r in records] for c in schema}
    n = len(next(iter(data.values()), []))
    arrays: list[Any] = []
    for col, dtype in schema.items():
        values = data[col]
        if dtype == "object":
            arrays.append(np.fromiter(values, dtype=object, count=n))
        elif dtype == UTC:
            ts = (
                values
                if isinstance(values, pd.DatetimeIndex)
                else pd.DatetimeIndex(pd.to_datetime(list(values), utc=True))
            )
            arrays.append(ts.tz_convert("UTC").as_unit("ns") if n else pd.DatetimeIndex([], tz="UTC").as_unit("ns"))
        elif dtype[0].isupper() or dtype == "boolean":
            arrays.append(pd.array(values, dtype=dtype))  # type: ignore[arg-type]  # pandas-stubs wants a literal dtype
        else:
            arrays.append(np.asarray(values, dtype=dtype))
    columns = pd.Index(list(schema), dtype=object)
    try:  # the fast path: no per-column inference (frames are built on every query)
        fast: pd.DataFrame = pd.DataFrame._from_arrays(  # type: ignore[attr-defined]  # private: not in pandas-stubs
            arrays, columns=columns, index=pd.RangeIndex(n), verify_integrity=False
        )
        return fast
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the private constructor
        return pd.DataFrame({c: pd.Series(a, dtype=schema[c]) for c, a in zip(schema, arrays, strict=True)})


# -- cluster side ---------------------------------------------------------------------

#: One row per Argo CD Application (``Cluster.applications``).
APPLICATIONS: Schema = {
    "name": "object",
    "namespace": "object",  # where the Application object lives
    "project": "object",
    "repo_url": "object",  # the first source's (see ``sources`` for multi-source apps)
    "path": "object",
    "target_revision": "object",
    "sources": "object",  # list[dict]: repo_url, path, target_revision, chart, ref (+ helm, kustomize, directory, plugin when set)
    "dest_server": "object",
    "dest_name": "object",  # the destination cluster's name (``destination.name``), when given by name
    "dest_namespace": "object",
    "sync_status": "object",  # Synced, OutOfSync, Unknown
    "sync_revision": "object",  # the revision compared (first source's for multi-source)
    "sync_revisions": "object",  # list[str] for multi-source apps, else []
    "health_status": "object",  # Healthy, Progressing, Degraded, Missing, Suspended, Unknown
    "automated": "bool",
    "prune": "bool",
    "self_heal": "bool",
    "operation_phase": "object",  # Running, Succeeded, Failed, Error, Terminating, or None
    "operation_revision": "object",  # the first source's for multi-source apps
    "operation_finished_at": UTC,
    "reconciled_at": UTC,
    # list[dict]: type, message, time of status.conditions (ComparisonError: manifests could not be made)
    "conditions": "object",
    "parent": "object",  # owning Application or ApplicationSet (kind/name), if any
    "created_at": UTC,
    "paused_by": "object",  # who paused self-heal with gitops-nb (pause_self_heal), else None
    "paused_at": UTC,
    "pause_reason": "object",
    "pause_expires": UTC,  # the pause's expiry, if one was given
    "pause_expired": "bool",  # the expiry has passed (as of reading): resume_expired resumes these
    "cluster": "object",  # the context its destination is read from (the hub's own for in-cluster); else Argo CD's name or server for it
}

#: One row per deploy in ``status.history`` (``Cluster.app_history``), oldest first.
APP_HISTORY: Schema = {
    "app": "object",
    "id": "Int64",
    "revision": "object",  # first source's revision (see ``revisions``)
    "revisions": "object",  # list[str] for multi-source deploys
    "deploy_started_at": UTC,
    "deployed_at": UTC,
    "initiated_by": "object",  # a user name, or "automated"
    "source": "object",  # dict: repo_url, path, target_revision
    "cluster": "object",  # the app's destination cluster (as APPLICATIONS' ``cluster``)
}

#: One row per resource an Application manages (``Cluster.app_resources``).
APP_RESOURCES: Schema = {
    "app": "object",
    "group": "object",
    "version": "object",
    "kind": "object",
    "namespace": "object",
    "name": "object",
    "sync_status": "object",
    "health_status": "object",
    "health_message": "object",  # why it is not Healthy ("exceeded its progress deadline"), else None
    "hook": "bool",
    "requires_pruning": "bool",
    "cluster": "object",  # the app's destination cluster (as APPLICATIONS' ``cluster``)
}

#: One row per Kubernetes event (``Cluster.events``), oldest first.
EVENTS: Schema = {
    "time": UTC,  # last time it happened
    "first_time": UTC,
    "namespace": "object",
    "type": "object",  # Normal, Warning
    "reason": "object",
    "message": "object",
    "object_kind": "object",
    "object_namespace": "object",
    "object_name": "object",
    "count": "Int64",
    "source": "object",  # the reporting component (argocd-application-controller, deployment-controller, ...)
    "cluster": "object",  # the context it was read from
}

#: One row per ReplicaSet of a Deployment (``Cluster.rollouts``), oldest first.
ROLLOUTS: Schema = {
    "namespace": "object",
    "deployment": "object",
    "replicaset": "object",
    "revision": "Int64",  # deployment.kubernetes.io/revision
    "images": "object",  # list[str]
    "created_at": UTC,  # when the ReplicaSet was created (a revert reuses an old one)
    "rolled_out_at": UTC,  # when its revision became the Deployment's current one (null in older snapshots)
    "revision_history": "object",  # list[int]: earlier revisions of a reused ReplicaSet
    "replicas": "Int64",
    "ready_replicas": "Int64",
    "current": "bool",  # the Deployment's newest ReplicaSet
    "cluster": "object",  # the context it was read from
}

#: One row per (object, field manager) from managedFields (``Cluster.field_edits``), oldest first.
FIELD_EDITS: Schema = {
    "time": UTC,
    "namespace": "object",
    "kind": "object",
    "name": "object",
    "manager": "object",  # kubectl-edit, kubectl-client-side-apply, argocd-controller, ...
    "operation": "object",  # Update or Apply
    "subresource": "object",
    "fields": "object",  # list[str] of dotted field paths this manager owns
    "is_gitops": "bool",  # True for Argo CD's own managers
    "time_bound": "object",  # set when managedFields has no time (a scale subresource update): "after <time> UTC"
    # a change a recorder saw (Recording only): list of [path, old, new], values as text (Secrets: [path, None,
    # None]); None for managedFields rows and for live clusters and snapshots
    "changes": "object",
    "cluster": "object",  # the context it was read from
}

#: One row per span of time a field disagreed with git (``drift_spans``, from a recording), oldest first: from
#: a change by a manager other than Argo CD until Argo CD next wrote that field (a sync or a self-heal).
DRIFT_SPANS: Schema = {
    "cluster": "object",  # where the object lives (a recording's cluster, a fleet member)
    "apps": "object",  # list[str]: the Applications deploying into its namespace
    "namespace": "object",
    "kind": "object",
    "name": "object",
    "path": "object",  # dotted field path: spec.replicas, spec.template.spec.containers[name=web].image
    "value_before": "object",  # its value before the change outside git (what Argo CD had applied), as text
    "value_outside": "object",  # the value set outside git (the last one when set several times), as text
    "set_by": "object",  # the field manager of the change outside git: kubectl-edit, kubectl-client-side-apply, ...
    "set_at": UTC,
    "time_bound": "object",  # set when the change was found on a relist: "between <since> and <time> UTC"
    "ended_by": "object",  # Argo CD's manager when it wrote the field again, else None (it still disagrees)
    "ended_at": UTC,  # None while it still disagrees
    "restored_to": "object",  # the value Argo CD wrote (git's, at that sync), as text
    "ongoing": "bool",  # still disagreeing at the end of the recording read
    "duration": "timedelta64[ns]",  # set_at to ended_at (or to the end of what was read, when ongoing)
    "duration_text": "object",  # the duration as a person reads it: 3m12s, 2h05m, 21d4h
}

#: One row per Application's last operation (``Cluster.operations``).
OPERATIONS: Schema = {
    "app": "object",
    "phase": "object",  # Running, Succeeded, Failed, Error, Terminating
    "message": "object",
    "revision": "object",  # the first source's for multi-source apps
    "revisions": "object",  # list[str]: one per source for multi-source apps
    "started_at": UTC,
    "finished_at": UTC,
    "initiated_by": "object",  # a user name, or "automated"
    "retry_count": "Int64",
    # a sync's ``autoHealAttemptsCount`` (Argo CD 3.x sets it on a self-heal only), else <NA>; optional
    "self_heal_attempts": "Int64",
    "sync_resources": "object",  # list[str] kind/name the sync was limited to ([] = all); optional
    "cluster": "object",  # the app's destination cluster (as APPLICATIONS' ``cluster``)
}


#: One row per plaintext secret value a commit put at a place (``DeployRepo.secret_findings``), newest first.
#: No value, nor any reversible piece of one, is ever in it: ``fingerprint`` is a salted HMAC.
SECRET_FINDINGS: Schema = {
    "sha": "object",  # the commit that put the value there
    "committed_at": UTC,
    "author": "object",
    "path": "object",  # the file holding it
    "kind": "object",  # Secret, ConfigMap, Kustomization (secretGenerator), Config (kubeconfig), Deployment ...; None for a plain file
    "name": "object",  # the object's name (a secretGenerator's, a kubeconfig user's), or None
    "key": "object",  # the data key, literal key, env name or dotted values path, or None (a token in a plain file)
    "rule": "object",  # secret-data, secret-stringData, secretGenerator-literal/-envs/-files, configmap-key, env-var, values-key, secret-key, kubeconfig, detect-secrets: <type>
    "fingerprint": "object",  # HMAC-SHA256 of the value under the repo's salt, 16 hex digits: the same value anywhere
    "first_seen_sha": "object",  # the oldest commit (in the audited range) that committed this value anywhere
    "still_at_head": "bool",  # the value is still in a flagged file at the audited revision
    "removed_by_sha": "object",  # the first later commit whose version of the path no longer holds it there, or None
    "deployed": "boolean",  # an Application deployed a revision holding it (<NA>: no cluster evidence given)
    "deployed_at": UTC,  # the first such deploy
    "deployed_to": "object",  # list[str]: the Applications that deployed it (None without evidence)
    "rotated": "bool",  # its fingerprint is in the rotated list (.gitops-nb-rotated or rotated=)
}


# -- actions --------------------------------------------------------------------------

#: One row per action taken or planned (``pause_self_heal``, ``revert``, ... return one row each).
ACTION_RECORDS: Schema = {
    "action": "object",  # pause-self-heal, resume-self-heal, revert, refresh, sync
    "target": "object",  # the Application, or repo@branch
    "before": "object",  # the state before, as text (JSON for structures)
    "after": "object",  # the state after (or that a dry run would make)
    "who": "object",  # $GITOPS_NB_ACTOR or the OS user
    "when": UTC,
    "dry_run": "bool",
    "changed": "bool",  # True when something was really changed (never in a dry run)
    "note": "object",  # what a person should know: already done, who would undo it, ...
}

#: One row per status transition seen while waiting for convergence (``wait_converged``), oldest first.
TRANSITIONS: Schema = {
    "time": UTC,
    "event": "object",  # pushed, detected, synced, healthy, converged, failed, degraded
    "sync_status": "object",
    "sync_revision": "object",
    "health_status": "object",
    "operation_phase": "object",
    "operation_revision": "object",
    "message": "object",
}
