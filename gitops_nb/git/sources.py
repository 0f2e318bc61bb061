"""Argo CD Applications and the repo files each one is built from, for every source type.

An Application source (the ``spec.source`` / ``spec.sources[]`` dict of an Application) is
read the way Argo CD's repo server reads it (``reposerver/repository``, ``util/app/discovery``):

- its type is explicit when exactly one of ``helm``, ``kustomize``, ``directory`` or ``plugin`` is
  set (two is an error), else detected at the source path: a kustomization file makes it Kustomize,
  a ``Chart.yaml`` Helm, anything else a plain directory; ``chart`` makes it a chart from a Helm
  repository (no files here); a source with only ``ref`` lends its repository to ``$ref/...``
  value files and builds nothing;
- **Kustomize**: the kustomization closure (``resources``, ``bases``, ``components``, patches,
  generators; :mod:`~gitops_nb.git.kustomize`), plus the Application's ``kustomize.components``;
- **Helm**: every file of the chart directory (templates, ``Chart.yaml``, ``values.yaml``,
  ``charts/``, files read with ``.Files``), the chart directories of its local ``file://``
  dependencies, each ``valueFiles`` entry (relative to the chart, ``/`` = the repository root,
  ``$ref/...`` = the root of the repository of the source whose ``ref`` is ``ref``; globs
  expanded) and ``fileParameters`` paths; inline ``values`` / ``valuesObject`` are no file;
- **directory**: the ``.yaml``/``.yml``/``.json``/``.jsonnet`` files at the path (below it with
  ``recurse``), ``include``/``exclude`` being globs matched against the path relative to the source
  path, where ``*`` also matches ``/`` and ``{a,b}`` are alternatives (gobwas/glob, no separators);
  with ``.jsonnet`` files it is **jsonnet**: the ``.libsonnet``/``.jsonnet`` files under the path
  and every file under ``jsonnet.libs`` (relative to the repository root) join in;
- **plugin**: every file under the source path (what Argo CD streams to the plugin);
- the ``argocd.argoproj.io/manifest-generate-paths`` annotation (``;``-separated; relative to each
  source path, ``.`` the path itself, a leading ``/`` the repository root; a path or a glob)
  replaces the file set, as it decides which commits refresh the app.

The file that defines an Application in the repo (a plain manifest, a chart template, an
ApplicationSet) is one of its files too: a change to its spec changes the app.

Applications are learned from the cluster (:func:`specs_from`: ``Cluster.applications()`` rows or
raw Application objects) or from git alone (:func:`applications_in_tree`): plain Application
manifests, Applications in an app-of-apps chart's templates (``{{ .Values.x }}`` filled from the
chart's ``values.yaml``; a chart this cannot read -- a ``range``, ``default``, ``printf``, a needed
field that keeps another ``{{ }}`` -- or one its Application gives values is rendered with the real
``helm template``, as Argo CD does, when a renderer is given; without helm such a document is
skipped with a row that says so), and ApplicationSets whose ``list`` and ``git`` (directories,
files) generators are evaluated on the tree; other generators are reported, not run.
Broken input (a chart whose ``Chart.yaml`` is not YAML, a values file that is not YAML, a missing
value file, an unknown source type) sets the row's ``error``; it never raises.
"""

from __future__ import annotations

import copy
import functools
import json
import posixpath
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from .kustomize import Kustomization, kustomization_paths, parse_kustomization
from .manifests import KUSTOMIZATION_FILES, load_documents

__all__ = [
    "GENERATE_PATHS",
    "AppSpec",
    "ChartRenderer",
    "ChartValues",
    "Tree",
    "app_rows",
    "applications_in_tree",
    "glob_match",
    "is_template_path",
    "normalize_repo_url",
    "source_files",
    "specs_from",
]

#: the annotation that names the paths whose changes refresh an Application
GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"
ARGO_GROUP = "argoproj.io"

_SOURCE_KEYS = {"repoURL", "path", "targetRevision", "chart", "ref", "helm", "kustomize", "directory", "plugin", "name"}
_TYPE_KEYS = ("helm", "kustomize", "directory", "plugin")
_MANIFEST_FILE = re.compile(r".*\.(yaml|yml|json|jsonnet)$")
_PLACEHOLDER = "__gitops_nb_templated__"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- the tree ---------------------------------------------------------------------------


