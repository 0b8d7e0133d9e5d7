"""The event markers of the timeline's capacity panel: one trace per kind, none hiding another.

Events at (nearly) the same moment would draw their markers on one spot, and only the top one could be
hovered (notebook 00: ``scaling point found`` sat on ``scale started``). So markers that would overlap are
stacked upwards, one step each, and every marker's hover also names the other events of that moment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..names import CONNECTION_CLOSED, EVENT_KINDS, SCALE_COMPLETED, SCALE_STARTED, TRANSACTION_ABORTED
from ..simulation import Run
from ._style import EVENT_LIFT, EVENT_STYLE, PROBLEM_EVENTS, TimeAxis

COUNTED_EVENTS = (TRANSACTION_ABORTED, CONNECTION_CLOSED)  # many at one instant: one marker with a count
SAME_MOMENT_SHARE = 0.01  # events closer than 1 % of the x range share a moment (~9 px on a 900-px plot)


def event_markers(run: Run, steps: pd.DataFrame) -> pd.DataFrame:
    """Events within the run, grouped per kind and instant (hundreds of aborts at one moment become one row).

    ``capacity_acu`` is the capacity in force just after the event (where its marker sits on the step line).
    """
    events = run.sql(
        "SELECT kind, time_s, count(*) AS n, any_value(message) AS message, any_value(rds_event_id) AS rds_event_id, "
        "any_value(capacity_from) AS capacity_from, any_value(capacity_to) AS capacity_to, min(seq) AS seq "
        "FROM events WHERE time_s <= ? GROUP BY kind, time_s ORDER BY time_s, seq", params=[run.duration_s]).df()
    at = np.searchsorted(steps["time_s"].to_numpy(), events["time_s"].to_numpy(), side="right") - 1
    events["capacity_acu"] = steps["capacity_acu"].to_numpy()[np.maximum(at, 0)]
    return events


def place_markers(events: pd.DataFrame, *, lift_acu: float, same_moment_s: float) -> pd.DataFrame:
    """Add each marker's height (``y``) and the names of the other events of its moment (``together``).

    A marker sits on the capacity line, problem events ``EVENT_LIFT`` steps above it; a marker that would land
    within one step of another at the same moment (closer than ``same_moment_s``) goes up a step until it is clear.

    Example:
        >>> events = pd.DataFrame({"kind": ["scale_started", "scaling_point_found"], "time_s": [355.0, 355.0],
        ...                        "n": [1, 1], "capacity_acu": [1, 1]})
        >>> placed = place_markers(events, lift_acu=0.5, same_moment_s=30)
        >>> placed["y"].tolist(), placed["together"].tolist()
        ([1.0, 1.5], ['scaling point found', 'scale started'])
    """
    placed = events.reset_index(drop=True).copy()
    heights, together = np.zeros(len(placed)), [""] * len(placed)
    for moment in _moments(placed["time_s"].to_numpy(), same_moment_s):
        taken: list[float] = []
        for i in moment:
            kind = placed.at[i, "kind"]
            y = placed.at[i, "capacity_acu"] + EVENT_LIFT.get(kind, 0) * lift_acu
            while any(abs(y - other) < 0.99 * lift_acu for other in taken):
                y += lift_acu
            taken.append(y)
            heights[i] = y
        labels = [_label(placed.at[i, "kind"], placed.at[i, "n"]) for i in moment]
        for position, i in enumerate(moment):
            together[i] = ", ".join(label for other, label in enumerate(labels) if other != position)
    placed["y"], placed["together"] = heights, together
    return placed


def _moments(times_s: np.ndarray, same_moment_s: float) -> list[list[int]]:
    """Indices of sorted ``times_s`` in runs where each is within ``same_moment_s`` of the run's first."""
    moments: list[list[int]] = []
    for i, time_s in enumerate(times_s):
        if moments and time_s - times_s[moments[-1][0]] <= same_moment_s:
            moments[-1].append(i)
        else:
            moments.append([i])
    return moments


def _label(kind: str, n: int) -> str:
    text = EVENT_STYLE[kind][2]
    return f"{n} × {text}" if kind in COUNTED_EVENTS else text


def _symbols(rows: pd.DataFrame, kind: str, symbol: str) -> list[str] | str:
    """Scale events point the way capacity moves: a scale-down gets the downward triangle."""
    if kind not in (SCALE_STARTED, SCALE_COMPLETED):
        return symbol
    down = (rows["capacity_to"] < rows["capacity_from"]).fillna(False).to_numpy()
    return [symbol.replace("up", "down") if is_down else symbol for is_down in down]


def _hover(rows: pd.DataFrame, kind: str) -> list[str]:
    change = [f" ({a} → {b} ACU)" if pd.notna(a) and pd.notna(b) else ""
              for a, b in zip(rows["capacity_from"], rows["capacity_to"], strict=True)]
    event_id = rows["rds_event_id"].fillna("").map(lambda value: f" · {value}" if value else "")
    also = rows["together"].map(lambda names: f"<br><i>at the same moment: {names}</i>" if names else "")
    return [f"<b>{_label(kind, n)}</b>{move}{ident}<br>{message}{more}" for n, move, ident, message, more
            in zip(rows["n"], change, event_id, rows["message"].fillna(""), also, strict=True)]


def event_traces(events: pd.DataFrame, axis: TimeAxis, axes: tuple[str, str]) -> list[dict]:
    """One marker trace per kind, empty kinds included (hidden from the legend), so every timeline has the same
    traces and a widget can update them in place. ``events`` comes from ``place_markers``."""
    traces = []
    for kind in EVENT_KINDS:
        rows = events[events["kind"] == kind]
        colour, symbol, text = EVENT_STYLE[kind]
        counted = kind in COUNTED_EVENTS
        traces.append({
            "type": "scatter", "xaxis": axes[0], "yaxis": axes[1], "x": axis.x(rows["time_s"].to_numpy()),
            "y": rows["y"].to_numpy(), "name": text, "legendgroup": f"event-{kind}",
            "mode": "markers+text" if counted else "markers",
            "text": [f"×{n}" for n in rows["n"]] if counted else None, "textposition": "top center",
            "textfont": {"color": colour, "size": 12},
            "marker": {"color": colour, "symbol": _symbols(rows, kind, symbol),
                       "size": 14 if kind in PROBLEM_EVENTS else 10, "line": {"color": colour, "width": 2}},
            "customdata": _hover(rows, kind), "hovertemplate": f"{axis.hover(2)}<br>%{{customdata}}<extra></extra>",
            "cliponaxis": False, "showlegend": not rows.empty})
    return traces
