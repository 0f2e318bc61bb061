"""How likely a change is to have caused the incident: the culprit score and the ranking rules.

A score is ``proximity * weight * breadth * factors``:

- **proximity** halves every :attr:`Weights.half_life_min` minutes between the change (or, when
  the cluster side is known, its deploy) and T;
- **weight** is what the change touches: the class of the most telling field it changes, read from
  the field's structure (:func:`field_weight`, :mod:`gitops_nb.investigate.fields`);
- **breadth** grows with the number of apps it reaches: ``1 + log2(1 + apps)``;
- **factors** damp merges, reverts and changes reverted before T, and lift changes Argo CD
  deployed before T (and damp those it did not).

A commit that touches only files no controller deploys (CI, docs, tooling: :func:`is_tooling_path`)
and no app is built from is not a candidate: its score is NaN, it gets no rank, and ``why`` says so.

Every rule is one function here, unit-tested on its own (``tests/test_scoring.py``). Scores are
never rounded: rounding is for display, and rounded scores tie far from T.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..schema import RowKind
from .fields import FIELD_CLASSES, FieldRef, field_class

__all__ = [
    "CANDIDATE_KINDS",
    "DEFAULT_WEIGHTS",
    "CommitFacts",
    "Weights",
    "commit_score",
    "edit_score",
    "field_weight",
    "is_tooling_path",
    "rank",
]


@dataclass(frozen=True)
class Weights:
    """The ranking's constants, in one place. Pass your own to :func:`what_changed` to tune them."""

    half_life_min: float = 30.0
    #: (field class, weight); the classes are :data:`~gitops_nb.investigate.fields.FIELD_CLASSES`
    fields: tuple[tuple[str, float], ...] = (
        ("image", 1.0),
        ("chart-version", 1.0),
        ("scale", 0.8),
        ("env", 0.7),
        ("command", 0.7),
    )
    default_field: float = 0.5  # a field of class "other", or of a class ``fields`` leaves out
    no_app: float = 0.1  # a change no app is built from
    merge: float = 0.3
    revert: float = 0.5
    reverted_before_t: float = 0.2
    deployed_before_t: float = 1.5  # Argo CD deployed it before T: proximity counts from the deploy
    not_deployed: float = 0.3  # the cluster side is known and no deploy of it came before T
    edit_breadth: float = 2.0  # a manual edit reaches one app: breadth 1 + log2(2)
    edit_concreteness: float = 1.5  # as concrete as a deploy: a change nobody put in git
    edit_default_field: float = 0.5
    ignored_field_prefixes: tuple[str, ...] = field(default=("metadata.",))

    def __post_init__(self) -> None:
        unknown = [k for k, _ in self.fields if k not in FIELD_CLASSES]
        if unknown:
            raise ValueError(
                f"Weights.fields is keyed by field class, one of {', '.join(FIELD_CLASSES)}; "
                f"not {', '.join(map(repr, unknown))} (field paths are classified by structure, not substrings)"
            )


DEFAULT_WEIGHTS = Weights()


def proximity(minutes_before: float, w: Weights = DEFAULT_WEIGHTS) -> float:
    """1 at T, halving every ``half_life_min`` minutes before it."""
    return float(0.5 ** (minutes_before / w.half_life_min))


def breadth(n_apps: int) -> float:
    """1 for no app, 2 for one, growing with the log of the number of apps reached."""
    return 1.0 + math.log2(1 + n_apps)


def field_weight(fields: Iterable[FieldRef | str], w: Weights = DEFAULT_WEIGHTS) -> tuple[float, str]:
    """The weight of the most telling field among ``fields``, and that field with its class
    (``"images[api].newTag (image)"``; ``(0.0, "")`` for none).

    Each field is classified by :func:`~gitops_nb.investigate.fields.field_class`; a field of a
    file no app is built from counts only when no field of a deployed file is there.
    """
    refs = [f if isinstance(f, FieldRef) else FieldRef(f) for f in fields]
    refs = [r for r in refs if r.deployed] or refs
    weights = dict(w.fields)
    best, label = 0.0, ""
    for r in refs:
        cls = field_class(r)
        wt = weights.get(cls, w.default_field)
        if wt > best:
            best, label = wt, r.field if cls == "other" or not r.field else f"{r.field} ({cls})"
    return best, label


#: file names no controller deploys (compared lower-case; README*, LICENSE*... by prefix)
_TOOLING_NAMES = frozenset(
    {"makefile", "justfile", "taskfile.yml", "taskfile.yaml", "taskfile.dist.yml", "taskfile.dist.yaml"}
    | {"mkdocs.yml", "mkdocs.yaml", "renovate.json", "renovate.json5", "codeowners", "owners"}
)
_TOOLING_PREFIXES = ("readme", "license", "changelog", "contributing", "security.md", "code_of_conduct")
_TOOLING_SUFFIXES = (".md", ".rst", ".adoc")


