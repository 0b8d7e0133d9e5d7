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


GROUPED_COLUMNS = ("message", "rds_event_id", "capacity_from", "capacity_to")


def event_markers(run: Run, steps: pd.DataFrame) -> pd.DataFrame:
    """Events within the run, grouped per kind and instant (hundreds of aborts at one moment become one row).

    Each row has the count ``n``, the first ``seq`` and, of each text and capacity column, the first value that
    is not null; rows come by time, then ``seq``. ``capacity_acu`` is the capacity in force just after the
    event (where its marker sits on the step line).
    """
    events = run.frame("events")
    events = events[events["time_s"].to_numpy() <= run.duration_s]
    columns = {name: events[name].tolist() for name in ("seq", "time_s", "kind", *GROUPED_COLUMNS)}
    groups: dict[tuple[float, str], dict] = {}
    for i, seq in enumerate(columns["seq"]):  # in log order: the first row of a group has its lowest seq
        key = (columns["time_s"][i], columns["kind"][i])
        group = groups.setdefault(key, {"kind": key[1], "time_s": key[0], "n": 0, "seq": seq})
        group["n"] += 1
        for name in GROUPED_COLUMNS:
            if group.get(name) is None and not pd.isna(columns[name][i]):
                group[name] = columns[name][i]
    rows = sorted(groups.values(), key=lambda group: (group["time_s"], group["seq"]))
    grouped = pd.DataFrame({name: pd.Series([group.get(name) for group in rows], dtype=object)  # 2, not 2.0
                            for name in ("kind", "time_s", "n", *GROUPED_COLUMNS, "seq")})
    grouped = grouped.astype({"time_s": float, "n": np.int64, "seq": np.int64})
    at = np.searchsorted(steps["time_s"].to_numpy(), grouped["time_s"].to_numpy(), side="right") - 1
    grouped["capacity_acu"] = steps["capacity_acu"].to_numpy()[np.maximum(at, 0)]
    return grouped


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
    kinds, counts = placed["kind"].tolist(), placed["n"].tolist()
    capacity = placed["capacity_acu"].tolist()
    heights, together = np.zeros(len(placed)), [""] * len(placed)
    for moment in _moments(placed["time_s"].to_numpy(), same_moment_s):
        taken: list[float] = []
        for i in moment:
            y = capacity[i] + EVENT_LIFT.get(kinds[i], 0) * lift_acu
            while any(abs(y - other) < 0.99 * lift_acu for other in taken):
                y += lift_acu
            taken.append(y)
            heights[i] = y
        labels = [_label(kinds[i], counts[i]) for i in moment]
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


def _symbols(rows: dict[str, list], kind: str, symbol: str) -> list[str] | str:
    """Scale events point the way capacity moves: a scale-down gets the downward triangle."""
    if kind not in (SCALE_STARTED, SCALE_COMPLETED):
        return symbol
    return [symbol.replace("up", "down") if _known(low) and _known(high) and high < low else symbol
            for low, high in zip(rows["capacity_from"], rows["capacity_to"], strict=True)]


def _known(value: object) -> bool:
    return not pd.isna(value)


def _hover(rows: dict[str, list], kind: str) -> list[str]:
    texts = []
    for n, low, high, ident, message, also in zip(rows["n"], rows["capacity_from"], rows["capacity_to"],
                                                  rows["rds_event_id"], rows["message"], rows["together"],
                                                  strict=True):
        move = f" ({low} → {high} ACU)" if _known(low) and _known(high) else ""
        ident = f" · {ident}" if _known(ident) and ident else ""
        more = f"<br><i>at the same moment: {also}</i>" if also else ""
        texts.append(f"<b>{_label(kind, n)}</b>{move}{ident}<br>{message if _known(message) else ''}{more}")
    return texts


HOVER_COLUMNS = ("time_s", "y", "n", "capacity_from", "capacity_to", "rds_event_id", "message", "together")


def _rows_by_kind(events: pd.DataFrame) -> dict[str, dict[str, list]]:
    """``events``'s columns as lists, one set per kind (a pandas filter per kind took a ms each)."""
    columns = {name: events[name].tolist() for name in HOVER_COLUMNS}
    by_kind: dict[str, dict[str, list]] = {}
    for i, kind in enumerate(events["kind"].tolist()):
        rows = by_kind.setdefault(kind, {name: [] for name in HOVER_COLUMNS})
        for name in HOVER_COLUMNS:
            rows[name].append(columns[name][i])
    return by_kind


def event_traces(events: pd.DataFrame, axis: TimeAxis, axes: tuple[str, str]) -> list[dict]:
    """One marker trace per kind, empty kinds included (hidden from the legend), so every timeline has the same
    traces and a widget can update them in place. ``events`` comes from ``place_markers``."""
    traces = []
    by_kind = _rows_by_kind(events)
    nothing = {name: [] for name in HOVER_COLUMNS}
    for kind in EVENT_KINDS:
        rows = by_kind.get(kind, nothing)
        colour, symbol, text = EVENT_STYLE[kind]
        counted = kind in COUNTED_EVENTS
        traces.append({
            "type": "scatter", "xaxis": axes[0], "yaxis": axes[1], "x": axis.x(np.array(rows["time_s"], dtype=float)),
            "y": np.array(rows["y"], dtype=float), "name": text, "legendgroup": f"event-{kind}",
            "mode": "markers+text" if counted else "markers",
            "text": [f"×{n}" for n in rows["n"]] if counted else None, "textposition": "top center",
            "textfont": {"color": colour, "size": 12},
            "marker": {"color": colour, "symbol": _symbols(rows, kind, symbol),
                       "size": 14 if kind in PROBLEM_EVENTS else 10, "line": {"color": colour, "width": 2}},
            "customdata": _hover(rows, kind), "hovertemplate": f"{axis.hover(2)}<br>%{{customdata}}<extra></extra>",
            "cliponaxis": False, "showlegend": bool(rows["n"])})
    return traces
