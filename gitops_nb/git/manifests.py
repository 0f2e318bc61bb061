"""Semantic diff of Kubernetes and Kustomize YAML: one row per changed field.

Documents are matched by kind and name, list items by their ``name`` (containers,
images, env, replicas), so a tag bump reads ``images[ghcr.io/acme/api].newTag``
rather than a line diff. Inline and file patches (strategic merge and JSON 6902)
are diffed as what they patch. Secret values are never rendered.

YAML is read the way the controllers that apply it read it (Argo CD, Kustomize and Flux
use Go's ``gopkg.in/yaml.v3``), with PyYAML loader subclasses rather than ruamel.yaml:
PyYAML is already a dependency, its libyaml-backed ``CSafeLoader`` is the fast path for
every file, and the three places where PyYAML's safe loader refuses what yaml.v3 reads
are each one small override:

- a duplicate anchor is allowed, the later definition winning for the aliases after it
  (yaml.v3 and Flux accept it; PyYAML's composer, C or Python, raises). Only the Python
  composer can be overridden, so a file the C loader refuses is read again by the
  tolerant Python loader; files that parse in C never pay for it;
- a bare ``=`` (``matchType: =``) is the string ``"="``, not PyYAML's YAML 1.1
  ``tag:yaml.org,2002:value`` it has no constructor for;
- an unknown tag (``!env_var FOO``, ``!Ref x``, ``!!custom``) is read as the plain
  scalar (a string), sequence or mapping under it, as yaml.v3 does, instead of an error.
  No tag ever builds a Python object: ``!!python/...`` is a plain mapping too.

Aliases are bounded as yaml.v3 bounds them (``allowedAliasRatio`` in its decode.go), and
more: the nodes that aliases expand to are also capped at :data:`MAX_ALIASED_NODES`,
because the diff walks every use of a shared value. A "billion laughs" file is refused
in time and memory proportional to its text (:class:`ExcessiveAliasing`). A file that
cannot be read raises :class:`InvalidYAML`, whose message gives the line and column.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any

import yaml

__all__ = [
    "FLUX_KUSTOMIZE_API",
    "KUSTOMIZATION_FILES",
    "MAX_ALIASED_NODES",
    "REDACTED",
    "YAML_SUFFIXES",
    "ExcessiveAliasing",
    "InvalidYAML",
    "diff_documents",
    "is_flux_kustomization",
    "is_manifest_path",
    "load_documents",
    "render",
    "unreadable_label",
]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_API = "kustomize.config.k8s.io"  # a kustomization file (what `kustomize build` reads)
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io"  # a Flux Kustomization object (what Flux applies)
YAML_SUFFIXES = (".yaml", ".yml")
REDACTED = "<redacted>"

_ABSENT = object()
_LIST_KEYS = ("name", "containerPort", "mountPath", "ip", "key")
_SECRET_KINDS = {"Secret"}
_SECRET_FIELDS = {"data", "stringData"}
_MAX_VALUE = 1000


def is_manifest_path(path: str) -> bool:
    """True for files the semantic diff reads (YAML and kustomization files)."""
    return path.endswith(YAML_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES


class InvalidYAML(yaml.YAMLError):
    """A YAML text that cannot be read; ``str()`` is ``invalid YAML at line L, column C: problem``."""

    what = "invalid YAML"

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(problem, line, column)
        self.problem, self.line, self.column = problem, line, column

    @classmethod
    def from_error(cls, e: BaseException) -> InvalidYAML:
        """Wrap a PyYAML error, keeping its position (1-based) and its first line of explanation."""
        if isinstance(e, RecursionError):
            return cls("nested too deeply")
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e).splitlines()[0]
        if mark is None:
            return cls(problem)
        return cls(problem, mark.line + 1, mark.column + 1)

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.what}: {self.problem}"
        return f"{self.what} at line {self.line}, column {self.column}: {self.problem}"


class ExcessiveAliasing(InvalidYAML):
    """Aliases that expand to far more than the text holds ("billion laughs"): refused, as yaml.v3 does."""

    what = "YAML refused"


#: the most nodes aliases may expand to in one document (yaml.v3 allows up to ~400,000)
MAX_ALIASED_NODES = 100_000


def _allowed_alias_ratio(decoded: int) -> float:
    """yaml.v3's ``allowedAliasRatio``: 99% of the nodes may come from aliases up to 400k, falling to 10% at 4M."""
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


