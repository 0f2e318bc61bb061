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

__all__ = ["FLUX_APIS", "Kustomization", "build_apps", "flux_apps", "parse_kustomization"]

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
    all_paths = set(paths)
    kusts: dict[str, Kustomization] = {}
    for p in sorted(read):
        k = parse_kustomization(p, read[p])
        if not k.flux:
            kusts.setdefault(k.dir, k)  # kustomization.yaml wins over .yml (sorted order)
    used_as_base: set[str] = set()
    for k in kusts.values():
        used_as_base.update(r for r in k.refs if r in kusts and r != k.dir)
    flux = [f for f in flux if f["dir"] == "" or any(p.startswith(f["dir"] + "/") for p in all_paths)]
    deployed = {f["dir"] for f in flux if f["kind"] == "Kustomization" and f["dir"] in kusts}
    for f in flux:  # a generated kustomization takes in the kustomization dirs under its path
        if f["kind"] == "Kustomization" and f["dir"] not in kusts:
            used_as_base.update(d for d in kusts if _under(d, f["dir"]))

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
        if d in used_as_base and d not in deployed:
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
    seen = {r["app"] for r in rows}
    for f in sorted(flux, key=lambda f: (f["dir"], f["file"], str(f["name"]))):
        app = f["dir"] or "."
        if f["kind"] == "HelmRelease" and app in seen:
            app = f"{app}@{f['name']}"
        if app in seen:
            continue
        seen.add(app)
        files = {p for p in all_paths if _under(p, f["dir"]) and is_manifest_path(p) and not _hidden(p)}
        dirs = set()
        remote = set()
        if f["kind"] == "HelmRelease":
            files = {p for p in all_paths if _under(p, f["dir"])} | (set(f["extra"]) & all_paths)
        for d in (d for d in kusts if _under(d, f["dir"]) and f["kind"] == "Kustomization"):
            f2, d2, r2 = closure(d)
            files |= f2
            dirs |= d2
            remote |= r2
        rows.append(
            {
                "app": app,
                "kustomization": f["file"],
                "namespace": f["namespace"],
                "files": sorted(files),
                "dirs": sorted(dirs),
                "remote": sorted(remote),
            }
        )
    return rows


def _hidden(path: str) -> bool:
    """A file under a dot-directory (``.github/``) or a dot-file: not a manifest Flux applies."""
    return any(part.startswith(".") for part in path.split("/"))


def _under(path: str, d: str) -> bool:
    return d == "" or path == d or path.startswith(d + "/")


def kustomization_paths(paths: Iterable[str]) -> list[str]:
    """The kustomization files among ``paths``."""
    return [p for p in paths if posixpath.basename(p) in KUSTOMIZATION_FILES]