class Tree:
    """The files of one revision: their paths and a reader of their text (read once, cached).

    ``read`` takes paths and returns their text (``None`` for a file it cannot read).
    """

    def __init__(
        self,
        paths: Iterable[str],
        read: Callable[[list[str]], Mapping[str, str | None]],
        kustomizations: Mapping[str, Kustomization] | None = None,
    ) -> None:
        self.paths = sorted(set(paths))
        self._set = set(self.paths)
        self._read = read
        self._text: dict[str, str | None] = {}
        self._dirs: set[str] | None = None
        self._kusts: dict[str, Kustomization] = dict(kustomizations or {})

    def kustomization(self, path: str) -> Kustomization:
        """The kustomization file at ``path`` parsed, once per tree (or as given: the repo's, parsed per blob)."""
        k = self._kusts.get(path)
        if k is None:
            k = self._kusts[path] = parse_kustomization(path, self.read(path) or "")
        return k

    def __contains__(self, path: object) -> bool:
        return path in self._set

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read many files in one go (what later :meth:`read` calls find cached)."""
        want = [p for p in dict.fromkeys(paths) if p in self._set and p not in self._text]
        if want:
            got = self._read(want)
            self._text.update({p: got.get(p) for p in want})

    def read(self, path: str) -> str | None:
        """The text of ``path``; ``None`` if it is not in the tree or cannot be read."""
        if path not in self._set:
            return None
        self.prefetch([path])
        return self._text.get(path)

    def under(self, d: str) -> list[str]:
        """Every file below directory ``d`` (``""`` = the whole tree)."""
        if d in ("", "."):
            return list(self.paths)
        prefix = d.rstrip("/") + "/"
        out = []
        for p in self.paths[bisect_left(self.paths, prefix) :]:
            if not p.startswith(prefix):
                break
            out.append(p)
        return out

    def is_dir(self, d: str) -> bool:
        return d in ("", ".") or bool(self.under(d))

    def dirs(self) -> set[str]:
        """Every directory that holds a file (at any depth), the root excluded."""
        if self._dirs is None:
            found: set[str] = set()
            for p in self.paths:
                parts = p.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    found.add("/".join(parts[:i]))
            self._dirs = found
        return self._dirs


# -- globs ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str, sep: bool) -> re.Pattern[str]:
    """A glob as a regex: ``*`` ``?`` ``[..]`` ``{a,b}`` ``**``; with ``sep`` ``*``/``?`` stop at ``/``."""
    out: list[str] = []
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if pattern.startswith("**", i):
                j = i + 2
                if sep and j < n and pattern[j] == "/":  # **/ : zero or more directories
                    out.append("(?:.*/)?")
                    j += 1
                else:
                    out.append(".*")
                i = j
                continue
            out.append("[^/]*" if sep else ".*")
        elif c == "?":
            out.append("[^/]" if sep else ".")
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, path: str, *, sep: bool = False) -> bool:
    """Match ``path`` against a glob.

    ``sep=False`` is Argo CD's directory ``include``/``exclude`` (gobwas/glob with no separators:
    ``*`` matches ``/`` too); ``sep=True`` is ``path.Match``-like (``*`` stays in one segment) with
    ``**`` for any depth (ApplicationSet files generator, manifest-generate-paths).
    """
    try:
        return _glob_regex(pattern, sep).fullmatch(path) is not None
    except re.error:
        return False


def _is_glob(p: str) -> bool:
    return any(c in p for c in "*?[{")


# -- URLs -------------------------------------------------------------------------------


def normalize_repo_url(url: str | None) -> str:
    """``https://github.com/org/repo.git``, ``git@github.com:org/repo`` -> ``github.com/org/repo``."""
    u = (url or "").strip().lower()
    u = re.sub(r"^[a-z][a-z0-9+.-]*://", "", u)
    u = u.split("@", 1)[-1] if "@" in u.split("/", 1)[0] else u
    if ":" in u.split("/", 1)[0]:
        host, _, rest = u.partition(":")
        u = f"{host}/{rest}" if not rest.isdigit() and not rest.split("/", 1)[0].isdigit() else u
    return u.rstrip("/").removesuffix(".git")


# -- one source -------------------------------------------------------------------------


@dataclass
class SourceFiles:
    """What one source is built from."""

    type: str
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    remote: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def _norm(base: str, ref: str) -> str | None:
    if ref.startswith("/"):
        base, ref = "", ref.lstrip("/")
    p = posixpath.normpath(posixpath.join(base, ref)) if ref else (base or ".")
    return None if p.startswith("..") else ("" if p == "." else p)


def _kustomize_closure(d: str, tree: Tree, out: SourceFiles, seen: set[str]) -> None:
    if d in seen:
        return
    seen.add(d)
    kfile = next((f"{d}/{n}" if d else n for n in KUSTOMIZATION_FILES if (f"{d}/{n}" if d else n) in tree), None)
    if kfile is None:  # a directory of plain manifests, or a file
        if d in tree:
            out.files.add(d)
        else:
            out.files.update(tree.under(d))
        return
    k = tree.kustomization(kfile)
    out.files.add(kfile)
    out.dirs.add(d)
    out.remote.update(k.remote)
    if k.error:
        out.errors.append(k.error)
    for r in k.refs:
        _kustomize_closure(r, tree, out, seen)


def _detect(path: str, tree: Tree) -> str:
    names = {posixpath.basename(p) for p in tree.under(path) if posixpath.dirname(p) == path}
    if names & set(KUSTOMIZATION_FILES):
        return "kustomize"
    if "Chart.yaml" in names:
        return "helm"
    return "directory"


