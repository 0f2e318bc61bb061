"""The deploy-config repository's history as DataFrames."""

from __future__ import annotations

import functools
import math
import os
import posixpath
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import git
import numpy as np
import pandas as pd

from .. import schema
from ..errors import (
    EmptyRepoError,
    GitOpsNbError,
    InputError,
    NotARepoError,
    RepoError,
    ShallowHistoryError,
    UnknownRevisionError,
)
from ..times import parse_at
from .gitio import MISSING, batch_read, object_sizes, read_blocks, resolve_commits, run, stream_records
from .kustomize import FLUX_APIS, Kustomization, Layout, flux_apps, kustomization_from_docs, kustomization_paths
from .manifests import (
    BEFORE,
    KUSTOMIZATION_FILES,
    YAML_SUFFIXES,
    InvalidYAML,
    diff_documents,
    is_manifest_path,
    load_documents,
)
from .secrets import BlobChange
from .sources import (
    ChartValues,
    Tree,
    app_rows,
    applications_in_tree,
    combine,
    normalize_repo_url,
    specs_from,
    template_change,
)
from .tools import HelmOutput, find_tool, helm_template, not_found, tool_id

__all__ = ["DeployRepo"]

TimeBound = str | datetime | pd.Timestamp | None

_NULL_SHA = "0" * 40
_REVERT = re.compile(r"This reverts commit ([0-9a-fA-F]{4,40})")
# One record per commit: \x1e\x1f, then fields each followed by \x1f, then the -z diff output.
_FIELDS = ("%H", "%P", "%an", "%ae", "%at", "%cn", "%ce", "%ct", "%s", "%b")
_FORMAT = "--format=%x1e%x1f" + "%x1f".join(_FIELDS) + "%x1f"
_NTOK = len(_FIELDS) + 1
_SIMPLE = frozenset("AMDT")
_MANIFEST_FORMAT = "--format=%x1e%H%x1f%an%x1f%ct%x1f"
# The fallback when a name, subject or path holds \x1e or \x1f: NUL-separated fields (git allows no NUL in
# a commit's fields or in a path), parsed token by token (see _nul_records).
_REC = "\x1e\x1e"
_NUL_FORMAT = "--format=" + _REC.replace("\x1e", "%x1e") + "%x00".join(_FIELDS)
_NUL_MANIFEST_FORMAT = "--format=" + _REC.replace("\x1e", "%x1e") + "%H%x00%an%x00%ct"
_STATUS = re.compile(r"[ACDMRTUXB]\d*")
_CACHE_SIZE = 8
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_PARENTS = re.compile(r"[0-9a-f]{40}( [0-9a-f]{40})*")
_HEXES = re.compile(r"[0-9a-f]*")
_ARGO = "argoproj.io"  # what a file defining an Argo CD Application or ApplicationSet names
#: ``helm template`` renders of app-of-apps charts, by (helm, chart, its tree and value blobs, settings)
_chart_renders: OrderedDict[tuple[Any, ...], HelmOutput] = OrderedDict()
_chart_lock = threading.Lock()
_CHART_RENDERS = 256
#: kustomization files parsed, by (path, blob), for every DeployRepo (a notebook makes one per query)
_kparsed: dict[tuple[str, str], Kustomization] = {}
_KPARSED = 65536
#: a tree as :meth:`DeployRepo._tree` reads it: its paths, its kustomizations and its Flux apps by file
_TreeInfo = tuple[list[str], dict[str, Kustomization], dict[str, list[dict[str, Any]]]]


def _epoch_bounds(since: TimeBound, until: TimeBound) -> tuple[int | None, int | None]:
    lo = None if since is None else math.ceil(parse_at(since).timestamp())
    hi = None if until is None else math.floor(parse_at(until).timestamp())
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"since ({since}) is after until ({until}): swap them or widen the range")
    return lo, hi


def _utc(seconds: Sequence[int] | np.ndarray) -> pd.DatetimeIndex:
    ns = np.asarray(seconds, dtype="int64") * 1_000_000_000
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _regular(col: list[list[str]]) -> bool:
    """Whether a fast parse came out whole: every column as long, shas, parents and times well-formed.

    Checked on joined columns (one C-level scan each), so it costs little next to the parse.
    """
    n = len(col[0])
    if any(len(c) != n for c in col):
        return False
    if n == 0:
        return True
    shas, parents = "".join(col[0]), " ".join(p for p in col[1] if p)
    return (
        len(shas) == 40 * n
        and _HEXES.fullmatch(shas) is not None
        and (not parents or _PARENTS.fullmatch(parents) is not None)
        and "".join(col[4]).isdigit()
        and "".join(col[7]).isdigit()
        and all(col[4])
        and all(col[7])
    )


