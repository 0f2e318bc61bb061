"""``what_changed``: one timeline around an incident time, with likely culprits ranked."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from . import schema
from .errors import InputError
from .history import DeployRepo
from .times import parse_at, parse_window

__all__ = ["Investigation", "TimelineSource", "culprits", "investigate", "what_changed"]

_HALF_LIFE_MIN = 30.0
_FIELD_WEIGHTS = (  # (substring of the field path, weight): the first match counts
    ("newTag", 1.0),
    ("digest", 1.0),
    ("newName", 1.0),
    (".image", 1.0),
    ("replicas", 0.8),
    ("resources", 0.8),
    ("env", 0.7),
    ("command", 0.7),
    ("args", 0.7),
)
_DEFAULT_FIELD_WEIGHT = 0.5
_NO_APP_WEIGHT = 0.1
_MAX_DETAIL = 6


class TimelineSource(Protocol):
    """Anything that adds rows to the timeline (the cluster side plugs in here)."""

    def timeline(self, since: pd.Timestamp, until: pd.Timestamp, apps: Sequence[str] | None) -> pd.DataFrame:
        """Rows with at least ``time``, ``source``, ``app``, ``summary`` in the given range."""
        ...


def _match_app(app: str, wanted: Iterable[str]) -> bool:
    parts = app.split("/")
    return any(w == app or w in parts or app.endswith("/" + w.strip("/")) for w in wanted)


def _short_app(app: str) -> str:
    parts = app.split("/")
    if len(parts) >= 4 and parts[-2] == "overlays":
        return f"{parts[-3]}/{parts[-1]}"
    return app


def _weight(fields: list[str]) -> tuple[float, str]:
    best, label = 0.0, ""
    for f in fields:
        w = next((w for key, w in _FIELD_WEIGHTS if key in f), _DEFAULT_FIELD_WEIGHT)
        if w > best:
            best, label = w, f
    return best, label


def _score(
    minutes_before: float, n_apps: int, fields: list[str], *, is_merge: bool, is_revert: bool, reverted_by: str | None
) -> tuple[float, str]:
    proximity = 0.5 ** (minutes_before / _HALF_LIFE_MIN)
    weight, top = _weight(fields)
    if not fields:
        weight = _DEFAULT_FIELD_WEIGHT if n_apps else _NO_APP_WEIGHT
    if n_apps == 0:
        weight = min(weight, _NO_APP_WEIGHT)
    breadth = 1.0 + math.log2(1 + n_apps)
    why = [f"{minutes_before:.0f}m before T", f"{n_apps} app{'s' if n_apps != 1 else ''}"]
    if top:
        why.append(f"changes {top}")
    if is_merge:
        weight *= 0.3
        why.append("merge")
    if is_revert:
        weight *= 0.5
        why.append("a revert")
    if reverted_by:
        weight *= 0.2
        why.append(f"reverted by {reverted_by[:10]} before T")
    return round(proximity * weight * breadth, 4), "; ".join(why)


def _deploys(
    repo: DeployRepo, cluster_rows: pd.DataFrame, since: pd.Timestamp
) -> dict[str, list[tuple[pd.Timestamp, str, str]]]:
    """sha -> [(deployed_at, Kustomize root, Argo CD app)] for every commit a deploy in ``cluster_rows`` contained."""
    out: dict[str, list[tuple[pd.Timestamp, str, str]]] = defaultdict(list)
    deploys = cluster_rows[
        (cluster_rows["source"] == "argocd") & cluster_rows["summary"].str.startswith("Argo CD deployed")
    ]
    contained: dict[str, set[str]] = {}
    for d in deploys.itertuples(index=False):
        if not isinstance(d.sha, str) or not d.sha:
            continue
        if d.sha not in contained:
            contained[d.sha] = repo.ancestors(d.sha, since=since)
        for sha in contained[d.sha]:
            out[sha].append((d.time, d.app, d.argocd_app))
    return out


def _edit_score(row: dict[str, Any], t: pd.Timestamp) -> tuple[float, str | None]:
    """Manual field edits are culprit candidates; other cluster rows are evidence."""
    if row["source"] != "field-edit" or row["before_at"] < pd.Timedelta(0):
        return 0.0, None
    minutes = row["before_at"].total_seconds() / 60
    fields = row.get("fields") or []
    weight, top = _weight([f for f in fields if not f.startswith("metadata.")]) if fields else (0.5, "")
    weight = weight or 0.5
    why = f"{minutes:.0f}m before T; manual change by {row['author']}" + (f"; changes {top}" if top else "")
    # as concrete as a deploy (x1.5) to the one app it touched (breadth 2): a change nobody put in git
    return round(0.5 ** (minutes / _HALF_LIFE_MIN) * weight * 2 * 1.5, 4), why


def what_changed(
    repo: DeployRepo | str | Path,
    at: str | datetime | pd.Timestamp = "now",
    window: str | pd.Timedelta = "2h",
    apps: Sequence[str] | str | None = None,
    cluster: TimelineSource | None = None,
    *,
    after: str | pd.Timedelta | None = "15m",
    rev: str = "HEAD",
) -> pd.DataFrame:
    """What changed around time ``at``: a timeline (schema :data:`schema.TIMELINE`), newest first.

    Args:
        repo: a :class:`DeployRepo` or the path of a deploy-config clone.
        at: the incident time: ISO-8601 with a zone, ``now``, or relative (``-30m``).
            A naive time is taken as UTC (with a warning).
        window: how far before ``at`` to look (``2h``, ``45m``, ``1d``).
        apps: only rows about these Kustomize roots (full path, or a path part such
            as ``checkout-api`` or ``production``).
        cluster: a source of cluster-side rows (Argo CD deploys, events, rollouts,
            field edits); ``None`` gives the git-only timeline.
        after: how far after ``at`` to keep showing rows (never ranked as culprits).
        rev: the branch or sha whose history is read.

    Rows at or before ``at`` get a culprit ``score`` (closeness before ``at``, what the
    change touches, how many apps) and a ``rank`` (1 = most likely); ``why`` says how.
    """
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    t = parse_at(at)
    w = parse_window(window)
    a = pd.Timedelta(0) if after in (None, 0, "0", "") else parse_window(after, name="after")  # type: ignore[arg-type]
    wanted = [apps] if isinstance(apps, str) else list(apps or [])
    lo, hi = t - w, t + a

    commits = r.commits(since=lo, until=hi, rev=rev)
    changes = r.manifest_changes(since=lo, until=hi, rev=rev)
    index: dict[str, list[str]] = defaultdict(list)
    roots = r.apps(rev)
    for app, files in zip(roots["app"], roots["files"], strict=True):
        for f in files:
            index[f].append(app)
    if wanted and cluster is not None and hasattr(cluster, "applications"):  # Argo CD app names -> their paths
        argo = cluster.applications()
        wanted += [p for n, p in zip(argo["name"], argo["path"], strict=True) if n in wanted and p]
    if wanted:
        known = list(roots["app"])
        if not any(_match_app(x, wanted) for x in known):
            raise InputError(
                f"no Kustomize root matches apps={wanted!r} in {r.path}: known roots are {', '.join(known) or 'none'}"
            )

    by_sha: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for sha, path, field, old, new, change in zip(
        changes["sha"],
        changes["path"],
        changes["field"],
        changes["old"],
        changes["new"],
        changes["change"],
        strict=True,
    ):
        label = _short_app(index[path][0]) if index.get(path) else path
        if change == "modified":
            by_sha[sha].append((field, f"{label}: {field} {old} → {new}"))
        elif change == "unreadable":
            by_sha[sha].append(("", f"{label}: unreadable"))
        else:
            by_sha[sha].append((field, f"{label}: {field or '(object)'} {change}"))

    reverted = {
        sha: by
        for sha, by, when in zip(commits["reverts"], commits["sha"], commits["committed_at"], strict=True)
        if sha is not None and when <= t
    }
    extra = cluster.timeline(lo, hi, wanted or None) if cluster is not None else None
    deployed = _deploys(r, extra, lo) if extra is not None else {}
    rows: list[dict[str, Any]] = []
    for c in commits.itertuples(index=False):
        touched = sorted({app for f in c.files for app in index.get(f, [])})
        if wanted and not any(_match_app(x, wanted) for x in touched):
            continue
        details = by_sha.get(c.sha, [])
        before = t - c.committed_at
        dep = [d for d in deployed.get(c.sha, []) if d[1] in touched]  # a commit no app builds deploys nothing
        first = min(dep) if dep else None
        row: dict[str, Any] = {
            "time": c.committed_at,
            "source": "git",
            "app": ", ".join(touched) or None,
            "apps": touched,
            "sha": c.sha,
            "author": c.author,
            "summary": c.subject,
            "detail": "; ".join(d for _, d in details[:_MAX_DETAIL])
            + (f"; … {len(details) - _MAX_DETAIL} more" if len(details) > _MAX_DETAIL else ""),
            "before_at": before,
            "score": 0.0,
            "rank": None,
            "why": None,
            "deployed_at": first[0] if first else None,
            "argocd_app": ", ".join(sorted({d[2] for d in dep})) or None,
        }
        if before >= pd.Timedelta(0):
            basis = before
            factor, note = 1.0, ""
            if extra is not None and first is not None and first[0] <= t:
                basis, factor, note = t - first[0], 1.5, f"deployed {first[0]:%H:%M} UTC to {first[2]}"
            elif extra is not None and touched:
                factor, note = 0.3, "not deployed before T"
            score, why = _score(
                basis.total_seconds() / 60,
                len(touched),
                [f for f, _ in details],
                is_merge=bool(c.is_merge),
                is_revert=c.reverts is not None,
                reverted_by=reverted.get(c.sha),
            )
            row["score"], row["why"] = round(score * factor, 4), "; ".join(x for x in (why, note) if x)
        rows.append(row)

    out = schema.frame(schema.TIMELINE, rows)
    if extra is not None and len(extra):
        extra = extra.assign(before_at=t - extra["time"])
        scores = [_edit_score(row, t) for row in extra.to_dict("records")]
        extra["score"] = [s for s, _ in scores]
        extra["why"] = [w for _, w in scores]
        out = pd.concat([out, extra[list(schema.TIMELINE)]], ignore_index=True)
    out = out.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
    cand = out.index[(out["before_at"] >= pd.Timedelta(0)) & (out["score"] > 0)]
    order = out.loc[cand].sort_values(["score", "time"], ascending=[False, False]).index
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out.loc[order, "rank"] = range(1, len(order) + 1)
    out.attrs.update({"at": t, "window": w, "after": a, "repo": r.path, "apps": wanted})
    return out


def culprits(timeline: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` best-ranked rows of a :func:`what_changed` timeline (schema :data:`schema.CULPRITS`)."""
    ranked = timeline[timeline["rank"].notna()].sort_values("rank").head(n)
    return schema.frame(schema.CULPRITS, ranked.to_dict("records"))


