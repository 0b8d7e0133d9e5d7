"""Notebook 09's figure: what the clients got, second by second, around a fault (the static twin of its panel)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import facts
from ..names import FAILOVER_COMPLETED, INSTANCE_FAILED, OK
from ..simulation import Run
from ._style import (
    BLACK,
    FONT,
    GREEN,
    GREY,
    LEGEND_BELOW,
    ORANGE,
    PURPLE,
    SKY_BLUE,
    TEMPLATE,
    TITLE_FONT,
    VERMILLION,
    time_axis,
)

BIN_S = 5.0  # one bar per 5 seconds of submissions
_ERROR_COLOURS = (VERMILLION, PURPLE, ORANGE, BLACK, SKY_BLUE, GREY)  # by error, most frequent first


def failover_requests(run: Run, *, title: str | None = None) -> go.Figure:
    """Requests by the time they were submitted (5-s bars), stacked by how they ended: served, or the error the
    client saw last; the outage shaded. The hover gives each bar's retries (attempts beyond the first).

    Example:
        >>> from aurora_sim.scenarios import shop_failover
        >>> figure = failover_requests(shop_failover().run())
        >>> figure.data[0].name, len(figure.layout.shapes)
        ('served', 1)
    """
    return go.Figure(failover_requests_dict(run, title=title))


def failover_requests_dict(run: Run, *, title: str | None = None) -> dict:
    """``failover_requests`` as a plain figure dict (what a panel redraws: no plotly validation on the way).
    Every run gets the same traces, one per ending in ``endings(run)``, so a panel updates them in place; the
    counts come from the frames behind the run's tables (numpy, no query).

    Example:
        >>> from aurora_sim.scenarios import shop_failover
        >>> figure = failover_requests_dict(shop_failover().run())
        >>> [trace["name"] for trace in figure["data"]][:1], int(sum(figure["data"][0]["y"])) > 0
        (['served'], True)
    """
    axis = time_axis(run.duration_s)
    known = endings(run.config.engine)
    slots = np.arange(int(np.ceil(run.duration_s / BIN_S)))
    counts, retries = _counts_by_ending(run, known, len(slots))
    x = axis.x(slots * BIN_S + BIN_S / 2)
    traces = []
    for index, ending in enumerate(known):
        colour = GREEN if ending == "served" else _ERROR_COLOURS[(index - 1) % len(_ERROR_COLOURS)]
        traces.append({
            "type": "bar", "x": x, "y": counts[index], "name": _short(ending), "marker": {"color": colour},
            "width": BIN_S / axis.unit_s, "customdata": retries[index], "showlegend": bool(counts[index].any()),
            "hovertemplate": f"{axis.hover()}<br>%{{y}} requests · %{{customdata}} retries<br>{ending}<extra></extra>"})
    layout = {
        "barmode": "stack", "template": TEMPLATE, "font": FONT, "height": 420, "legend": LEGEND_BELOW, "bargap": 0,
        "title": {"text": title or "Orders by the time they were placed, and how they ended", "x": 0.01,
                  "font": TITLE_FONT},
        "margin": {"l": 70, "r": 30, "t": 60, "b": 60}, **_outage_band(run, axis),
        "xaxis": {"title": {"text": f"placed at ({axis.title})"}, **axis.layout(0, run.duration_s)},
        "yaxis": {"title": {"text": f"requests per {BIN_S:g} s"}}}
    return {"data": traces, "layout": layout}


def _counts_by_ending(run: Run, known: tuple[str, ...], n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests and retries per (ending, 5-s slot of submission), as two ``len(known) × n_slots`` arrays."""
    requests = run.frame("requests")
    submitted = requests["submitted_s"].to_numpy(dtype=float)
    kept = submitted < run.duration_s
    slot = (submitted[kept] // BIN_S).astype(np.int64)
    ending = _ending_index(requests, known)[kept]
    extra = requests["attempts"].to_numpy(dtype=np.int64)[kept] - 1
    cells = len(known) * n_slots
    counts = np.bincount(ending * n_slots + slot, minlength=cells).reshape(len(known), n_slots)
    retries = np.bincount(ending * n_slots + slot, weights=extra, minlength=cells).reshape(len(known), n_slots)
    return counts, retries.astype(np.int64)


def _ending_index(requests: pd.DataFrame, known: tuple[str, ...]) -> np.ndarray:
    """Each request's index in ``known``: 0 when served, else its last error's (``OTHER_ERROR`` if not listed)."""
    other = known.index(OTHER_ERROR)
    error = requests["error"].astype("category")
    lookup = np.array([known.index(text) if text in known[1:] else other for text in error.cat.categories]
                      + [other], dtype=np.int64)  # code -1 (no error text) reads the last entry
    index = lookup[error.cat.codes.to_numpy()]
    index[(requests["outcome"] == OK).to_numpy()] = 0
    return index


def _outage_band(run: Run, axis) -> dict[str, list]:
    """The shaded band from the first failure to the last failover's end (the run's end if it never came back)."""
    events = run.frame("events")
    kinds, times = events["kind"].to_numpy(), events["time_s"].to_numpy(dtype=float)
    failed, back = times[kinds == INSTANCE_FAILED], times[kinds == FAILOVER_COMPLETED]
    if not len(failed):
        return {"shapes": [], "annotations": []}
    failed_s, end_s = float(failed.min()), float(back.max()) if len(back) else run.duration_s
    band = {"type": "rect", "xref": "x", "yref": "paper", "x0": axis.x(failed_s), "x1": axis.x(end_s), "y0": 0,
            "y1": 1, "fillcolor": VERMILLION, "opacity": 0.12, "line": {"width": 0}, "layer": "below"}
    note = {"x": axis.x(failed_s), "y": 1, "xref": "x", "yref": "paper", "text": "no DB instance",
            "showarrow": False, "xanchor": "left", "yanchor": "bottom"}
    return {"shapes": [band], "annotations": [note]}


OTHER_ERROR = "another error"


def endings(engine: str) -> tuple[str, ...]:
    """How a request can end around a fault, one bar colour each: served, or the last error its client saw.

    Example:
        >>> endings("aurora-mysql")[:2]
        ('served', "ERROR 2003 (HY000): Can't connect to MySQL server on '<cluster endpoint>:3306' (111)")
    """
    return ("served", facts.CANNOT_CONNECT_ERROR[engine], facts.GONE_AWAY_ERROR[engine],
            facts.LOST_CONNECTION_ERROR[engine], facts.DATA_API_RESUMING_ERROR,
            facts.POOL_TIMEOUT_ERROR.format(seconds=10), OTHER_ERROR)


def _short(text: str) -> str:
    first = text.splitlines()[0]
    return first if len(first) <= 60 else first[:57] + "…"
