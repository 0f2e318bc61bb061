"""The package's exception tree.

Every error raised on purpose by gitops_nb derives from :class:`GitOpsNbError`::

    GitOpsNbError
    ├── RepoError                 the deploy-config repository
    │   ├── NotARepoError         path missing or not a git work tree
    │   ├── EmptyRepoError        repository has no commits
    │   ├── UnknownRevisionError  a rev / sha that does not resolve
    │   └── ShallowHistoryError   history asked for beyond a shallow clone's boundary
    ├── InputError (ValueError)   a parameter that cannot be used as given
    │   └── TimeParseError        an unparseable time or window
    ├── ClusterError              the Kubernetes API / Argo CD (context, resource, verb)
    │   ├── UnknownContextError   no such kubeconfig context
    │   ├── ClusterUnreachableError  the API server does not answer
    │   ├── ForbiddenError        RBAC said no
    │   ├── ArgoCDNotFoundError   Argo CD's CRDs are not installed
    │   ├── UnknownDestinationError  no way to read an Application's destination cluster
    │   └── UnknownAppError       no Application of that name
    ├── ActionError               a mutating action refused or failed; nothing was changed
    │   ├── DirtyTreeError        uncommitted changes in the work tree
    │   ├── DetachedHeadError     no branch checked out
    │   ├── NotOnBranchError      the commit is not on the branch
    │   ├── RevertConflictError   git revert does not apply cleanly
    │   └── PushRejectedError     the remote refused the push after retries (the revert stays local)
    ├── ConvergenceError          the change was made, but Argo CD did not converge (Degraded,
    │                             failed sync, timeout, cancelled): nothing is undone
    ├── NotebookError             a notebook failed under papermill (cell, ename, evalue)
    ├── StoreError                the recording store (a local dir or s3://bucket/prefix)
    │   ├── StoreURLError (InputError)  a store URL that cannot be used
    │   ├── StoreNotWritableError  the store cannot be written (permissions, read-only, no bucket)
    │   └── StoreFullError        the disk (or quota) under the store is full
    └── SandboxError              the local Kubernetes + Argo CD sandbox
        ├── SandboxBuildError     compiling or caching a component failed
        └── SandboxStartError     a component did not start or become ready

Messages say what was asked, what was found, and what to do next. Every error pickles with its
attributes (a notebook kernel or a worker process can hand it back whole).
"""

from __future__ import annotations

__all__ = [
    "ActionError",
    "ArgoCDNotFoundError",
    "ClusterError",
    "ClusterUnreachableError",
    "ConvergenceError",
    "DetachedHeadError",
    "DirtyTreeError",
    "EmptyRepoError",
    "ForbiddenError",
    "GitOpsNbError",
    "InputError",
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
    "StoreError",
    "StoreFullError",
    "StoreNotWritableError",
    "StoreURLError",
    "TimeParseError",
    "UnknownAppError",
    "UnknownContextError",
    "UnknownDestinationError",
    "UnknownRevisionError",
]


def _rebuild(cls: type[GitOpsNbError], args: tuple[object, ...], attrs: dict[str, object]) -> GitOpsNbError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(attrs)
    return err


class GitOpsNbError(Exception):
    """Root of every error gitops_nb raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # the default rebuilds with cls(*args), which loses keyword-only attributes or fails outright
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class RepoError(GitOpsNbError):
    """Something is wrong with the deploy-config repository."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class NotARepoError(RepoError):
    """The path does not exist or is not a git repository."""


class EmptyRepoError(RepoError):
    """The repository has no commits yet."""


class UnknownRevisionError(RepoError):
    """A revision (branch, tag, sha) does not resolve in the repository."""

    def __init__(self, message: str, *, path: str | None = None, rev: str | None = None) -> None:
        super().__init__(message, path=path)
        self.rev = rev


class ShallowHistoryError(RepoError):
    """The query reaches past the boundary of a shallow clone."""


class InputError(GitOpsNbError, ValueError):
    """A parameter value that cannot be used as given."""


class TimeParseError(InputError):
    """A time or time window that cannot be parsed."""


class ClusterError(GitOpsNbError):
    """A Kubernetes API call failed; carries the context, the resource and the verb."""

    def __init__(
        self,
        message: str,
        *,
        context: str | None = None,
        resource: str | None = None,
        verb: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.context = context
        self.resource = resource
        self.verb = verb
        self.status = status


class UnknownContextError(ClusterError):
    """The kubeconfig has no context of that name."""


class ClusterUnreachableError(ClusterError):
    """The API server did not answer."""


class ForbiddenError(ClusterError):
    """RBAC forbids the call."""


class ArgoCDNotFoundError(ClusterError):
    """Argo CD's CRDs (applications.argoproj.io) are not installed in the cluster."""


class UnknownAppError(ClusterError):
    """No Argo CD Application of that name."""


class UnknownDestinationError(ClusterError):
    """An Application deploys to a cluster no kubeconfig context, mapping or (opted-in) Argo CD cluster
    Secret says how to read."""


class ActionError(GitOpsNbError):
    """A mutating action was refused or failed; nothing was changed unless the message says so."""


class DirtyTreeError(ActionError):
    """The work tree has uncommitted changes."""


class DetachedHeadError(ActionError):
    """HEAD is detached: no branch to commit to."""


class NotOnBranchError(ActionError):
    """The commit is not reachable from the branch."""


class RevertConflictError(ActionError):
    """``git revert`` did not apply cleanly (it was aborted)."""


class PushRejectedError(ActionError):
    """The remote refused the push, even after fetching and rebasing."""


class ConvergenceError(GitOpsNbError):
    """Argo CD did not converge at the revision: Degraded, a failed sync, a timeout, or the wait was
    cancelled. Raised *after* the change was made (a revert is pushed): nothing is undone."""

    def __init__(
        self, message: str, *, app: str | None = None, revision: str | None = None, transitions: object = None
    ) -> None:
        super().__init__(message)
        self.app = app
        self.revision = revision
        self.transitions = transitions


class NotebookError(GitOpsNbError):
    """A notebook failed while papermill executed it."""

    def __init__(
        self,
        message: str,
        *,
        notebook: str,
        cell: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell = cell
        self.ename = ename
        self.evalue = evalue


class SandboxError(GitOpsNbError):
    """The local sandbox (Kubernetes control plane + Argo CD) failed."""


class SandboxBuildError(SandboxError):
    """Building or caching a sandbox component failed."""


class SandboxStartError(SandboxError):
    """A sandbox component did not start or did not become ready."""


class StoreError(GitOpsNbError):
    """The recording store (:class:`~gitops_nb.cluster.store.Store`) failed; ``url`` says which store
    (never with credentials)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class StoreURLError(StoreError, InputError):
    """A store URL that cannot be used (unknown scheme, credentials in the URL, no bucket)."""


class StoreNotWritableError(StoreError):
    """The store cannot be written: permissions, a read-only file system, a missing bucket."""


class StoreFullError(StoreError):
    """No space left on the device (or quota) under the store: the rows not yet flushed are lost."""