class Investigation:
    """The frames of one "what changed at T" investigation, ready to show and save."""

    def __init__(
        self,
        repo: DeployRepo,
        timeline: pd.DataFrame,
        commits: pd.DataFrame,
        changes: pd.DataFrame,
        apps: pd.DataFrame,
        cluster: TimelineSource | None = None,
    ) -> None:
        self.cluster = cluster
        self.repo = repo
        self.timeline = timeline
        self.commits = commits
        self.changes = changes
        self.apps = apps
        self.at: pd.Timestamp = timeline.attrs["at"]
        self.window: pd.Timedelta = timeline.attrs["window"]

    def rows(self, source: str) -> pd.DataFrame:
        """The timeline rows of one source: ``git``, ``argocd``, ``argocd-event``, ``k8s-event``,
        ``rollout`` or ``field-edit``."""
        return self.timeline[self.timeline["source"] == source].reset_index(drop=True)

    @property
    def culprits(self) -> pd.DataFrame:
        """The ranked culprits (see :func:`culprits`)."""
        return culprits(self.timeline)

    def summary(self) -> dict[str, Any]:
        """Key facts as plain values (what ``summary.json`` holds)."""
        top = self.culprits.head(1)
        return {
            "repo": self.repo.path,
            "cluster": repr(self.cluster) if self.cluster is not None else None,
            "at": self.at,
            "window": self.window,
            "since": self.at - self.window,
            "until": self.at + self.timeline.attrs["after"],
            "commits": len(self.commits),
            "manifest_changes": len(self.changes),
            "apps_affected": sorted({a for apps in self.timeline["apps"] for a in apps}),
            "top_culprit": None
            if top.empty
            else {
                "sha": top["sha"].iloc[0],
                "summary": top["summary"].iloc[0],
                "time": top["time"].iloc[0],
                "score": float(top["score"].iloc[0]),
            },
        }

    def save(self, output_dir: str | Path) -> Path:
        """Write the frames and the summary under ``output_dir`` (see :func:`report.save_results`)."""
        from .report import save_results

        frames = {
            "timeline": self.timeline,
            "culprits": self.culprits,
            "commits": self.commits,
            "manifest_changes": self.changes,
            "apps": self.apps,
        }
        out = save_results(output_dir, frames, self.summary())
        if self.cluster is not None and hasattr(self.cluster, "raw_applications"):  # live: keep the evidence
            from .evidence import snapshot

            snapshot(self.cluster, out / "evidence")  # type: ignore[arg-type]
        return out


