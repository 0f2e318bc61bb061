"""The column-wise builder of Argo CD history (``history_columns``) gives the frame the per-row builder gave:
same schema, dtypes, values and order, on varied raw Applications (multi-source, missing fields, no history)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from gitops_nb import schema
from gitops_nb.cluster.live import _ts, history_columns, history_rows


def _source_then(src: dict[str, Any] | None) -> dict[str, Any]:
    src = src or {}
    return {
        "repo_url": src.get("repoURL"),
        "path": src.get("path"),
        "target_revision": src.get("targetRevision"),
        "chart": src.get("chart"),
        "ref": src.get("ref"),
        **{k: src.get(k) for k in ("helm", "kustomize", "directory", "plugin")},
    }


def _history_rows_then(a: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-row builder as it was before the column-wise one (the reference)."""
    name = (a.get("metadata") or {}).get("name")
    rows = []
    for h in (a.get("status") or {}).get("history") or []:
        by = h.get("initiatedBy") or {}
        src = h.get("source") if (h.get("source") or {}).get("repoURL") else next(iter(h.get("sources") or []), None)
        rows.append(
            {
                "app": name,
                "id": h.get("id"),
                "revision": h.get("revision") or next(iter(h.get("revisions") or []), None),
                "revisions": list(h.get("revisions") or []),
                "deploy_started_at": _ts(h.get("deployStartedAt")),
                "deployed_at": _ts(h.get("deployedAt")),
                "initiated_by": "automated" if by.get("automated") else by.get("username"),
                "source": _source_then(src),
            }
        )
    return rows


def _apps() -> list[dict[str, Any]]:
    git = {"repoURL": "https://git.example/deploy.git", "path": "apps/web", "targetRevision": "main"}
    helm = {"repoURL": "https://charts.example", "chart": "redis", "targetRevision": "17.0.0", "helm": {"x": 1}}
    return [
        {  # a plain single-source app, automated and manual deploys
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}},
            "status": {
                "history": [
                    {
                        "id": 0,
                        "revision": "a" * 40,
                        "deployStartedAt": "2026-01-01T10:00:00Z",
                        "deployedAt": "2026-01-01T10:00:05Z",
                        "source": git,
                        "initiatedBy": {"automated": True},
                    },
                    {
                        "id": 1,
                        "revision": "b" * 40,
                        "deployedAt": "2026-01-01T11:00:00.123456+02:00",  # an offset, no start time
                        "source": git,
                        "initiatedBy": {"username": "alice"},
                    },
                ]
            },
        },
        {  # multi-source: empty ``source``, ``sources`` and ``revisions``
            "metadata": {"name": "cache"},
            "spec": {"destination": {"name": "spoke", "namespace": "cache"}},
            "status": {
                "history": [
                    {
                        "id": 3,
                        "revisions": ["c" * 40, "17.0.0"],
                        "deployStartedAt": "2026-01-02T09:00:00Z",
                        "deployedAt": "2026-01-02T09:01:00Z",
                        "source": {"repoURL": ""},
                        "sources": [helm, git],
                    }
                ]
            },
        },
        {"metadata": {"name": "empty"}, "status": {"history": []}},  # no history
        {"metadata": {"name": "bare"}},  # no status at all
        {  # every optional field missing
            "metadata": {},
            "status": {"history": [{}, {"id": 7, "initiatedBy": {}, "sources": []}]},
        },
    ]


def test_history_columns_frame_equals_the_per_row_frame() -> None:
    apps = _apps()
    then = schema.frame(schema.APP_HISTORY, [r for a in apps for r in _history_rows_then(a)])
    now = schema.frame(schema.APP_HISTORY, history_columns(apps))
    pd.testing.assert_frame_equal(now, then)
    assert list(now.dtypes.astype(str)) == list(then.dtypes.astype(str))
    assert len(now) == 5 and list(now["app"]) == ["web", "web", "cache", None, None]
    # the multi-source deploy: its first source, its first revision, every revision
    multi = now.iloc[2]
    assert multi["source"]["chart"] == "redis" and multi["source"]["helm"] == {"x": 1}
    assert multi["revision"] == "c" * 40 and multi["revisions"] == ["c" * 40, "17.0.0"]
    assert now.iloc[1]["deployed_at"] == pd.Timestamp("2026-01-01T09:00:00.123456Z")
    assert pd.isna(now.iloc[1]["deploy_started_at"]) and now.iloc[1]["initiated_by"] == "alice"
    # the per-row builder (a Recording's) is the column-wise one's rows
    assert [r for a in apps for r in history_rows(a)] == [r for a in apps for r in _history_rows_then(a)]


def test_history_columns_cluster_is_each_apps_own_once_per_app() -> None:
    apps = _apps()
    asked: list[Any] = []

    def cluster_of(a: dict[str, Any]) -> Any:
        asked.append((a.get("metadata") or {}).get("name"))
        dest = (a.get("spec") or {}).get("destination") or {}
        return dest.get("name") or dest.get("server")

    out = schema.frame(schema.APP_HISTORY, history_columns(apps, cluster_of))
    assert list(out["cluster"]) == ["https://kubernetes.default.svc"] * 2 + ["spoke", None, None]
    assert asked == ["web", "cache", None]  # once per app with deploys, not once per deploy
    assert out["cluster"].dtype == object


@pytest.mark.parametrize("n", [0, 1])
def test_history_columns_without_apps_is_an_empty_frame(n: int) -> None:
    out = schema.frame(schema.APP_HISTORY, history_columns([{"metadata": {"name": "x"}}] * n))
    assert len(out) == 0 and list(out.columns) == list(schema.APP_HISTORY)
    pd.testing.assert_frame_equal(out, schema.frame(schema.APP_HISTORY, []))
