"""``what_changed``: one timeline around an incident time, with likely culprits ranked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import schema
from ..cluster.evidence import EvidenceSource
from ..cluster.live import gc_paused
from ..errors import InputError
from ..git.manifests import unreadable_label
from ..git.repo import DeployRepo
from ..schema import RowKind
from ..times import describe_time, parse_at, parse_window
from .evidence_rows import cluster_rows
from .fields import FieldRef
from .render import RENDER_ERROR, rendered_diff
from .scoring import DEFAULT_WEIGHTS, CommitFacts, Weights, commit_score, edit_score, rank

if TYPE_CHECKING:
    from ..cluster.recording import Recording

__all__ = ["Investigation", "culprits", "explain_empty", "investigate", "what_changed"]

_MAX_DETAIL = 6
_Deploy = tuple[pd.Timestamp, str, str]  # (deployed at, Kustomize root, Argo CD app)


@dataclass
class _Window:
    """The question: T, how far before and after it, which apps, which history."""

    repo: DeployRepo
    at: pd.Timestamp
    window: pd.Timedelta
    after: pd.Timedelta
    wanted: list[str]
    rev: str

    @property
    def lo(self) -> pd.Timestamp:
        return self.at - self.window

    @property
    def hi(self) -> pd.Timestamp:
        return self.at + self.after


def _match_app(app: str, wanted: Iterable[str]) -> bool:
    parts = app.split("/")
    return any(w == app or w in parts or app.endswith("/" + w.strip("/")) for w in wanted)


def _short_app(app: str) -> str:
    parts = app.split("/")
    if len(parts) >= 4 and parts[-2] == "overlays":
        return f"{parts[-3]}/{parts[-1]}"
    return app


def _ask(
    repo: DeployRepo | str | Path,
    at: str | datetime | pd.Timestamp,
    window: str | pd.Timedelta,
    apps: Sequence[str] | str | None,
    after: str | pd.Timedelta | None,
    rev: str,
) -> _Window:
    """Step 1: parse and check the question."""
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    a = pd.Timedelta(0) if after is None or after in (0, "0", "") else parse_window(after, name="after")
    wanted = [apps] if isinstance(apps, str) else list(apps or [])
    return _Window(r, parse_at(at), parse_window(window), a, wanted, rev)


def _file_index(
    landed: pd.DataFrame, live: pd.DataFrame | None = None, names: Iterable[str] = (), roots: Iterable[str] = ()
) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]]]:
    """Step 2: (sha, file) -> the apps the change reaches through it, mapped in the change's own trees;
    and every file -> the cluster's Applications built from it.

    ``landed`` is :meth:`DeployRepo.landed` (Kustomize roots and Flux apps mapped per commit, the
    repo's Applications at the window's tree); ``live`` the cluster's Applications
    (``DeployRepo.apps(sha, applications=...)`` rows at the window's tree; only those of the
    Application ``names`` are read, not the Kustomize roots no Application builds). A cluster
    Application git alone does not see (not defined in the repo, building no Kustomize root of it:
    a Helm chart, a ``$values`` file) is an app of its own, under its name, for every change to its files.
    ``roots``: every app seen in the window's trees (``landed.attrs["roots"]``).
    """
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sha, matched in zip(landed["sha"], landed["matched"], strict=True):
        for app, files in matched.items():
            for f in files:
                index[sha, f].append(app)
    argo: dict[str, list[str]] = defaultdict(list)
    if live is None:
        return index, argo
    known, names = set(roots), set(names)
    unseen: dict[str, list[str]] = defaultdict(list)
    for app, files, dirs in zip(live["app"], live["files"], live["dirs"], strict=True):
        if app not in names:  # a Kustomize root or Flux app no Application builds
            continue
        hidden = app not in known and not {d or "." for d in dirs} & known
        for f in files:
            argo[f].append(app)
            if hidden:
                unseen[f].append(app)
    if unseen:
        for sha, files in zip(landed["sha"], landed["files"], strict=True):
            for f in files:
                for app in unseen.get(f, ()):
                    if app not in index.get((sha, f), ()):
                        index[sha, f].append(app)
    return index, argo


def _resolve_wanted(q: _Window, known: Sequence[str], argo: pd.DataFrame | None) -> None:
    """Step 3: ``apps=`` may name Argo CD Applications too (their source paths); refuse a name nothing matches."""
    if not q.wanted:
        return
    if argo is not None:
        q.wanted += [p for n, p in zip(argo["name"], argo["path"], strict=True) if n in q.wanted and p]
    if not any(_match_app(x, q.wanted) for x in known):
        raise InputError(
            f"no Kustomize root matches apps={q.wanted!r} in {q.repo.path}: known roots are {', '.join(known) or 'none'}"
        )


def _details(changes: pd.DataFrame, index: dict[tuple[str, str], list[str]]) -> dict[str, list[tuple[FieldRef, str]]]:
    """Step 4: each landed change's semantic changes as (the field with its row's context, one line a person reads)."""
    by_sha: dict[str, list[tuple[FieldRef, str]]] = defaultdict(list)
    for sha, path, kind, fld, old, new, change, via, error in zip(
        changes["sha"],
        changes["path"],
        changes["kind"],
        changes["field"],
        changes["old"],
        changes["new"],
        changes["change"],
        changes["via"],
        changes["error"],
        strict=True,
    ):
        apps = index.get((sha, path))
        label = _short_app(apps[0]) if apps else path
        ref = FieldRef(fld or "", kind, via, path, new if new is not None else old, deployed=bool(apps))
        if change == "modified":
            by_sha[sha].append((ref, f"{label}: {fld} {old} → {new}"))
        elif change == "unreadable":
            by_sha[sha].append((FieldRef("", deployed=ref.deployed), f"{label}: {unreadable_label(error)}"))
        else:
            by_sha[sha].append((ref, f"{label}: {fld or '(object)'} {change}"))
    return by_sha


class _Deployed:
    """Step 5: the deploys of every revision that contained each commit, found by Kustomize root or by Argo CD
    Application. Kept per revision, not per commit: a thousand apps deploy the same few revisions, and a list
    per commit would copy every deploy of every revision that holds it."""

    def __init__(self, repo: DeployRepo, cluster_rows: pd.DataFrame, since: pd.Timestamp) -> None:
        deploys = cluster_rows[cluster_rows["kind"] == RowKind.DEPLOY]
        self.by_root: dict[str, dict[str, list[_Deploy]]] = defaultdict(lambda: defaultdict(list))
        self.by_app: dict[str, dict[str, list[_Deploy]]] = defaultdict(lambda: defaultdict(list))
        for rev, t, app, argocd_app in zip(
            deploys["sha"], deploys["time"], deploys["app"], deploys["argocd_app"], strict=True
        ):
            if isinstance(rev, str) and rev:
                self.by_root[rev][app].append((t, app, argocd_app))
                self.by_app[rev][argocd_app].append((t, app, argocd_app))
        self.revisions: dict[str, list[str]] = defaultdict(list)  # sha -> the deployed revisions holding it
        for rev in self.by_app:
            for sha in repo.ancestors(rev, since=since):
                self.revisions[sha].append(rev)

    def of(self, sha: str, names: Iterable[str] = (), apps: Iterable[str] = ()) -> list[_Deploy]:
        """The deploys of ``sha`` whose Kustomize root or Application is one of ``names``, or whose
        Application is one of ``apps``."""
        found: dict[_Deploy, None] = {}
        for rev in self.revisions.get(sha, ()):
            roots, by_app = self.by_root[rev], self.by_app[rev]
            for x in names:
                found.update(dict.fromkeys(roots.get(x, ())))
                found.update(dict.fromkeys(by_app.get(x, ())))
            for x in apps:
                found.update(dict.fromkeys(by_app.get(x, ())))
        return list(found)


def _failed(
    repo: DeployRepo, cluster_rows: pd.DataFrame, deployed: _Deployed, since: pd.Timestamp
) -> dict[str, list[_Deploy]]:
    """Step 5b: sha -> the failed syncs it broke: the commits of a failed operation's revision that no deploy
    of that app had brought before it. Only the first failure of a run counts: the syncs failing after it
    fail for the same commit, not for the ones pushed on top."""
    out: dict[str, list[_Deploy]] = defaultdict(list)
    if not (cluster_rows["kind"] == RowKind.SYNC_FAILED).any():
        return out  # no failed sync: nothing to walk
    ops = cluster_rows[cluster_rows["kind"].isin([RowKind.DEPLOY, RowKind.SYNC_FAILED])].sort_values("time")
    failing: set[str] = set()
    d: Any  # an itertuples() row
    for d in ops.itertuples(index=False):
        if d.kind == RowKind.DEPLOY:
            failing.discard(d.argocd_app)
        elif d.argocd_app not in failing and isinstance(d.sha, str) and d.sha:
            failing.add(d.argocd_app)
            for sha in repo.ancestors(d.sha, since=since):
                if not any(t <= d.time for t, _, _ in deployed.of(sha, apps=[d.argocd_app])):
                    out[sha].append((d.time, d.app, d.argocd_app))
    return out


def _commit_rows(
    q: _Window,
    landed: pd.DataFrame,
    index: dict[tuple[str, str], list[str]],
    argo: dict[str, list[str]],
    details: dict[str, list[tuple[FieldRef, str]]],
    deployed: _Deployed | None,
    weights: Weights,
    failed: dict[str, list[_Deploy]] | None = None,
) -> list[dict[str, Any]]:
    """Step 6: one scored row per change that landed in the window (a merge carries its pull request)."""
    holder = {m: sha for sha, merged in zip(landed["sha"], landed["merged_commits"], strict=True) for m in merged}
    reverted = {
        holder.get(sha, sha): by
        for sha, by, when in zip(landed["reverts"], landed["sha"], landed["landed_at"], strict=True)
        if sha is not None and when <= q.at
    }
    rows: list[dict[str, Any]] = []
    c: Any  # an itertuples() row: pandas-stubs types every field as any scalar
    for c in landed.itertuples(index=False):
        # the apps mapped in the change's own trees, and the cluster's Applications git alone does not see
        touched = sorted({*c.apps, *(app for f in c.files for app in index.get((c.sha, f), ()))})
        reached = sorted({app for f in c.files for app in argo.get(f, ())})  # the cluster's Applications
        if q.wanted and not any(_match_app(x, q.wanted) for x in touched + reached):
            continue
        det = details.get(c.sha, [])
        before = q.at - c.landed_at
        # a commit no app builds deploys nothing (an Application is matched by its source path or its name)
        dep = deployed.of(c.sha, touched, reached) if deployed is not None else []
        first = min(dep) if dep else None
        row: dict[str, Any] = {
            "time": c.landed_at,
            "kind": RowKind.COMMIT,
            "source": "git",
            "app": ", ".join(touched) or None,
            "apps": touched,
            "sha": c.sha,
            "author": ", ".join(c.merged_authors) if c.merged_authors else c.author,
            "summary": c.subject,
            "detail": "; ".join(d for _, d in det[:_MAX_DETAIL])
            + (f"; … {len(det) - _MAX_DETAIL} more" if len(det) > _MAX_DETAIL else ""),
            "before_at": before,
            "score": 0.0,
            "why": None,
            "deployed_at": first[0] if first else None,
            "argocd_app": ", ".join(sorted({*reached, *(d[2] for d in dep)})) or None,
            "authored_at": c.authored_at,
            "landed_via": c.landed_via,
            "merged_commits": list(c.merged_commits),
        }
        if before >= pd.Timedelta(0):
            deployed_before = first is not None and first[0] <= q.at
            # not deployed because its sync failed before T: the failure may be the incident
            fail = (
                None
                if deployed_before
                else min((f for f in (failed or {}).get(c.sha, []) if f[1] in touched and f[0] <= q.at), default=None)
            )
            basis = q.at - first[0] if first is not None and deployed_before else before
            basis = q.at - fail[0] if fail is not None else basis
            row["score"], row["why"] = commit_score(
                CommitFacts(
                    minutes_before=basis.total_seconds() / 60,
                    n_apps=len(touched),
                    fields=[f for f, _ in det],
                    is_merge=c.landed_via == "merge" and not c.files,  # only a merge that brings nothing is damped
                    is_revert=c.reverts is not None,
                    reverted_by=reverted.get(c.sha),
                    deployed_at=first[0] if first is not None and deployed_before else None,
                    deployed_to=first[2] if first is not None else None,
                    cluster_known=deployed is not None,
                    files=list(c.files),
                    failed_at=fail[0] if fail is not None else None,
                    failed_to=fail[2] if fail is not None else None,
                ),
                weights,
            )
        rows.append(row)
    return rows


def _say_beyond_git(rows: list[dict[str, Any]], extra: pd.DataFrame) -> None:
    """Step 6b: a commit whose deploy also changed what git did not ask for (it put back git's value over a
    manual edit) says so in its ``detail`` and ``why``: the routine deploy "that changed nothing"."""
    said = extra[(extra["kind"] == RowKind.DEPLOY) & extra["beyond"].notna()]
    if not len(said):
        return
    by: dict[tuple[Any, Any], str] = {
        (a, t): str(b) for a, t, b in zip(said["argocd_app"], said["time"], said["beyond"], strict=True)
    }
    for r in rows:
        apps = [a.strip() for a in str(r.get("argocd_app") or "").split(",") if a.strip()]
        texts = [
            by[(a, r["deployed_at"])] for a in apps if r.get("deployed_at") is not None and (a, r["deployed_at"]) in by
        ]
        if texts:
            r["detail"] = "; ".join(x for x in [r.get("detail"), "its deploy also changed " + "; ".join(texts)] if x)
            r["why"] = "; ".join(x for x in [r.get("why"), "its deploy changed fields beyond git"] if x)


def _score_evidence(extra: pd.DataFrame, at: pd.Timestamp, weights: Weights) -> pd.DataFrame:
    """Step 7: cluster rows get ``before_at``; manual field edits are scored (the rest is evidence)."""
    extra = extra.assign(before_at=at - extra["time"])
    edited = ((extra["kind"] == RowKind.FIELD_EDIT) & (extra["before_at"] >= pd.Timedelta(0))).to_numpy()
    scores: list[tuple[float, str | None]] = [(0.0, None)] * len(extra)
    for i, b, a, f in zip(  # only the edits are scored: the rest (thousands of deploys) is evidence
        edited.nonzero()[0],
        extra["before_at"][edited],
        extra["author"][edited],
        extra["fields"][edited],
        strict=True,
    ):
        scores[i] = edit_score(b.total_seconds() / 60, a, f, weights)
    extra["score"] = [s for s, _ in scores]
    extra["why"] = [w for _, w in scores]
    return extra


def _merge_and_rank(q: _Window, rows: list[dict[str, Any]], extra: pd.DataFrame | None) -> pd.DataFrame:
    """Step 8: one frame, newest first, with ranks."""
    out = schema.frame(schema.TIMELINE, rows)
    if extra is not None and len(extra):
        out = pd.concat([out, extra[list(schema.TIMELINE)]], ignore_index=True)
    out = out.sort_values("time", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = rank(out)
    out.attrs.update({"at": q.at, "window": q.window, "after": q.after, "repo": q.repo.path, "apps": q.wanted})
    return out


@gc_paused()  # thousands of rows' objects set off collections that walk the whole heap: none is a cycle
def what_changed(
    repo: DeployRepo | str | Path,
    at: str | datetime | pd.Timestamp = "now",
    window: str | pd.Timedelta = "2h",
    apps: Sequence[str] | str | None = None,
    cluster: EvidenceSource | None = None,
    *,
    after: str | pd.Timedelta | None = "15m",
    rev: str = "HEAD",
    weights: Weights = DEFAULT_WEIGHTS,
    rendered: int = 0,
    kinds: Sequence[str] | None = None,
) -> pd.DataFrame:
    """What changed around time ``at``: a timeline (schema :data:`schema.TIMELINE`), newest first.

    Args:
        repo: a :class:`DeployRepo` or the path of a deploy-config clone.
        at: the incident time: ISO-8601 with a zone, ``now``, or relative (``-30m``).
            A naive time is taken as UTC (with a warning).
        window: how far before ``at`` to look (``2h``, ``45m``, ``1d``).
        apps: only rows about these Kustomize roots (full path, or a path part such
            as ``checkout-api`` or ``production``), or these Argo CD Applications.
        cluster: an evidence source (a live :class:`Cluster` or a :class:`Snapshot`) whose Argo CD
            deploys, events, rollouts and field edits join the timeline; ``None`` for git only.
        after: how far after ``at`` to keep showing rows (never ranked as culprits).
        rev: the branch or sha whose history is read.
        weights: the ranking's constants (:class:`~gitops_nb.investigate.scoring.Weights`).
        rendered: the best ``rendered`` ranked commits get what they change in the rendered
            manifests appended to ``detail`` (``rendered: ...``, from :func:`rendered_diff` with the
            sandbox's or ``PATH``'s kustomize and helm); 0 (the default) renders nothing.
        kinds: the kinds whose manual field edits are read (default: workloads, Services,
            ConfigMaps, Secrets, Ingresses, HPAs); a kind the role may not list is skipped and named
            in ``attrs["skipped"]``.

    Git rows are the changes that landed on ``rev`` (its first-parent line): a pull request
    merged into it is one row at the merge's time, with the merge's diff against the branch,
    the merged commits' authors, ``merged_commits`` and ``authored_at`` (when they were written).
    Each change's files are mapped to apps with the kustomizations of its own tree and its
    parent's, so a later move or deletion of an app does not lose older changes.

    Rows at or before ``at`` that could be culprits (commits, manual edits) get a ``score``
    and a ``rank`` (1 = most likely); ``why`` says how (see :mod:`gitops_nb.investigate.scoring`).
    """
    q = _ask(repo, at, window, apps, after, rev)
    window_of = getattr(cluster, "for_window", None)  # a long recording reads only what the window needs
    whole = cluster  # what a deploy in the window undid may have been set long before it
    if window_of is not None:
        cluster = window_of(q.lo, q.hi)
    landed = q.repo.landed(since=q.lo, until=q.hi, rev=q.rev)  # a copy: its attrs are ours
    # pandas deep-copies a frame's attrs into every column and row it hands out: the roots, each time
    roots, landed.attrs = list(landed.attrs.get("roots", ())), {}
    changes = q.repo.manifest_changes(since=q.lo, until=q.hi, rev=q.rev, first_parent=True)
    frames = cluster.argocd_frames() if cluster is not None else None  # read once, for the index and the rows
    argo = frames[0] if frames is not None else None
    live = None
    if argo is not None and len(argo):
        # the cluster's Applications, mapped at the window's tree as the repo's own are (DeployRepo.landed)
        tree = landed["sha"].iloc[0] if len(landed) else q.rev
        live = q.repo.apps(tree, applications=argo)
    index, argo_index = _file_index(landed, live, argo["name"] if argo is not None else (), roots)
    if q.wanted:  # the apps of the repo, of the window's trees, and the cluster's Applications built from it
        reached = (a for apps in argo_index.values() for a in apps)
        _resolve_wanted(q, sorted({*q.repo.apps(q.rev)["app"], *roots, *reached}), argo)
    details = _details(changes, index)
    extra = (
        cluster_rows(cluster, q.lo, q.hi, q.wanted or None, kinds=kinds, frames=frames, before=whole)
        if cluster is not None
        else None
    )
    skipped = list(extra.attrs.get("skipped", [])) if extra is not None else []
    failures = list(extra.attrs.get("failures", [])) if extra is not None else []
    deployed = _Deployed(q.repo, extra, q.lo) if extra is not None else None
    failed = _failed(q.repo, extra, deployed, q.lo) if extra is not None and deployed is not None else None
    rows = _commit_rows(q, landed, index, argo_index, details, deployed, weights, failed)
    if extra is not None and len(extra):
        _say_beyond_git(rows, extra)
    if extra is not None and len(extra):
        extra = _score_evidence(extra, q.at, weights)
    out = _merge_and_rank(q, rows, extra)
    out.attrs["skipped"] = skipped
    out.attrs["failures"] = failures  # clusters that could not be read (a Fleet's): the rows are partial
    return _add_rendered(q.repo, out, rendered) if rendered else out


def _add_rendered(repo: DeployRepo, tl: pd.DataFrame, n: int) -> pd.DataFrame:
    """Append the rendered diff of the ``n`` best-ranked commits to their ``detail``."""
    top = tl[(tl["kind"] == RowKind.COMMIT) & tl["rank"].notna()].sort_values("rank").head(n)
    for idx, sha in top["sha"].items():
        d = rendered_diff(repo, sha)
        parts = [
            f"{r['app']}: render error: {str(r['error']).splitlines()[0]}"
            if r["change"] == RENDER_ERROR
            else f"{r['kind']}/{r['name']} {r['field'] or '(object)'} {r['change']}"
            + (f" {r['old']} → {r['new']}" if r["change"] == "modified" else "")
            for r in d.to_dict("records")
        ]
        more = f" (+{len(parts) - _MAX_DETAIL} more)" if len(parts) > _MAX_DETAIL else ""
        text = "rendered: " + ("; ".join(parts[:_MAX_DETAIL]) + more if parts else "no change")
        detail = str(tl.at[idx, "detail"] or "")
        tl.at[idx, "detail"] = f"{detail} | {text}" if detail else text
    return tl


def _span(td: pd.Timedelta) -> str:
    secs = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def explain_empty(repo: DeployRepo, at: pd.Timestamp, window: pd.Timedelta, rev: str = "HEAD") -> str:
    """Why a window holds no commit, in words a person acts on (the newest commit before T, and how far)."""
    before = repo.commits(until=at, rev=rev).head(1)
    if before.empty:
        first = repo.commits(rev=rev).tail(1)
        return f"no commit on {rev} before T: the first one is {describe_time(first['committed_at'].iloc[0])}"
    t = before["committed_at"].iloc[0]
    gap = at - t
    return (
        f"no commit in the {_span(window)} before T: the newest before T is {before['short_sha'].iloc[0]} "
        f"{before['subject'].iloc[0]!r}, {gap.days}d {gap.seconds // 3600}h before T ({describe_time(t)}). "
        f"Widen the window (e.g. {max(1, gap.days + 1)}d) or check T"
    )


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
        cluster: EvidenceSource | None = None,
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

    def save(self, output_dir: str | Path, *, progress: Callable[[str], None] | None = None) -> Path:
        """Write the frames and the summary under ``output_dir`` (see :func:`report.save_results`).

        The evidence a report rests on is kept beside it: a live cluster's as a Snapshot in ``evidence/``
        (live evidence fades), a :class:`~gitops_nb.cluster.recording.Recording`'s as a small store in
        ``recording/`` holding the rows the timeline read (:meth:`Recording.save_window`), since the
        recorder's ``--retain`` drops old days. ``summary.json``'s ``evidence`` says how to reopen it:
        ``Recording(<output_dir>/recording, at=<evidence.at>)`` gives the same timeline. ``progress`` gets
        a line per step of that copy."""
        from ..results import save_results

        frames = {
            "timeline": self.timeline,
            "culprits": self.culprits,
            "commits": self.commits,
            "manifest_changes": self.changes,
            "apps": self.apps,
        }
        summary = self.summary()
        recording = self._recording()
        lo, hi = self.at - self.window, self.at + self.timeline.attrs["after"]
        if recording is not None:  # as of when the timeline read it: reopened so, it answers the same
            at = recording.for_window(lo, hi).at
            summary["evidence"] = {"recording": "recording", "cluster": recording.cluster, "at": at}
        out = save_results(output_dir, frames, summary)
        if self.cluster is not None and self.cluster.live:  # live evidence fades: keep it
            from ..cluster.snapshot import snapshot

            snapshot(self.cluster, out / "evidence")
        if recording is not None:  # a recording's old days are dropped by retention: keep the window's rows
            import shutil
            import tempfile

            tmp = Path(tempfile.mkdtemp(prefix=".recording-", dir=out))
            try:
                recording.save_window(tmp / "store", lo, hi, progress=progress)
                shutil.rmtree(out / "recording", ignore_errors=True)  # saved again: replaced whole
                (tmp / "store").rename(out / "recording")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return out

    def _recording(self) -> Recording | None:
        """The investigation's evidence when it is a recording, else ``None``."""
        from ..cluster.recording import Recording

        return self.cluster if isinstance(self.cluster, Recording) else None


