"""The rollback procedure, once: pause self-heal, revert and push, refresh, wait for convergence, resume.

``notebooks/revert_and_verify.ipynb``, the incident console and the ``rollback-by-revert`` runbook
all call :func:`rollback`; none of them writes the steps again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cluster.live import Cluster
from ..git.repo import DeployRepo
from .converge import wait_converged
from .revert import revert
from .selfheal import pause_self_heal, resume_self_heal
from .sync import refresh

__all__ = ["Rollback", "rollback"]


@dataclass
class Rollback:
    """What :func:`rollback` did: the action records in order, the revert's sha, the convergence proof."""

    bad: str
    records: list[pd.DataFrame] = field(default_factory=list)
    revert_sha: str | None = None
    transitions: pd.DataFrame | None = None

    @property
    def actions(self) -> pd.DataFrame:
        """Every record in one frame (:data:`schema.ACTION_RECORDS`)."""
        from .. import schema

        return pd.concat(self.records, ignore_index=True) if self.records else schema.frame(schema.ACTION_RECORDS)

    @property
    def converged(self) -> bool:
        return self.transitions is not None and bool((self.transitions["event"] == "converged").any())


def rollback(
    repo: DeployRepo | str | Path,
    cluster: Cluster,
    sha: str,
    app: str,
    *,
    incident: str | None = None,
    remote: str = "origin",
    pause: bool = True,
    timeout: str | float = "5m",
    dry_run: bool = True,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    on_record: Callable[[pd.DataFrame], None] | None = None,
) -> Rollback:
    """Roll ``app`` back by reverting ``sha``, and prove Argo CD converged at exactly the revert.

    Steps: pause self-heal (with ``pause``), revert and push, refresh, :func:`wait_converged`
    at the revert's sha, resume self-heal. A dry run plans the pause and the revert and stops.
    Every step is idempotent: after a failure midway, fix the cause and call it again. Each
    record is passed to ``on_record`` as soon as it exists (an audit trail survives a failure
    later on); a :class:`~gitops_nb.errors.ConvergenceError` leaves the revert pushed.
    """
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    bad = r.resolve(sha)
    out = Rollback(bad)
    say = progress or (lambda _m: None)

    def keep(rec: pd.DataFrame) -> pd.DataFrame:
        out.records.append(rec)
        if on_record is not None:
            on_record(rec)
        return rec

    if pause:
        keep(pause_self_heal(cluster, app, f"{incident or 'rollback'}: reverting {bad[:10]}", dry_run=dry_run))
    rec = keep(revert(r, bad, remote=remote, incident=incident, dry_run=dry_run))
    if dry_run:
        say(f"dry run: would revert {bad[:10]} and wait for {app} to converge; nothing pushed")
        return out
    out.revert_sha = str(rec["after"].iloc[0])
    pushed_at = rec["when"].iloc[0]
    say(f"reverted {bad[:10]} as {out.revert_sha[:10]} ({rec['note'].iloc[0]}); refreshing {app}")
    keep(refresh(cluster, app))
    out.transitions = wait_converged(
        cluster, app, out.revert_sha, timeout=timeout, pushed_at=pushed_at, progress=progress, cancel=cancel
    )
    if pause:
        keep(resume_self_heal(cluster, app, dry_run=False))
    return out