def _chart_files(chart: str, tree: Tree, out: SourceFiles, seen: set[str]) -> None:
    if chart in seen:
        return
    seen.add(chart)
    out.dirs.add(chart)
    out.files.update(tree.under(chart))
    for meta in ("Chart.yaml", "requirements.yaml"):
        f = f"{chart}/{meta}" if chart else meta
        if f not in tree:
            if meta == "Chart.yaml":
                out.errors.append(f"{chart or '.'} has no Chart.yaml: not a Helm chart at this revision")
            continue
        try:
            docs = load_documents(tree.read(f) or "")
        except yaml.YAMLError as e:
            out.errors.append(f"broken chart: {f} is not valid YAML ({str(e).splitlines()[0]})")
            continue
        doc = docs[0] if docs and isinstance(docs[0], dict) else {}
        for dep in doc.get("dependencies") or []:
            repo = dep.get("repository") if isinstance(dep, dict) else None
            if isinstance(repo, str) and repo.startswith("file://"):
                d = _norm(chart, repo[len("file://") :])
                if d is not None and tree.is_dir(d):
                    _chart_files(d, tree, out, seen)
                else:
                    out.errors.append(f"{f}: dependency {repo} is not in the repo")
            elif isinstance(repo, str) and repo:
                out.remote.add(f"{repo} {dep.get('name')}@{dep.get('version')}")


def _check_values(f: str, tree: Tree, out: SourceFiles) -> None:
    try:
        load_documents(tree.read(f) or "")
    except yaml.YAMLError as e:
        out.errors.append(f"values file {f} is not valid YAML ({str(e).splitlines()[0]})")


def _value_files(
    src: Mapping[str, Any],
    chart: str | None,
    refs: Mapping[str, Mapping[str, Any]],
    this_repo: Callable[[str | None], bool],
    tree: Tree,
    out: SourceFiles,
) -> None:
    helm = _dict(src.get("helm"))
    ignore_missing = bool(helm.get("ignoreMissingValueFiles"))
    entries = [v for v in helm.get("valueFiles") or [] if isinstance(v, str)]
    entries += [
        p["path"] for p in helm.get("fileParameters") or [] if isinstance(p, dict) and isinstance(p.get("path"), str)
    ]
    for v in entries:
        if v.startswith("$"):
            name, _, rest = v[1:].partition("/")
            ref = refs.get(name)
            if ref is None:
                out.errors.append(f"valueFiles {v}: no source of this Application has ref {name!r}")
                continue
            if not this_repo(ref.get("repoURL")):
                out.remote.add(f"{ref.get('repoURL')} {rest}")
                continue
            target = _norm("", rest)
        elif "://" in v:
            out.remote.add(v)
            continue
        elif chart is None:  # a relative value file of a chart that is not in this repo
            continue
        else:
            target = _norm(chart, v)
        if target is None:
            out.errors.append(f"valueFiles {v} points outside the repository")
            continue
        if _is_glob(target):
            hits = [p for p in tree.paths if glob_match(target, p, sep=True)]
            if not hits and not ignore_missing:
                out.errors.append(f"valueFiles {v} matches no file")
            for h in hits:
                out.files.add(h)
                _check_values(h, tree, out)
        elif target in tree:
            out.files.add(target)
            _check_values(target, tree, out)
        elif not ignore_missing:
            out.errors.append(f"missing value file {v} ({target} is not in the repo at this revision)")


def source_files(
    src: Mapping[str, Any],
    tree: Tree,
    *,
    refs: Mapping[str, Mapping[str, Any]] | None = None,
    this_repo: Callable[[str | None], bool] = lambda url: True,
) -> SourceFiles:
    """The files of ``tree`` one Application source is built from (see the module docstring).

    ``refs`` maps each ``ref`` name of the Application's sources to that source;
    ``this_repo(repoURL)`` tells whether a git source's repository is the one ``tree`` is of.
    """
    refs = refs or {}
    unknown = sorted(k for k in src if k not in _SOURCE_KEYS)
    explicit = [k for k in _TYPE_KEYS if src.get(k) is not None]
    chart = src.get("chart")
    path = src.get("path")
    if unknown:
        return SourceFiles("unknown", errors=[f"unknown source type: {', '.join(unknown)}"])
    if len(explicit) > 1:
        return SourceFiles("unknown", errors=[f"multiple source types set: {', '.join(explicit)}"])
    if chart:  # a chart from a Helm (or OCI) repository: only $ref value files can be here
        out = SourceFiles("helm-repo", remote={f"{src.get('repoURL')} {chart}@{src.get('targetRevision')}"})
        _value_files(src, None, refs, this_repo, tree, out)
        return out
    if not isinstance(path, str):
        if src.get("ref"):
            return SourceFiles("ref")
        return SourceFiles("unknown", errors=["source has neither path nor chart"])
    if not this_repo(src.get("repoURL")):
        out = SourceFiles("remote", remote={f"{src.get('repoURL')} {path}"})
        _value_files(src, None, refs, this_repo, tree, out)
        return out
    d = _norm("", path)
    if d is None:
        return SourceFiles("unknown", errors=[f"path {path} points outside the repository"])
    if not tree.is_dir(d):
        kind = explicit[0] if explicit else "directory"
        return SourceFiles(kind, dirs={d}, errors=[f"path {d} is not in the repo at this revision"])
    kind = explicit[0] if explicit else _detect(d, tree)
    out = SourceFiles(kind, dirs={d})
    if kind == "kustomize":
        seen: set[str] = set()
        _kustomize_closure(d, tree, out, seen)
        comps = (src.get("kustomize") or {}).get("components") if isinstance(src.get("kustomize"), dict) else None
        for c in comps or []:
            if isinstance(c, str) and (cd := _norm(d, c)) is not None:
                _kustomize_closure(cd, tree, out, seen)
    elif kind == "helm":
        _chart_files(d, tree, out, set())
        _value_files(src, d, refs, this_repo, tree, out)
    elif kind == "plugin":
        out.files.update(tree.under(d))
    else:
        _directory(src, d, tree, out)
    return out


