"""gitops_nb: incident investigation and runbooks for GitOps with Argo CD, as DataFrames.

``import gitops_nb`` is cheap: kubernetes, plotly, ipywidgets and papermill are
imported only where they are used.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .act import (
    ActionRecord,
    Rollback,
    pause_self_heal,
    refresh,
    resume_expired,
    resume_self_heal,
    revert,
    rollback,
    sync,
    terminate_operation,
    wait_converged,
)
from .cluster.evidence import EvidenceSource
from .cluster.fleet import Fleet
from .cluster.live import Cluster
from .cluster.recorder import record
from .cluster.recording import Recording
from .cluster.snapshot import Snapshot, snapshot
from .cluster.store import Store
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
    StoreError,
    StoreFullError,
    StoreNotWritableError,
    StoreURLError,
    TimeParseError,
    UnknownAppError,
    UnknownContextError,
    UnknownDestinationError,
    UnknownRevisionError,
)
from .git.repo import DeployRepo
from .incident.folder import IncidentFolder, incident_records, incident_summary, save_records
from .incident.notebooks import copy_notebooks
from .incident.runbook import run_runbook
from .investigate.drift import drift, drift_spans, manual_edits
from .investigate.render import rendered_diff
from .investigate.scoring import Weights
from .investigate.timeline import Investigation, culprits, investigate, what_changed
from .results import load_results, save_results
from .schema import RowKind
from .times import NaiveTimeWarning, describe_time, parse_at, parse_window, with_local_time

if _TYPE_CHECKING:
    from .investigate.plot import plot_timeline, show
    from .ui.widgets import IncidentConsole

__version__ = "0.2.0.dev0"

from ._compat import install as _install_compat

_install_compat()  # the 0.1 module paths (gitops_nb.widgets, ...), deprecated for one release

__all__ = [
    "ActionError",
    "ActionRecord",
    "ArgoCDNotFoundError",
    "Cluster",
    "ClusterError",
    "ClusterUnreachableError",
    "ConvergenceError",
    "DeployRepo",
    "DetachedHeadError",
    "DirtyTreeError",
    "EmptyRepoError",
    "EvidenceSource",
    "Fleet",
    "ForbiddenError",
    "GitOpsNbError",
    "IncidentConsole",
    "IncidentFolder",
    "InputError",
    "Investigation",
    "NaiveTimeWarning",
    "NotARepoError",
    "NotOnBranchError",
    "NotebookError",
    "PushRejectedError",
    "Recording",
    "RepoError",
    "RevertConflictError",
    "Rollback",
    "RowKind",
    "SandboxBuildError",
    "SandboxError",
    "SandboxStartError",
    "ShallowHistoryError",
    "Snapshot",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreNotWritableError",
    "StoreURLError",
    "TimeParseError",
    "UnknownAppError",
    "UnknownContextError",
    "UnknownDestinationError",
    "UnknownRevisionError",
    "Weights",
    "copy_notebooks",
    "culprits",
    "describe_time",
    "drift",
    "drift_spans",
    "incident_records",
    "incident_summary",
    "investigate",
    "load_results",
    "manual_edits",
    "parse_at",
    "parse_window",
    "pause_self_heal",
    "plot_timeline",
    "record",
    "refresh",
    "rendered_diff",
    "resume_expired",
    "resume_self_heal",
    "revert",
    "rollback",
    "run_runbook",
    "save_records",
    "save_results",
    "show",
    "snapshot",
    "sync",
    "terminate_operation",
    "wait_converged",
    "what_changed",
    "with_local_time",
]


def __getattr__(name: str) -> _Any:
    if name in ("plot_timeline", "show"):  # plotly is heavy: import on first use
        from .investigate import plot

        return getattr(plot, name)
    if name == "IncidentConsole":  # ipywidgets too
        from .ui.widgets import IncidentConsole

        return IncidentConsole
    raise AttributeError(f"module 'gitops_nb' has no attribute {name!r}")