def investigate(
    repo: DeployRepo | str | Path,
    at: str | datetime | pd.Timestamp = "now",
    window: str | pd.Timedelta = "2h",
    apps: Sequence[str] | str | None = None,
    cluster: EvidenceSource | None = None,
    *,
    kube_context: str | None = None,
    kubeconfig: str | None = None,
    argocd_namespace: str = "argocd",
    snapshot_dir: str | Path | None = None,
    rev: str = "HEAD",
    recording: str | Path | None = None,
    contexts: Sequence[str] | str | None = None,
) -> Investigation:
    """Run :func:`what_changed` and gather the commits, semantic changes and apps it rests on.

    The cluster side comes from ``cluster`` (a :class:`Cluster`, :class:`Fleet`, :class:`Snapshot` or
    :class:`Recording`), or is opened from ``contexts`` (several contexts, comma-separated or a list: a
    :class:`Fleet` of them and ``kube_context``), or from ``kube_context`` (and ``kubeconfig``), or read
    from ``snapshot_dir``, or from the recording store ``recording`` (a directory or ``s3://bucket/prefix``;
    ``kube_context`` then names the recorded cluster, needed when the store holds several), read as of
    T + 15 minutes; with none of them the investigation is git-only. A fleet's clusters that could not be
    read are in ``timeline.attrs["failures"]``.
    """
    many = [c.strip() for c in contexts.split(",")] if isinstance(contexts, str) else list(contexts or [])
    many = [c for c in dict.fromkeys([kube_context or "", *many]) if c]
    if cluster is None and recording:
        if snapshot_dir:
            raise InputError("give snapshot_dir (saved evidence) or recording (a recording store), not both")
        from ..cluster.recording import Recording

        t = parse_at(at)
        cluster = Recording(
            recording, cluster=kube_context or None, at=t + pd.Timedelta(minutes=15), since=t - parse_window(window)
        )
    elif cluster is None and contexts and many:
        from ..cluster.fleet import Fleet

        cluster = Fleet(many, kubeconfig=kubeconfig, argocd_namespace=argocd_namespace)
    elif cluster is None and kube_context:
        from ..cluster.live import Cluster

        cluster = Cluster(kube_context, kubeconfig=kubeconfig, argocd_namespace=argocd_namespace)
    elif cluster is None and snapshot_dir:
        from ..cluster.snapshot import Snapshot

        cluster = Snapshot(snapshot_dir)
    r = repo if isinstance(repo, DeployRepo) else DeployRepo(repo)
    tl = what_changed(r, at, window, apps, cluster, rev=rev)
    lo, hi = tl.attrs["at"] - tl.attrs["window"], tl.attrs["at"] + tl.attrs["after"]
    shas = set(tl["sha"].dropna())
    commits = r.commits(since=lo, until=hi, rev=rev, first_parent=True)
    changes = r.manifest_changes(since=lo, until=hi, rev=rev, first_parent=True)
    if tl.attrs["apps"]:
        commits = commits[commits["sha"].isin(shas)].reset_index(drop=True)
        changes = changes[changes["sha"].isin(shas)].reset_index(drop=True)
    return Investigation(r, tl, commits, changes, r.apps(rev), cluster)
