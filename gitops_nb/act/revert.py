"""Revert a bad commit on the branch Argo CD tracks, with trailers, and push it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError, NotOnBranchError
from ..git.repo import DeployRepo
from ..git.write import WorkTree
from .records import record, who

__all__ = ["revert"]


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
    tree = WorkTree(r.path)
    current = tree.branch()
    branch = branch or current
    if branch != current:
        raise InputError(
            f"branch {branch!r} is not checked out in {r.path} (on {current!r}): `git switch {branch}` first"
        )
    tree.require_clean()
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
        return record(
            "revert",
            target,
            full,
            done["sha"].iloc[0],
            dry_run=dry_run,
            changed=False,
            note=f"already reverted by {done['sha'].iloc[0][:10]}: {done['subject'].iloc[0]}",
        )
    row = commits[commits["sha"] == full].iloc[0]
    if dry_run:
        return record(
            "revert",
            target,
            full,
            None,
            dry_run=True,
            changed=True,
            note=f"would revert {full[:10]} {row['subject']!r} and push to {remote}/{branch}: {tree.stat(full)}",
        )
    trailers = [f"Reverted-by: {who()} via gitops-nb"] + ([f"Incident: {incident}"] if incident else [])
    message = f'Revert "{row["subject"]}"\n\nThis reverts commit {full}.\n\n' + "\n".join(trailers) + "\n"
    new = tree.revert(full, message, merge=bool(row["is_merge"]))
    note = None
    if push:
        new, note = tree.push(remote, branch)
    return record("revert", target, full, new, dry_run=False, changed=True, note=note)
