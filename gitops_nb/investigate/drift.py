"""Drift: what differs from git now, and who changed what outside git."""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..cluster.evidence import EvidenceSource
from ..cluster.fleet import Fleet, reading_destinations
from ..cluster.live import CONTROLLER_MANAGERS
from ..git.manifests import diff_documents
from ..times import describe_span, parse_at
from .evidence_rows import bound_untimed, recorded_changes, skipped_of

if TYPE_CHECKING:
    from ..git.repo import DeployRepo

__all__ = ["drift", "drift_spans", "manual_edits"]

_COLUMNS = [
    "app",
    "app_sync",
    "app_health",
    "group",
    "kind",
    "namespace",
    "name",
    "sync_status",
    "health_status",
    "field",  # dotted path of a field the git manifest sets (containers[web].image); "" = the whole object
    "git",  # its value in git (the app rendered at the compared revision), as text; Secret values <redacted>
    "live",  # its value in the cluster now, as text
    "change",  # modified, git-only (live lacks it), live-only (an extra list item), missing (no live object), ...
    "error",  # why the fields could not be compared (render error, no live read), else None
    "cluster",  # where the resource lives: the app's destination (a Fleet member or a resolved context)
]

#: metadata the server writes, never git: not compared even when a manifest sets them
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_LIST_KEYS = ("name", "containerPort", "mountPath", "ip", "key")


def drift(
    cluster: EvidenceSource,
    repo: DeployRepo | str | Path | None = None,
    *,
    bin_dir: str | Path | None = None,
) -> pd.DataFrame:
    """One row per OutOfSync resource of every OutOfSync Application; with ``repo``, one row per differing field.

    Columns: ``app``, ``app_sync``, ``app_health``, then the resource's ``group``, ``kind``,
    ``namespace``, ``name``, ``sync_status``, ``health_status``; then ``field``, ``git``, ``live``,
    ``change`` and ``error``, which stay empty without ``repo``.

    With ``repo`` (a :class:`DeployRepo` or a clone holding the app's revisions), each app is
    rendered at the revision Argo CD compared (``sync_revision``) with the real kustomize / helm
    (:func:`~gitops_nb.investigate.render.render_app`), each OutOfSync object is read from the API
    (:meth:`Cluster.get_object`), and only the fields the git manifest sets are compared, like
    ``kubectl diff``: fields the server defaults or other controllers own, ``status``, and the
    server's metadata (uid, resourceVersion, generation, creationTimestamp, managedFields, the
    last-applied annotation) are left out. Secret values are never shown (``<redacted>``).
    """
    apps = cluster.applications()
    rows: list[dict[str, Any]] = []
    for a in apps[apps["sync_status"] != "Synced"].itertuples(index=False):
        res = cluster.app_resources(str(a.name))
        out = res[res["sync_status"] != "Synced"]
        if not len(out):
            continue
        desired: dict[tuple[Any, Any], list[Any]] | None = None
        render_error = None
        if repo is not None:
            desired, render_error = _desired(repo, apps[apps["name"] == a.name].iloc[0].to_dict(), bin_dir)
        for r in out.itertuples(index=False):
            base = {
                "app": a.name,
                "app_sync": a.sync_status,
                "app_health": a.health_status,
                "group": r.group,
                "kind": r.kind,
                "namespace": r.namespace,
                "name": r.name,
                "sync_status": r.sync_status,
                "health_status": r.health_status,
                "cluster": r.cluster,
            }
            if repo is None:
                rows.append(base)
            elif desired is None:
                rows.append({**base, "error": render_error})
            else:
                rows.extend({**base, **f} for f in _field_rows(cluster, r, desired))
    return pd.DataFrame(rows, columns=_COLUMNS).astype(object)


def _desired(
    repo: DeployRepo | str | Path, app: dict[Any, Any], bin_dir: str | Path | None
) -> tuple[dict[tuple[Any, Any], list[Any]] | None, str | None]:
    """The app's rendered documents by (kind, name), or why they could not be made."""
    from ..errors import GitOpsNbError
    from .render import render_app

    rev = app.get("sync_revision") or app.get("target_revision")
    if not rev:
        return None, "Argo CD has compared no revision yet: nothing to render"
    try:
        result = render_app(repo, str(rev), app, bin_dir=bin_dir)
    except GitOpsNbError as e:
        return None, f"cannot render {app.get('name')} at {str(rev)[:10]}: {e}"
    if result.error is not None or result.tool == "absent":
        why = result.error or f"{app.get('path')} is not in the tree"
        return None, f"{result.tool} failed at {str(rev)[:10]}: {why}"
    by: dict[tuple[Any, Any], list[Any]] = {}
    for d in result.docs:
        if isinstance(d, dict):
            by.setdefault((d.get("kind"), (d.get("metadata") or {}).get("name")), []).append(d)
    return by, None


