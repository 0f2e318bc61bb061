"""The write side of the deploy-config repository: revert a commit and push it, never forcing.

Reading lives in :mod:`gitops_nb.git.repo`; everything that changes a repository is here, so the
rules hold in one place: refuse a dirty tree or a detached HEAD, abort a revert that does not
apply, rebase on a push race and retry, never force-push, never drop a commit.
"""

from __future__ import annotations

import git

from ..errors import ActionError, DetachedHeadError, DirtyTreeError, PushRejectedError, RevertConflictError
from .gitio import GIT

__all__ = ["WorkTree"]

_MAX_PUSH_TRIES = 3


class WorkTree:
    """A clone's work tree, for commits an action makes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._repo = git.Repo(path)
        self._git = self._repo.git

    def branch(self) -> str:
        """The checked-out branch; refuses a bare repository or a detached HEAD."""
        if self._repo.bare:
            raise ActionError(f"{self.path} is a bare repository: revert in a work tree (a clone)")
        if self._repo.head.is_detached:
            raise DetachedHeadError(
                f"HEAD is detached in {self.path}: `git switch <branch>` first (the revert needs a branch)"
            )
        return str(self._repo.active_branch.name)

    def require_clean(self) -> None:
        """Refuse uncommitted changes to tracked files."""
        if self._git.status("--porcelain", "--untracked-files=no").strip():
            raise DirtyTreeError(f"{self.path} has uncommitted changes: commit or stash them first (`git status`)")

    def stat(self, sha: str) -> str:
        """``git show --stat`` of a commit, without its message."""
        return str(self._git.show("--stat", "--format=", sha)).strip()

    def revert(self, sha: str, message: str, *, merge: bool = False) -> str:
        """Commit the revert of ``sha`` with ``message``; returns the new HEAD. A conflict is aborted."""
        try:
            self._git.revert("--no-commit", *(["-m", "1"] if merge else []), sha)
        except git.GitCommandError as e:
            self._git.execute([*GIT, "revert", "--abort"], with_exceptions=False)
            raise RevertConflictError(
                f"reverting {sha[:10]} does not apply cleanly (later commits changed the same lines); "
                f"nothing was changed. Resolve by hand: git revert {sha[:10]}"
            ) from e
        self._git.execute([*GIT, "commit", "-q", "-m", message])
        return self.head()

    def head(self) -> str:
        return str(self._repo.head.commit.hexsha)

    def push(self, remote: str, branch: str) -> tuple[str, str]:
        """Push HEAD to ``remote``/``branch``; on a race, fetch, rebase and retry (never force).

        Returns (the pushed sha, a note saying how it went).
        """
        sha, last = self.head(), ""
        for attempt in range(1, _MAX_PUSH_TRIES + 1):
            status, _, err = self._git.execute(
                [*GIT, "push", remote, f"HEAD:refs/heads/{branch}"], with_extended_output=True, with_exceptions=False
            )
            if status == 0:
                return self.head(), (f"pushed after {attempt - 1} rebase(s)" if attempt > 1 else "pushed")
            last = err.strip()
            if "non-fast-forward" not in err and "fetch first" not in err and "rejected" not in err:
                break
            self._git.execute([*GIT, "fetch", "-q", remote, branch])
            status, _, rerr = self._git.execute(
                [*GIT, "rebase", "-q", f"{remote}/{branch}"], with_extended_output=True, with_exceptions=False
            )
            if status != 0:
                self._git.execute([*GIT, "rebase", "--abort"], with_exceptions=False)
                raise PushRejectedError(
                    f"the revert {sha[:10]} is committed locally but does not rebase onto {remote}/{branch} "
                    f"(someone changed the same lines): {rerr.strip()}. Resolve the rebase by hand, then push"
                )
        raise PushRejectedError(
            f"{remote} refused the push of {sha[:10]} to {branch}: {last}. The revert is committed "
            "locally; nothing was forced. Check permissions or branch protection, then `git push`"
        )
