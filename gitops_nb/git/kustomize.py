"""Kustomize roots and the files each one is built from, read from a git tree.

Flux objects deploy from the tree too: a Flux ``Kustomization`` (``spec.path``) and a
``HelmRelease`` whose chart comes from a ``GitRepository`` (``spec.chart.spec.chart``) are apps,
with the files they are built from."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .manifests import KUSTOMIZATION_FILES, is_flux_kustomization, is_manifest_path, load_documents

__all__ = [
    "FLUX_APIS",
    "Kustomization",
    "Layout",
    "build_apps",
    "flux_apps",
    "kustomization_from_docs",
    "parse_kustomization",
]

#: apiVersion prefixes of the Flux objects that deploy from the tree (what ``DeployRepo.apps`` greps for)
FLUX_APIS = ("kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io")
#: the GitRepository ``flux bootstrap`` creates for the repository it commits to
THIS_REPO_SOURCE = "flux-system"

_DIR_FIELDS = ("resources", "bases", "components")
_FILE_LIST_FIELDS = ("crds", "configurations", "transformers", "generators", "validators")


@dataclass
class Kustomization:
    """One kustomization file and what it references."""

    dir: str
    file: str
    namespace: str | None = None
    refs: list[str] = field(default_factory=list)  # normalized repo paths (files or dirs)
    remote: list[str] = field(default_factory=list)
    error: str | None = None
    flux: bool = False  # the file holds a Flux Kustomization object, not a kustomization


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/"))


def _norm(base: str, ref: str) -> str | None:
    path = posixpath.normpath(posixpath.join(base, ref))
    return None if path.startswith("..") else ("" if path == "." else path)


def parse_kustomization(path: str, text: str) -> Kustomization:
    """Parse one kustomization file; a broken file yields an entry with ``error`` set."""
    try:
        docs = load_documents(text)
    except Exception as e:  # yaml errors of every kind: report, do not raise
        return kustomization_from_docs(path, e)
    return kustomization_from_docs(path, docs)


def kustomization_from_docs(path: str, docs: list[Any] | Exception) -> Kustomization:
    """:func:`parse_kustomization` from the file's loaded YAML documents (or the error loading them)."""
    base = posixpath.dirname(path)
    k = Kustomization(dir=base, file=path)
    if isinstance(docs, Exception):
        k.error = f"cannot parse {path}: {docs}"
        return k
    doc: Any = docs[0] if docs else {}
    if not isinstance(doc, dict):
        k.error = f"{path} is not a mapping"
        return k
    if is_flux_kustomization(doc):
        k.flux, k.error = True, f"{path} holds a Flux Kustomization object, not a kustomization"
        return k
    ns = doc.get("namespace")
    k.namespace = ns if isinstance(ns, str) else None
    raw: list[str] = []
    for f in (*_DIR_FIELDS, *_FILE_LIST_FIELDS):
        raw.extend(x for x in doc.get(f) or [] if isinstance(x, str))
    for p in doc.get("patches") or []:
        if isinstance(p, dict) and isinstance(p.get("path"), str):
            raw.append(p["path"])
        elif isinstance(p, str) and "\n" not in p:  # the string form: `patches: [file.yaml]`
            raw.append(p)
    for p in doc.get("patchesJson6902") or []:
        if isinstance(p, dict) and isinstance(p.get("path"), str):
            raw.append(p["path"])
    raw.extend(p for p in doc.get("patchesStrategicMerge") or [] if isinstance(p, str) and "\n" not in p)
    for p in doc.get("replacements") or []:
        if isinstance(p, dict) and isinstance(p.get("path"), str):
            raw.append(p["path"])
    for gen in (*(doc.get("configMapGenerator") or []), *(doc.get("secretGenerator") or [])):
        if not isinstance(gen, dict):
            continue
        for f in gen.get("files") or []:
            if isinstance(f, str):
                raw.append(f.split("=", 1)[-1])
        envs = list(gen.get("envs") or []) + ([gen["env"]] if isinstance(gen.get("env"), str) else [])
        raw.extend(e for e in envs if isinstance(e, str))
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        raw.append(openapi["path"])
    for ref in raw:
        if _is_remote(ref):
            k.remote.append(ref)
        elif (norm := _norm(base, ref)) is not None:
            k.refs.append(norm)
    return k


