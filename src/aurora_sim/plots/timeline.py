"""The timeline: load and CPU, capacity with its events, and connections, on one time axis."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import facts
from ..names import (
    CONNECTION_CLOSED,
    EVENT_KINDS,
    SCALE_COMPLETED,
    SCALE_STARTED,
    TRANSACTION_ABORTED,
)
from ..simulation import Run
from ._style import (
    BLUE,
    CAPACITY_COLOUR,
    CONNECTIONS_COLOUR,
    CPU_COLOUR,
    EVENT_LIFT,
    EVENT_STYLE,
    FAILED_COLOUR,
    FONT,
    GREY,
    LIMIT_COLOUR,
    LOAD_COLOUR,
    PROBLEM_EVENTS,
    PURPLE,
    SERVED_COLOUR,
    TEMPLATE,
    _capacity_steps,
    _state_bands,
    _time_unit,
)


def _offered_load(run: Run) -> tuple[list[float], list[float]]:
    """The workload's segments as a step function (x in seconds, ``shape="hv"``) from 0 to ``duration_s``."""
    x, y = [0.0], [0.0]
    for start, end, rate in run.workload.segments:
        if start >= run.duration_s:
            break
        if start == x[-1]:  # contiguous with the previous segment (or at t = 0)
            y[-1] = rate
        else:
            x.append(start)
            y.append(rate)
        x.append(min(end, run.duration_s))
        y.append(0.0)
    if x[-1] < run.duration_s:
        x.append(run.duration_s)
        y.append(0.0)
    return x, y


def _event_markers(run: Run, steps: pd.DataFrame) -> pd.DataFrame:
    """Events within the run, grouped per kind and instant (hundreds of aborts at one moment become one row).

    ``capacity_acu`` is the capacity in force just after the event (where its marker sits on the step line).
    """
    events = run.sql(
        "SELECT kind, time_s, count(*) AS n, any_value(message) AS message, any_value(rds_event_id) AS rds_event_id, "
        "any_value(capacity_from) AS capacity_from, any_value(capacity_to) AS capacity_to "
        "FROM events WHERE time_s <= ? GROUP BY kind, time_s ORDER BY time_s", params=[run.duration_s]).df()
    at = np.searchsorted(steps["time_s"].to_numpy(), events["time_s"].to_numpy(), side="right") - 1
    events["capacity_acu"] = steps["capacity_acu"].to_numpy()[np.maximum(at, 0)]
    return events


def _event_symbols(rows: pd.DataFrame, kind: str, symbol: str) -> list[str] | str:
    """Scale events point the way capacity moves: a scale-down gets the downward triangle."""
    if kind not in (SCALE_STARTED, SCALE_COMPLETED):
        return symbol
    down = (rows["capacity_to"] < rows["capacity_from"]).fillna(False).to_numpy()
    return [symbol.replace("up", "down") if is_down else symbol for is_down in down]


def _event_traces(events: pd.DataFrame, unit_s: float, unit: str, lift_acu: float) -> list[dict]:
    """One marker trace per kind, empty kinds included (hidden from the legend), so every timeline has the same
    traces and a widget can update them in place; problem events are lifted above the step line."""
    traces = []
    for kind in EVENT_KINDS:
        rows = events[events["kind"] == kind]
        colour, symbol, text = EVENT_STYLE[kind]
        counted = kind in (TRANSACTION_ABORTED, CONNECTION_CLOSED)
        change = [f" ({a} → {b} ACU)" if pd.notna(a) and pd.notna(b) else ""
                  for a, b in zip(rows["capacity_from"], rows["capacity_to"], strict=True)]
        event_id = rows["rds_event_id"].fillna("").map(lambda value: f" · {value}" if value else "")
        label = [f"{n} × {text}" if counted else text for n in rows["n"]]
        hover = [f"<b>{head}</b>{move}{ident}<br>{message}" for head, move, ident, message
                 in zip(label, change, event_id, rows["message"].fillna(""), strict=True)]
        traces.append(_scatter(
            CAPACITY_AXES, x=rows["time_s"] / unit_s, y=rows["capacity_acu"] + EVENT_LIFT.get(kind, 0) * lift_acu,
            name=text, legendgroup=f"event-{kind}", mode="markers+text" if counted else "markers",
            text=[f"×{n}" for n in rows["n"]] if counted else None, textposition="top center",
            textfont={"color": colour, "size": 12},
            marker={"color": colour, "symbol": _event_symbols(rows, kind, symbol),
                    "size": 14 if kind in PROBLEM_EVENTS else 10, "line": {"color": colour, "width": 2}},
            customdata=hover, hovertemplate=f"%{{x:.2f}} {unit}<br>%{{customdata}}<extra></extra>",
            cliponaxis=False, showlegend=not rows.empty))
    return traces