def _field_rows(cluster: EvidenceSource, r: Any, desired: dict[tuple[Any, Any], list[Any]]) -> list[dict[str, Any]]:
    docs = [
        d
        for d in desired.get((r.kind, r.name), [])
        if (d.get("metadata") or {}).get("namespace") in (None, r.namespace)
    ]
    get = getattr(cluster, "get_object", None)
    if not docs:
        return [{"field": "", "git": None, "live": "present", "change": "live-only"}]
    if get is None:
        return [{"error": "this evidence source holds no live objects (a snapshot): use a live Cluster"}]
    live = get(r.group or "", r.version or "v1", r.kind, r.namespace, r.name, cluster=r.cluster)
    if live is None:
        return [{"field": "", "git": "present", "live": None, "change": "missing"}]
    want = _strip(copy.deepcopy(docs[0]))
    have = _strip(copy.deepcopy(live))
    if want.get("kind") == "Secret":
        have = _secret_view(want, have)
    seen = _project(want, have)
    rows = [
        {
            "field": d["field"],
            "git": d["old"],
            "live": d["new"],
            "change": {"removed": "git-only", "added": "live-only"}.get(d["change"], d["change"]),
        }
        for d in diff_documents("live.yaml", [want], [seen])
    ]
    return rows or [{"field": None, "change": "none", "error": "no field the git manifest sets differs"}]


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop what the server owns: status and the server's metadata."""
    doc.pop("status", None)
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        for k in _SERVER_METADATA:
            meta.pop(k, None)
        anns = meta.get("annotations")
        if isinstance(anns, dict):
            anns.pop(_LAST_APPLIED, None)
    return doc


def _list_key(want: list[Any], have: list[Any]) -> str | None:
    items = [*want, *have]
    if not want or not all(isinstance(i, dict) for i in items):
        return None
    for k in _LIST_KEYS:
        if all(i.get(k) is not None for i in items) and len({str(i[k]) for i in want}) == len(want):
            return k
    return None


def _project(want: Any, have: Any) -> Any:
    """``have`` cut to the fields ``want`` sets (list items matched by name, or by position)."""
    if isinstance(want, dict) and isinstance(have, dict):
        return {k: _project(v, have[k]) for k, v in want.items() if k in have}
    if isinstance(want, list) and isinstance(have, list):
        key = _list_key(want, have)
        if key:
            wanted = {str(i[key]): i for i in want}
            return [_project(wanted[str(i[key])], i) if str(i[key]) in wanted else i for i in have]
        if len(want) == len(have) and all(isinstance(i, dict) for i in want):
            return [_project(w, h) for w, h in zip(want, have, strict=True)]
    return have