def is_tooling_path(path: str) -> bool:
    """True for a file no controller deploys: CI (``.github/``, ``.gitlab-ci.yml``), docs (``docs/``,
    ``mkdocs.yml``, ``*.md``), tooling (Makefile, Taskfile, ``renovate.json``, ``.renovaterc``,
    ``.pre-commit-config.yaml``) and any other dot-file or dot-directory.

    Argo CD's write-back files (``.argocd-source-<app>.yaml``) are deployed and are not tooling.
    """
    parts = path.split("/")
    base = parts[-1].lower()
    if base.startswith(".argocd-source"):
        return False
    if any(p.startswith(".") for p in parts) or "docs" in parts[:-1]:
        return True
    return base in _TOOLING_NAMES or base.startswith(_TOOLING_PREFIXES) or base.endswith(_TOOLING_SUFFIXES)


@dataclass(frozen=True)
class CommitFacts:
    """What the score of one commit rests on."""

    minutes_before: float  # from the commit (or its deploy) to T
    n_apps: int
    fields: Sequence[FieldRef | str]
    is_merge: bool = False  # a merge that brings no change of its own (one carrying its PR is scored as the change)
    is_revert: bool = False
    reverted_by: str | None = None  # the sha that reverted it before T
    deployed_to: str | None = None  # the Argo CD app it was deployed to before T (cluster known)
    deployed_at: pd.Timestamp | None = None
    cluster_known: bool = False  # a cluster side was given, so "not deployed" means something
    files: Sequence[str] = ()  # the paths it touches (to tell a CI/docs-only commit)


def commit_score(c: CommitFacts, w: Weights = DEFAULT_WEIGHTS) -> tuple[float, str]:
    """The culprit score of a commit, and ``why`` in words.

    A commit no app is built from that touches only CI, docs and tooling files is no candidate:
    its score is NaN (:func:`rank` leaves it out) and ``why`` names the files.
    """
    if c.n_apps == 0 and c.files and all(is_tooling_path(f) for f in c.files):
        shown = ", ".join(sorted(c.files)[:3]) + (f" … {len(c.files) - 3} more" if len(c.files) > 3 else "")
        return math.nan, f"not a candidate: touches only files no controller deploys ({shown})"
    weight, top = field_weight(c.fields, w)
    if not c.fields:
        weight = w.default_field if c.n_apps else w.no_app
    if c.n_apps == 0:
        weight = min(weight, w.no_app)
    why = [f"{c.minutes_before:.0f}m before T", f"{c.n_apps} app{'s' if c.n_apps != 1 else ''}"]
    if top:
        why.append(f"changes {top}")
    if c.is_merge:
        weight *= w.merge
        why.append("merge")
    if c.is_revert:
        weight *= w.revert
        why.append("a revert")
    if c.reverted_by:
        weight *= w.reverted_before_t
        why.append(f"reverted by {c.reverted_by[:10]} before T")
    factor = 1.0
    if c.deployed_at is not None:
        factor = w.deployed_before_t
        why.append(f"deployed {c.deployed_at:%H:%M} UTC to {c.deployed_to}")
    elif c.cluster_known and c.n_apps:
        factor = w.not_deployed
        why.append("not deployed before T")
    return proximity(c.minutes_before, w) * weight * breadth(c.n_apps) * factor, "; ".join(why)


def edit_score(
    minutes_before: float, author: str | None, fields: Sequence[str] | None, w: Weights = DEFAULT_WEIGHTS
) -> tuple[float, str]:
    """The culprit score of a manual field edit (a change made outside git), and ``why``."""
    kept = [f for f in fields or [] if not f.startswith(w.ignored_field_prefixes)]
    weight, top = field_weight(kept, w)
    weight = weight or w.edit_default_field
    why = f"{minutes_before:.0f}m before T; manual change by {author}" + (f"; changes {top}" if top else "")
    return proximity(minutes_before, w) * weight * w.edit_breadth * w.edit_concreteness, why


#: row kinds that can be culprits; the others (deploys, events, rollouts) are evidence
CANDIDATE_KINDS = frozenset({RowKind.COMMIT, RowKind.FIELD_EDIT})


def rank(timeline: pd.DataFrame) -> pd.Series:
    """Ranks (1 = most likely) for every candidate row at or before T; <NA> elsewhere.

    Every change before T gets a rank, however old (a score that underflows to 0 still ranks,
    last); ties on score go to the later change. A NaN score marks a row that is no candidate
    (a commit touching only CI, docs or tooling files).
    """
    cand = timeline.index[
        timeline["kind"].isin(list(CANDIDATE_KINDS))
        & (timeline["before_at"] >= pd.Timedelta(0))
        & timeline["score"].notna()
    ]
    order = timeline.loc[cand].sort_values(["score", "time"], ascending=[False, False]).index
    out = pd.Series(pd.array([pd.NA] * len(timeline), dtype="Int64"), index=timeline.index)
    out.loc[order] = range(1, len(order) + 1)
    return out
