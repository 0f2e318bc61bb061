"""The deploy-config repository's history as DataFrames."""

from __future__ import annotations

import math
import os
import posixpath
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import git
import numpy as np
import pandas as pd

from .. import schema
from ..errors import (
    EmptyRepoError,
    InputError,
    NotARepoError,
    RepoError,
    ShallowHistoryError,
    UnknownRevisionError,
)
from ..times import parse_at
from .gitio import MISSING, batch_read, read_blocks, resolve_commits, run, stream_records
from .kustomize import FLUX_APIS, build_apps, flux_apps, kustomization_paths
from .manifests import BEFORE, KUSTOMIZATION_FILES, InvalidYAML, diff_documents, is_manifest_path, load_documents
from .sources import Tree, app_rows, applications_in_tree, combine, normalize_repo_url, specs_from, template_change

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
_CACHE_SIZE = 8
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")


def _epoch_bounds(since: TimeBound, until: TimeBound) -> tuple[int | None, int | None]:
    lo = None if since is None else math.ceil(parse_at(since).timestamp())
    hi = None if until is None else math.floor(parse_at(until).timestamp())
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"since ({since}) is after until ({until}): swap them or widen the range")
    return lo, hi


def _utc(seconds: Sequence[int] | np.ndarray) -> pd.DatetimeIndex:
    ns = np.asarray(seconds, dtype="int64") * 1_000_000_000
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


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
        self._remotes: set[str] | None = None
        self._local: set[str] = set()

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
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        args = self._log_args(sha, since, until, paths)
        if max_count is not None:
            args.insert(0, f"--max-count={max_count}")
        key = tuple(args)
        if key in self._walks:
            self._walks.move_to_end(key)
            return self._walks[key]

        col: list[list[str]] = [[] for _ in range(_NTOK)]
        try:
            for block in read_blocks(self._git, ["log", "-z", "-M", "--name-status", _FORMAT, *args], path=self.path):
                _split_block(block, col)
        except RepoError:
            self.resolve(rev)  # raises the precise error for a rev that does not resolve
            raise
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
        commits = schema.frame(schema.COMMITS, c)
        changes = schema.frame(schema.FILE_CHANGES, f | {"committed_at": _utc(f["committed_at"])})
        self._walks[key] = (commits, changes)
        if len(self._walks) > _CACHE_SIZE:
            self._walks.popitem(last=False)
        return commits, changes

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
    ) -> pd.DataFrame:
        """One row per commit reachable from ``rev`` (schema: :data:`schema.COMMITS`), newest first.

        Args:
            since: earliest committer date, inclusive (ISO-8601, ``-2h``, datetime).
            until: latest committer date, inclusive.
            paths: only commits touching these paths (git pathspecs).
            rev: where to start walking.
        """
        return self._walk(since, until, paths, rev)[0].copy()

    def file_changes(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        paths: Sequence[str] | str | None = None,
        rev: str = "HEAD",
    ) -> pd.DataFrame:
        """One row per (commit, path) (schema: :data:`schema.FILE_CHANGES`), newest first.

        Merge commits list no files (their changes are in the merged commits).
        Arguments as in :meth:`commits`; both share one ``git log`` walk.
        """
        return self._walk(since, until, paths, rev)[1].copy()

    # -- semantic changes -----------------------------------------------------

    def manifest_changes(
        self,
        since: TimeBound = None,
        until: TimeBound = None,
        paths: Sequence[str] | str | None = None,
        rev: str = "HEAD",
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
        """
        self._check_rev(rev)
        sha = self._fast_resolve(rev) or self.resolve(rev)
        args = self._log_args(sha, since, until, paths)
        key = ("manifest", *args)
        if key not in self._manifest:
            self._manifest[key] = self._manifest_changes(rev, args)
            if len(self._manifest) > _CACHE_SIZE:
                self._manifest.pop(next(iter(self._manifest)))
        return self._manifest[key].copy()

    def _manifest_changes(self, rev: str, args: list[str]) -> pd.DataFrame:
        entries: list[tuple[str, str, int, str, str, str, str]] = []
        try:
            records = list(
                stream_records(
                    self._git, ["log", "-z", "--raw", "--no-abbrev", "-M100%", _MANIFEST_FORMAT, *args], path=self.path
                )
            )
        except RepoError:
            self.resolve(rev)  # raises the precise error for a rev that does not resolve
            raise
        for rec in records:
            head, _, tail = rec.rpartition("\x1f")
            h, an, ct = head.split("\x1f", 2)
            toks = tail.lstrip("\0\n").split("\0")
            i, n = 0, len(toks) - 1
            while i < n:
                meta = toks[i].split(" ")  # :old_mode new_mode old_sha new_sha status
                status = meta[4] if len(meta) > 4 else "M"
                if status[:1] in ("R", "C"):
                    path, i = toks[i + 2], i + 3
                else:
                    path, i = toks[i + 1], i + 2
                if (is_manifest_path(path) or path.endswith(".tpl")) and meta[0] != ":160000" and meta[1] != "160000":
                    entries.append((h, an, int(ct), path, meta[2], meta[3], status[:1]))
        self._check_shallow([e[0] for e in entries], [e[2] for e in entries])

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
                    try:
                        parsed[blob] = (load_documents(raw.decode("utf-8", "replace")), None)
                    except InvalidYAML as e:
                        parsed[blob] = (None, str(e))
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
        source type, a templated Application skipped).
        """
        sha = self.resolve(rev)
        if applications is None and sha in self._apps:
            return self._apps[sha].copy()
        _, out, _ = run(self._git, ["ls-tree", "-r", "-z", "--name-only", sha], path=self.path)
        paths = [p for p in out.decode("utf-8", "replace").split("\0") if p]
        tree = Tree(paths, lambda want: self._read_texts(sha, want))
        kpaths = kustomization_paths(paths)
        tree.prefetch(kpaths)
        texts = {p: t for p in kpaths if (t := tree.read(p)) is not None}
        base = build_apps(paths, texts, flux_apps(self._flux_objects(sha)))
        for r in base:
            kfile = r["kustomization"]
            plain = posixpath.basename(kfile) in KUSTOMIZATION_FILES and (posixpath.dirname(kfile) or ".") == r["app"]
            r["source_type"] = "kustomize" if plain else "flux"
        defined = applications_in_tree(tree, self._argo_files(sha), self._this_repo)
        specs = defined if applications is None else specs_from(applications)
        frame = schema.frame(schema.APPS, combine(base, app_rows(specs, tree, self._this_repo, defined)))
        if applications is None:
            self._apps[sha] = frame
        return frame.copy()

    def _read_texts(self, sha: str, want: list[str]) -> dict[str, str | None]:
        content = batch_read(self._git, [f"{sha}:{p}" for p in want], path=self.path)
        return {
            p: c.decode("utf-8", "replace") if isinstance(c := content[f"{sha}:{p}"], bytes) else None for p in want
        }

    def _argo_files(self, sha: str) -> list[str]:
        """The YAML files at ``sha`` that name ``argoproj.io`` (where Applications may be defined)."""
        args = ["grep", "-l", "-z", "-F", "-e", "argoproj.io", sha, "--", "*.yaml", "*.yml"]
        status, out, _ = run(self._git, args, path=self.path, check=False)
        return [p.split(":", 1)[1] for p in out.decode("utf-8", "replace").split("\0") if p] if status == 0 else []

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
        if url is not None and url.startswith("file://"):
            return _local_path(self.path, url) in self._local
        return url is None or not self._remotes or normalize_repo_url(url) in self._remotes

    def _flux_objects(self, sha: str) -> list[tuple[str, Any]]:
        """(file, document) of every YAML document at ``sha`` in a file that names a Flux deploying API."""
        args = ["grep", "-l", "-z", "-F", *(a for api in FLUX_APIS for a in ("-e", api)), sha, "--", "*.yaml", "*.yml"]
        status, out, _ = run(self._git, args, path=self.path, check=False)
        if status != 0:  # 1: no match
            return []
        found = [p.split(":", 1)[1] for p in out.decode("utf-8", "replace").split("\0") if p]
        content = batch_read(self._git, [f"{sha}:{p}" for p in found], path=self.path)
        objects: list[tuple[str, Any]] = []
        for p in found:
            raw = content.get(f"{sha}:{p}")
            if not isinstance(raw, bytes):
                continue
            try:
                objects.extend((p, d) for d in load_documents(raw.decode("utf-8", "replace")))
            except InvalidYAML:
                continue  # manifest_changes reports it as unreadable
        return objects

    def ancestors(self, rev: str, since: TimeBound = None) -> set[str]:
        """The shas reachable from ``rev`` (committed at or after ``since``); empty if ``rev`` is unknown."""
        self._check_rev(rev)
        args = ["rev-list", *self._log_args(rev, since, None, None)]
        status, out, _ = run(self._git, args, path=self.path, check=False)
        return set(out.decode().split()) if status == 0 else set()

    def _commit_apps(self, sha: str, applications: Any) -> tuple[set[str], pd.DataFrame, pd.DataFrame]:
        """The files a commit touched, the apps at it and at its first parent."""
        full = self.resolve(sha)
        commits, changes = self._walk(None, None, None, full, max_count=1)
        touched = set(changes["path"]) | set(changes["old_path"].dropna())
        parents = commits["parents"].iloc[0] if len(commits) else []
        old = self.apps(parents[0], applications) if parents else schema.frame(schema.APPS)
        return touched, self.apps(full, applications), old

    def affected_apps(self, sha: str, applications: Any = None) -> pd.DataFrame:
        """The apps a commit changes, with the ``matched`` files (``applications`` as in :meth:`apps`).

        Apps are read at the commit and at its first parent, so deleted files count.
        """
        touched, new, old = self._commit_apps(sha, applications)
        apps = pd.concat([new, old]).drop_duplicates("app", keep="first")
        rows = [{**row, "matched": m} for row in apps.to_dict("records") if (m := sorted(touched & set(row["files"])))]
        return schema.frame(schema.AFFECTED_APPS, rows)  # its columns even when no app is reached

    def app_changes(self, sha: str, applications: Any = None) -> pd.DataFrame:
        """Which apps a commit adds, removes or changes (schema: :data:`schema.APP_CHANGES`).

        ``added``/``removed``: the app exists only after/before the commit (an Application manifest,
        an ApplicationSet's new directory, a new Kustomize root); ``changed``: the commit touches
        files it is built from (``matched``). ``applications`` as in :meth:`apps`.
        """
        touched, new, old = self._commit_apps(sha, applications)
        olds = {r["app"]: r for r in old.to_dict("records")}
        news = {r["app"]: r for r in new.to_dict("records")}
        rows = []
        for app in sorted(olds.keys() | news.keys()):
            o, n = olds.get(app), news.get(app)
            row = n or o
            assert row is not None
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


def _local_path(base: str, url: str) -> str:
    """A local repository's path from a ``file://`` URL or a path (relative to ``base``), resolved."""
    p = url.removeprefix("file://")
    return os.path.realpath(os.path.join(base, p)).removesuffix("/.git")


def _text(blobs: dict[str, bytes | Any], blob: str) -> str | None:
    raw = blobs.get(blob) if blob != _NULL_SHA else None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