def _directory(src: Mapping[str, Any], d: str, tree: Tree, out: SourceFiles) -> None:
    opts: dict[str, Any] = _dict(src.get("directory"))
    recurse, include, exclude = bool(opts.get("recurse")), opts.get("include") or "", opts.get("exclude") or ""
    jsonnet: dict[str, Any] = _dict(opts.get("jsonnet"))
    for p in tree.under(d):
        rel = p[len(d) + 1 :] if d else p
        if not recurse and "/" in rel:
            continue
        if not _MANIFEST_FILE.fullmatch(posixpath.basename(p)):
            continue
        if exclude and glob_match(str(exclude), rel):
            continue
        if include and not glob_match(str(include), rel):
            continue
        out.files.add(p)
    if any(f.endswith(".jsonnet") for f in out.files):
        out.type = "jsonnet"  # imports are resolved against the source path and the libs
        out.files.update(p for p in tree.under(d) if p.endswith((".libsonnet", ".jsonnet")))
        for lib in jsonnet.get("libs") or []:
            if isinstance(lib, str) and (ld := _norm("", lib)) is not None:
                out.dirs.add(ld)
                out.files.update(tree.under(ld) if tree.is_dir(ld) else [ld] if ld in tree else [])


def _generate_paths(value: str, source_paths: Sequence[str], tree: Tree) -> set[str]:
    """The files the manifest-generate-paths annotation names (Argo CD's AppFilesHaveChanged)."""
    patterns: list[str] = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        if item.startswith("/"):
            patterns.append(item.lstrip("/"))
        else:
            patterns += [posixpath.normpath(posixpath.join(sp, item)) for sp in source_paths or [""]]
    found: set[str] = set()
    for pat in patterns:
        pat = "" if pat == "." else pat
        found.update(tree.under(pat) if tree.is_dir(pat) else [pat] if pat in tree else [])
        if _is_glob(pat):
            found.update(p for p in tree.paths if glob_match(pat, p, sep=True))
    return found


# -- one Application --------------------------------------------------------------------


@dataclass
class AppSpec:
    """One Argo CD Application, from the cluster or from the repo."""

    name: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    namespace: str | None = None  # its destination namespace
    annotations: dict[str, str] = field(default_factory=dict)
    defined_in: str | None = None  # the repo file that defines it
    extra_files: list[str] = field(default_factory=list)  # e.g. an app-of-apps chart's values, a generator file
    error: str | None = None


def _spec_from_doc(doc: Mapping[str, Any], file: str | None) -> AppSpec:
    meta: dict[str, Any] = _dict(doc.get("metadata"))
    spec: dict[str, Any] = _dict(doc.get("spec"))
    raw = spec.get("sources") if isinstance(spec.get("sources"), list) and spec.get("sources") else None
    sources = [
        s for s in raw or ([spec["source"]] if isinstance(spec.get("source"), dict) else []) if isinstance(s, dict)
    ]
    ann = _dict(meta.get("annotations"))
    dest = _dict(spec.get("destination"))
    name = meta.get("name")
    return AppSpec(
        name=str(name) if name else f"{file}#unnamed",
        sources=sources,
        namespace=dest.get("namespace"),
        annotations={str(k): str(v) for k, v in (ann or {}).items()},
        defined_in=file,
        error=None if name else "Application without metadata.name",
    )


def specs_from(applications: Any) -> list[AppSpec]:
    """Applications from the cluster: ``Cluster.applications()`` rows (a DataFrame), raw Application
    objects (dicts with ``metadata`` and ``spec``), or :class:`AppSpec` objects.

    A row carries its sources (``repo_url``, ``path``, ``target_revision``, ``chart``, ``ref``, and
    ``helm``/``kustomize``/``directory``/``plugin`` when the cluster read gave them) but no
    annotations: pass the raw objects for ``manifest-generate-paths``.
    """
    if hasattr(applications, "to_dict"):  # only the columns read below, not a dict of every column per row
        cols = [c for c in ("name", "sources", "dest_namespace") if c in applications.columns]
        records: list[Any] = [
            dict(zip(cols, r, strict=True)) for r in zip(*(applications[c] for c in cols), strict=True)
        ]
    else:
        records = list(applications)
    out = []
    for r in records:
        if isinstance(r, AppSpec):
            out.append(r)
        elif isinstance(r, dict) and "spec" in r:
            out.append(_spec_from_doc(r, None))
        elif isinstance(r, dict):
            sources = []
            for s in r.get("sources") or []:
                d = {"repoURL": s.get("repo_url"), "path": s.get("path"), "targetRevision": s.get("target_revision")}
                d |= {k: s[k] for k in ("chart", "ref", *_TYPE_KEYS) if s.get(k) is not None}
                sources.append({k: v for k, v in d.items() if v is not None})
            out.append(AppSpec(name=str(r.get("name")), sources=sources, namespace=r.get("dest_namespace")))
    return out