def investigate(
    repo: DeployRepo | str | Path,
    at: str | datetime | pd.Timestamp = "now",
    window: str | pd.Timedelta = "2h",
    apps: Sequence[str] | str | None = None,
    cluster: TimelineSource | None = None,
    *,
    kube_context: str | None = None,
    kubeconfig: str | None = None,
    argocd_namespace: str = "argocd",
    snapshot_dir: str | Path | None = None,
    rev: str = "HEAD",
) -> Investigation:
    """Run :func:`what_changed` and gather the commits, semantic changes and apps it rests on.

    The cluster side comes from ``cluster`` (a :class:`Cluster` or :class:`Snapshot`), or
    is opened from ``kube_context`` (and ``kubeconfig``), or read from ``snapshot_dir``;
    with none of them the investigation is git-only.
    """
    if cluster is None and kube_context:
        from .cluster import Cluster

        cluster = Cluster(kube_context, kubeconfig=kubeconfig, argocd_namespace=argocd_namespace)
    elif cluster is None and snapshot_dir:
        from .evidence import Snapshot

        cluster = Snapshot(snapshot_dir)
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    tl = what_changed(r, at, window, apps, cluster, rev=rev)
    lo, hi = tl.attrs["at"] - tl.attrs["window"], tl.attrs["at"] + tl.attrs["after"]
    shas = set(tl["sha"].dropna())
    commits = r.commits(since=lo, until=hi, rev=rev)
    changes = r.manifest_changes(since=lo, until=hi, rev=rev)
    if tl.attrs["apps"]:
        commits = commits[commits["sha"].isin(shas)].reset_index(drop=True)
        changes = changes[changes["sha"].isin(shas)].reset_index(drop=True)
    return Investigation(r, tl, commits, changes, r.apps(rev), cluster)