def flux_apps(objects: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The Flux objects among ``(file, parsed document)`` pairs that deploy from this tree.

    Returns ``{"file", "kind", "name", "namespace", "dir", "extra"}`` for a Flux ``Kustomization``
    (``dir`` = its ``spec.path``) and for a ``HelmRelease`` whose chart is a path in a
    ``GitRepository`` (``dir`` = the chart's directory; ``extra`` = its ``valuesFiles``). Only the
    ``flux-system`` GitRepository (what ``flux bootstrap`` makes of this repo) counts as this tree:
    a tenant's GitRepository is another repo. Objects whose source is an OCI repository, a bucket,
    a Helm repository or another git repository deploy nothing from the tree.
    """
    out = []
    for file, doc in objects:
        if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
            continue
        api, kind, spec = str(doc.get("apiVersion", "")), doc.get("kind"), doc["spec"]
        meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
        base = {"file": file, "kind": kind, "name": meta.get("name"), "namespace": spec.get("targetNamespace")}
        if api.startswith(FLUX_APIS[0]) and kind == "Kustomization":
            src: dict[str, Any] = spec["sourceRef"] if isinstance(spec.get("sourceRef"), dict) else {}
            if not _this_repo(src) or not isinstance(spec.get("path", ""), str):
                continue
            if (d := _norm("", spec.get("path") or ".")) is not None:
                out.append({**base, "dir": d, "extra": []})
        elif api.startswith(FLUX_APIS[1]) and kind == "HelmRelease":
            chart = (spec.get("chart") or {}).get("spec") if isinstance(spec.get("chart"), dict) else None
            if not isinstance(chart, dict) or not isinstance(chart.get("chart"), str):
                continue
            src = chart["sourceRef"] if isinstance(chart.get("sourceRef"), dict) else {}
            if not _this_repo(src):
                continue
            values = [v for v in chart.get("valuesFiles") or [] if isinstance(v, str)]
            if (d := _norm("", chart["chart"])) is not None:
                extra = [n for v in values if (n := _norm("", v)) is not None]
                out.append({**base, "dir": d, "extra": extra})
    return out


def _this_repo(source_ref: Mapping[str, Any]) -> bool:
    return source_ref.get("kind", "GitRepository") == "GitRepository" and source_ref.get("name") == THIS_REPO_SOURCE


class Layout:
    """Which apps a tree has and which files each is built from, from its kustomizations and Flux objects alone.

    The apps are the Kustomize roots and the Flux objects that deploy from the tree (see
    :func:`build_apps`). A layout depends only on the kustomization files (their references) and
    the Flux objects (their paths), not on the rest of the tree, so one layout serves every commit
    with the same references: a CI tag bump changes a kustomization's text but not its layout.
    :meth:`apps` lists each app's files in a tree; :meth:`match` says which apps a path of that
    tree belongs to. Both agree by construction.
    """

    def __init__(self, kustomizations: Iterable[Kustomization], flux: Iterable[Mapping[str, Any]] = ()) -> None:
        kusts: dict[str, Kustomization] = {}
        for k in sorted(kustomizations, key=lambda k: k.file):
            if not k.flux:  # a Flux Kustomization object in a kustomization-named file is no kustomization
                kusts.setdefault(k.dir, k)  # kustomization.yaml wins over .yml (sorted order)
        used_as_base: set[str] = set()
        for k in kusts.values():
            used_as_base.update(r for r in k.refs if r in kusts and r != k.dir)
        fluxes = list(flux)
        deployed = {f["dir"] for f in fluxes if f["kind"] == "Kustomization" and f["dir"] in kusts}
        for f in fluxes:  # a generated kustomization takes in the kustomization dirs under its path
            if f["kind"] == "Kustomization" and f["dir"] not in kusts:
                used_as_base.update(d for d in kusts if _under(d, f["dir"]))
        memo: dict[str, tuple[set[str], set[str], set[str], set[str]]] = {}

        def closure(d: str, stack: tuple[str, ...] = ()) -> tuple[set[str], set[str], set[str], set[str]]:
            if d in memo:
                return memo[d]
            k = kusts[d]
            kfiles, refs, dirs, remote = {k.file}, set(), {d}, set(k.remote)
            for r in k.refs:
                if r in kusts:
                    if r in stack or r == d:
                        continue
                    f2, r2, d2, rem2 = closure(r, (*stack, d))
                    kfiles |= f2
                    refs |= r2
                    dirs |= d2
                    remote |= rem2
                else:  # a file, a directory of plain manifests, or a missing file
                    refs.add(r)
            memo[d] = (kfiles, refs, dirs, remote)
            return memo[d]

        self.roots: list[dict[str, Any]] = []
        self._by_file: dict[str, list[str]] = {}  # kustomization file -> apps built from it
        self._by_ref: dict[str, list[str]] = {}  # referenced file or directory -> apps
        self._flux_dirs: dict[str, list[tuple[str, bool]]] = {}  # Flux app's dir -> (app, manifests only)

        def add(app: str, kfiles: set[str], refs: set[str], row: dict[str, Any]) -> None:
            self.roots.append({"app": app, **row, "kfiles": kfiles})
            for f in kfiles:
                self._by_file.setdefault(f, []).append(app)
            for r in refs:
                if r:  # the repo root as a plain directory reference matches nothing (as kustomize reads it)
                    self._by_ref.setdefault(r, []).append(app)

        for d in sorted(kusts):
            if d in used_as_base and d not in deployed:
                continue
            kfiles, refs, dirs, remote = closure(d)
            row = {"kustomization": kusts[d].file, "namespace": kusts[d].namespace, "dirs": sorted(dirs)}
            add(d or ".", kfiles, refs, row | {"remote": sorted(remote), "source_type": "kustomize", "flux_dir": None})
        seen = {r["app"] for r in self.roots}
        for f in sorted(fluxes, key=lambda f: (f["dir"], f["file"], str(f["name"]))):
            app = f["dir"] or "."
            if f["kind"] == "HelmRelease" and app in seen:
                app = f"{app}@{f['name']}"
            if app in seen:
                continue
            seen.add(app)
            helm = f["kind"] == "HelmRelease"
            kfiles, refs, dirs, remote = set(), set(f["extra"]) if helm else set(), set(), set()
            for d in (d for d in kusts if not helm and _under(d, f["dir"])):
                f2, r2, d2, rem2 = closure(d)
                kfiles |= f2
                refs |= r2
                dirs |= d2
                remote |= rem2
            # a Flux Kustomization applies the manifests under its path; a HelmRelease's chart is every file under it
            self._flux_dirs.setdefault(f["dir"], []).append((app, not helm))
            row = {"kustomization": f["file"], "namespace": f["namespace"], "dirs": sorted(dirs)}
            add(app, kfiles, refs, row | {"remote": sorted(remote), "source_type": "flux", "flux_dir": f["dir"]})

    @property
    def names(self) -> list[str]:
        """The apps' names (a root's directory, a Flux app's path or ``path@name``)."""
        return [r["app"] for r in self.roots]

    def match(self, path: str) -> list[str]:
        """The apps built from ``path``, a file of the tree this layout belongs to."""
        found = list(self._by_file.get(path, ()))
        found += self._by_ref.get(path, ())
        cut = path.rfind("/")
        while cut > 0:
            found += self._by_ref.get(path[:cut], ())
            cut = path.rfind("/", 0, cut)
        if self._flux_dirs:
            manifest = is_manifest_path(path) and not _hidden(path)
            for d in _prefixes(path):
                found += (app for app, manifests_only in self._flux_dirs.get(d, ()) if manifest or not manifests_only)
        return sorted(set(found)) if len(found) > 1 else found

    def apps(self, paths: Iterable[str]) -> list[dict[str, Any]]:
        """One row per app, with ``files``: every path of ``paths`` (the tree) its build reads.

        A Flux object whose path holds no file of the tree is no app (as :func:`build_apps` says).
        """
        files: dict[str, set[str]] = {r["app"]: set(r["kfiles"]) for r in self.roots}
        alive = {""}  # the Flux dirs that hold a file
        if self._by_ref or self._flux_dirs:
            for p in paths:
                for app in self.match(p):
                    files[app].add(p)
                if self._flux_dirs:
                    alive.update(d for d in _prefixes(p) if d in self._flux_dirs and d != p)
        return [
            {k: v for k, v in r.items() if k not in ("kfiles", "flux_dir")} | {"files": sorted(files[r["app"]])}
            for r in self.roots
            if r["flux_dir"] is None or r["flux_dir"] in alive
        ]


def _prefixes(path: str) -> list[str]:
    """``""``, every directory above ``path`` and ``path`` itself: ``a/b/c`` -> ``"", a, a/b, a/b/c``."""
    out = [""]
    cut = path.find("/")
    while cut > 0:
        out.append(path[:cut])
        cut = path.find("/", cut + 1)
    return [*out, path]


def build_apps(
    paths: Iterable[str], read: Mapping[str, str], flux: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Find Kustomize roots and the files each depends on.

    ``paths`` lists every file of the tree; ``read`` maps kustomization file paths
    to their text. A root is a kustomization directory no other kustomization uses
    through ``resources``, ``bases`` or ``components``.

    ``flux`` (from :func:`flux_apps`) adds an app per Flux object: a Flux Kustomization whose
    path is a kustomization directory is that root (listed even when another kustomization uses
    it); one whose path has none is built, as Flux does, from every manifest under it, taking in
    the kustomization directories there (which are then no roots of their own). A HelmRelease is
    built from its chart's directory and values files. Its ``kustomization`` is the Flux object's file.
    """
    return Layout((parse_kustomization(p, read[p]) for p in read), flux).apps(paths)


def _hidden(path: str) -> bool:
    """A file under a dot-directory (``.github/``) or a dot-file: not a manifest Flux applies."""
    return any(part.startswith(".") for part in path.split("/"))


def _under(path: str, d: str) -> bool:
    return d == "" or path == d or path.startswith(d + "/")


def kustomization_paths(paths: Iterable[str]) -> list[str]:
    """The kustomization files among ``paths``."""
    return [p for p in paths if posixpath.basename(p) in KUSTOMIZATION_FILES]