def app_row(spec: AppSpec, tree: Tree, this_repo: Callable[[str | None], bool]) -> dict[str, Any]:
    """One :data:`schema.APPS` row for an Application."""
    refs = {str(s["ref"]): s for s in spec.sources if s.get("ref")}
    files: set[str] = set()
    dirs: set[str] = set()
    remote: set[str] = set()
    errors: list[str] = [spec.error] if spec.error else []
    types: list[str] = []
    for src in spec.sources:
        sf = source_files(src, tree, refs=refs, this_repo=this_repo)
        files |= sf.files
        dirs |= sf.dirs
        remote |= sf.remote
        errors += sf.errors
        if sf.type != "ref" and sf.type not in types:
            types.append(sf.type)
    if not spec.sources and not spec.error:
        errors.append("Application has no source")
    gen = spec.annotations.get(GENERATE_PATHS)
    if gen:
        paths = [
            _norm("", s["path"]) or ""
            for s in spec.sources
            if isinstance(s.get("path"), str) and this_repo(s.get("repoURL"))
        ]
        files = _generate_paths(gen, paths, tree)
    files.update(f for f in (spec.defined_in, *spec.extra_files) if f and f in tree)
    return {
        "app": spec.name,
        "kustomization": spec.defined_in,
        "namespace": spec.namespace,
        "files": sorted(files),
        "dirs": sorted(dirs),
        "remote": sorted(remote),
        "source_type": "+".join(types) or ("unknown" if errors else "none"),
        "error": "; ".join(dict.fromkeys(errors)) or None,
    }


def app_rows(
    specs: Iterable[AppSpec], tree: Tree, this_repo: Callable[[str | None], bool], defined: Iterable[AppSpec] = ()
) -> list[dict[str, Any]]:
    """Rows for ``specs``; a spec from the cluster takes the defining file of the same-named one in ``defined``."""
    by_name = {d.name: d for d in defined if not d.error}
    rows = []
    for s in specs:
        if s.defined_in is None and s.name in by_name:
            d = by_name[s.name]
            s = copy.copy(s)
            s.defined_in, s.extra_files = d.defined_in, list(d.extra_files)
        rows.append(app_row(s, tree, this_repo))
    return rows


# -- Applications defined in the repo ---------------------------------------------------


def is_template_path(path: str) -> bool:
    """A file under a ``templates/`` directory, or a ``.tpl`` helper: maybe a Helm template."""
    return path.endswith(".tpl") or "templates" in path.split("/")[:-1]


def _chart_root(path: str, tree: Tree) -> str | None:
    parts = path.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "templates":
            root = "/".join(parts[:i])
            if (f"{root}/Chart.yaml" if root else "Chart.yaml") in tree:
                return root
    return None


_VALUES_REF = re.compile(r"\{\{-?\s*\.Values\.([A-Za-z0-9_.]+)\s*(\|\s*quote\s*)?-?\}\}")
_CONTROL = re.compile(r"^\s*\{\{-?\s*(/\*.*\*/|if|else|end|with|range|define|template|include)\b.*\}\}\s*$")
_ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}")


