"""Kustomize roots and the files each one is built from, read from a git tree."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .manifests import KUSTOMIZATION_FILES, load_documents

__all__ = ["Kustomization", "build_apps", "parse_kustomization"]

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
    base = posixpath.dirname(path)
    k = Kustomization(dir=base, file=path)
    try:
        docs = load_documents(text)
    except Exception as e:  # yaml errors of every kind: report, do not raise
        k.error = f"cannot parse {path}: {e}"
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


def build_apps(paths: Iterable[str], read: Mapping[str, str]) -> list[dict[str, Any]]:
    """Find Kustomize roots and the files each depends on.

    ``paths`` lists every file of the tree; ``read`` maps kustomization file paths
    to their text. A root is a kustomization directory no other kustomization uses
    through ``resources``, ``bases`` or ``components``.
    """
    all_paths = set(paths)
    kusts: dict[str, Kustomization] = {}
    for p in sorted(read):
        k = parse_kustomization(p, read[p])
        kusts.setdefault(k.dir, k)  # kustomization.yaml wins over .yml (sorted order)
    used_as_base: set[str] = set()
    for k in kusts.values():
        used_as_base.update(r for r in k.refs if r in kusts and r != k.dir)

    memo: dict[str, tuple[set[str], set[str], set[str]]] = {}

    def closure(d: str, stack: tuple[str, ...] = ()) -> tuple[set[str], set[str], set[str]]:
        if d in memo:
            return memo[d]
        k = kusts[d]
        files, dirs, remote = {k.file}, {d}, set(k.remote)
        for r in k.refs:
            if r in kusts:
                if r in stack or r == d:
                    continue
                f2, d2, r2 = closure(r, (*stack, d))
                files |= f2
                dirs |= d2
                remote |= r2
            elif r in all_paths:
                files.add(r)
            else:  # a directory of plain manifests, or a missing file: take what is under it
                prefix = r + "/"
                files.update(p for p in all_paths if p.startswith(prefix))
        memo[d] = (files, dirs, remote)
        return memo[d]

    rows = []
    for d in sorted(kusts):
        if d in used_as_base:
            continue
        files, dirs, remote = closure(d)
        rows.append(
            {
                "app": d or ".",
                "kustomization": kusts[d].file,
                "namespace": kusts[d].namespace,
                "files": sorted(files),
                "dirs": sorted(dirs),
                "remote": sorted(remote),
            }
        )
    return rows


def kustomization_paths(paths: Iterable[str]) -> list[str]:
    """The kustomization files among ``paths``."""
    return [p for p in paths if posixpath.basename(p) in KUSTOMIZATION_FILES]