def _secret_view(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """The live Secret's values digested as the render's are: ``data`` as stored (base64),
    ``stringData`` (which the server folds into ``data``) as the decoded text."""
    from .render import digest_secrets

    data = have.get("data") or {}
    view = {**have, "data": dict(data)}
    if isinstance(want.get("stringData"), dict):
        plain = {}
        for k in want["stringData"]:
            if k in data:
                try:
                    plain[k] = base64.b64decode(data[k]).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    plain[k] = data[k]
        view["stringData"] = plain
    if not isinstance(want.get("data"), dict):
        view.pop("data")
    return dict(digest_secrets([view])[0])


def manual_edits(
    cluster: EvidenceSource,
    since: str | datetime | pd.Timestamp | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Field edits by anything but Argo CD, in every Application's destination namespace, newest first.

    The frame is :data:`schema.FIELD_EDITS` plus ``apps`` (the Applications deploying into
    that namespace): this is how a 2am ``kubectl edit`` is found. An edit without a time in
    managedFields (``kubectl scale``) is kept, timed by its bound (``time_bound``: after the last
    sync). ``kinds`` limits the kinds read; a kind the role may not list (Secrets) is skipped and
    named in ``attrs["skipped"]``.
    """
    apps = cluster.applications()
    source = reading_destinations(cluster, apps)  # a spoke's edits are on the spoke
    by_ns = _places(apps)
    frames, read = [], []
    for ns, places in by_ns.items():
        f = source.field_edits(ns, kinds)
        read.append(f)
        f = f[[c in places for c in f["cluster"]]] if len(f) else f
        names = sorted({n for v in places.values() for n in v})
        f = bound_untimed(f[~f["is_gitops"]], apps)
        if since is not None:
            f = f[f["time"].isna() | (f["time"] >= parse_at(since))]
        frames.append(f.assign(apps=[sorted(places.get(c, names)) for c in f["cluster"]]))  # type: ignore[misc]  # pandas-stubs: a column of lists
    if not frames:
        from .. import schema

        out = schema.frame(schema.FIELD_EDITS).assign(apps=[])
    else:
        out = pd.concat(frames, ignore_index=True).sort_values("time", ascending=False).reset_index(drop=True)
    out.attrs["skipped"] = skipped_of(read)
    out.attrs["failures"] = source.failures.to_dict("records") if isinstance(source, Fleet) else []
    return out


def drift_spans(
    cluster: EvidenceSource,
    since: str | datetime | pd.Timestamp | None = None,
    until: str | datetime | pd.Timestamp | None = None,
    *,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every field that disagreed with git, and for how long (schema :data:`schema.DRIFT_SPANS`), from a
    :class:`~gitops_nb.Recording`: oldest first.

    A span opens when a manager other than Argo CD (a ``kubectl edit`` or ``scale``, a script) changes a field
    of an object an Application deploys, and closes when Argo CD next writes that field: a sync or a
    self-heal puts git's value back. A span still open at ``until`` (default: now; for a recording read as of
    a time, that time) is ``ongoing``. Spans that overlap ``since``..``until`` are kept. A live cluster or a
    snapshot keeps no past values, so it gives no spans (``attrs["why_empty"]`` says so; use
    :func:`manual_edits` there). ``kinds`` limits the kinds read.
    """
    from .. import schema

    lo = parse_at(since) if since is not None else None
    hi = parse_at(until) if until is not None else pd.Timestamp.now(tz="UTC")
    apps = cluster.applications()
    source = reading_destinations(cluster, apps)
    by_ns = _places(apps)
    rows: list[dict[str, Any]] = []
    read, recorded = [], False
    for ns, places in by_ns.items():
        f = source.field_edits(ns, kinds)
        read.append(f)
        changes = recorded_changes(f)
        if changes is None:
            continue
        recorded = True
        changes = changes[
            [
                c in places and m not in CONTROLLER_MANAGERS
                for c, m in zip(changes["cluster"], changes["manager"], strict=True)
            ]
        ]
        names = sorted({n for v in places.values() for n in v})
        for (where, kind, name, path), ch in changes.groupby(
            ["cluster", "kind", "name", "path"], sort=False, dropna=False
        ):
            rows.extend(_spans(ch, hi, sorted(places.get(where, names)), where, ns, kind, name, path))
    out = schema.frame(schema.DRIFT_SPANS, rows)
    keep = (out["ended_at"].isna() | (out["ended_at"] >= lo)) if lo is not None else pd.Series(True, index=out.index)
    out = out[keep & (out["set_at"] <= hi)].sort_values("set_at", kind="stable").reset_index(drop=True)
    out.attrs["skipped"] = skipped_of(read)
    out.attrs["failures"] = source.failures.to_dict("records") if isinstance(source, Fleet) else []
    out.attrs["why_empty"] = (
        None
        if recorded or not by_ns
        else "this evidence keeps no past field values (a live cluster or a snapshot): record the cluster with "
        "`gitops-nb record` and read the Recording, or see manual_edits() for who owns each field now"
    )
    return out


def _spans(
    changes: pd.DataFrame, end: pd.Timestamp, apps: list[str], where: Any, ns: str, kind: Any, name: Any, path: Any
) -> list[dict[str, Any]]:
    """The spans of one field: each run of changes outside git, closed by Argo CD's next write of it."""
    out: list[dict[str, Any]] = []
    span: dict[str, Any] | None = None
    c: Any
    for c in changes.itertuples(index=False):
        if c.time > end:
            break
        if not c.is_gitops:
            if span is None:
                span = {
                    "cluster": where,
                    "apps": apps,
                    "namespace": ns,
                    "kind": kind,
                    "name": name,
                    "path": path,
                    "value_before": c.old,
                    "set_by": c.manager,
                    "set_at": c.time,
                    "time_bound": c.time_bound if isinstance(c.time_bound, str) else None,
                }
            span["value_outside"] = c.new
        elif span is not None:
            out.append({**span, "ended_by": c.manager, "ended_at": c.time, "restored_to": c.new, "ongoing": False})
            span = None
    if span is not None:
        out.append({**span, "ended_by": None, "ended_at": None, "restored_to": None, "ongoing": True})
    for r in out:
        r["duration"] = (r["ended_at"] if r["ended_at"] is not None else end) - r["set_at"]
        r["duration_text"] = describe_span(r["duration"]) + (" so far" if r["ongoing"] else "")
    return out


def _places(apps: pd.DataFrame) -> dict[str, dict[Any, list[str]]]:
    """namespace -> cluster -> the Applications deploying there (the same namespace on two clusters is two places)."""
    by_ns: dict[str, dict[Any, list[str]]] = {}
    for n, ns, where in zip(apps["name"], apps["dest_namespace"], apps["cluster"], strict=True):
        by_ns.setdefault(ns, {}).setdefault(where, []).append(n)
    return by_ns