# --- 1. The timeline -------------------------------------------------------------------------------------------

def timeline(run: Run, *, title: str | None = None, show_events: bool = True) -> go.Figure:
    """The run at a glance: load and CPU, capacity with its events, and connections, on one time axis.

    Three panels share the x axis (minutes, or hours for runs over 3 h): (1) the requests per second the
    workload offers, those served and failed per metrics period, and CPU %; (2) capacity in ACUs as the
    exact step function of the ``capacity`` table, between dashed min/max lines, with every event marked
    (hover shows its message; scale failures, forced scaling and aborted transactions in vermillion, aborts
    at one instant counted in one marker); (3) open connections against ``max_connections`` and the 90 %
    line above which the cluster wants to scale up. Shaded bands show paused, resuming and scaling periods.

    Args:
        run: A finished simulation.
        title: Figure title; default describes the configuration.
        show_events: Mark the event log on the capacity panel.

    Returns:
        A static ``go.Figure`` (use ``go.FigureWidget(fig)`` for a widget).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(min_capacity=1, max_capacity=16),
        ...                Workload(segments=[(0, 600, 5.0), (600, 1800, 120.0)]), duration_s=3600, seed=7)
        >>> fig = timeline(run)
        >>> "scale failed (rolled back)" in {trace.name for trace in fig.data}
        True
    """
    unit_s, unit = _time_unit(run.duration_s)
    config = run.config
    steps = _capacity_steps(run)
    metrics = run.sql("SELECT * FROM metrics ORDER BY time_s").df()
    layout = _timeline_layout()
    traces: list[dict] = []
    _load_panel(traces, layout, run, metrics, unit_s, unit)
    top_acu = _capacity_panel(traces, layout, run, steps, unit_s, unit)
    if show_events:
        traces += _event_traces(_event_markers(run, steps), unit_s, unit, lift_acu=0.08 * top_acu)
    _connections_panel(traces, layout, run, metrics, steps, unit_s, unit)

    pause = f"auto-pause after {config.seconds_until_auto_pause} s" if config.auto_pause else "no auto-pause"
    default_title = (f"{config.engine} {config.min_capacity}–{config.max_capacity} ACU, {pause}, "
                     f"{config.timeout_action} after {config.seconds_before_timeout} s · seed {run.seed}")
    layout["shapes"] = [*_state_bands(steps, unit_s), *_blocking_bands(run, unit_s), *layout["shapes"]]
    layout.update(
        title={"text": title or default_title, "x": 0.01},
        height=760, font=FONT, template=TEMPLATE, hovermode="closest",
        legend={"groupclick": "togglegroup", "tracegroupgap": 4, "font": {"size": 11}},
        margin={"l": 70, "r": 30, "t": 80, "b": 60})
    for axis in ("xaxis", "xaxis2", "xaxis3"):
        layout[axis].update(range=[0, run.duration_s / unit_s], showspikes=True, spikemode="across",
                            spikethickness=1, spikecolor=GREY)
    layout["xaxis3"]["title"] = {"text": f"time since start ({unit})"}
    # One validation of plain dicts: building through make_subplots/add_trace/add_hline took 60 ms, this 20 ms.
    return go.Figure({"data": traces, "layout": layout})


def _blocking_bands(run: Run, unit_s: float) -> list[dict]:
    """A thin bar at the foot of the capacity panel for each blocking operation's planned life (hover-free:
    the legend entry names them once)."""
    shapes, in_legend = [], set()
    for op in run.workload.blocking:
        if op.start_s >= run.duration_s:
            continue
        shapes.append({
            "type": "rect", "xref": CAPACITY_AXES[0], "yref": f"{CAPACITY_AXES[1]} domain",
            "x0": op.start_s / unit_s, "x1": min(op.end_s, run.duration_s) / unit_s, "y0": 0.0, "y1": 0.05,
            "fillcolor": PURPLE if op.blocks_scaling else GREY, "opacity": 0.6, "line": {"width": 0},
            "name": "blocking operations (planned)" if op.blocks_scaling else "idle connections (planned)",
            "legendgroup": f"blocking-{op.blocks_scaling}", "showlegend": op.blocks_scaling not in in_legend,
            "legendrank": 950})
        in_legend.add(op.blocks_scaling)
    return shapes


