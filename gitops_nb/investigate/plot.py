"""Plotly timelines. Plots consume frames; they never fetch data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..times import parse_at

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["plot_timeline", "show"]

_ISO = "%Y-%m-%d %H:%M:%S.%f"  # plotly's date string; UTC (the axis says so). Widgets send datetime64 as raw ns.

SHA = 5  # where each point's customdata holds its row's full sha ("" when none): a click maps back to a change
SUMMARY = 2  # ... and its summary

_SYMBOLS = {"git": "circle", "argocd": "diamond", "k8s-event": "x", "rollout": "square", "field-edit": "star"}


def _lane(apps: object, source: object) -> str:
    names = list(apps) if isinstance(apps, list | tuple) else []
    first = names[0] if names else "(no app)"
    more = f" +{len(names) - 1}" if len(names) > 1 else ""
    return f"{first}{more} · {source}"


def plot_timeline(
    frame: pd.DataFrame,
    at: str | datetime | pd.Timestamp | None = None,
    *,
    title: str | None = None,
    tz: str | None = None,
    widget: bool = False,
) -> go.Figure | go.FigureWidget:
    """Draw a timeline frame (from :func:`what_changed`) as swimlanes per app and source.

    Each point hovers with time (UTC and local), sha, author and summary; likely
    culprits are labelled with their rank; a vertical line marks ``at`` (default:
    the frame's own ``at``). Each point's ``customdata`` ends with its row's full sha
    (empty when it has none), so a click handler can map a point back to a change.
    ``widget=True`` builds a ``go.FigureWidget`` (clickable in JupyterLab) instead.
    """
    import plotly.graph_objects as go

    at_ts = parse_at(at) if at is not None else frame.attrs.get("at")
    df = frame.copy()
    df["lane"] = [_lane(apps, source) for apps, source in zip(df["apps"], df["source"], strict=True)]
    local = df["time"].dt.tz_convert(tz) if tz else df["time"].dt.tz_convert(datetime.now().astimezone().tzinfo)
    fig = go.FigureWidget() if widget else go.Figure()
    for source, part in df.groupby("source", sort=True):
        idx = part.index
        ranks = df.loc[idx, "rank"]
        fig.add_trace(
            go.Scatter(
                x=part["time"].dt.tz_convert("UTC").dt.strftime(_ISO),
                y=part["lane"],
                mode="markers+text",
                name=str(source),
                marker={
                    "symbol": _SYMBOLS.get(str(source), "circle"),
                    "size": [16 if pd.notna(r) and r <= 3 else 10 for r in ranks],
                },
                text=[f"#{int(r)}" if pd.notna(r) and r <= 3 else "" for r in ranks],
                textposition="top center",
                customdata=list(  # [sha[:10], author, summary (SUMMARY), local time, detail, full sha (SHA)]
                    zip(
                        part["sha"].fillna("").str[:10],
                        part["author"].fillna(""),
                        part["summary"].fillna(""),
                        local.loc[idx].dt.strftime("%Y-%m-%d %H:%M:%S %Z"),
                        part["detail"].fillna("").str[:300],
                        part["sha"].fillna(""),
                        strict=True,
                    )
                ),
                hovertemplate=(
                    "%{x|%Y-%m-%d %H:%M:%S} UTC (%{customdata[3]})<br><b>%{customdata[2]}</b><br>"
                    "%{customdata[0]} · %{customdata[1]}<br>%{customdata[4]}<extra>%{fullData.name}</extra>"
                ),
            )
        )
    if at_ts is not None:
        at_x = at_ts.tz_convert("UTC").strftime(_ISO)
        fig.add_shape(type="line", x0=at_x, x1=at_x, y0=0, y1=1, yref="paper", line={"color": "red", "dash": "dash"})
        fig.add_annotation(
            x=at_x,
            y=1,
            yref="paper",
            text=f"T = {at_ts:%H:%M} UTC",
            showarrow=False,
            font={"color": "red"},
            yanchor="bottom",
        )
    layout: dict[str, Any] = {
        "title": title or "What changed",
        "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
        "yaxis_title": None,
        "height": max(300, 60 * df["lane"].nunique() + 150),
        "margin": {"l": 260},
        "hovermode": "closest",
    }
    fig.update_layout(**layout)
    return fig


def show(fig: go.Figure) -> None:
    """Display a figure so it works live in JupyterLab and in exported HTML reports.

    The plotly.js bundle is embedded once per notebook, so a report opens offline.
    """
    fig.show(renderer="plotly_mimetype+notebook")