def _split_block(block: str, col: list[list[str]]) -> None:
    """Append the fields of every commit record in ``block`` to the columns ``col``.

    Each record is ``\x1e\x1f`` + 10 fields each followed by ``\x1f`` + its diff part, so one
    split gives 11 tokens a commit and each column is a slice: no Python loop over commits.
    """
    flat = block.split("\x1f")
    if len(flat) % _NTOK != 1 or not flat[0].endswith("\x1e"):  # a \x1f inside a message: go record by record
        flat = [""]
        for rec in block.split("\x1e")[1:]:
            head, _, tail = rec.rpartition("\x1f")
            flat += [*head[1:].split("\x1f", 9), tail]
    for k in range(_NTOK):
        col[k].extend(flat[k + 1 :: _NTOK])
    # the diff part of each record ends where the next record's \x1e starts
    tails = col[_NTOK - 1]
    for i in range(len(tails) - (len(flat) // _NTOK), len(tails)):
        tails[i] = tails[i].removesuffix("\x1e")


class _Irregular(Exception):
    """The fast parse met a control character it uses as a separator: re-read with NUL separators."""


def _nul_records(text: str, nfields: int, *, raw: bool) -> Iterator[tuple[list[str], list[str]]]:
    """The records of a ``git log -z`` run with a ``_REC`` + NUL-separated format: (fields, diff tokens).

    Fields and paths may hold any byte but NUL, so the tokens are read in order: a diff entry is a
    status (``--name-status``) or a ``:mode mode sha sha status`` line (``--raw``) followed by one
    path, or two for a rename or copy; paths are taken by count, never by their content.
    """
    toks = text.split("\0")
    i, n = 0, len(toks)
    while i < n:
        if not toks[i].startswith(_REC):
            i += 1  # the empty token after the last NUL
            continue
        fields = [toks[i][len(_REC) :], *toks[i + 1 : i + nfields]]
        i += nfields
        diff: list[str] = []
        if i < n and toks[i].startswith("\n"):
            toks[i] = toks[i][1:]
            while i < n:
                tok = toks[i]
                if raw:
                    if not tok.startswith(":"):
                        break
                    meta = tok.split(" ")
                    status = meta[4] if len(meta) > 4 else "M"
                elif _STATUS.fullmatch(tok):
                    status = tok
                else:
                    break
                k = 2 if status[:1] in ("R", "C") else 1
                diff += toks[i : i + 1 + k]
                i += 1 + k
        yield fields, diff


def _raw_record(rec: str) -> tuple[str, str, int, list[str]]:
    """One ``_MANIFEST_FORMAT`` record of ``git log -z --raw``: (sha, author, time, diff tokens)."""
    head, _, tail = rec.rpartition("\x1f")
    parts = head.split("\x1f")
    if len(parts) != 3 or not _FULL_SHA.fullmatch(parts[0]) or not parts[2].isdigit():
        raise _Irregular
    toks = tail.lstrip("\0\n").split("\0")[:-1]
    # each entry: ":meta" then 1 path (2 for R/C); check the shape end to end
    i = 0
    while i < len(toks):
        meta = toks[i].split(" ")
        if not toks[i].startswith(":") or len(meta) < 5:
            raise _Irregular
        i += 3 if meta[4][:1] in ("R", "C") else 2
    if i != len(toks):
        raise _Irregular
    return parts[0], parts[1], int(parts[2]), toks


def _parse_name_status(
    shas: Sequence[str], times: Sequence[int], tails: list[str]
) -> tuple[dict[str, list[Any]], list[list[str]]]:
    """Parse ``git log -z --name-status`` diff parts into file-change columns and per-commit file lists."""
    f: dict[str, list[Any]] = {k: [] for k in ("sha", "committed_at", "path", "change", "old_path", "similarity")}
    files_per_commit: list[list[str]] = []
    for h, ct, tail in zip(shas, times, tails, strict=True):
        toks = tail.lstrip("\0\n").split("\0")
        if len(toks) == 3 and toks[0] in _SIMPLE:  # the common case: one file, not a rename
            f["sha"].append(h)
            f["committed_at"].append(ct)
            f["path"].append(toks[1])
            f["change"].append(toks[0])
            f["old_path"].append(None)
            f["similarity"].append(None)
            files_per_commit.append([toks[1]])
            continue
        files: list[str] = []
        i, n = 0, len(toks) - 1
        while i < n:
            st = toks[i]
            if st[:1] in ("R", "C"):
                old, new = toks[i + 1], toks[i + 2]
                i += 3
                sim: int | None = int(st[1:]) if st[1:].isdigit() else None
            else:
                old, new, sim = None, toks[i + 1], None
                i += 2
            files.append(new)
            f["sha"].append(h)
            f["committed_at"].append(ct)
            f["path"].append(new)
            f["change"].append(st[:1])
            f["old_path"].append(old)
            f["similarity"].append(sim)
        files_per_commit.append(files)
    return f, files_per_commit


class DeployRepo:
    """A local clone of a deploy-config repository (Kustomize bases and overlays).

    Args:
        path: the work tree (or bare repository) to read.
        allow_shallow: read a shallow clone's history up to its boundary instead of
            raising :class:`ShallowHistoryError` when a query reaches it.

    Example:
        >>> repo = DeployRepo("~/src/deploy-config")
        >>> repo.commits(since="-2h")
    """

    def __init__(self, path: str | Path, *, allow_shallow: bool = False) -> None:
        p = Path(path).expanduser()
        if not p.exists():
            raise NotARepoError(
                f"{p} does not exist: give the path of a local clone of the deploy-config repo",
                path=str(p),
            )
        try:
            self._repo = git.Repo(p)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
            raise NotARepoError(
                f"{p} is not a git repository: clone the deploy-config repo there "
                "(git clone URL PATH) or point at an existing clone",
                path=str(p),
            ) from e
        self.path = str(p.resolve())
        self.allow_shallow = allow_shallow
        self._git = self._repo.git
        self._walks: OrderedDict[tuple[Any, ...], tuple[pd.DataFrame, pd.DataFrame]] = OrderedDict()
        self._apps: dict[str, pd.DataFrame] = {}
        self._manifest: dict[tuple[str, ...], pd.DataFrame] = {}
        self._landed: dict[tuple[str, ...], pd.DataFrame] = {}
        self._kparsed = _kparsed  # shared: a file's parse depends only on its path and blob
        self._layouts: dict[tuple[Any, ...], Layout] = {}
        self._note: str | None = None
        self._docs: dict[bytes, list[Any] | InvalidYAML] = {}
        self._remotes: set[str] | None = None
        self._local: set[str] = set()
        self._is_this: dict[str | None, bool] = {}
        self._named: dict[
            tuple[str, str], tuple[list[dict[str, Any]], bool]
        ] = {}  # (path, blob) -> (Flux apps, names Argo CD)
        self._argo_found: dict[str, list[str]] = {}
        self._trees: OrderedDict[str, _TreeInfo] = OrderedDict()

    def __repr__(self) -> str:
        return f"DeployRepo({self.path!r})"

    # -- revisions -------------------------------------------------------------

    def resolve(self, rev: str = "HEAD") -> str:
        """The full sha of ``rev``; raises :class:`UnknownRevisionError` or :class:`EmptyRepoError`."""
        self._check_rev(rev)
        status, out, _ = run(
            self._git, ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], path=self.path, check=False
        )
        if status == 0:
            return out.decode().strip()
        _, any_ref, _ = run(self._git, ["rev-list", "-n", "1", "--all"], path=self.path, check=False)
        if not any_ref.strip():
            raise EmptyRepoError(f"{self.path} has no commits yet: push or fetch some history first", path=self.path)
        self._explain_bad_rev(rev)
        raise UnknownRevisionError(
            f"revision {rev!r} is not in {self.path}: check the name, or `git fetch` if it is on the remote",
            path=self.path,
            rev=rev,
        )

    def _explain_bad_rev(self, rev: str) -> None:
        """A rev that names something, but not one commit: say what (ambiguous prefix, a tree or blob)."""
        if _HEX.fullmatch(rev) and len(rev) < 40:
            _, out, _ = run(self._git, ["rev-parse", f"--disambiguate={rev}"], path=self.path, check=False)
            cands = out.decode().split()
            if len(cands) > 1:
                raise UnknownRevisionError(
                    f"the short sha {rev!r} is ambiguous in {self.path}: it starts {len(cands)} objects "
                    f"({', '.join(c[:12] for c in cands[:10])}{' …' if len(cands) > 10 else ''}). Give more digits",
                    path=self.path,
                    rev=rev,
                )
        status, kind, _ = run(self._git, ["cat-file", "-t", rev], path=self.path, check=False)
        if status == 0 and kind.strip() and kind.strip() != b"commit":
            raise UnknownRevisionError(
                f"{rev!r} is a {kind.decode().strip()} in {self.path}, not a commit: give a commit's sha, a branch or a tag",
                path=self.path,
                rev=rev,
            )

    def _check_rev(self, rev: object) -> None:
        if not isinstance(rev, str) or not rev or rev.startswith("-") or "\0" in rev:
            raise UnknownRevisionError(
                f"{rev!r} is not a revision: give a branch, tag or sha", path=self.path, rev=str(rev)
            )

    def _fast_resolve(self, rev: str) -> str | None:
        """Resolve a full sha, HEAD, or a branch name by reading refs (no subprocess); None if unsure.

        Whatever this returns is still checked by the git command that uses it. A name that is also
        a tag (or ``refs/<name>``) goes to ``git rev-parse``, which resolves it the way git does:
        ``refs/<name>``, then tags, then branches, then remotes (gitrevisions(7)).
        """
        if _FULL_SHA.fullmatch(rev):
            return rev
        common = Path(self._repo.common_dir)
        gitdir = Path(self._repo.git_dir)
        if rev != "HEAD" and not rev.startswith("refs/"):
            for shadow in (f"refs/{rev}", f"refs/tags/{rev}"):  # these win over a branch of the same name
                if (common / shadow).exists() or shadow in self._packed_refs():
                    return None
        names = (
            ["HEAD"]
            if rev == "HEAD"
            else [f"refs/heads/{rev}", f"refs/remotes/{rev}"]
            if "/" not in rev or rev.startswith("origin/")
            else []
        )
        if rev.startswith("refs/"):
            names = [rev]
        for name in names:
            for _ in range(5):  # follow symbolic refs
                f = (gitdir if name == "HEAD" else common) / name
                try:
                    text = f.read_text().strip()
                except OSError:
                    text = self._packed_refs().get(name, "")
                if text.startswith("ref: "):
                    name = text[5:]
                    continue
                if _FULL_SHA.fullmatch(text):
                    return text
                break
        return None

    def _packed_refs(self) -> dict[str, str]:
        f = Path(self._repo.common_dir) / "packed-refs"
        try:
            lines = f.read_text().splitlines()
        except OSError:
            return {}
        return {ref: sha for sha, _, ref in (ln.partition(" ") for ln in lines if ln and ln[0] not in "#^")}

    def _shallow_boundary(self) -> set[str]:
        f = Path(self._repo.git_dir) / "shallow"
        return set(f.read_text().split()) if f.exists() else set()

    def _check_shallow(self, shas: Iterable[str], times: Sequence[int]) -> None:
        boundary = self._shallow_boundary()
        if self.allow_shallow or not boundary:
            return
        for sha, t in zip(shas, times, strict=True):
            if sha in boundary:
                when = pd.Timestamp(t, unit="s", tz="UTC").isoformat()
                raise ShallowHistoryError(
                    f"{self.path} is a shallow clone and this query reaches its boundary at {sha[:10]} "
                    f"({when}): history before it is missing. Run `git fetch --unshallow` "
                    f"(or `git fetch --shallow-since=<date>`), narrow `since` to after {when}, "
                    "or open the repo with DeployRepo(path, allow_shallow=True)",
                    path=self.path,
                )

    # -- commits and file changes ---------------------------------------------

    def _log_args(self, sha: str, since: TimeBound, until: TimeBound, paths: Sequence[str] | str | None) -> list[str]:
        lo, hi = _epoch_bounds(since, until)
        args = []
        if lo is not None:
            args.append(f"--max-age={lo}")
        if hi is not None:
            args.append(f"--min-age={hi}")
        args += [sha, "--"]  # "--": a file named like the rev must not make it ambiguous
        if paths:
            args += [paths] if isinstance(paths, str) else list(paths)
        return args

    def _walk(
        self,
        since: TimeBound,
        until: TimeBound,
        paths: Sequence[str] | str | None,
        rev: str,
        max_count: int | None = None,
        first_parent: bool = False,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        args = self._log_args(sha, since, until, paths)
        if max_count is not None:
            args.insert(0, f"--max-count={max_count}")
        if first_parent:  # merges show their diff against the first parent: what they brought to the branch
            args[:0] = ["--first-parent", "-m"]
        key = tuple(args)
        if key in self._walks:
            self._walks.move_to_end(key)
            return self._walks[key]
        commits, changes = self._read_log(["-M", "--name-status", *args], rev)
        self._walks[key] = (commits, changes)
        if len(self._walks) > _CACHE_SIZE:
            self._walks.popitem(last=False)
        return commits, changes

    def _read_log(self, args: list[str], rev: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One streamed ``git log -z <args>`` in our format, as (commits, file changes) frames."""
        col: list[list[str]] = [[] for _ in range(_NTOK)]
        try:
            for block in read_blocks(self._git, ["log", "-z", _FORMAT, *args], path=self.path):
                _split_block(block, col)
            if not _regular(col):
                raise _Irregular
        except RepoError:
            self.resolve(rev)  # raises the precise error for a rev that does not resolve
            raise
        except _Irregular:  # a \x1e or \x1f in a name, a message or a path: the slow, exact way
            col = [[] for _ in range(_NTOK)]
            _, out, _ = run(self._git, ["log", "-z", _NUL_FORMAT, *args], path=self.path)
            for fields, diff in _nul_records(out.decode("utf-8", "replace"), len(_FIELDS), raw=False):
                for k, v in enumerate(fields):
                    col[k].append(v)
                col[_NTOK - 1].append("\0\n" + "".join(t + "\0" for t in diff) if diff else "")
        n = len(col[0])
        names = ("sha", "parents", "author", "author_email", "authored_at", "committer", "committer_email")
        c: dict[str, Any] = dict(zip(names, col[:7], strict=True))
        c["committed_at"], c["subject"] = col[7], col[8]
        c["body"] = [b.strip("\n") for b in col[9]]
        c["parents"] = [p.split(" ") if p else [] for p in c["parents"]]
        c["authored_at"] = np.array(c["authored_at"] if n else [], dtype=np.int64)
        c["committed_at"] = np.array(c["committed_at"] if n else [], dtype=np.int64)
        tails = col[10]
        f, c["files"] = _parse_name_status(c["sha"], c["committed_at"], tails)
        self._check_shallow(c["sha"], c["committed_at"])

        c["short_sha"] = [s[:10] for s in c["sha"]]
        c["is_merge"] = [len(p) > 1 for p in c["parents"]]
        c["reverts"] = self._reverts(c["subject"], c["body"])
        c["authored_at"] = _utc(c["authored_at"])
        c["committed_at"] = _utc(c["committed_at"])
        return schema.frame(schema.COMMITS, c), schema.frame(
            schema.FILE_CHANGES, f | {"committed_at": _utc(f["committed_at"])}
        )

    def _reverts(self, subjects: list[str], bodies: list[str]) -> list[str | None]:
        found: list[str | None] = []
        short: set[str] = set()
        for s, b in zip(subjects, bodies, strict=True):
            m = _REVERT.search(b) or _REVERT.search(s)
            sha = m.group(1).lower() if m else None
            found.append(sha)
            if sha and len(sha) < 40:
                short.add(sha)
        if short:
            resolved = resolve_commits(self._git, short, path=self.path)
            found = [resolved.get(s) or s if s and len(s) < 40 else s for s in found]
        return found

    def commits(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        paths: Sequence[str] | str | None = None,
        rev: str = "HEAD",
        *,
        first_parent: bool = False,
    ) -> pd.DataFrame:
        """One row per commit reachable from ``rev`` (schema: :data:`schema.COMMITS`), newest first.

        Args:
            since: earliest committer date, inclusive (ISO-8601, ``-2h``, datetime).
            until: latest committer date, inclusive.
            paths: only commits touching these paths (git pathspecs).
            rev: where to start walking.
            first_parent: only the branch's own line (``git log --first-parent -m``): each
                commit as it landed on ``rev``, merges listing the files they changed against
                their first parent. See :meth:`landed` for the merged commits.

        A path query on a large repo is much faster with a changed-paths commit-graph
        (``gitops-nb repo optimize PATH``); without one, the frame's ``attrs["note"]`` says so.
        """
        commits = self._walk(since, until, paths, rev, first_parent=first_parent)[0].copy()
        if paths and (note := self.path_query_note()):
            commits.attrs["note"] = note
        return commits

    def file_changes(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        paths: Sequence[str] | str | None = None,
        rev: str = "HEAD",
        *,
        first_parent: bool = False,
    ) -> pd.DataFrame:
        """One row per (commit, path) (schema: :data:`schema.FILE_CHANGES`), newest first.

        Merge commits list no files (their changes are in the merged commits), except with
        ``first_parent=True``, where a merge lists what it changed against its first parent.
        Arguments as in :meth:`commits`; both share one ``git log`` walk.
        """
        return self._walk(since, until, paths, rev, first_parent=first_parent)[1].copy()

    # -- semantic changes -----------------------------------------------------

    def manifest_changes(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        paths: Sequence[str] | str | None = None,
        rev: str = "HEAD",
        *,
        first_parent: bool = False,
    ) -> pd.DataFrame:
        """One row per changed field of YAML manifests (schema: :data:`schema.MANIFEST_CHANGES`).

        Reads Kustomize ``images``, ``replicas``, inline and file patches (strategic
        merge and JSON 6902), multi-document files, and any other YAML change as a
        generic field path. Non-YAML files are skipped. A blob missing from the
        object store, or a file that is not valid YAML, gives a row with
        ``change="unreadable"``, ``unreadable=True`` and the reason in ``error``:
        ``invalid YAML at line 7, column 3: ...`` or ``blob ... is missing ...`` for the
        commit's version, the same prefixed with ``before this commit: `` when only
        the version before it is unreadable (a commit that fixes the file). YAML is
        read as Argo CD, Kustomize and Flux read it (see :mod:`gitops_nb.git.manifests`).
        With ``first_parent=True``, the branch's own line only, and a merge's rows are its changes
        against its first parent (as in :meth:`commits`).
        """
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        args = self._log_args(sha, since, until, paths)
        if first_parent:
            args[:0] = ["--first-parent", "-m"]
        key = ("manifest", *args)
        if key not in self._manifest:
            self._manifest[key] = self._manifest_changes(rev, args)
            if len(self._manifest) > _CACHE_SIZE:
                self._manifest.pop(next(iter(self._manifest)))
        return self._manifest[key].copy()

    def _blob_changes(
        self, rev: str, args: list[str], keep: Callable[[str], bool], *, renames: bool = True
    ) -> list[BlobChange]:
        """One streamed ``git log -z --raw`` over ``args``: (sha, author, committer time, path, old blob,
        new blob, status letter) for every changed path ``keep`` accepts (submodules left out).

        With ``renames``, exact renames are paired (``-M100%``: no blob reads for rename scoring);
        without, a rename is a delete and an add. Merges list nothing (git's default for ``--raw``).
        """
        entries: list[BlobChange] = []
        flags = ["--raw", "--no-abbrev", *(["-M100%"] if renames else ["--no-renames"])]
        try:
            records = list(stream_records(self._git, ["log", "-z", *flags, _MANIFEST_FORMAT, *args], path=self.path))
        except RepoError:
            self.resolve(rev)  # raises the precise error for a rev that does not resolve
            raise
        try:
            parsed_records = [_raw_record(rec) for rec in records]
        except _Irregular:  # a \x1e or \x1f in a name or a path: the slow, exact way
            _, out, _ = run(self._git, ["log", "-z", *flags, _NUL_MANIFEST_FORMAT, *args], path=self.path)
            parsed_records = [
                (f[0], f[1], int(f[2]), diff) for f, diff in _nul_records(out.decode("utf-8", "replace"), 3, raw=True)
            ]
        for h, an, ct, toks in parsed_records:
            i, n = 0, len(toks)
            while i < n:
                meta = toks[i].split(" ")  # :old_mode new_mode old_sha new_sha status
                status = meta[4] if len(meta) > 4 else "M"
                if status[:1] in ("R", "C"):
                    path, i = toks[i + 2], i + 3
                else:
                    path, i = toks[i + 1], i + 2
                if keep(path) and meta[0] != ":160000" and meta[1] != "160000":
                    entries.append((h, an, ct, path, meta[2], meta[3], status[:1]))
        self._check_shallow([e[0] for e in entries], [e[2] for e in entries])
        return entries

    def _manifest_changes(self, rev: str, args: list[str]) -> pd.DataFrame:
        entries = self._blob_changes(rev, args, lambda p: is_manifest_path(p) or p.endswith(".tpl"))

        blobs = batch_read(self._git, {b for e in entries for b in e[4:6] if b != _NULL_SHA}, path=self.path)
        parsed: dict[str, tuple[list[Any] | None, str | None]] = {}

        def docs(blob: str) -> tuple[list[Any] | None, str | None]:
            if blob == _NULL_SHA:
                return None, None
            if blob not in parsed:
                raw = blobs.get(blob, MISSING)
                if raw is MISSING:
                    parsed[blob] = (
                        None,
                        f"blob {blob[:10]} is missing from the object store "
                        "(partial or damaged clone?): run `git fetch` or re-clone",
                    )
                elif b"\0" in raw[:8000]:
                    parsed[blob] = ([], "binary")
                else:
                    loaded = self._load(raw)
                    parsed[blob] = (None, str(loaded)) if isinstance(loaded, InvalidYAML) else (loaded, None)
            return parsed[blob]

        rows: list[dict[str, Any]] = []
        for h, an, when, path, old_blob, new_blob, _status in entries:
            tpl = template_change(path, _text(blobs, old_blob), _text(blobs, new_blob))
            if tpl is not None:  # a Helm template is no YAML: one row, not a parse
                rows.append({"sha": h, "committed_at": when, "author": an, "path": path, **tpl, "unreadable": False})
                continue
            (old, oerr), (new, nerr) = docs(old_blob), docs(new_blob)
            if "binary" in (oerr, nerr):
                continue
            base = {"sha": h, "committed_at": when, "author": an, "path": path}
            if oerr or nerr:
                # the commit's own version first: a missing or broken new blob is what the commit did
                error = nerr or f"{BEFORE}{oerr}"
                rows.append({**base, "change": "unreadable", "via": "yaml", "unreadable": True, "error": error})
                continue
            for r in diff_documents(path, old, new):
                rows.append({**base, **r, "unreadable": False, "error": None})
        cols: dict[str, schema.Column] = {k: [r.get(k) for r in rows] for k in schema.MANIFEST_CHANGES}
        cols["committed_at"] = _utc([int(t) for t in cols["committed_at"]])
        return schema.frame(schema.MANIFEST_CHANGES, cols)

    # -- plaintext secrets ever committed -----------------------------------------------

    def secret_findings(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        rev: str = "HEAD",
        *,
        evidence: Any = None,
        rotated: str | Path | Iterable[str] | None = None,
        salt: str | bytes | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> pd.DataFrame:
        """Every plaintext secret value ever committed (schema: :data:`schema.SECRET_FINDINGS`), newest first.

        One row per (commit, path, object, key) where a commit puts a plaintext value that the path's
        previous version did not hold there: a ``Secret``'s ``data``/``stringData``, a ``secretGenerator``'s
        literals and the committed files its ``envs``/``files`` name, secret-looking keys with literal
        values in Helm values, ConfigMaps and container env, kubeconfigs, private keys, and the tokens
        detect-secrets' rules know (see :mod:`~gitops_nb.git.secrets`). SOPS files, SealedSecrets,
        External Secrets / Vault objects and templated or referenced values are never flagged. No
        value is kept: ``fingerprint`` is a salted HMAC (``salt``, ``$GITOPS_NB_SECRETS_SALT`` or the
        clone's ``.git/gitops-nb-salt``), equal for the same value in any file or commit.

        ``still_at_head``: the value is in a flagged file's version at ``rev``; ``removed_by_sha``: the
        first later commit whose version of the path no longer holds it there. With ``since``, history
        before it is not read (``first_seen_sha`` is the first sighting in the range). ``evidence``
        (a :class:`~gitops_nb.cluster.live.Cluster`, a :class:`~gitops_nb.cluster.snapshot.Snapshot`,
        any EvidenceSource) fills ``deployed``, ``deployed_at`` and ``deployed_to``: an Application
        deployed a revision containing the commit and not its removal, and builds the path.
        ``rotated`` lists fingerprints whose values were rotated (a file of them, or an iterable);
        by default the ``.gitops-nb-rotated`` file at ``rev``. One ``git log --raw`` walk; each
        distinct blob is read (``cat-file --batch``) and scanned once; blobs over 1 MiB or binary
        are skipped and counted in ``attrs["skipped"]``.
        """
        from . import secrets as sec

        say = progress or (lambda _m: None)
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        _, hi = _epoch_bounds(since, until)
        key = sec.load_salt(str(self._repo.common_dir), salt)
        entries = self._blob_changes(rev, self._log_args(sha, since, None, None), lambda _p: True, renames=False)
        say(f"secrets: {len(entries)} file changes to read")
        scanner = _SecretScanner(self._git, self.path, self._load, key)
        wanted = {(e[5], e[3]) for e in entries if e[6] != "D" and e[5] != _NULL_SHA}
        head: dict[str, str] = {}
        kusts: set[tuple[str, str]] = set()
        if since is not None:  # the kustomizations the range does not touch may name files it does
            named = [p for p in self._grep(sha, ["secretGenerator"]) if posixpath.basename(p) in KUSTOMIZATION_FILES]
            head = self._ls_blobs(sha) if named else head
            kusts = {(head[p], p) for p in named if p in head}
        scanner.read_and_scan(wanted | kusts, say)  # also learns the files secretGenerators read
        scanner.read_and_scan({(b, p) for b, p in wanted if p in scanner.sources}, say)
        hit_paths = {p for (b, p) in wanted if scanner.hits(b, p)}
        if hit_paths and not head:
            head = self._ls_blobs(sha)
        olds = {(e[4], e[3]) for e in entries if e[3] in hit_paths and e[4] != _NULL_SHA}
        at_head = {(head[p], p) for p in hit_paths if p in head}
        scanner.read_and_scan(olds | at_head, say)
        head_fps = {h.fingerprint for b, p in at_head for h in scanner.hits(b, p)}
        rows = sec.history_rows(entries, scanner.hits, head_fps, hi)
        listed = self._rotated(sha, rotated, sec) if rows or rotated is not None else set()
        done = {r["fingerprint"] for r in rows} & listed
        cols: dict[str, schema.Column] = {k: [r.get(k) for r in rows] for k in schema.SECRET_FINDINGS}
        cols["committed_at"] = _utc([r["committed_at"] for r in rows])
        cols["rotated"] = [r["fingerprint"] in done for r in rows]
        frame = schema.frame(schema.SECRET_FINDINGS, cols)
        if evidence is not None:
            frame = self._mark_deployed(frame, evidence.history(), evidence.applications())
        frame.attrs["skipped"] = dict(scanner.skipped)
        frame.attrs["scanned_blobs"] = scanner.scanned
        say(f"secrets: {len(frame)} findings, {frame['fingerprint'].nunique()} distinct values")
        return frame

    def _ls_blobs(self, sha: str) -> dict[str, str]:
        """path -> blob sha of every file at ``sha`` (one ``ls-tree``)."""
        _, out, _ = run(self._git, ["ls-tree", "-r", "-z", "--full-tree", sha], path=self.path)
        found: dict[str, str] = {}
        for entry in out.decode("utf-8", "replace").split("\0"):
            meta, _, p = entry.partition("\t")
            parts = meta.split(" ")
            if p and parts[1:2] == ["blob"]:
                found[p] = parts[2]
        return found

    def _rotated(self, sha: str, rotated: str | Path | Iterable[str] | None, sec: Any) -> set[str]:
        if rotated is None:
            raw = batch_read(self._git, [f"{sha}:{sec.ROTATED_FILE}"], path=self.path).get(f"{sha}:{sec.ROTATED_FILE}")
            return set(sec.read_rotated(raw.decode("utf-8", "replace"))) if isinstance(raw, bytes) else set()
        if isinstance(rotated, str | Path):
            f = Path(rotated).expanduser()
            if not f.is_file():
                raise InputError(f"the rotated list {f} does not exist: give a file of fingerprints (one a line)")
            return set(sec.read_rotated(f.read_text()))
        return set(sec.read_rotated("\n".join(rotated)))

    def _mark_deployed(self, frame: pd.DataFrame, history: pd.DataFrame, applications: pd.DataFrame) -> pd.DataFrame:
        """Fill ``deployed``/``deployed_at``/``deployed_to`` from Argo CD's deploy history.

        A finding shipped when an Application deployed a revision that contains its commit and not the
        commit that removed it, and the Application (read at that revision, with the cluster's
        Applications) is built from the finding's path. One ``rev-list`` and one app mapping per revision.
        """
        out = frame.copy()
        out["deployed"] = pd.array([False] * len(out), dtype="boolean")
        out["deployed_to"] = [[] for _ in range(len(out))]
        if out.empty or history.empty:
            return out
        since = out["committed_at"].min()
        when: dict[int, pd.Timestamp] = {}
        to: dict[int, set[str]] = defaultdict(set)
        by_rev: dict[str, list[tuple[str, pd.Timestamp]]] = defaultdict(list)
        for app, revision, revisions, at in zip(
            history["app"], history["revision"], history["revisions"], history["deployed_at"], strict=True
        ):
            for r in [revision, *(revisions if isinstance(revisions, list) else [])]:
                if isinstance(r, str) and _HEX.fullmatch(r) and not pd.isna(at):
                    by_rev[r].append((str(app), at))
        for revision, deploys in by_rev.items():
            contained = self.ancestors(revision, since=since)
            if not contained:
                continue
            try:
                apps = self.apps(revision, applications)
            except GitOpsNbError:
                continue
            files = {str(a): set(f) for a, f in zip(apps["app"], apps["files"], strict=True)}
            for i, (sha, path, removed) in enumerate(zip(out["sha"], out["path"], out["removed_by_sha"], strict=True)):
                if sha not in contained or (isinstance(removed, str) and removed in contained):
                    continue
                for app, at in deploys:
                    if path in files.get(app, ()):
                        to[i].add(app)
                        when[i] = min(when.get(i, at), at)
        out["deployed"] = pd.array([i in when for i in range(len(out))], dtype="boolean")
        out["deployed_at"] = pd.DatetimeIndex([when.get(i) for i in range(len(out))], tz="UTC").as_unit("ns")
        out["deployed_to"] = [sorted(to.get(i, ())) for i in range(len(out))]
        return out

    # -- Kustomize roots ------------------------------------------------------

    def apps(self, rev: str = "HEAD", applications: Any = None) -> pd.DataFrame:
        """One row per app at ``rev`` (schema: :data:`schema.APPS`): Kustomize roots, Flux
        Kustomizations and in-repo HelmRelease charts, and Argo CD Applications.

        ``files`` lists every file the app is built from, so a change to a base maps to every
        overlay built from it (see :func:`~gitops_nb.git.kustomize.build_apps`). Applications are
        the ones the repo defines (plain manifests, app-of-apps chart templates, ApplicationSets'
        git and list generators), or, given ``applications`` (``Cluster.applications()`` rows or raw
        Application objects), those; each is built from its sources' files, for every source type
        (Helm, Kustomize, directory, jsonnet, plugin; see :mod:`~gitops_nb.git.sources`). A Kustomize
        root an Application builds is listed once, as the Application. ``error`` says what could not
        be read (a broken chart, a values file that is not YAML, a missing value file, an unknown
        source type, a templated Application skipped). An app-of-apps chart the ``{{ .Values.x }}``
        substitution cannot read (``range``, ``default``, ``printf``...) is rendered with the real
        ``helm template`` on a ``git archive`` copy of the chart (the work tree is never touched), cached
        by the chart's tree and value files; without helm its rows say ``helm not found: ...``.
        Parsed kustomizations and Flux objects are cached per blob and layouts per set of
        references, so a tree is read, not re-parsed.
        """
        sha = self.resolve(rev)
        if applications is None and sha in self._apps:
            return self._apps[sha].copy()
        paths, kusts, flux = self._tree(sha)
        base = self._layout(kusts, flux).apps(paths)
        frame = schema.frame(schema.APPS, combine(base, self._argo_rows(sha, paths, applications, kusts)))
        if applications is None:
            self._apps[sha] = frame
        return frame.copy()

    def _argo_rows(
        self, sha: str, paths: list[str], applications: Any = None, kusts: Mapping[str, Kustomization] | None = None
    ) -> list[dict[str, Any]]:
        """The Argo CD Applications at ``sha`` (:meth:`apps` rows), built from the tree ``paths`` (``kusts``: its
        kustomizations already parsed, not parsed again per app)."""
        argo_files = self._argo_files(sha)
        if applications is None and not argo_files:
            return []  # no Application in the repo and none given: nothing more to read
        tree = Tree(paths, lambda want: self._read_texts(sha, want), kusts)
        given = [] if applications is None else specs_from(applications)
        render = functools.partial(self._render_chart, sha)
        defined = applications_in_tree(tree, argo_files, self._this_repo, render=render, given=given)
        specs = defined if applications is None else given
        if specs:
            # Kustomize sources read those not parsed already: one cat-file, not one each
            tree.prefetch(p for p in kustomization_paths(paths) if p not in (kusts or {}))
        return app_rows(specs, tree, self._this_repo, defined)

    def _render_chart(self, sha: str, chart: str, how: ChartValues) -> tuple[list[tuple[str | None, Any]], str | None]:
        """``helm template`` of an app-of-apps chart at ``sha``, cached by the tree of the chart, the blobs of its
        value files and how it is rendered (a window's trees share one render until the chart changes)."""
        binary = find_tool("helm")
        if binary is None:
            return [], not_found("helm")
        objects = [f"{sha}:{chart}", *(f"{sha}:{f}" for f in how.value_files)]
        status, out, err = run(self._git, ["rev-parse", *objects], path=self.path, check=False)
        if status != 0:
            return [], f"cannot read {chart or '.'} or its value files at {sha[:10]}: {err.strip()}"
        key = (tuple(tool_id(binary)), chart, tuple(out.decode().split()), how)
        with _chart_lock:
            if key in _chart_renders:
                _chart_renders.move_to_end(key)
                hit = _chart_renders[key]
                return hit.docs, hit.error
        result = helm_template(
            self.path,
            sha,
            chart,
            release=how.release,
            namespace=how.namespace,
            value_files=how.value_files,
            values=how.values,
            parameters=how.parameters,
            binary=binary,
        )
        if result.error is None or result.error.startswith("helm template failed"):  # a crash may pass next time
            with _chart_lock:
                _chart_renders[key] = result
                while len(_chart_renders) > _CHART_RENDERS:
                    _chart_renders.popitem(last=False)
        return result.docs, result.error

    def _read_texts(self, sha: str, want: list[str]) -> dict[str, str | None]:
        content = batch_read(self._git, [f"{sha}:{p}" for p in want], path=self.path)
        return {
            p: c.decode("utf-8", "replace") if isinstance(c := content[f"{sha}:{p}"], bytes) else None for p in want
        }

    def _grep(self, sha: str, patterns: Iterable[str]) -> list[str]:
        """The YAML files at ``sha`` that contain one of ``patterns`` (fixed strings)."""
        args = ["grep", "-l", "-z", "-F", *(a for p in patterns for a in ("-e", p)), sha, "--", "*.yaml", "*.yml"]
        status, out, _ = run(self._git, args, path=self.path, check=False)
        if status != 0:  # 1: no match
            return []
        return [p.split(":", 1)[1] for p in out.decode("utf-8", "replace").split("\0") if p]

    def _argo_files(self, sha: str) -> list[str]:
        """The YAML files at ``sha`` that name ``argoproj.io`` (where Applications may be defined)."""
        if sha not in self._argo_found:
            if len(self._argo_found) > 256:
                self._argo_found.clear()
            self._argo_found[sha] = self._grep(sha, [_ARGO])
        return self._argo_found[sha]

    def _this_repo(self, url: str | None) -> bool:
        """Whether an Application source's ``repoURL`` is this repository (any, when no remote names it).

        A ``file://`` URL is this repository when it is its path or the path of one of its local
        remotes (an Application of another local repository is not: the sandbox serves many)."""
        if self._remotes is None:
            _, out, _ = run(self._git, ["config", "--get-regexp", r"^remote\..*\.url$"], path=self.path, check=False)
            urls = [ln.split(" ", 1)[1] for ln in out.decode("utf-8", "replace").splitlines() if " " in ln]
            self._remotes = {  # a local path or file:// remote names no host an Application could use
                normalize_repo_url(u)
                for u in urls
                if ("://" in u and not u.startswith("file:")) or re.match(r"[\w.-]+@[\w.-]+:", u)
            }
            local = [self.path] + [u for u in urls if u.startswith(("file:", "/", "."))]
            self._local = {_local_path(self.path, u) for u in local}
        if url not in self._is_this:  # a thousand Applications name the same few repositories
            if len(self._is_this) > 4096:
                self._is_this.clear()
            self._is_this[url] = (
                _local_path(self.path, url) in self._local
                if url is not None and url.startswith("file://")
                else url is None or not self._remotes or normalize_repo_url(url) in self._remotes
            )
        return self._is_this[url]

    def _flux_of(self, path: str, raw: bytes) -> list[dict[str, Any]]:
        """The Flux apps (:func:`~gitops_nb.git.kustomize.flux_apps`) one file's content defines."""
        if not any(api.encode() in raw for api in FLUX_APIS):
            return []
        loaded = self._load(raw)
        if isinstance(loaded, InvalidYAML):
            return []  # manifest_changes reports it as unreadable
        return flux_apps((path, d) for d in loaded)

    def _tree(self, sha: str) -> _TreeInfo:
        """Every path of the commit's tree, its kustomizations parsed and its Flux apps by file
        (one ``ls-tree``, one ``git grep``, one ``cat-file``; parses cached per blob)."""
        if sha in self._trees:
            self._trees.move_to_end(sha)
            return self._trees[sha]
        _, out, _ = run(self._git, ["ls-tree", "-r", "-z", "--full-tree", sha], path=self.path)
        paths: list[str] = []
        blobs: dict[str, str] = {}
        for entry in out.decode("utf-8", "replace").split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            paths.append(path)
            kind_sha = meta.split(" ")
            if kind_sha[1:2] == ["blob"]:
                blobs[path] = kind_sha[2]
        kpaths = [p for p in blobs if posixpath.basename(p) in KUSTOMIZATION_FILES]
        # one grep finds the files with Flux objects and those that may define Argo CD Applications
        named = [p for p in self._grep(sha, (*FLUX_APIS, _ARGO)) if p in blobs]
        if len(self._kparsed) > _KPARSED:
            self._kparsed.clear()
        todo = [blobs[p] for p in kpaths if (p, blobs[p]) not in self._kparsed]
        todo += [blobs[p] for p in named if (p, blobs[p]) not in self._named]
        content = batch_read(self._git, todo, path=self.path)
        kusts: dict[str, Kustomization] = {}
        for p in kpaths:
            b = blobs[p]
            if (p, b) not in self._kparsed:
                raw = content.get(b, MISSING)
                if not isinstance(raw, bytes):
                    continue
                self._kparsed[(p, b)] = kustomization_from_docs(p, self._load(raw))
            kusts[p] = self._kparsed[(p, b)]
        flux: dict[str, list[dict[str, Any]]] = {}
        argo_files: list[str] = []
        for p in named:
            b = blobs[p]
            if (p, b) not in self._named:
                raw = content.get(b, MISSING)
                if not isinstance(raw, bytes):
                    continue
                self._named[(p, b)] = (self._flux_of(p, raw), _ARGO.encode() in raw)
            found, argo = self._named[(p, b)]
            if found:
                flux[p] = found
            if argo:
                argo_files.append(p)
        if len(self._argo_found) > 256:
            self._argo_found.clear()
        self._argo_found[sha] = argo_files
        self._trees[sha] = (paths, kusts, flux)
        if len(self._trees) > _CACHE_SIZE:
            self._trees.popitem(last=False)
        return self._trees[sha]

    def _load(self, raw: bytes) -> list[Any] | InvalidYAML:
        """A file's YAML documents (or the error reading them), parsed once per content for this repo.

        :meth:`landed` reads kustomizations and :meth:`manifest_changes` diffs them: one parse serves both.
        """
        hit = self._docs.get(raw)
        if hit is None:
            try:
                hit = load_documents(raw.decode("utf-8", "replace"))
            except InvalidYAML as e:
                hit = e
            if len(self._docs) >= 8192:
                self._docs.clear()
            self._docs[raw] = hit
        return hit

    def _layout(self, kusts: dict[str, Kustomization], flux: dict[str, list[dict[str, Any]]]) -> Layout:
        """The layout of a set of kustomizations and Flux apps, shared by every tree with the same references."""
        objects = [f for fs in flux.values() for f in fs]
        key = (tuple(sorted(_signature(k) for k in kusts.values())), tuple(sorted(_flux_signature(f) for f in objects)))
        if key not in self._layouts:
            if len(self._layouts) > 256:
                self._layouts.clear()
            self._layouts[key] = Layout(kusts.values(), objects)
        return self._layouts[key]

    def ancestors(self, rev: str, since: TimeBound = None) -> set[str]:
        """The shas reachable from ``rev`` (committed at or after ``since``); empty if ``rev`` is unknown."""
        self._check_rev(rev)
        args = ["rev-list", *self._log_args(rev, since, None, None)]
        status, out, _ = run(self._git, args, path=self.path, check=False)
        return set(out.decode().split()) if status == 0 else set()

    def _commit_apps(
        self, sha: str, applications: Any
    ) -> tuple[set[str], dict[str, list[str]], set[str], pd.DataFrame, pd.DataFrame]:
        """What one commit changed against its first parent, and the apps it reaches.

        Returns the files it touched; the Kustomize roots and Flux apps it reaches with their files
        (mapped with the layouts of its own tree and its first parent's, as :meth:`landed` maps every
        change); the names of every layout app of those two trees; the apps at it and at its parent.
        """
        full = self.resolve(sha)
        commits, changes = self._walk(None, None, None, full, max_count=1, first_parent=True)
        touched = set(changes["path"]) | set(changes["old_path"].dropna())
        parents = commits["parents"].iloc[0] if len(commits) else []
        layout = self._layout(*self._tree(full)[1:])
        before = self._layout(*self._tree(parents[0])[1:]) if parents else Layout(())
        matched = _match(layout, before, zip(changes["path"], changes["change"], changes["old_path"], strict=True))
        old = self.apps(parents[0], applications) if parents else schema.frame(schema.APPS)
        return touched, matched, {*layout.names, *before.names}, self.apps(full, applications), old

    def affected_apps(self, sha: str, applications: Any = None) -> pd.DataFrame:
        """The apps a commit changes, with the ``matched`` files (``applications`` as in :meth:`apps`).

        A file counts for the Kustomize roots and Flux apps built from it in the commit's own tree and
        in its first parent's (so deleted files and moved apps count); an Argo CD Application counts
        the changed files among its files at the commit (or, gone there, at its parent). A merge's
        changes are those against its first parent: what it brought to the branch. :meth:`landed`
        maps every change the same way.
        """
        touched, matched, layout_apps, new, old = self._commit_apps(sha, applications)
        apps = pd.concat([new, old]).drop_duplicates("app", keep="first")
        rows = []
        for row in apps.to_dict("records"):
            app = str(row["app"])
            m = matched.get(app, []) if app in layout_apps else sorted(touched & set(row["files"]))
            if m:
                rows.append({**row, "matched": m})
        return schema.frame(schema.AFFECTED_APPS, rows)  # its columns even when no app is reached

    def app_changes(self, sha: str, applications: Any = None) -> pd.DataFrame:
        """Which apps a commit adds, removes or changes (schema: :data:`schema.APP_CHANGES`).

        ``added``/``removed``: the app exists only after/before the commit (an Application manifest,
        an ApplicationSet's new directory, a new Kustomize root); ``changed``: the commit touches
        files it is built from (``matched``, as in :meth:`affected_apps`). ``applications`` as in :meth:`apps`.
        """
        touched, layout_matched, layout_apps, new, old = self._commit_apps(sha, applications)
        olds = {r["app"]: r for r in old.to_dict("records")}
        news = {r["app"]: r for r in new.to_dict("records")}
        rows = []
        for app in sorted(olds.keys() | news.keys()):
            o, n = olds.get(app), news.get(app)
            row = n or o
            assert row is not None
            if app in layout_apps:
                matched = layout_matched.get(str(app), [])
            else:
                matched = sorted(touched & (set(o["files"] if o else []) | set(n["files"] if n else [])))
            change = "added" if o is None else "removed" if n is None else "changed" if matched else None
            if change:
                rows.append(
                    {
                        "app": app,
                        "change": change,
                        "source_type": row["source_type"],
                        "matched": matched,
                        "error": row["error"],
                    }
                )
        return schema.frame(schema.APP_CHANGES, rows)

    # -- what landed on the branch ---------------------------------------------

    def landed(self, since: TimeBound = None, until: TimeBound = None, rev: str = "HEAD") -> pd.DataFrame:
        """One row per change that landed on ``rev`` (schema: :data:`schema.LANDED`), newest first.

        The branch's first-parent line: a merge lands a pull request's commits at the merge's
        committer time, with its diff against the first parent; a direct, squashed or rebased
        commit lands itself. ``since``/``until`` bound the landing (committer) time. Each row
        names the commits a merge brought in (``merged_commits``, ``merged_authors``) and the
        earliest time they were written (``authored_at``), and the apps the change reaches:
        Kustomize roots and Flux apps mapped with the kustomizations and Flux objects of the
        commit's own tree and its parent's (as :meth:`affected_apps`), Argo CD Applications
        defined in git with the window's newest tree (see :meth:`_argo_overlay`).
        ``attrs["roots"]`` lists every app seen in those trees.

        One ``git log --first-parent -m --name-status`` walk; when the range has merges, one more
        ``git log`` lists the merged commits; kustomizations that change are read with one ``cat-file``.
        """
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        key = ("landed", *self._log_args(sha, since, until, None))
        if key not in self._landed:
            self._landed[key] = self._landed_frame(since, until, rev)
            if len(self._landed) > _CACHE_SIZE:
                self._landed.pop(next(iter(self._landed)))
        return self._landed[key].copy()

    def _landed_frame(self, since: TimeBound, until: TimeBound, rev: str) -> pd.DataFrame:
        commits, changes = self._walk(since, until, None, rev, first_parent=True)
        merged, side = self._merged(commits, rev)
        matched, roots, has_argo = self._landed_apps(commits, changes)
        if len(commits) and has_argo:
            matched, argo = self._argo_overlay(commits["sha"].iloc[0], changes, matched, list(commits["sha"]))
            roots |= argo
        own_authored = commits["authored_at"]
        rows: dict[str, list[Any]] = {k: [] for k in ("authored_at", "merged_commits", "merged_authors", "reverts")}
        for i, (h, own_reverts) in enumerate(zip(commits["sha"], commits["reverts"], strict=True)):
            mine = merged.get(h, [])
            rows["merged_commits"].append([side["sha"][j] for j in mine])
            rows["merged_authors"].append(list(dict.fromkeys(side["author"][j] for j in mine)))
            rows["authored_at"].append(min([side["authored_at"][j] for j in mine], default=own_authored[i]))
            rows["reverts"].append(own_reverts or next((side["reverts"][j] for j in mine if side["reverts"][j]), None))
        out = schema.frame(
            schema.LANDED,
            {
                "sha": list(commits["sha"]),
                "short_sha": list(commits["short_sha"]),
                "parents": list(commits["parents"]),
                "landed_at": commits["committed_at"].array,
                "landed_via": ["merge" if m else "direct" for m in commits["is_merge"]],
                "author": list(commits["author"]),
                "committer": list(commits["committer"]),
                "subject": list(commits["subject"]),
                "files": list(commits["files"]),
                "apps": [list(m) for m in matched],
                "matched": matched,
                **rows,
            },
        )
        out.attrs["roots"] = sorted(roots)
        return out

    def _merged(self, commits: pd.DataFrame, rev: str) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
        """The commits each merge of a first-parent walk brought in (indexes into the side walk's columns).

        One ``git log`` lists every commit reachable from the merges' other parents and not from the
        branch before the range; walking merges oldest first, each claims what no earlier merge did.
        That is exactly ``git log M^1..M`` minus ``M``, for every merge ``M``, in one process.
        """
        chain = set(commits["sha"])
        merges = [(h, p) for h, p in zip(commits["sha"], commits["parents"], strict=True) if len(p) > 1]
        if not merges:
            return {}, {}
        tips = list(dict.fromkeys(x for _, p in merges for x in p[1:]))
        before = list(dict.fromkeys(p[0] for p in commits["parents"] if p and p[0] not in chain))
        side_commits, _ = self._read_log([*tips, *(["--not", *before] if before else []), "--"], rev)
        side = {k: list(side_commits[k]) for k in ("sha", "parents", "author", "authored_at", "reverts")}
        index = {h: j for j, h in enumerate(side["sha"])}
        claimed: set[str] = set()
        out: dict[str, list[int]] = {}
        for h, parents in reversed(merges):  # oldest first: a commit belongs to the merge that landed it
            mine: list[int] = []
            stack = list(parents[1:])
            while stack:
                x = stack.pop()
                if x in chain or x in claimed or x not in index:
                    continue
                claimed.add(x)
                mine.append(index[x])
                stack.extend(side["parents"][index[x]])
            out[h] = sorted(mine)
        return out, side

    def _landed_apps(
        self, commits: pd.DataFrame, changes: pd.DataFrame
    ) -> tuple[list[dict[str, list[str]]], set[str], bool]:
        """For each commit of a first-parent walk: the apps it reaches -> the files it reaches them through.

        The kustomizations and Flux objects of the oldest commit's parent are read once; walking
        towards the tip, each commit's diff against its first parent updates them (a gap in the line
        re-reads the tree), so Kustomize roots and Flux apps are mapped at each commit's own trees.
        Argo CD Applications are then mapped at the window's tree (:meth:`_argo_overlay`); the last
        value says whether the newest tree has a file naming ``argoproj.io`` (tracked the same way).
        """
        by_sha: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
        for h, p, ch, old in zip(changes["sha"], changes["path"], changes["change"], changes["old_path"], strict=True):
            by_sha[h].append((p, ch, old))
        shas, parents = list(commits["sha"]), list(commits["parents"])
        # kustomizations, and every YAML file (a Flux object may be added to any): one cat-file
        wanted = [
            f"{h}:{p}"
            for h, rows in by_sha.items()
            for p, ch, _ in rows
            if ch != "D" and (posixpath.basename(p) in KUSTOMIZATION_FILES or p.endswith(YAML_SUFFIXES))
        ]
        texts = batch_read(self._git, wanted, path=self.path)
        matched: list[dict[str, list[str]]] = [{}] * len(shas)
        seen: dict[int, Layout] = {}
        kusts: dict[str, Kustomization] = {}
        flux: dict[str, list[dict[str, Any]]] = {}
        argo: set[str] = set()
        layout, prev = Layout(()), None
        for i in range(len(shas) - 1, -1, -1):
            h, ps = shas[i], parents[i]
            if not ps:
                kusts, flux, argo, layout = {}, {}, set(), Layout(())
            elif ps[0] != prev:
                _, k0, f0 = self._tree(ps[0])
                kusts, flux = dict(k0), dict(f0)  # copies: the tree's are cached
                argo = set(self._argo_files(ps[0]))
                layout = self._layout(kusts, flux)
            before = layout
            seen[id(before)] = before
            changed = False
            for p, ch, old in by_sha.get(h, ()):
                if old and ch == "R":
                    changed |= kusts.pop(old, None) is not None
                    changed |= bool(flux.pop(old, None))
                    argo.discard(old)
                is_k, is_y = posixpath.basename(p) in KUSTOMIZATION_FILES, p.endswith(YAML_SUFFIXES)
                if not (is_k or is_y):
                    continue
                raw = texts.get(f"{h}:{p}", MISSING) if ch != "D" else MISSING
                if is_k:
                    k = kustomization_from_docs(p, self._load(raw)) if isinstance(raw, bytes) else None
                    old_k = kusts.pop(p, None)
                    if k is not None:
                        kusts[p] = k
                    if (k and _signature(k)) != (old_k and _signature(old_k)):
                        changed = True
                if is_y:
                    new_f = self._flux_of(p, raw) if isinstance(raw, bytes) else []
                    old_f = flux.pop(p, [])
                    if new_f:
                        flux[p] = new_f
                    if [_flux_signature(f) for f in new_f] != [_flux_signature(f) for f in old_f]:
                        changed = True
                    if isinstance(raw, bytes) and _ARGO.encode() in raw:
                        argo.add(p)
                    else:
                        argo.discard(p)
            if changed:
                layout = self._layout(kusts, flux)
                seen[id(layout)] = layout
            matched[i] = _match(layout, before, by_sha.get(h, ()))
            prev = h
        return matched, {name for lay in seen.values() for name in lay.names}, bool(argo)

    def _argo_overlay(
        self, sha: str, changes: pd.DataFrame, matched: list[dict[str, list[str]]], shas: list[str]
    ) -> tuple[list[dict[str, list[str]]], set[str]]:
        """Argo CD Applications in the per-commit mapping, read at ``sha`` (the window's newest tree).

        Applications (from git: manifests, app-of-apps templates, ApplicationSets) are mapped at the
        window's tree, not each commit's: reading every source type (charts, value files, generators)
        at every commit would cost a tree read per commit. A Kustomize root an Application builds
        (mapped per commit) is named as the Application, as :meth:`apps` lists it; a changed file among
        an Application's files at that tree reaches it too. Called only when that tree has a file
        naming ``argoproj.io`` (:meth:`_landed_apps` tracks them), so without Applications nothing is read.
        """
        if not shas:
            return matched, set()
        paths, kusts, _ = self._tree(sha)
        argo = self._argo_rows(sha, paths, kusts=kusts)
        if not argo:
            return matched, set()
        covers: dict[str, list[str]] = defaultdict(list)  # Kustomize root -> the Applications building it
        by_file: dict[str, list[str]] = defaultdict(list)
        for r in argo:
            for d in dict.fromkeys(d or "." for d in r["dirs"]):
                covers[d].append(r["app"])
            for f in r["files"]:
                by_file[f].append(r["app"])
        touched: dict[str, list[str]] = defaultdict(list)
        for h, p, old in zip(changes["sha"], changes["path"], changes["old_path"], strict=True):
            touched[h] += [p, old] if isinstance(old, str) else [p]
        out: list[dict[str, list[str]]] = []
        for h, m in zip(shas, matched, strict=True):
            found: dict[str, set[str]] = defaultdict(set)
            for app, files in m.items():
                for a in covers.get(app, [app]):
                    found[a].update(files)
            for f in touched.get(h, ()):
                for a in by_file.get(f, ()):
                    found[a].add(f)
            out.append({a: sorted(found[a]) for a in sorted(found)})
        return out, {r["app"] for r in argo}

    # -- path queries ------------------------------------------------------------

    def commit_graph(self) -> dict[str, Any]:
        """What commit-graph the repository has: ``exists``, ``bloom`` (changed-path filters in every
        layer) and ``commits`` (how many it covers). Read from the files, no git process."""
        info = Path(self._repo.common_dir) / "objects" / "info"
        chain = info / "commit-graphs" / "commit-graph-chain"
        files = [info / "commit-graph"] if (info / "commit-graph").exists() else []
        if chain.exists():
            files = [info / "commit-graphs" / f"graph-{h}.graph" for h in chain.read_text().split()]
        layers = [x for f in files if (x := _graph_chunks(f)) is not None]
        return {
            "exists": bool(layers),
            "bloom": bool(layers) and all(b for b, _ in layers),
            "commits": sum(n for _, n in layers),
        }

    def path_query_note(self, threshold: int = 10_000) -> str | None:
        """A note when path queries here would gain from a changed-paths commit-graph, else None.

        Said for a repository of more than ``threshold`` commits whose commit-graph (if any)
        has no changed-path (Bloom) filters.
        """
        if self._note is None:
            graph = self.commit_graph()
            if graph["bloom"]:
                self._note = ""
            else:
                n = graph["commits"]
                if not graph["exists"]:  # count no further than the threshold: this must stay cheap
                    args = ["rev-list", "--count", f"--max-count={threshold + 1}", "--all"]
                    status, out, _ = run(self._git, args, path=self.path, check=False)
                    n = int(out.decode().strip() or 0) if status == 0 else 0
                self._note = (
                    f"{self.path} has more than {threshold} commits and no changed-paths commit-graph: path queries walk "
                    "every commit. `gitops-nb repo optimize PATH` writes one (about 6x faster per-app "
                    "history); `git maintenance start` keeps it up to date"
                    if n > threshold
                    else ""
                )
        return self._note or None

    def optimize(self) -> dict[str, Any]:
        """Write a commit-graph with changed-path filters (``git commit-graph write --reachable
        --changed-paths``), so path queries skip commits that do not touch the path.

        This changes the clone's local metadata only (``.git/objects/info/commit-graph``): no commit,
        ref, config or work-tree file, nothing that is pushed. Running it again rewrites the same
        graph (idempotent). Returns the graph before and after (see :meth:`commit_graph`).
        """
        before = self.commit_graph()
        run(self._git, ["commit-graph", "write", "--reachable", "--changed-paths"], path=self.path)
        self._note = None
        return {"before": before, "after": self.commit_graph()}


class _SecretScanner:
    """Reads blobs in batches (sizes first: over :data:`~gitops_nb.git.secrets.MAX_BLOB` is not read) and
    scans each distinct (blob, kind of path) once; learns the files kustomizations' secretGenerators read."""

    def __init__(self, g: git.Git, path: str, load: Callable[[bytes], list[Any] | InvalidYAML], salt: bytes) -> None:
        self.git, self.path, self.load, self.salt = g, path, load, salt
        self.sources: dict[str, Any] = {}
        self.cache: dict[tuple[str, Any], list[Any]] = {}
        self.skipped: dict[str, int] = defaultdict(int)
        self.scanned = 0
        self.memo: dict[str, int] = {}  # lines already checked, shared by every blob of the walk

    def _class(self, path: str) -> Any:
        src = self.sources.get(path)
        if src is not None:
            return src
        base = posixpath.basename(path)
        return "kustomization" if base in KUSTOMIZATION_FILES else "yaml" if path.endswith(YAML_SUFFIXES) else "text"

    def hits(self, blob: str, path: str) -> list[Any]:
        return self.cache.get((blob, self._class(path)), [])

    def read_and_scan(self, pairs: Iterable[tuple[str, str]], say: Callable[[str], None]) -> None:
        from .secrets import MAX_BLOB, generator_sources, scan_blob

        todo: dict[tuple[str, Any], str] = {}
        for blob, path in pairs:
            todo.setdefault((blob, self._class(path)), path)
        todo = {k: p for k, p in todo.items() if k not in self.cache}
        if not todo:
            return
        by_blob: dict[str, list[tuple[Any, str]]] = defaultdict(list)
        for (b, c), p in todo.items():
            by_blob[b].append((c, p))
        sizes = object_sizes(self.git, by_blob, path=self.path)
        chunks: list[list[str]] = [[]]
        total = 0
        for b in sorted(by_blob):
            size = sizes.get(b)
            if size is None or size > MAX_BLOB:
                self.skipped["missing" if size is None else "too_large"] += 1
                self.cache.update({(b, c): [] for c, _ in by_blob[b]})
                continue
            if total + size > 32 << 20 and chunks[-1]:  # bounded memory: one cat-file per 32 MiB
                chunks.append([])
                total = 0
            chunks[-1].append(b)
            total += size
        done = 0
        for chunk in chunks:
            content = batch_read(self.git, chunk, path=self.path)
            for blob in chunk:
                raw = content.get(blob, MISSING)
                for c, p in by_blob[blob]:
                    self.cache[(blob, c)] = self._scan(raw, c, p, generator_sources, scan_blob)
            if len(by_blob) > 20_000:
                done += len(chunk)
                say(f"secrets: {done}/{len(by_blob)} files scanned")

    def _scan(self, raw: bytes | Any, c: Any, p: str, generator_sources: Any, scan_blob: Any) -> list[Any]:
        if not isinstance(raw, bytes):
            self.skipped["missing"] += 1
            return []
        if b"\0" in raw[:8000]:
            self.skipped["binary"] += 1
            return []
        if c == "kustomization" and b"secretGenerator" in raw:
            docs = self.load(raw)
            if not isinstance(docs, InvalidYAML):
                self.sources.update(generator_sources(p, docs))
        self.scanned += 1
        found: list[Any] = scan_blob(
            p, raw, self.salt, self.load, source=None if isinstance(c, str) else c, memo=self.memo
        )
        return found


def _signature(k: Kustomization) -> tuple[Any, ...]:
    """What of a kustomization shapes the layout (not its images, replicas or other settings)."""
    return (k.file, k.flux, k.namespace, tuple(k.refs), tuple(k.remote))


def _flux_signature(f: dict[str, Any]) -> tuple[Any, ...]:
    """What of a Flux app (:func:`~gitops_nb.git.kustomize.flux_apps`) shapes the layout."""
    return (f["file"], repr(f["kind"]), repr(f["name"]), repr(f["namespace"]), f["dir"], tuple(f["extra"]))


def _match(layout: Layout, before: Layout, rows: Iterable[tuple[str, str, str | None]]) -> dict[str, list[str]]:
    """app -> the files a change reaches it through: a path is mapped in the tree it exists in
    (after the change with ``layout``, before it with ``before``; both for a modified file)."""
    found: dict[str, set[str]] = defaultdict(set)
    for path, change, old in rows:
        if change != "D":
            for app in layout.match(path):
                found[app].add(path)
        if change in ("M", "T", "D"):
            for app in before.match(path):
                found[app].add(path)
        if isinstance(old, str):
            for app in before.match(old):
                found[app].add(old)
    return {app: sorted(found[app]) for app in sorted(found)}


def _graph_chunks(f: Path) -> tuple[bool, int] | None:
    """(has changed-path filters, number of commits) of one commit-graph file, or None if unreadable.

    The format (gitformat-commit-graph(5)): "CGPH", version, hash version, chunk count, base count,
    then a table of (4-byte chunk id, 8-byte offset); the OIDF chunk's last fanout entry is the count.
    """
    try:
        with f.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8 or head[:4] != b"CGPH":
                return None
            table = fh.read(12 * (head[6] + 1))
            chunks = {table[i : i + 4]: int.from_bytes(table[i + 4 : i + 12], "big") for i in range(0, len(table), 12)}
            count = 0
            if b"OIDF" in chunks:
                fh.seek(chunks[b"OIDF"] + 255 * 4)
                count = int.from_bytes(fh.read(4), "big")
            return (b"BIDX" in chunks and b"BDAT" in chunks), count
    except OSError:
        return None


def _local_path(base: str, url: str) -> str:
    """A local repository's path from a ``file://`` URL or a path (relative to ``base``), resolved."""
    p = url.removeprefix("file://")
    return os.path.realpath(os.path.join(base, p)).removesuffix("/.git")


def _text(blobs: dict[str, bytes | Any], blob: str) -> str | None:
    raw = blobs.get(blob) if blob != _NULL_SHA else None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
