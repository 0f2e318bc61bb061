"""gitops_nb: incident investigation and runbooks for GitOps with Argo CD, as DataFrames.

``import gitops_nb`` is cheap: kubernetes, plotly, ipywidgets and papermill are
imported only where they are used.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .actions import pause_self_heal, refresh, resume_self_heal, revert, sync, wait_converged
from .cluster import Cluster
from .drift import drift, manual_edits
from .errors import (
    ActionError,
    ArgoCDNotFoundError,
    ClusterError,
    ClusterUnreachableError,
    ConvergenceError,
    DetachedHeadError,
    DirtyTreeError,
    EmptyRepoError,
    ForbiddenError,
    GitOpsNbError,
    InputError,
    NotARepoError,
    NotebookError,
    NotOnBranchError,
    PushRejectedError,
    RepoError,
    RevertConflictError,
    SandboxBuildError,
    SandboxError,
    SandboxStartError,
    ShallowHistoryError,
    TimeParseError,
    UnknownAppError,
    UnknownContextError,
    UnknownRevisionError,
)
from .evidence import Snapshot, snapshot
from .history import DeployRepo
from .report import load_results, save_results
from .runbook import incident_records, incident_summary, run_runbook, save_records
from .timeline import Investigation, culprits, investigate, what_changed
from .times import NaiveTimeWarning, describe_time, parse_at, parse_window, with_local_time

if _TYPE_CHECKING:
    from .plot import plot_timeline, show

__version__ = "0.1.0"

__all__ = [
    "ActionError",
    "ArgoCDNotFoundError",
    "Cluster",
    "ClusterError",
    "ClusterUnreachableError",
    "ConvergenceError",
    "DeployRepo",
    "DetachedHeadError",
    "DirtyTreeError",
    "EmptyRepoError",
    "ForbiddenError",
    "GitOpsNbError",
    "InputError",
    "Investigation",
    "NaiveTimeWarning",
    "NotARepoError",
    "NotOnBranchError",
    "NotebookError",
    "PushRejectedError",
    "RepoError",
    "RevertConflictError",
    "SandboxBuildError",
    "SandboxError",
    "SandboxStartError",
    "ShallowHistoryError",
    "Snapshot",
    "TimeParseError",
    "UnknownAppError",
    "UnknownContextError",
    "UnknownRevisionError",
    "culprits",
    "describe_time",
    "drift",
    "incident_records",
    "incident_summary",
    "investigate",
    "load_results",
    "manual_edits",
    "parse_at",
    "parse_window",
    "pause_self_heal",
    "plot_timeline",
    "refresh",
    "resume_self_heal",
    "revert",
    "run_runbook",
    "save_records",
    "save_results",
    "show",
    "snapshot",
    "sync",
    "wait_converged",
    "what_changed",
    "with_local_time",
]


def __getattr__(name: str) -> _Any:
    if name in ("plot_timeline", "show"):  # plotly is heavy: import on first use
        from . import plot

        return getattr(plot, name)
    raise AttributeError(f"module 'gitops_nb' has no attribute {name!r}")