def _lookup(data: Any, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(data, dict) or k not in data:
            return None
        data = data[k]
    return data


def _needed_templated(doc: Mapping[str, Any]) -> list[str]:
    """The fields gitops-nb needs from an Application that still hold a template placeholder."""
    bad = []
    meta = _dict(doc.get("metadata"))
    if _PLACEHOLDER in json.dumps(meta.get("name")) or _PLACEHOLDER in json.dumps(
        (meta.get("annotations") or {}).get(GENERATE_PATHS) if isinstance(meta.get("annotations"), dict) else None
    ):
        bad.append("metadata")
    spec = _dict(doc.get("spec"))
    for key in ("source", "sources"):
        if _PLACEHOLDER not in json.dumps(spec.get(key), default=str):
            continue
        for i, s in enumerate(spec[key] if isinstance(spec[key], list) else [spec[key]]):
            for f in ("repoURL", "path", "chart", "ref", *_TYPE_KEYS):
                if isinstance(s, dict) and _PLACEHOLDER in json.dumps(s.get(f), default=str):
                    bad.append(f"spec.{key}{f'[{i}]' if key == 'sources' else ''}.{f}")
    return bad


def _template_apps(file: str, text: str, tree: Tree, this_repo: Callable[[str | None], bool]) -> list[AppSpec]:
    """Applications in an app-of-apps chart's template, where the fields we need are not templated."""
    chart = _chart_root(file, tree)
    values_file = (f"{chart}/values.yaml" if chart else "values.yaml") if chart is not None else None
    values: Any = {}
    if values_file and values_file in tree:
        try:
            docs = load_documents(tree.read(values_file) or "")
            values = docs[0] if docs else {}
        except yaml.YAMLError:
            values = {}
    out: list[AppSpec] = []
    stack: list[str] = []  # the open {{ if/with/range/define }} blocks, across documents
    for i, chunk in enumerate(re.split(r"(?m)^---\s*$", text)):
        used_values = False

        def fill(m: re.Match[str]) -> str:
            nonlocal used_values
            v = _lookup(values, m.group(1))
            if v is None or isinstance(v, dict | list):
                return m.group(0)
            used_values = True
            return json.dumps(v) if m.group(2) else str(v)

        lines = []
        in_range = "range" in stack
        for line in chunk.splitlines():
            if c := _CONTROL.match(line):
                word = c.group(1)
                if word in ("if", "with", "range", "define"):
                    stack.append(word)
                elif word == "end" and stack:
                    stack.pop()
                in_range = in_range or "range" in stack
                continue
            lines.append(_VALUES_REF.sub(fill, line))
        if "argoproj.io" not in chunk or not re.search(r"(?m)^kind:\s*Application\s*$", chunk):
            continue
        body = _ANY_TEMPLATE.sub(_PLACEHOLDER, "\n".join(lines))
        where = f"{file}#{i}"
        if in_range:
            out.append(
                AppSpec(
                    name=where, defined_in=file, error="Application inside a Helm {{ range }}: skipped (not rendered)"
                )
            )
            continue
        try:
            docs = load_documents(body)
        except yaml.YAMLError as e:
            out.append(
                AppSpec(
                    name=where, defined_in=file, error=f"Helm template not readable as YAML: {str(e).splitlines()[0]}"
                )
            )
            continue
        for doc in docs:
            if not (isinstance(doc, dict) and doc.get("kind") == "Application"):
                continue
            if bad := _needed_templated(doc):
                out.append(
                    AppSpec(
                        name=where,
                        defined_in=file,
                        error=f"Application in a Helm template with {{{{ }}}} in {', '.join(bad)}: skipped",
                    )
                )
                continue
            spec = _spec_from_doc(doc, file)
            if used_values and values_file:
                spec.extra_files.append(values_file)
            out.append(spec)
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(_flatten(v, key))
            else:
                out[key] = v
    return out


def _path_params(p: str, go: bool) -> dict[str, Any]:
    base = posixpath.basename(p)
    norm = re.sub(r"[^a-zA-Z0-9-.]", "-", base).lower()
    segs = p.split("/") if p else []
    if go:
        return {"path": {"path": p, "basename": base, "basenameNormalized": norm, "segments": segs}}
    flat: dict[str, Any] = {"path": p, "path.basename": base, "path.basenameNormalized": norm}
    flat.update({f"path[{i}]": s for i, s in enumerate(segs)})
    return flat


_FAST = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_GO = re.compile(r"\{\{-?\s*([^{}]*?)\s*-?\}\}")


def _render(value: Any, params: Mapping[str, Any], go: bool) -> Any:
    """Fill an ApplicationSet template's ``{{param}}`` (or ``{{.param.x}}``, ``{{index .path.segments N}}``)."""
    if isinstance(value, dict):
        return {k: _render(v, params, go) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, params, go) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1)
        if not go:
            v = params.get(expr)
        elif mi := re.fullmatch(r"index\s+\.([\w.]+)\s+(\d+)", expr):
            seq = _lookup(params, mi.group(1))
            v = seq[int(mi.group(2))] if isinstance(seq, list) and int(mi.group(2)) < len(seq) else None
        elif expr.startswith("."):
            v = _lookup(params, expr[1:])
        else:
            v = None
        return m.group(0).replace("{{", _PLACEHOLDER + "{").replace("}}", "}") if v is None else str(v)

    return (_GO if go else _FAST).sub(sub, value)


def _appset_apps(
    file: str, doc: Mapping[str, Any], tree: Tree, this_repo: Callable[[str | None], bool]
) -> list[AppSpec]:
    meta = _dict(doc.get("metadata"))
    name = str(meta.get("name") or f"{file}#appset")
    spec = _dict(doc.get("spec"))
    go = bool(spec.get("goTemplate"))
    template = _dict(spec.get("template"))
    out: list[AppSpec] = []
    for gi, gen in enumerate(spec.get("generators") or []):
        if not isinstance(gen, dict):
            continue
        kinds = list(gen)
        params_list: list[tuple[dict[str, Any], str | None]] = []
        if "list" in gen and isinstance(gen["list"], dict):
            params_list = [
                (e if go else _flatten(e), None) for e in gen["list"].get("elements") or [] if isinstance(e, dict)
            ]
        elif "git" in gen and isinstance(gen["git"], dict):
            g = gen["git"]
            if not this_repo(g.get("repoURL")):
                continue  # another repository's generator: its apps are not built from this tree
            dirs = [d for d in g.get("directories") or [] if isinstance(d, dict) and isinstance(d.get("path"), str)]
            if dirs:
                inc = [d["path"] for d in dirs if not d.get("exclude")]
                exc = [d["path"] for d in dirs if d.get("exclude")]
                for d in sorted(tree.dirs()):
                    if any(glob_match(p, d, sep=True) for p in inc) and not any(
                        glob_match(p, d, sep=True) for p in exc
                    ):
                        params_list.append((_path_params(d, go), None))
            for fg in g.get("files") or []:
                if not isinstance(fg, dict) or not isinstance(fg.get("path"), str):
                    continue
                for f in (p for p in tree.paths if glob_match(fg["path"], p, sep=True)):
                    try:
                        data = (
                            json.loads(tree.read(f) or "")
                            if f.endswith(".json")
                            else load_documents(tree.read(f) or "")
                        )
                    except (ValueError, yaml.YAMLError) as e:
                        out.append(
                            AppSpec(name=f"{name}:{f}", defined_in=file, error=f"generator file {f} unreadable: {e}")
                        )
                        continue
                    items = data if isinstance(data, list) else [data]
                    if not f.endswith(".json") and len(items) == 1 and isinstance(items[0], list):
                        items = items[0]
                    dparams = _path_params(posixpath.dirname(f), go)
                    if go:
                        dparams["path"]["filename"] = posixpath.basename(f)
                    else:
                        dparams["path.filename"] = posixpath.basename(f)
                    for item in items:
                        if isinstance(item, dict):
                            params_list.append(({**(item if go else _flatten(item)), **dparams}, f))
        else:
            out.append(
                AppSpec(
                    name=f"{name}#gen{gi}",
                    defined_in=file,
                    error=f"ApplicationSet {name}: generator {', '.join(map(str, kinds))} is not evaluated from git",
                )
            )
            continue
        for params, gen_file in params_list:
            rendered = _render(copy.deepcopy(template), params, go)
            rendered = {"kind": "Application", "apiVersion": "argoproj.io/v1alpha1", **rendered}
            bad = _needed_templated(rendered)
            app = _spec_from_doc(rendered, file)
            if bad:
                app.error = f"ApplicationSet {name}: unresolved template parameters in {', '.join(bad)}"
            if gen_file:
                app.extra_files.append(gen_file)
            out.append(app)
    return out


