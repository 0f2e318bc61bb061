"""``rendered_diff``: what a commit changes in the manifests Argo CD would apply.

A commit to a Kustomize base or a Helm values file changes no manifest by itself; what
changes is the output of ``kustomize build`` or ``helm template`` for every app built from
it. This module renders an app at a commit's first parent and at the commit with the real
tools (the sandbox's pinned ``kustomize`` and ``helm``, or ``$GITOPS_NB_KUSTOMIZE`` /
``$GITOPS_NB_HELM``, or ``PATH``), each tree exported with ``git archive`` into a temporary
directory (the user's work tree is never touched), and diffs the two outputs with the
semantic YAML diff of :mod:`gitops_nb.git.manifests`.

Renders are cached by (tool binary, tree sha of the app's inputs, arguments): in memory, and
as JSON under ``$GITOPS_NB_CACHE/renders`` (default ``~/.cache/gitops-nb/renders``). Secret
values never reach the cache or the frame: a Secret's ``data``/``stringData`` values are
replaced by keyed digests as soon as a render is parsed (so a change is still seen), and the
diff shows them as ``<redacted>``.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import os
import posixpath
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .. import schema
from ..errors import InputError, RepoError
from ..git.gitio import GIT
from ..git.manifests import KUSTOMIZATION_FILES, YAML_SUFFIXES, diff_documents, load_documents
from ..git.repo import DeployRepo
from ..git.tools import archive_tree, find_tool, first_lines, not_found, tool_env, tool_id, tool_runs

__all__ = [
    "RENDER_ERROR",
    "RenderResult",
    "default_render_cache",
    "digest_secrets",
    "find_tool",
    "render_app",
    "rendered_diff",
    "tool_runs",
]


RENDER_ERROR = "render-error"
_TIMEOUT = 300  # seconds for one kustomize build / helm template
_MEMO_SIZE = 1024
_lock = threading.Lock()
#: renders in memory, by (disk cache dir, key): a hit never skips writing another cache dir
_memo: collections.OrderedDict[tuple[str, str], RenderResult] = collections.OrderedDict()


@dataclass(frozen=True)
class RenderResult:
    """One render of one app at one commit: its documents (Secret values digested), or why it failed."""

    tool: str  # kustomize, helm, directory, or "absent" (the app's path is not in the tree)
    docs: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass
class _App:
    """What to render: the path in the repo and, for Helm, the release, namespace and values."""

    label: str
    path: str
    source_type: str | None = None  # helm, kustomize, directory; None: told from the tree (as Argo CD does)
    release: str | None = None
    namespace: str | None = None
    value_files: list[str] = field(default_factory=list)
    values: str | None = None  # inline values (helm.values / helm.valuesObject)
    parameters: list[tuple[str, str, bool]] = field(default_factory=list)  # name, value, forceString
    include_crds: bool = True


# -- the app --------------------------------------------------------------------------------------


def _norm(path: str) -> str:
    p = posixpath.normpath(str(path).strip().strip("/") or ".")
    return "" if p == "." else p


def _from_source(label: str, src: Mapping[str, Any], dest_ns: str | None) -> _App:
    helm = src.get("helm") or {}
    source_type = "helm" if src.get("helm") else "kustomize" if src.get("kustomize") else None
    if src.get("directory"):
        source_type = "directory"
    values = helm.get("values")
    if helm.get("valuesObject") is not None:
        values = yaml.safe_dump(helm["valuesObject"], sort_keys=False)
    return _App(
        label=label,
        path=_norm(src.get("path") or ""),
        source_type=source_type,
        release=helm.get("releaseName") or label,
        namespace=helm.get("namespace") or dest_ns,
        value_files=[str(v) for v in helm.get("valueFiles") or []],
        values=values or None,
        parameters=[
            (str(p["name"]), str(p.get("value", "")), bool(p.get("forceString")))
            for p in helm.get("parameters") or []
            if p.get("name")
        ],
        include_crds=not helm.get("skipCrds", False),
    )


def _app(app: Any) -> _App:
    """An app given as a path, an Application (manifest or spec) or a row of ``Cluster.applications()``."""
    if isinstance(app, pd.Series):
        app = app.to_dict()
    if isinstance(app, str | os.PathLike):
        path = _norm(os.fspath(app))
        return _App(label=path or ".", path=path, release=posixpath.basename(path) or "release")
    if not isinstance(app, Mapping):
        raise InputError(
            f"rendered_diff: app must be a path, an Application or a Cluster.applications() row, not {app!r}"
        )
    if "spec" in app or "source" in app or "sources" in app:  # an Application, or its spec
        spec = app.get("spec", app)
        name = (app.get("metadata") or {}).get("name") or "app"
        dest_ns = (spec.get("destination") or {}).get("namespace")
        sources = [spec["source"]] if spec.get("source") else list(spec.get("sources") or [])
        src = next((s for s in sources if s.get("path") is not None), None)
        if src is None:
            raise InputError(
                f"rendered_diff: Application {name!r} has no source with a path (a chart from a Helm repo?)"
            )
        return _from_source(name, src, dest_ns)
    if "path" in app:  # a Cluster.applications() row
        name = app.get("name") or app["path"]
        srcs = [s for s in app.get("sources") or [] if isinstance(s, Mapping) and s.get("path") == app["path"]]
        helm = app.get("helm") or next((s.get("helm") for s in srcs if s.get("helm")), None)
        return _from_source(str(name), {"path": app["path"], "helm": helm}, app.get("dest_namespace"))
    raise InputError(f"rendered_diff: cannot tell the app's path from {sorted(app)!r}")


# -- git ------------------------------------------------------------------------------------------


def _git(repo: str, *args: str) -> bytes:
    proc = subprocess.run([*GIT, "-C", repo, *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise RepoError(f"git {args[0]} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}", path=repo)
    return proc.stdout


class _Trees:
    """File lists, tree shas and (on demand) exported copies of the commits one call reads."""

    def __init__(self, repo: DeployRepo) -> None:
        self.repo = repo
        self._files: dict[str, frozenset[str]] = {}
        self._dirs: dict[str, str] = {}
        self._trees: dict[str, dict[str, str]] = {}
        self._apps: dict[str, pd.DataFrame] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.RLock()

    def files(self, rev: str) -> frozenset[str]:
        """Every file path at ``rev``."""
        self._read(rev)
        return self._files[rev]

    def tree_sha(self, rev: str, d: str) -> str | None:
        """The sha of directory ``d`` ("" = the root) at ``rev``; None if there is no such directory."""
        self._read(rev)
        return self._trees[rev].get(d)

    def _read(self, rev: str) -> None:
        """One ``git ls-tree -r -t`` per commit: its files, and the sha of every tree."""
        if rev in self._files:
            return
        out = _git(self.repo.path, "ls-tree", "-r", "-t", "-z", rev)
        files, trees = set(), {"": _git(self.repo.path, "rev-parse", f"{rev}^{{tree}}").decode().strip()}
        for entry in out.decode("utf-8", "replace").split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            _, kind, sha = meta.split()
            if kind == "tree":
                trees[path] = sha
            else:
                files.add(path)
        with self._lock:
            self._trees[rev] = trees
            self._files[rev] = frozenset(files)

    def scratch(self) -> Path:
        """This call's temporary directory (values files, the tools' HOME)."""
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="gitops-nb-render-")
            return Path(self._tmp.name)

    def apps(self, rev: str) -> pd.DataFrame:
        """``DeployRepo.apps(rev)``, read once per call."""
        if rev not in self._apps:
            self._apps[rev] = self.repo.apps(rev)
        return self._apps[rev]

    def root(self, rev: str) -> Path:
        """A copy of the tree at ``rev`` (``git archive``), made once per call."""
        with self._lock:
            if rev in self._dirs:
                return Path(self._dirs[rev])
            dest = self.scratch() / rev
            archive_tree(self.repo.path, rev, dest)
            self._dirs[rev] = str(dest)
            return dest

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _source_type(app: _App, files: frozenset[str]) -> str:
    """``helm``, ``kustomize``, ``directory`` or ``absent``, as Argo CD tells them (unless the app says)."""
    prefix = f"{app.path}/" if app.path else ""
    if not any(f.startswith(prefix) for f in files):
        return "absent"
    if app.source_type:
        return app.source_type
    if f"{prefix}Chart.yaml" in files:
        return "helm"
    if any(f"{prefix}{k}" in files for k in KUSTOMIZATION_FILES):
        return "kustomize"
    return "directory"


def _common_dir(paths: Sequence[str]) -> str:
    parts = [p.split("/") for p in paths if p]
    if len(parts) < len(paths) or not parts:
        return ""
    common = posixpath.commonpath(["/".join(p) for p in parts])
    return common


# -- the cache ------------------------------------------------------------------------------------


def default_render_cache() -> Path:
    """``$GITOPS_NB_CACHE/renders`` (default ``~/.cache/gitops-nb/renders``)."""
    return Path(os.environ.get("GITOPS_NB_CACHE", Path.home() / ".cache" / "gitops-nb")) / "renders"


def _secret_key(cache_dir: Path | None) -> bytes:
    """The key of the Secret-value digests; kept (mode 0600) with the disk cache so digests compare across runs."""
    if cache_dir is None:
        return _session_key
    f = cache_dir / "secret-digest.key"
    with contextlib.suppress(OSError):
        return f.read_bytes()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    with contextlib.suppress(FileExistsError):
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
    return f.read_bytes()


_session_key = secrets.token_bytes(32)


def _digest_secrets(docs: list[Any], key: bytes) -> list[Any]:
    """Replace every Secret ``data``/``stringData`` value by a keyed digest (changes stay visible)."""
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "Secret":
            for f in ("data", "stringData"):
                if isinstance(d.get(f), dict):
                    d[f] = {
                        k: "digest:" + hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:24]
                        for k, v in d[f].items()
                    }
    return docs


def digest_secrets(docs: list[Any], cache: bool | str | Path = True) -> list[Any]:
    """Digest Secret values in ``docs`` (in place) as :func:`render_app` with the same ``cache`` does,
    so a live Secret compares with a rendered one without either value being kept."""
    return _digest_secrets(docs, _secret_key(_cache_dir(cache)))


def _cache_get(key: str, cache_dir: Path | None) -> RenderResult | None:
    with _lock:
        if (memo := (str(cache_dir), key)) in _memo:
            _memo.move_to_end(memo)
            return _memo[memo]
    if cache_dir is None:
        return None
    try:
        data = json.loads((cache_dir / key[:2] / f"{key}.json").read_text())
        result = RenderResult(tool=data["tool"], docs=data["docs"], error=data["error"])
    except (OSError, ValueError, KeyError):
        return None
    _memo_put((str(cache_dir), key), result)
    return result


def _memo_put(key: tuple[str, str], result: RenderResult) -> None:
    with _lock:
        _memo[key] = result
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)


def _cache_put(key: str, result: RenderResult, cache_dir: Path | None) -> None:
    _memo_put((str(cache_dir), key), result)
    if cache_dir is None:
        return
    d = cache_dir / key[:2]
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"tool": result.tool, "docs": result.docs, "error": result.error}, out)
    tmp.replace(d / f"{key}.json")


# -- one render -----------------------------------------------------------------------------------


def _helm_args(app: _App, values_file: Path | None) -> list[str] | str:
    args = ["template", app.release or "release", app.path or ".", "--namespace", app.namespace or "default"]
    if app.include_crds:
        args.append("--include-crds")
    for vf in app.value_files:
        if vf.startswith("$"):
            return f"value file {vf!r} comes from another source of a multi-source app: not supported"
        if "://" in vf:
            args += ["-f", vf]
            continue
        p = posixpath.normpath(posixpath.join(app.path, vf))
        if p == ".." or p.startswith("../") or p.startswith("/"):
            return f"value file {vf!r} is outside the repository"
        args += ["-f", p]
    if values_file is not None:
        args += ["-f", str(values_file)]
    for name, value, force in app.parameters:
        args += ["--set-string" if force else "--set", f"{name}={value}"]
    return args


def _inputs(repo: DeployRepo, trees: _Trees, app: _App, rev: str, tool: str) -> str:
    """The directory holding every input of the render (the tree sha of which keys the cache)."""
    if tool == "kustomize":
        roots = trees.apps(rev)
        row = roots[roots["app"] == app.path]
        if len(row):
            paths = [app.path, *row["files"].iloc[0], *row["dirs"].iloc[0]]
            return _common_dir([posixpath.dirname(p) if p in trees.files(rev) else p for p in paths])
        return ""
    if tool == "helm":
        dirs = [app.path]
        dirs += [
            posixpath.dirname(posixpath.normpath(posixpath.join(app.path, vf)))
            for vf in app.value_files
            if "://" not in vf and not vf.startswith("$")
        ]
        common = _common_dir([d for d in dirs])
        return "" if common.startswith("..") else common
    return app.path


def render_app(
    repo: DeployRepo | str | Path,
    rev: str,
    app: Any,
    *,
    bin_dir: str | Path | None = None,
    cache: bool | str | Path = True,
) -> RenderResult:
    """Render ``app`` at ``rev`` as Argo CD would (``kustomize build`` / ``helm template`` / plain YAML)."""
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    trees = _Trees(r)
    try:
        return _render(r, trees, _app(app), r.resolve(rev), bin_dir, _cache_dir(cache), cache is not False)
    finally:
        trees.close()


def _cache_dir(cache: bool | str | Path) -> Path | None:
    if cache is True:
        return default_render_cache()
    if cache is False:
        return None
    return Path(cache)


def _render(
    repo: DeployRepo, trees: _Trees, app: _App, rev: str, bin_dir: str | Path | None, cache_dir: Path | None, use: bool
) -> RenderResult:
    files = trees.files(rev)
    tool = _source_type(app, files)
    if tool == "absent":
        return RenderResult(tool="absent")
    if tool == "directory":
        prefix = f"{app.path}/" if app.path else ""
        docs: list[Any] = []
        names = sorted(f for f in files if f.startswith(prefix) and "/" not in f[len(prefix) :])
        for name in names:
            if name.endswith((*YAML_SUFFIXES, ".json")):
                try:
                    docs += load_documents(_git(repo.path, "show", f"{rev}:{name}").decode("utf-8", "replace"))
                except yaml.YAMLError as e:
                    return RenderResult(tool=tool, error=f"{name}: {first_lines(str(e))}")
        return RenderResult(tool=tool, docs=_digest_secrets(_plain(docs), _secret_key(cache_dir)))
    binary = find_tool(tool, bin_dir)
    if binary is None:
        return RenderResult(
            tool=tool,
            error=not_found(tool),
        )
    values_file = None
    if tool == "helm" and app.values:  # written only if the tool runs
        values_file = trees.scratch() / f"values-{hashlib.sha256(app.values.encode()).hexdigest()[:16]}.yaml"
    args = ["build", app.path or "."] if tool == "kustomize" else _helm_args(app, values_file)
    if isinstance(args, str):
        return RenderResult(tool=tool, error=args)
    inputs = _inputs(repo, trees, app, rev, tool)
    tree = trees.tree_sha(rev, inputs) or trees.tree_sha(rev, "")
    key_args = [a if a != str(values_file) else f"values:{app.values}" for a in args]
    key = hashlib.sha256(json.dumps([tool, tool_id(binary), inputs, tree, key_args]).encode()).hexdigest()
    if use and (hit := _cache_get(key, cache_dir)) is not None:
        return hit
    if values_file is not None and app.values is not None:
        values_file.write_text(app.values)
    root = trees.root(rev)
    home = trees.scratch() / "home"
    env = tool_env(home)
    with _lock:
        tool_runs[tool] += 1
    try:
        proc = subprocess.run(
            [str(binary), *args], cwd=root, env=env, capture_output=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:  # not cached: may pass next time
        return RenderResult(tool=tool, error=f"{tool} could not run: {e}")
    if proc.returncode != 0:
        result = RenderResult(tool=tool, error=first_lines(proc.stderr.decode("utf-8", "replace")))
    else:
        try:
            parsed = load_documents(proc.stdout.decode("utf-8", "replace"))
            result = RenderResult(tool=tool, docs=_digest_secrets(_plain(parsed), _secret_key(cache_dir)))
        except yaml.YAMLError as e:
            result = RenderResult(tool=tool, error=f"{tool} output is not YAML: {first_lines(str(e))}")
    if use:
        _cache_put(key, result, cache_dir)
    return result


def _plain(docs: list[Any]) -> list[Any]:
    """JSON-shaped documents (YAML timestamps become strings), so a cached render equals a fresh one."""
    out: list[Any] = json.loads(json.dumps(docs, default=str))
    return out


# -- the diff -------------------------------------------------------------------------------------


def _resources(docs: list[Any]) -> dict[tuple[Any, Any, Any], Any]:
    out: dict[tuple[Any, Any, Any], Any] = {}
    for i, d in enumerate(docs):
        meta = (d.get("metadata") if isinstance(d, dict) else None) or {}
        kind = d.get("kind") if isinstance(d, dict) else None
        out[(kind, meta.get("namespace"), meta.get("name") or f"#{i}")] = d
    return out


def _diff_rows(
    label: str, path: str, sha: str, parent: str | None, old: RenderResult, new: RenderResult
) -> Iterator[dict[str, Any]]:
    base = {
        "app": label,
        "path": path,
        "sha": sha,
        "parent": parent,
        "tool": new.tool if new.tool != "absent" else old.tool,
    }
    if old.tool == "absent" and new.tool == "absent":
        yield {
            **base,
            "change": RENDER_ERROR,
            "error": f"{path or '.'} is in neither tree (the commit's nor its parent's)",
        }
        return
    failed = False
    for side, rev, res in (("parent", parent, old), ("commit", sha, new)):
        if res.error is not None:
            failed = True
            yield {
                **base,
                "change": RENDER_ERROR,
                "error": f"{res.tool} failed at the {side} {(rev or '')[:10]}: {res.error}",
            }
    if failed:
        return
    olds, news = _resources(old.docs), _resources(new.docs)
    for key in list(olds) + [k for k in news if k not in olds]:
        o, n = olds.get(key), news.get(key)
        if o == n:
            continue
        for row in diff_documents("rendered.yaml", None if o is None else [o], None if n is None else [n]):
            yield {
                **base,
                "kind": key[0],
                "namespace": key[1],
                "name": key[2],
                "field": row["field"],
                "old": row["old"],
                "new": row["new"],
                "change": row["change"],
            }


def _apps_of(repo: DeployRepo, sha: str, app: Any) -> list[_App]:
    if app is None:
        return [_app(a) for a in repo.affected_apps(sha)["app"]]
    if isinstance(app, list | tuple | pd.DataFrame):
        items = [row for _, row in app.iterrows()] if isinstance(app, pd.DataFrame) else list(app)
        return [_app(a) for a in items]
    return [_app(app)]


def rendered_diff(
    repo: DeployRepo | str | Path,
    sha: str = "HEAD",
    app: Any = None,
    *,
    bin_dir: str | Path | None = None,
    cache: bool | str | Path = True,
    workers: int | None = None,
) -> pd.DataFrame:
    """What commit ``sha`` changes in the rendered manifests of ``app`` (schema :data:`schema.RENDERED_DIFF`).

    The app is rendered at the commit's first parent and at the commit with the tool Argo CD
    would use: ``kustomize build <path>`` for a Kustomize root, ``helm template <release> <chart>
    --namespace <ns> --include-crds -f <values files>...`` for a Helm chart (a directory with a
    ``Chart.yaml``), the YAML files themselves for a plain directory. One row per changed field
    of a rendered resource; a resource added or removed is one row with an empty ``field``.

    Args:
        repo: a :class:`DeployRepo` or the path of a deploy-config clone (never written to).
        sha: the commit.
        app: the path of a Kustomize root or chart directory, an Argo CD Application (its
            manifest or spec: ``source.path``, ``source.helm.valueFiles``, ``releaseName``,
            ``values``/``valuesObject``, ``parameters``, ``destination.namespace``), a row of
            ``Cluster.applications()``; a list (or frame) of them; or ``None`` for every app the
            commit reaches (``DeployRepo.affected_apps``).
        bin_dir: where ``kustomize`` and ``helm`` are (e.g. ``Sandbox().bin``); default
            ``$GITOPS_NB_KUSTOMIZE`` / ``$GITOPS_NB_HELM``, the sandbox's build, then ``PATH``.
        cache: ``True`` (memory and ``~/.cache/gitops-nb/renders``), a directory, or ``False``.
        workers: renders run at once (default: the CPU count, at most 4).

    A render that fails (a kustomize error, a template error, a missing values file) is a row
    with ``change="render-error"`` and the tool's first lines of stderr in ``error``; the other
    apps are still diffed. Secret values are never shown.
    """
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    full = r.resolve(sha)
    parents = _git(r.path, "rev-list", "--parents", "-n", "1", full).decode().split()[1:]
    parent = parents[0] if parents else None
    apps = _apps_of(r, full, app)
    cache_dir, use = _cache_dir(cache), cache is not False
    trees = _Trees(r)
    for rev in (parent, full):  # read once here, not in each worker
        if rev:
            trees.files(rev)
            trees.apps(rev)
    try:

        def both(a: _App) -> list[dict[str, Any]]:
            old = _render(r, trees, a, parent, bin_dir, cache_dir, use) if parent else RenderResult(tool="absent")
            new = _render(r, trees, a, full, bin_dir, cache_dir, use)
            return list(_diff_rows(a.label, a.path, full, parent, old, new))

        n = workers or min(4, os.cpu_count() or 1)
        if n > 1 and len(apps) > 1:
            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(both, apps))
        else:
            results = [both(a) for a in apps]
    finally:
        trees.close()
    return schema.frame(schema.RENDERED_DIFF, [row for rows in results for row in rows])
