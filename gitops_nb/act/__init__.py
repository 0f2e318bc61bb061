"""Layer 3, actions: pause and resume self-heal, revert, refresh, sync, verify convergence, and the
rollback procedure that chains them. Every mutating action is dry-run by default, idempotent, and
returns a record (:data:`gitops_nb.schema.ACTION_RECORDS`); none force-pushes or drops a commit."""

from .converge import wait_converged
from .records import ActionRecord
from .revert import revert
from .rollback import Rollback, rollback
from .selfheal import pause_self_heal, resume_expired, resume_self_heal
from .sync import refresh, sync, terminate_operation

__all__ = [
    "ActionRecord",
    "Rollback",
    "pause_self_heal",
    "refresh",
    "resume_expired",
    "resume_self_heal",
    "revert",
    "rollback",
    "sync",
    "terminate_operation",
    "wait_converged",
]