@dataclass(frozen=True)
class ChartValues:
    """How an app-of-apps chart is rendered (as the Application pointing at it says, or the chart's defaults).

    ``value_files`` are repo paths; ``values`` inline YAML; ``parameters`` (name, value, forceString).
    """

    release: str
    namespace: str = "argocd"  # where an app-of-apps' Applications live, unless its Application says
    value_files: tuple[str, ...] = ()
    values: str | None = None
    parameters: tuple[tuple[str, str, bool], ...] = ()


#: renders a chart directory of the tree (``helm template``): its documents, each with the repo path of
#: the template it came from, or why it could not (``helm not found: ...``, ``helm template failed: ...``)
ChartRenderer = Callable[[str, ChartValues], tuple[list[tuple[str | None, Any]], str | None]]

_APP_KIND = re.compile(r"(?m)^\s*kind:\s*[\"']?Application(Set)?[\"']?\s*$")


def _chart_values(chart: str, app: AppSpec, src: Mapping[str, Any], tree: Tree) -> ChartValues:
    """How ``app`` (one of its sources is ``src``) has Argo CD render ``chart``."""
    helm = _dict(src.get("helm"))
    files: list[str] = []
    for v in helm.get("valueFiles") or []:
        if not isinstance(v, str) or v.startswith("$") or "://" in v:
            continue  # another source's or a URL's values: not in this tree
        target = _norm(chart, v)
        if target is not None and (target in tree or not helm.get("ignoreMissingValueFiles")):
            files.append(target)
    values = helm.get("values")
    if helm.get("valuesObject") is not None:
        values = yaml.safe_dump(helm["valuesObject"], sort_keys=False)
    params = tuple(
        (str(p["name"]), str(p.get("value", "")), bool(p.get("forceString")))
        for p in helm.get("parameters") or []
        if isinstance(p, dict) and p.get("name")
    )
    return ChartValues(
        release=str(helm.get("releaseName") or app.name),
        namespace=str(app.namespace or "argocd"),
        value_files=tuple(files),
        values=str(values) if values else None,
        parameters=params,
    )


def _pointed_at(
    apps: Iterable[AppSpec], tree: Tree, this_repo: Callable[[str | None], bool]
) -> dict[str, list[ChartValues]]:
    """The charts of this tree that Applications build, with how each renders them."""
    out: dict[str, list[ChartValues]] = {}
    for app in apps:
        for src in app.sources:
            path = src.get("path")
            if src.get("chart") or not isinstance(path, str) or not this_repo(src.get("repoURL")):
                continue
            if any(src.get(k) is not None for k in ("kustomize", "directory", "plugin")):
                continue
            d = _norm("", path)
            if d is not None and (f"{d}/Chart.yaml" if d else "Chart.yaml") in tree:
                how = _chart_values(d, app, src, tree)
                if how not in out.setdefault(d, []):
                    out[d].append(how)
    return out


def _templates(chart: str, tree: Tree) -> list[str]:
    return [p for p in tree.under(f"{chart}/templates" if chart else "templates") if p.endswith((".yaml", ".yml"))]


def _is_app_of_apps(chart: str, tree: Tree) -> bool:
    """Whether a chart's templates make Applications or ApplicationSets."""
    return any(_APP_KIND.search(tree.read(p) or "") for p in _templates(chart, tree))


def _rendered_apps(
    chart: str,
    docs: list[tuple[str | None, Any]],
    how: ChartValues,
    tree: Tree,
    this_repo: Callable[[str | None], bool],
) -> list[AppSpec]:
    """The Applications (and ApplicationSets' apps) in a chart's ``helm template`` output."""
    values = [f for f in (f"{chart}/values.yaml" if chart else "values.yaml",) if f in tree]
    values += [f for f in how.value_files if f not in values]
    helpers = [p for p in tree.under(f"{chart}/templates" if chart else "templates") if p.endswith(".tpl")]
    out: list[AppSpec] = []
    for src, doc in docs:
        if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith(ARGO_GROUP):
            continue
        file = src if src is not None and src in tree else (f"{chart}/Chart.yaml" if chart else "Chart.yaml")
        if doc.get("kind") == "Application":
            specs = [_spec_from_doc(doc, file)]
        elif doc.get("kind") == "ApplicationSet":
            specs = _appset_apps(file, doc, tree, this_repo)
        else:
            continue
        for spec in specs:
            spec.extra_files += [f for f in (*values, *helpers) if f not in spec.extra_files]
        out += specs
    return out