def _check_aliases(root: yaml.Node) -> None:
    """Count the nodes of ``root`` as its aliases expand them, without expanding; raise if too many.

    yaml.v3 counts every node it decodes (``decodeCount``) and those decoded through an alias
    (``aliasCount``), and fails when ``aliasCount > 100 and decodeCount > 1000 and
    aliasCount / decodeCount > allowedAliasRatio(decodeCount)``. A composed node graph shares
    an anchored node between its aliases, so each node's expanded size is counted once and
    added at every later use. The ratio only grows while an alias expands, so checking at the
    end of each expansion is as strict as yaml.v3's check at every node. A value that contains
    itself (``&a [*a]``) is refused too, as yaml.v3 does.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    decoded = aliased = 0
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if type(node) is tuple:  # leaving a collection: its expanded size is known
            nid, start = node
            open_.discard(nid)
            sizes[nid] = decoded - start
            continue
        nid = id(node)
        size = sizes.get(nid)
        if size is not None:  # a later use of an anchored node: an alias
            decoded += 1 + size
            aliased += size
            if aliased > MAX_ALIASED_NODES or (
                aliased > 100 and decoded > 1000 and aliased / decoded > _allowed_alias_ratio(decoded)
            ):
                raise ExcessiveAliasing(
                    f"excessive aliasing (billion laughs?): {aliased:,} of the {decoded:,} nodes read so far "
                    "come from aliases (this anchor's and others'); Argo CD, Kustomize and Flux refuse it too",
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                )
            continue
        if nid in open_:
            raise InvalidYAML("an anchor's value contains itself", node.start_mark.line + 1, node.start_mark.column + 1)
        start = decoded
        decoded += 1
        if isinstance(node, yaml.ScalarNode):
            sizes[nid] = 1
            continue
        open_.add(nid)
        stack.append((nid, start))
        if isinstance(node, yaml.MappingNode):
            stack.extend(x for pair in reversed(node.value) for x in reversed(pair))
        else:
            stack.extend(reversed(node.value))


def _construct_untagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """An unknown tag (``!Ref x``, ``!!custom``): the plain value under it, as yaml.v3 reads it."""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)  # a string, whatever it looks like (yaml.v3 too)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_yaml_seq(node)
    return loader.construct_yaml_map(node)


def _tolerant(cls: type[Any]) -> None:
    cls.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)  # a bare `=`
    cls.add_constructor(None, _construct_untagged)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser and composer, PyYAML's safe constructor with the yaml.v3 readings."""


class _TolerantLoader(yaml.SafeLoader):
    """The pure-Python loader, whose composer also lets a later anchor redefine an earlier one."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # types-PyYAML leaves it unannotated
        if not isinstance(event, yaml.AliasEvent) and getattr(event, "anchor", None) is not None:
            self.anchors.pop(event.anchor, None)  # the later definition wins for the aliases after it
        return super().compose_node(parent, index)


_tolerant(_FastLoader)
_tolerant(_TolerantLoader)


def _load(text: str, cls: type[Any]) -> list[Any]:
    loader = cls(text)
    check = "&" in text  # no anchor, no alias: nothing to count
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if check:
                _check_aliases(node)
            doc = loader.construct_document(node)
            if doc is not None:
                docs.append(doc)
        return docs
    finally:
        loader.dispose()


def load_documents(text: str) -> list[Any]:
    """Parse a (multi-document) YAML text as yaml.v3 reads it; empty documents are dropped.

    Raises :class:`InvalidYAML` (with the line and column) for a text that cannot be read,
    :class:`ExcessiveAliasing` for one whose aliases expand too far.
    """
    try:
        return _load(text, _FastLoader)
    except InvalidYAML:
        raise
    except (yaml.YAMLError, RecursionError):
        pass  # a duplicate anchor, or invalid: the Python loader says which, and where
    try:
        return _load(text, _TolerantLoader)
    except InvalidYAML:
        raise
    except (yaml.YAMLError, RecursionError) as e:
        raise InvalidYAML.from_error(e) from None


def unreadable_label(error: str | None) -> str:
    """A short label for an unreadable row's ``error``: ``invalid YAML (line 7)``, ``unreadable (blob missing)``.

    An error about the version before the commit (it fixed or deleted a broken file) reads
    ``was invalid YAML (line 7)``.
    """
    text = error or ""
    before = text.startswith(BEFORE)
    text = text.removeprefix(BEFORE)
    m = re.match(r"(invalid YAML|YAML refused)(?: at line (\d+))?", text)
    if m:
        what = "excessive aliasing" if "excessive aliasing" in text else m.group(1)
        where = f"line {m.group(2)}" if m.group(2) else ""
        return ("was " if before else "") + what + (f" ({where})" if where else "")
    if "missing" in text:
        return "unreadable (previous blob missing)" if before else "unreadable (blob missing)"
    return "unreadable"


#: how an error about the version before the commit starts
BEFORE = "before this commit: "


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