# The timeline's axes, as make_subplots names them: load (CPU left, requests/s right), capacity, connections.
CPU_AXES, RATE_AXES, CAPACITY_AXES, CONNECTIONS_AXES = ("x", "y"), ("x", "y2"), ("x2", "y3"), ("x3", "y4")


@cache
def _timeline_layout_json() -> str:
    figure = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.32, 0.38, 0.30],
        specs=[[{"secondary_y": True}], [{}], [{}]],
        subplot_titles=("Load offered and served, CPU", "Capacity and scaling events", "Connections"))
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def _timeline_layout() -> dict:
    """A fresh copy of the three-panel subplot layout (built once), with room for shapes and annotations."""
    layout = json.loads(_timeline_layout_json())
    layout.setdefault("shapes", [])
    layout.setdefault("annotations", [])
    return layout


def _scatter(axes: tuple[str, str], **trace: object) -> dict:
    """A scatter trace on ``axes`` as a plain dict (validated once, with the whole figure)."""
    return {"type": "scatter", "xaxis": axes[0], "yaxis": axes[1], **trace}


def _hline(layout: dict, axes: tuple[str, str], y: float, line: dict, text: str, font: dict, *, left: bool) -> None:
    """A horizontal line across one panel with a label above it (what ``add_hline`` does, as dicts)."""
    x_domain = f"{axes[0]} domain"
    layout["shapes"].append({"type": "line", "xref": x_domain, "x0": 0, "x1": 1, "yref": axes[1], "y0": y, "y1": y,
                             "line": line})
    layout["annotations"].append({"text": text, "showarrow": False, "xref": x_domain, "x": 0 if left else 1,
                                  "xanchor": "left" if left else "right", "yref": axes[1], "y": y,
                                  "yanchor": "bottom", "font": font})


def _load_panel(traces: list[dict], layout: dict, run: Run, metrics: pd.DataFrame, unit_s: float, unit: str) -> None:
    """Requests/s on the right axis (drawn on top), CPU % as a shaded area on the left axis."""
    period = run.metrics_period_s
    x_load, y_load = _offered_load(run)
    x_metrics = np.append(metrics["time_s"].to_numpy(), run.duration_s) / unit_s
    cpu = metrics["cpu_pct"].to_numpy()
    traces.append(_scatter(
        CPU_AXES, x=x_metrics, y=np.append(cpu, cpu[-1:]), name="CPU (%)", mode="lines",
        line={"color": CPU_COLOUR, "shape": "hv", "width": 1}, fill="tozeroy", fillcolor="rgba(86,180,233,0.25)",
        hovertemplate=f"%{{x:.1f}} {unit}<br>CPU %{{y:.0f}} % (mean over {period:g} s)<extra></extra>"))
    traces.insert(0, _scatter(
        RATE_AXES, x=np.asarray(x_load) / unit_s, y=y_load, name="offered load (req/s)", mode="lines",
        line={"color": LOAD_COLOUR, "shape": "hv", "width": 2},
        hovertemplate=f"%{{x:.1f}} {unit}<br>offered %{{y:.3g}} req/s<extra></extra>"))
    for position, (column, name, colour, dash) in enumerate(
            (("requests_completed", "served (req/s)", SERVED_COLOUR, "solid"),
             ("requests_failed", "failed (req/s)", FAILED_COLOUR, "dot")), start=1):
        per_s = metrics[column].to_numpy() / period
        traces.insert(position, _scatter(
            RATE_AXES, showlegend=column != "requests_failed" or bool(per_s.any()),
            x=x_metrics, y=np.append(per_s, per_s[-1:]), name=name, mode="lines",
            line={"color": colour, "shape": "hv", "width": 2, "dash": dash},
            hovertemplate=f"%{{x:.1f}} {unit}<br>{name.split(' ')[0]} %{{y:.3g}} req/s "
            f"(mean over {period:g} s)<extra></extra>"))
    _hline(layout, CPU_AXES, facts.SCALE_UP_CPU_PCT, {"color": CPU_COLOUR, "dash": "dot", "width": 1.5},
           f"scale-up above CPU {facts.SCALE_UP_CPU_PCT:g} %", {"color": BLUE, "size": 10}, left=True)
    layout["yaxis"].update(title={"text": "CPU (%)"}, range=[0, 105], tickvals=[0, 25, 50, 75, 100], color=BLUE)
    served = (metrics["requests_completed"] + metrics["requests_failed"]).to_numpy() / period
    top = 1.1 * max(max(y_load), float(served.max(initial=0)), 1.0)
    layout["yaxis2"].update(title={"text": "requests/s"}, range=[0, top], tickmode="auto", showgrid=False)


