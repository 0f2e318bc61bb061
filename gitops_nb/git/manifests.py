"""Semantic diff of Kubernetes and Kustomize YAML: one row per changed field.

Documents are matched by kind and name, list items by their ``name`` (containers,
images, env, replicas), so a tag bump reads ``images[ghcr.io/acme/api].newTag``
rather than a line diff. Inline and file patches (strategic merge and JSON 6902)
are diffed as what they patch. Secret values are never rendered.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

import yaml

__all__ = [
    "FLUX_KUSTOMIZE_API",
    "KUSTOMIZATION_FILES",
    "REDACTED",
    "YAML_SUFFIXES",
    "diff_documents",
    "is_flux_kustomization",
    "is_manifest_path",
    "load_documents",
    "render",
]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_API = "kustomize.config.k8s.io"  # a kustomization file (what `kustomize build` reads)
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io"  # a Flux Kustomization object (what Flux applies)
YAML_SUFFIXES = (".yaml", ".yml")
REDACTED = "<redacted>"

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ABSENT = object()
_LIST_KEYS = ("name", "containerPort", "mountPath", "ip", "key")
_SECRET_KINDS = {"Secret"}
_SECRET_FIELDS = {"data", "stringData"}
_MAX_VALUE = 1000


def is_manifest_path(path: str) -> bool:
    """True for files the semantic diff reads (YAML and kustomization files)."""
    return path.endswith(YAML_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES


def load_documents(text: str) -> list[Any]:
    """Parse a (multi-document) YAML text; empty documents are dropped."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def render(value: Any) -> str | None:
    """Render a YAML value as short text for a frame cell."""
    if value is _ABSENT:
        return None
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=False, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def is_flux_kustomization(doc: Any) -> bool:
    """True for a Flux ``Kustomization`` object (``kustomize.toolkit.fluxcd.io``), whatever its file is named."""
    return isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(FLUX_KUSTOMIZE_API)


def _is_kustomization(path: str, doc: Any) -> bool:
    """A kustomization file: told from a Flux Kustomization object by its apiVersion, not its kind."""
    if is_flux_kustomization(doc):
        return False
    return posixpath.basename(path) in KUSTOMIZATION_FILES or (
        isinstance(doc, dict)
        and doc.get("kind") in ("Kustomization", "Component")
        and str(doc.get("apiVersion", "")).startswith(KUSTOMIZE_API)
    )


_KFILE = "kustomization-file"  # the document key of a kustomization file (a Flux object's key is its kind)


def _doc_key(path: str, doc: Any, index: int) -> tuple[Any, ...]:
    if _is_kustomization(path, doc):
        return (_KFILE, posixpath.dirname(path))
    if isinstance(doc, dict) and "kind" in doc:
        meta = doc.get("metadata") or {}
        if isinstance(meta, dict) and meta.get("name"):
            return (doc["kind"], meta.get("namespace"), meta["name"])
    if _is_json6902(doc):
        return ("json6902", index)
    return ("doc", index)


def _is_json6902(doc: Any) -> bool:
    return isinstance(doc, list) and bool(doc) and all(isinstance(op, dict) and "op" in op for op in doc)


def _list_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for k in _LIST_KEYS:
        vals = [i.get(k) for i in items]
        if all(v is not None for v in vals) and len(set(map(str, vals))) == len(vals):
            return k
    return None


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Flatten a dict subtree into (path, leaf) pairs; lists stay whole."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, _join(prefix, k))
    else:
        yield prefix, value


