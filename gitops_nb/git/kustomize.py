"""Kustomize roots and the files each one is built from, read from a git tree."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .manifests import KUSTOMIZATION_FILES, load_documents

__all__ = ["Kustomization", "Layout", "build_apps", "kustomization_from_docs", "parse_kustomization"]

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
    ns = doc.get("namespace")
    k.namespace = ns if isinstance(ns, str) else None
    raw: list[str] = []
    for f in (*_DIR_FIELDS, *_FILE_LIST_FIELDS):
        raw.extend(x for x in doc.get(f) or [] if isinstance(x, str))
    for p in doc.get("patches") or []:
        if isinstance(p, dict) and isinstance(p.get("path"), str):
            raw.append(p["path"])
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


class Layout:
    """Which Kustomize roots a tree has and which files each is built from, from its kustomizations alone.

    A layout depends only on the kustomization files (their references), not on the rest of the
    tree, so one layout serves every commit with the same kustomization references: a CI tag bump
    changes a kustomization's text but not its layout. :meth:`apps` lists each root's files in a
    tree; :meth:`match` says which roots a path of that tree belongs to. Both agree by construction.
    """

    def __init__(self, kustomizations: Iterable[Kustomization]) -> None:
        kusts: dict[str, Kustomization] = {}
        for k in sorted(kustomizations, key=lambda k: k.file):
            kusts.setdefault(k.dir, k)  # kustomization.yaml wins over .yml (sorted order)
        used_as_base: set[str] = set()
        for k in kusts.values():
            used_as_base.update(r for r in k.refs if r in kusts and r != k.dir)
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
        for d in sorted(kusts):
            if d in used_as_base:
                continue
            kfiles, refs, dirs, remote = closure(d)
            app = d or "."
            self.roots.append(
                {
                    "app": app,
                    "kustomization": kusts[d].file,
                    "namespace": kusts[d].namespace,
                    "dirs": sorted(dirs),
                    "remote": sorted(remote),
                    "kfiles": kfiles,
                }
            )
            for f in kfiles:
                self._by_file.setdefault(f, []).append(app)
            for r in refs:
                if r:  # the repo root as a plain directory reference matches nothing (as kustomize reads it)
                    self._by_ref.setdefault(r, []).append(app)

    @property
    def names(self) -> list[str]:
        """The roots' names (their directories), sorted."""
        return [r["app"] for r in self.roots]

    def match(self, path: str) -> list[str]:
        """The roots built from ``path``, a file of the tree this layout belongs to."""
        found = list(self._by_file.get(path, ()))
        found += self._by_ref.get(path, ())
        cut = path.rfind("/")
        while cut > 0:
            found += self._by_ref.get(path[:cut], ())
            cut = path.rfind("/", 0, cut)
        return sorted(set(found)) if len(found) > 1 else found

    def apps(self, paths: Iterable[str]) -> list[dict[str, Any]]:
        """One row per root, with ``files``: every path of ``paths`` (the tree) its build reads."""
        files: dict[str, set[str]] = {r["app"]: set(r["kfiles"]) for r in self.roots}
        if self._by_ref:
            for p in paths:
                for app in self.match(p):
                    files[app].add(p)
        return [{k: v for k, v in r.items() if k != "kfiles"} | {"files": sorted(files[r["app"]])} for r in self.roots]


def build_apps(paths: Iterable[str], read: Mapping[str, str]) -> list[dict[str, Any]]:
    """Find Kustomize roots and the files each depends on.

    ``paths`` lists every file of the tree; ``read`` maps kustomization file paths
    to their text. A root is a kustomization directory no other kustomization uses
    through ``resources``, ``bases`` or ``components``.
    """
    return Layout(parse_kustomization(p, read[p]) for p in read).apps(paths)


def kustomization_paths(paths: Iterable[str]) -> list[str]:
    """The kustomization files among ``paths``."""
    return [p for p in paths if posixpath.basename(p) in KUSTOMIZATION_FILES]