def applications_in_tree(
    tree: Tree,
    candidates: Iterable[str],
    this_repo: Callable[[str | None], bool] = lambda url: True,
    *,
    render: ChartRenderer | None = None,
    given: Iterable[AppSpec] = (),
) -> list[AppSpec]:
    """The Applications the repo defines: ``candidates`` are the files that may hold them
    (YAML naming ``argoproj.io``); plain manifests, app-of-apps chart templates, ApplicationSets.

    An app-of-apps chart (its templates make Applications, or an Application of the repo or of
    ``given`` builds it and its templates name ``kind: Application``) that the ``{{ .Values.x }}``
    substitution cannot read (a ``range``, ``default``, ``printf``...), or that an Application
    renders with its own values, is rendered with ``render`` (``helm template``) when given: its
    Applications are the rendered ones. If it cannot be rendered, the skipped rows stay and say why.
    """
    files = sorted(set(candidates))
    tree.prefetch(files)
    out: list[AppSpec] = []
    simple: dict[str, list[AppSpec]] = {}  # chart -> the Applications its templates gave to the substitution
    for f in files:
        text = tree.read(f)
        if text is None:
            continue
        if "{{" in text and is_template_path(f) and (root := _chart_root(f, tree)) is not None:
            simple.setdefault(root, []).extend(_template_apps(f, text, tree, this_repo))
            continue
        try:
            docs = load_documents(text)
        except yaml.YAMLError as e:
            if re.search(r"(?m)^kind:\s*Application(Set)?\s*$", text):
                out.append(AppSpec(name=f, defined_in=f, error=f"not valid YAML: {str(e).splitlines()[0]}"))
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith(ARGO_GROUP):
                continue
            if doc.get("kind") == "Application":
                out.append(_spec_from_doc(doc, f))
            elif doc.get("kind") == "ApplicationSet":
                out += _appset_apps(f, doc, tree, this_repo)
    pointed = _pointed_at([*out, *given, *(a for apps in simple.values() for a in apps)], tree, this_repo)
    if render is not None:  # the templates of the charts Applications build: one read for them all
        tree.prefetch(p for chart in pointed if chart not in simple for p in _templates(chart, tree))
    for chart in sorted(simple.keys() | pointed.keys()):
        apps = simple.get(chart, [])
        failed = [a for a in apps if a.error]
        how = pointed.get(chart) or [ChartValues(release=posixpath.basename(chart) or "apps")]
        own_values = any(h.value_files or h.values or h.parameters for h in how)
        if render is None or not (failed or own_values or chart not in simple):
            out += apps
            continue
        if chart not in simple and not _is_app_of_apps(chart, tree):
            continue  # a chart of workloads, not of Applications
        rendered: list[AppSpec] = []
        errors: list[str] = []
        for h in how:
            docs, error = render(chart, h)
            if error:
                errors.append(error)
            else:
                rendered += _rendered_apps(chart, docs, h, tree, this_repo)
        if errors:  # keep what the substitution read; the rows it could not read say why helm did not help
            why = "; ".join(dict.fromkeys(errors))
            for a in failed:
                a.error = f"{a.error}; {why}"
            out += apps
            if chart not in simple:
                file = f"{chart}/Chart.yaml" if chart else "Chart.yaml"
                out.append(AppSpec(name=f"{chart or '.'}#render", defined_in=file, error=why))
            continue
        # the rendered chart replaces what its templates gave read as plain YAML (a template without {{ }})
        out = [a for a in out if not (a.defined_in and _chart_root(a.defined_in, tree) == chart)]
        seen = {a.name for a in out}
        for a in rendered:
            if a.name not in seen:
                seen.add(a.name)
                out.append(a)
    return out


def kustomization_files(tree: Tree) -> list[str]:
    """The kustomization files of the tree (prefetched)."""
    found = kustomization_paths(tree.paths)
    tree.prefetch(found)
    return found


def combine(base: list[dict[str, Any]], argo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kustomize roots and Flux apps, then Applications; a root an Application builds is that Application."""
    covered = {d or "." for r in argo for d in r["dirs"]}
    return [r for r in base if r["app"] not in covered] + argo


def template_change(path: str, old: str | None, new: str | None) -> dict[str, Any] | None:
    """One ``(template)`` row for a changed Helm template (text with ``{{ }}``, or a ``.tpl``), else None.

    A template is no YAML: parsing it would give noise or an unreadable row, so it reads as one change.
    """
    if not is_template_path(path) or not (path.endswith(".tpl") or "{{" in (old or "") or "{{" in (new or "")):
        return None

    def lines(t: str | None) -> str | None:
        return None if t is None else f"{len(t.splitlines())} lines"

    change = "added" if old is None else "removed" if new is None else "modified"
    return {
        "kind": None,
        "name": None,
        "field": "(template)",
        "old": lines(old),
        "new": lines(new),
        "change": change,
        "via": "helm-template",
        "doc": None,
    }
