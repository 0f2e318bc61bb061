"""How likely a change is to have caused the incident: the culprit score and the ranking rules.

A score is ``proximity * weight * breadth * factors``:

- **proximity** halves every :attr:`Weights.half_life_min` minutes between the change (or, when
  the cluster side is known, its deploy) and T;
- **weight** is what the change touches: the most telling field it changes (:func:`field_weight`);
- **breadth** grows with the number of apps it reaches: ``1 + log2(1 + apps)``;
- **factors** damp merges, reverts and changes reverted before T, and lift changes Argo CD
  deployed before T (and damp those it did not).

Every rule is one function here, unit-tested on its own (``tests/test_scoring.py``). Scores are
never rounded: rounding is for display, and rounded scores tie far from T.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..schema import RowKind

__all__ = [
    "CANDIDATE_KINDS",
    "DEFAULT_WEIGHTS",
    "CommitFacts",
    "Weights",
    "commit_score",
    "edit_score",
    "field_weight",
    "rank",
]


@dataclass(frozen=True)
class Weights:
    """The ranking's constants, in one place. Pass your own to :func:`what_changed` to tune them."""

    half_life_min: float = 30.0
    #: (substring of the field path, weight): the first match counts
    fields: tuple[tuple[str, float], ...] = (
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
    default_field: float = 0.5
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


DEFAULT_WEIGHTS = Weights()


def proximity(minutes_before: float, w: Weights = DEFAULT_WEIGHTS) -> float:
    """1 at T, halving every ``half_life_min`` minutes before it."""
    return float(0.5 ** (minutes_before / w.half_life_min))


def breadth(n_apps: int) -> float:
    """1 for no app, 2 for one, growing with the log of the number of apps reached."""
    return 1.0 + math.log2(1 + n_apps)


def field_weight(fields: Iterable[str], w: Weights = DEFAULT_WEIGHTS) -> tuple[float, str]:
    """The weight of the most telling field among ``fields``, and that field (``(0.0, "")`` for none)."""
    best, label = 0.0, ""
    for f in fields:
        wt = next((v for key, v in w.fields if key in f), w.default_field)
        if wt > best:
            best, label = wt, f
    return best, label


@dataclass(frozen=True)
class CommitFacts:
    """What the score of one commit rests on."""

    minutes_before: float  # from the commit (or its deploy) to T
    n_apps: int
    fields: Sequence[str]
    is_merge: bool = False  # a merge that brings no change of its own (one carrying its PR is scored as the change)
    is_revert: bool = False
    reverted_by: str | None = None  # the sha that reverted it before T
    deployed_to: str | None = None  # the Argo CD app it was deployed to before T (cluster known)
    deployed_at: pd.Timestamp | None = None
    cluster_known: bool = False  # a cluster side was given, so "not deployed" means something


def commit_score(c: CommitFacts, w: Weights = DEFAULT_WEIGHTS) -> tuple[float, str]:
    """The culprit score of a commit, and ``why`` in words."""
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
    last); ties on score go to the later change.
    """
    cand = timeline.index[timeline["kind"].isin(list(CANDIDATE_KINDS)) & (timeline["before_at"] >= pd.Timedelta(0))]
    order = timeline.loc[cand].sort_values(["score", "time"], ascending=[False, False]).index
    out = pd.Series(pd.array([pd.NA] * len(timeline), dtype="Int64"), index=timeline.index)
    out.loc[order] = range(1, len(order) + 1)
    return out