def _walk(old: Any, new: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    """Yield (field, old, new) for every difference; absent sides are ``_ABSENT``."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            o, n = old.get(k, _ABSENT), new.get(k, _ABSENT)
            field = _join(prefix, k)
            if o is _ABSENT:
                for f, leaf in _leaves(n, field):
                    yield f, _ABSENT, leaf
            elif n is _ABSENT:
                for f, leaf in _leaves(o, field):
                    yield f, leaf, _ABSENT
            else:
                yield from _walk(o, n, field)
        return
    if isinstance(old, list) and isinstance(new, list):
        ko, kn = _list_key(old), _list_key(new)
        key = ko if ko == kn else (ko or kn) if not (old and new) else None
        if key:
            olds = {str(i[key]): i for i in old}
            news = {str(i[key]): i for i in new}
            for name in list(olds) + [n for n in news if n not in olds]:
                yield from _walk(olds.get(name, {}), news.get(name, {}), f"{prefix}[{name}]")
            return
    yield prefix, old, new


def _redact(kind: Any, field: str, value: Any) -> Any:
    if value is _ABSENT:
        return value
    top = field.split(".", 1)[0].split("[", 1)[0]
    if kind in _SECRET_KINDS and top in _SECRET_FIELDS:
        return REDACTED
    if field.startswith("secretGenerator[") and ".literals" in field and isinstance(value, list):
        return [f"{str(v).split('=', 1)[0]}={REDACTED}" for v in value]
    if field.startswith("secretGenerator[") and ".literals" in field:
        return REDACTED
    return value


def _rows(
    pairs: Iterator[tuple[str, Any, Any]], *, kind: Any, name: Any, via: str, doc: int
) -> Iterator[dict[str, Any]]:
    for field, o, n in pairs:
        o, n = _redact(kind, field, o), _redact(kind, field, n)
        change = "added" if o is _ABSENT else "removed" if n is _ABSENT else "modified"
        if change == "modified" and o == n:  # both redacted: say it changed, not to what
            o, n = REDACTED + " (old)", REDACTED + " (new)"
        yield {
            "kind": kind,
            "name": name,
            "field": field,
            "old": render(o),
            "new": render(n),
            "change": change,
            "via": via,
            "doc": doc,
        }


def _parse_patch(patch: Any) -> Any:
    if isinstance(patch, str):
        try:
            docs = load_documents(patch)
        except yaml.YAMLError:
            return patch
        return docs[0] if len(docs) == 1 else docs
    return patch


def _ops(doc: Any) -> dict[str, Any]:
    """Key JSON 6902 ops by ``<op> <path>``."""
    out: dict[str, Any] = {}
    for op in doc if isinstance(doc, list) else []:
        if isinstance(op, dict):
            key = f"{op.get('op')} {op.get('path', op.get('from', ''))}"
            out[key] = op.get("value", op.get("from"))
    return out


def _diff_patch(old: Any, new: Any, target: dict[str, Any], doc: int, label: str) -> Iterator[dict[str, Any]]:
    o, n = _parse_patch(old), _parse_patch(new)
    kind, name = target.get("kind"), target.get("name")
    if _is_json6902(o) or _is_json6902(n):
        yield from _rows(
            (
                (f, a, b)
                for f, a, b in _walk(_ops(o) if o is not _ABSENT else {}, _ops(n) if n is not _ABSENT else {}, "")
            ),
            kind=kind,
            name=name,
            via="json6902",
            doc=doc,
        )
        return
    for side in (n, o):
        if isinstance(side, dict):
            kind = side.get("kind", kind)
            name = (side.get("metadata") or {}).get("name", name) if isinstance(side.get("metadata"), dict) else name
            break
    o = {} if o is _ABSENT else o
    n = {} if n is _ABSENT else n
    if isinstance(o, dict) and isinstance(n, dict):
        yield from _rows(_walk(o, n, ""), kind=kind, name=name, via="patch", doc=doc)
    else:
        yield from _rows(iter([(label, o, n)]), kind=kind, name=name, via="patch", doc=doc)


def _patch_items(k: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Any]]:
    """Inline patches of a kustomization, keyed stably: key -> (target, patch body)."""
    items: dict[str, tuple[dict[str, Any], Any]] = {}
    for field in ("patches", "patchesJson6902"):
        for i, p in enumerate(k.get(field) or []):
            if isinstance(p, dict) and "patch" in p:
                target = p.get("target") or {}
                tkey = ",".join(f"{a}={target[a]}" for a in sorted(target)) if isinstance(target, dict) else str(i)
                items[f"{field}[{tkey or i}]"] = (target if isinstance(target, dict) else {}, p["patch"])
    for i, p in enumerate(k.get("patchesStrategicMerge") or []):
        if isinstance(p, str) and "\n" in p:
            parsed = _parse_patch(p)
            meta = parsed.get("metadata") if isinstance(parsed, dict) else None
            tname = meta.get("name") if isinstance(meta, dict) else i
            items[f"patchesStrategicMerge[{tname}]"] = ({}, p)
    return items


def _diff_kustomization(old: Any, new: Any, doc: int, name: str) -> Iterator[dict[str, Any]]:
    o = old if isinstance(old, dict) else {}
    n = new if isinstance(new, dict) else {}
    op, np_ = _patch_items(o), _patch_items(n)
    for key in list(op) + [k for k in np_ if k not in op]:
        (t_old, body_old), (t_new, body_new) = op.get(key, ({}, _ABSENT)), np_.get(key, ({}, _ABSENT))
        if body_old != body_new:
            yield from _diff_patch(body_old, body_new, t_new or t_old, doc, key)

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        out = dict(d)
        for field in ("patches", "patchesJson6902"):
            if isinstance(out.get(field), list):
                out[field] = [p for p in out[field] if not (isinstance(p, dict) and "patch" in p)] or _ABSENT
        if isinstance(out.get("patchesStrategicMerge"), list):
            out["patchesStrategicMerge"] = [
                p for p in out["patchesStrategicMerge"] if not (isinstance(p, str) and "\n" in p)
            ] or _ABSENT
        return {k: v for k, v in out.items() if v is not _ABSENT}

    yield from _rows(_walk(strip(o), strip(n), ""), kind="Kustomization", name=name, via="kustomization", doc=doc)


def diff_documents(path: str, old_docs: list[Any] | None, new_docs: list[Any] | None) -> list[dict[str, Any]]:
    """Diff two parsed versions of one file (``None`` = file absent).

    Returns rows with ``kind``, ``name``, ``field``, ``old``, ``new``, ``change``, ``via``, ``doc``.
    """
    olds = {_doc_key(path, d, i): (i, d) for i, d in enumerate(old_docs or [])}
    news = {_doc_key(path, d, i): (i, d) for i, d in enumerate(new_docs or [])}
    rows: list[dict[str, Any]] = []
    for key in list(olds) + [k for k in news if k not in olds]:
        (oi, o), (ni, n) = olds.get(key, (None, _ABSENT)), news.get(key, (None, _ABSENT))
        doc = ni if ni is not None else oi
        assert doc is not None
        if o == n:
            continue
        if key[0] == _KFILE:
            name = (n if isinstance(n, dict) else o if isinstance(o, dict) else {}).get("metadata", {})
            label = name["name"] if isinstance(name, dict) and name.get("name") else key[1]
            rows.extend(_diff_kustomization(None if o is _ABSENT else o, None if n is _ABSENT else n, doc, label))
        elif key[0] == "json6902":
            rows.extend(_diff_patch(o, n, {}, doc, "ops"))
        elif key[0] == "doc":
            rows.extend(
                _rows(
                    _walk(o if o is not _ABSENT else {}, n if n is not _ABSENT else {}, ""),
                    kind=None,
                    name=None,
                    via="yaml",
                    doc=doc,
                )
            )
        elif o is _ABSENT or n is _ABSENT:  # a whole object added or removed
            kind, name = key[0], key[-1]
            rows.extend(_rows(iter([("", o, n)]), kind=kind, name=name, via="manifest", doc=doc))
            if kind in _SECRET_KINDS:
                rows[-1]["old" if n is _ABSENT else "new"] = f"<{kind} {name}: values redacted>"
        else:
            rows.extend(_rows(_walk(o, n, ""), kind=key[0], name=key[-1], via="manifest", doc=doc))
    return rows