def _capacity_panel(traces: list[dict], layout: dict, run: Run, steps: pd.DataFrame, unit_s: float,
                    unit: str) -> float:
    """The capacity step line and dashed min/max lines; returns the top of the y axis (ACU).

    The axis spans what the run used (up to two rungs above its peak), so 1 ACU is not squashed under a
    max_capacity of 256; a max_capacity above the range is named in the corner instead of drawn.
    """
    x = np.append(steps["time_s"].to_numpy(), run.duration_s) / unit_s
    capacity = steps["capacity_acu"].to_numpy()
    state = steps["state"].to_numpy()
    traces.append(_scatter(
        CAPACITY_AXES, x=x, y=np.append(capacity, capacity[-1:]), name="capacity (ACU)",
        customdata=np.append(state, state[-1:]), mode="lines",
        line={"color": CAPACITY_COLOUR, "shape": "hv", "width": 2.5},
        hovertemplate=f"%{{x:.2f}} {unit}<br>%{{y}} ACU (%{{customdata}})<extra></extra>"))
    ladder = facts.CAPACITY_LADDER[run.config.engine]
    peak = max(int(capacity.max(initial=0)), run.config.min_capacity)
    above = [rung for rung in ladder if rung > peak][:2]
    top = min(run.config.max_capacity, above[-1] if above else peak)
    for value, text in ((run.config.min_capacity, "min"), (run.config.max_capacity, "max")):
        label = f"{text}_capacity = {value} ACU"
        if value > top:
            layout["annotations"].append({
                "text": f"{label} (above this range)", "xref": f"{CAPACITY_AXES[0]} domain",
                "yref": f"{CAPACITY_AXES[1]} domain", "x": 1, "y": 1, "showarrow": False, "xanchor": "right",
                "yanchor": "bottom", "font": {"color": GREY, "size": 10}})
            continue
        _hline(layout, CAPACITY_AXES, value, {"color": GREY, "dash": "dash", "width": 1}, label,
               {"color": GREY, "size": 10}, left=False)
    layout["yaxis3"].update(title={"text": "capacity (ACU)"}, range=[-0.05 * top, 1.3 * top],
                            tickvals=[0, *[rung for rung in ladder if rung <= top]])
    return top


def _connections_panel(traces: list[dict], layout: dict, run: Run, metrics: pd.DataFrame, steps: pd.DataFrame,
                       unit_s: float, unit: str) -> None:
    x = np.append(steps["time_s"].to_numpy(), run.duration_s) / unit_s
    limit = np.array([facts.max_connections(run.config.engine, int(c)) for c in steps["capacity_acu"]])
    limit = np.append(limit, limit[-1:])
    share = facts.SCALE_UP_CONNECTIONS_PCT / 100
    traces += [
        _scatter(CONNECTIONS_AXES, x=metrics["time_s"] / unit_s, y=metrics["connections"], name="connections open",
                 mode="lines+markers", line={"color": CONNECTIONS_COLOUR}, marker={"size": 4},
                 hovertemplate=f"%{{x:.1f}} {unit}<br>%{{y}} connections open<extra></extra>"),
        _scatter(CONNECTIONS_AXES, mode="lines", x=x, y=limit, name="max_connections",
                 line={"color": LIMIT_COLOUR, "shape": "hv", "dash": "dash"},
                 hovertemplate=f"%{{x:.2f}} {unit}<br>max_connections %{{y}}<extra></extra>"),
        _scatter(CONNECTIONS_AXES, mode="lines", x=x, y=limit * share,
                 name=f"scale-up at {facts.SCALE_UP_CONNECTIONS_PCT:g} % of max",
                 line={"color": GREY, "shape": "hv", "dash": "dot", "width": 1},
                 hovertemplate=f"%{{x:.2f}} {unit}<br>scale-up threshold %{{y:.0f}} connections<extra></extra>"),
    ]
    layout["yaxis4"].update(title={"text": "connections"}, rangemode="tozero")
