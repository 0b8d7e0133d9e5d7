"""The timeline: load and CPU, capacity with its events, and connections, on one time axis."""

from __future__ import annotations

import json
import math
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import facts
from ..simulation import Run
from ._events import SAME_MOMENT_SHARE, event_markers, event_traces, place_markers
from ._style import (
    BLUE,
    CAPACITY_COLOUR,
    CONNECTIONS_COLOUR,
    CPU_COLOUR,
    FAILED_COLOUR,
    FONT,
    GREY,
    LEGEND_BELOW,
    LIMIT_COLOUR,
    LOAD_COLOUR,
    PURPLE,
    SERVED_COLOUR,
    TEMPLATE,
    TITLE_FONT,
    TimeAxis,
    _capacity_steps,
    _in_time_order,
    _state_bands,
    _thinned,
    time_axis,
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


# --- 1. The timeline -------------------------------------------------------------------------------------------

HEIGHT_PX = 880  # three panels of ~200 px each, the title, and the legend's rows under the plot
EVENT_STEP_SHARE = 0.09  # one step of marker lift, as a share of the capacity axis's top rung


def timeline(run: Run, *, title: str | None = None, show_events: bool = True,
             window_s: tuple[float, float] | None = None, day_start_h: float | None = None) -> go.Figure:
    """The run at a glance: load and CPU, capacity with its events, and connections, on one time axis.

    Three panels share the x axis (minutes, or hours for runs over 3 h): (1) the requests per second the
    workload offers, those served and failed per metrics period, and CPU %; (2) capacity in ACUs as the
    exact step function of the ``capacity`` table, between dashed min/max lines, with every event marked
    (hover shows its message; scale failures, forced scaling and aborted transactions in vermillion, aborts
    at one instant counted in one marker; events of the same moment stack up so each can be hovered);
    (3) open connections against ``max_connections`` and the 90 % line above which the cluster wants to
    scale up. Shaded bands show paused, resuming and scaling periods; the legend sits under the plot.

    Args:
        run: A finished simulation.
        title: Figure title; default describes the configuration.
        show_events: Mark the event log on the capacity panel.
        window_s: ``(start_s, end_s)`` to show first, e.g. a 30-second burst with a margin; two buttons
            switch between it and the whole run.
        day_start_h: The hour of the day at which the run starts (e.g. ``scenarios.DAY_START_H``): the x
            axis then shows clock time ("09:00") instead of time since the start.

    Returns:
        A static ``go.Figure`` (``widgets.full_width(widgets.figure_widget(fig))`` shows it as a widget);
        ``timeline_dict`` returns the same figure as plain dicts, unvalidated, for a panel's redraw.

    Raises:
        ValueError: If ``window_s`` is not an interval within the run, or ``day_start_h`` not an hour of the day.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(min_capacity=1, max_capacity=16),
        ...                Workload(segments=[(0, 600, 5.0), (600, 1800, 120.0)]), duration_s=3600, seed=7)
        >>> fig = timeline(run)
        >>> "scale failed (rolled back)" in {trace.name for trace in fig.data}
        True
        >>> timeline(run, window_s=(540, 900)).layout.xaxis3.range
        (9.0, 15.0)
    """
    # One validation of plain dicts: building through make_subplots/add_trace/add_hline took 60 ms, this 20 ms.
    return go.Figure(timeline_dict(run, title=title, show_events=show_events, window_s=window_s,
                                   day_start_h=day_start_h))


def timeline_dict(run: Run, *, title: str | None = None, show_events: bool = True,
                  window_s: tuple[float, float] | None = None, day_start_h: float | None = None) -> dict:
    """``timeline`` as a plain figure dict (``{"data": [...], "layout": {...}}``, not validated by plotly): a
    panel's redraw builds it in a few ms and sends its figure only what changed (``widgets.redraw``).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0)]), duration_s=900, seed=1)
        >>> [trace["name"] for trace in timeline_dict(run)["data"]][:2]
        ['offered load (req/s)', 'served (req/s)']
    """
    axis = time_axis(run.duration_s, day_start_h=day_start_h)
    view_s = _check_window(window_s, run.duration_s)
    steps = _capacity_steps(run)
    metrics = _in_time_order(run.frame("metrics"), math.inf)
    layout = _timeline_layout()
    traces: list[dict] = []
    _load_panel(traces, layout, run, metrics, axis)
    top_acu = _capacity_panel(traces, layout, run, steps, axis)
    if show_events:
        events = place_markers(event_markers(run, steps), lift_acu=EVENT_STEP_SHARE * top_acu,
                               same_moment_s=SAME_MOMENT_SHARE * (view_s[1] - view_s[0]))
        traces += event_traces(events, axis, CAPACITY_AXES)
    _connections_panel(traces, layout, run, metrics, steps, axis)

    layout["shapes"] = [*_state_bands(steps, axis), *_blocking_bands(run, axis), *layout["shapes"]]
    layout.update(
        title=_title(run, title), height=HEIGHT_PX, font=FONT, template=TEMPLATE, hovermode="closest",
        legend={**LEGEND_BELOW, "groupclick": "togglegroup"},
        margin={"l": 70, "r": 30, "t": 95, "b": 60})
    for name in ("xaxis", "xaxis2", "xaxis3"):
        layout[name].update(axis.layout(*view_s), showspikes=True, spikemode="across", spikethickness=1,
                            spikecolor=GREY)
    layout["xaxis3"]["title"] = {"text": axis.title}
    if window_s is not None:
        layout["updatemenus"] = [_window_buttons(axis, view_s, run.duration_s)]
    return {"data": traces, "layout": layout}


def _check_window(window_s: tuple[float, float] | None, duration_s: float) -> tuple[float, float]:
    if window_s is None:
        return 0.0, float(duration_s)
    start_s, end_s = window_s
    if not 0 <= start_s < end_s <= duration_s:
        msg = f"window_s={window_s!r} must be (start_s, end_s) with 0 <= start_s < end_s <= {duration_s:g}"
        raise ValueError(msg)
    return float(start_s), float(end_s)


def _title(run: Run, title: str | None) -> dict:
    """The given title, or the configuration on two short lines, so that it fits a narrow panel."""
    common = {"x": 0.01, "xanchor": "left", "y": 0.985, "yanchor": "top", "yref": "container", "font": TITLE_FONT}
    if title:
        return {"text": title, **common}
    config = run.config
    pause = f"auto-pause after {config.seconds_until_auto_pause} s" if config.auto_pause else "no auto-pause"
    return {"text": f"{config.engine} {config.min_capacity}–{config.max_capacity} ACU, {pause}",
            "subtitle": {"text": f"{config.timeout_action} after {config.seconds_before_timeout} s · seed {run.seed}",
                         "font": {"size": 12, "color": GREY}}, **common}


def _window_buttons(axis: TimeAxis, view_s: tuple[float, float], duration_s: float) -> dict:
    """Two buttons above the plot's right end: the window shown first, or the whole run."""
    def show(start_s: float, end_s: float) -> dict:
        return {f"{name}.range": [axis.x(start_s), axis.x(end_s)] for name in ("xaxis", "xaxis2", "xaxis3")}

    if axis.is_clock:
        label = f"{axis.x(view_s[0])[11:16]}–{axis.x(view_s[1])[11:16]}"
    else:
        label = f"{axis.x(view_s[0]):g}–{axis.x(view_s[1]):g} {axis.unit}"
    return {"type": "buttons", "direction": "right", "active": 0, "showactive": True,
            "x": 1, "xanchor": "right", "y": 1.07, "yanchor": "bottom", "pad": {"r": 0, "t": 0},
            "font": {"size": 11}, "bgcolor": "white", "bordercolor": GREY,
            "buttons": [{"label": f"zoom: {label}", "method": "relayout", "args": [show(*view_s)]},
                        {"label": "whole run", "method": "relayout", "args": [show(0, duration_s)]}]}


def _blocking_bands(run: Run, axis: TimeAxis) -> list[dict]:
    """A thin bar at the foot of the capacity panel for each blocking operation's planned life (hover-free:
    the legend entry names them once)."""
    shapes, in_legend = [], set()
    for op in run.workload.blocking:
        if op.start_s >= run.duration_s:
            continue
        shapes.append({
            "type": "rect", "xref": CAPACITY_AXES[0], "yref": f"{CAPACITY_AXES[1]} domain",
            "x0": axis.x(op.start_s), "x1": axis.x(min(op.end_s, run.duration_s)), "y0": 0.0, "y1": 0.05,
            "fillcolor": PURPLE if op.blocks_scaling else GREY, "opacity": 0.6, "line": {"width": 0},
            "name": "blocking operations (planned)" if op.blocks_scaling else "idle connections (planned)",
            "legendgroup": f"blocking-{op.blocks_scaling}", "showlegend": op.blocks_scaling not in in_legend,
            "legendrank": 950})
        in_legend.add(op.blocks_scaling)
    return shapes


# The timeline's axes, as make_subplots names them: load (CPU left, requests/s right), capacity, connections.
CPU_AXES, RATE_AXES, CAPACITY_AXES, CONNECTIONS_AXES = ("x", "y"), ("x", "y2"), ("x2", "y3"), ("x3", "y4")
CAPACITY_TITLE = "Capacity and scaling events"


@cache
def _timeline_layout_json() -> str:
    figure = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.32, 0.38, 0.30],
        specs=[[{"secondary_y": True}], [{}], [{}]],
        subplot_titles=("Load offered and served, CPU", CAPACITY_TITLE, "Connections"))
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


def _load_panel(traces: list[dict], layout: dict, run: Run, metrics: pd.DataFrame, axis: TimeAxis) -> None:
    """Requests/s on the right axis (drawn on top), CPU % as a shaded area on the left axis."""
    period = run.metrics_period_s
    x_load, y_load = _offered_load(run)
    x_metrics = np.append(metrics["time_s"].to_numpy(dtype=float), run.duration_s)
    cpu = metrics["cpu_pct"].to_numpy()
    x_cpu, y_cpu = _thinned(x_metrics, np.append(cpu, cpu[-1:]))
    traces.append(_scatter(
        CPU_AXES, x=axis.x(x_cpu), y=y_cpu, name="CPU (%)", mode="lines",
        line={"color": CPU_COLOUR, "shape": "hv", "width": 1}, fill="tozeroy", fillcolor="rgba(86,180,233,0.25)",
        hovertemplate=f"{axis.hover()}<br>CPU %{{y:.0f}} % (mean over {period:g} s)<extra></extra>"))
    traces.insert(0, _scatter(
        RATE_AXES, x=axis.x(x_load), y=y_load, name="offered load (req/s)", mode="lines",
        line={"color": LOAD_COLOUR, "shape": "hv", "width": 2},
        hovertemplate=f"{axis.hover()}<br>offered %{{y:.3g}} req/s<extra></extra>"))
    for position, (column, name, colour, dash) in enumerate(
            (("requests_completed", "served (req/s)", SERVED_COLOUR, "solid"),
             ("requests_failed", "failed (req/s)", FAILED_COLOUR, "dot")), start=1):
        per_s = metrics[column].to_numpy() / period
        x_rate, y_rate = _thinned(x_metrics, np.append(per_s, per_s[-1:]))
        traces.insert(position, _scatter(
            RATE_AXES, showlegend=column != "requests_failed" or bool(per_s.any()),
            x=axis.x(x_rate), y=y_rate, name=name, mode="lines",
            line={"color": colour, "shape": "hv", "width": 2, "dash": dash},
            hovertemplate=f"{axis.hover()}<br>{name.split(' ')[0]} %{{y:.3g}} req/s "
            f"(mean over {period:g} s)<extra></extra>"))
    _hline(layout, CPU_AXES, facts.SCALE_UP_CPU_PCT, {"color": CPU_COLOUR, "dash": "dot", "width": 1.5},
           f"scale-up above CPU {facts.SCALE_UP_CPU_PCT:g} %", {"color": BLUE, "size": 10}, left=True)
    layout["yaxis"].update(title={"text": "CPU (%)"}, range=[0, 105], tickvals=[0, 25, 50, 75, 100], color=BLUE)
    served = (metrics["requests_completed"] + metrics["requests_failed"]).to_numpy() / period
    top = 1.1 * max(max(y_load), float(served.max(initial=0)), 1.0)
    layout["yaxis2"].update(title={"text": "requests/s"}, range=[0, top], tickmode="auto", showgrid=False)


def _capacity_panel(traces: list[dict], layout: dict, run: Run, steps: pd.DataFrame, axis: TimeAxis) -> float:
    """The capacity step line and dashed min/max lines; returns the top of the y axis (ACU).

    The axis spans what the run used (up to two rungs above its peak), so 1 ACU is not squashed under a
    max_capacity of 256; a max_capacity above the range is named in the panel's title instead of drawn.
    """
    x = axis.x(np.append(steps["time_s"].to_numpy(), run.duration_s))
    capacity = steps["capacity_acu"].to_numpy()
    # Not hoverable: the line's corners are events whose markers sit on them and say more, and at a tie the line
    # took the hover from the marker (notebook 02: the first `scale started` showed "1 ACU (scaling)").
    traces.append(_scatter(
        CAPACITY_AXES, x=x, y=np.append(capacity, capacity[-1:]), name="capacity (ACU)", mode="lines",
        line={"color": CAPACITY_COLOUR, "shape": "hv", "width": 2.5}, hoverinfo="skip"))
    ladder = facts.CAPACITY_LADDER[run.config.engine]
    peak = max(int(capacity.max(initial=0)), run.config.min_capacity)
    above = [rung for rung in ladder if rung > peak][:2]
    top = min(run.config.max_capacity, above[-1] if above else peak)
    for value, text in ((run.config.min_capacity, "min"), (run.config.max_capacity, "max")):
        label = f"{text}_capacity = {value} ACU"
        if value > top:  # in the panel's title: a corner label collided with the title above it (notebook 01)
            heading = next(a for a in layout["annotations"] if a["text"] == CAPACITY_TITLE)
            note = f"({label}, above this range)"
            heading["text"] = f"{CAPACITY_TITLE} <span style='font-size:11px;color:{GREY}'>{note}</span>"
            continue
        _hline(layout, CAPACITY_AXES, value, {"color": GREY, "dash": "dash", "width": 1}, label,
               {"color": GREY, "size": 10}, left=False)
    layout["yaxis3"].update(title={"text": "capacity (ACU)"}, range=[-0.05 * top, 1.35 * top],
                            tickvals=[0, *[rung for rung in ladder if rung <= top]])
    return top


def _connections_panel(traces: list[dict], layout: dict, run: Run, metrics: pd.DataFrame, steps: pd.DataFrame,
                       axis: TimeAxis) -> None:
    x = axis.x(np.append(steps["time_s"].to_numpy(), run.duration_s))
    limit = np.array([facts.max_connections(run.config.engine, int(c)) for c in steps["capacity_acu"]])
    limit = np.append(limit, limit[-1:])
    share = facts.SCALE_UP_CONNECTIONS_PCT / 100
    x_open, y_open = _thinned(metrics["time_s"].to_numpy(dtype=float), metrics["connections"].to_numpy())
    traces += [
        _scatter(CONNECTIONS_AXES, x=axis.x(x_open), y=y_open,
                 name="connections open", mode="lines+markers", line={"color": CONNECTIONS_COLOUR}, marker={"size": 4},
                 hovertemplate=f"{axis.hover()}<br>%{{y}} connections open<extra></extra>"),
        _scatter(CONNECTIONS_AXES, mode="lines", x=x, y=limit, name="max_connections",
                 line={"color": LIMIT_COLOUR, "shape": "hv", "dash": "dash"},
                 hovertemplate=f"{axis.hover(2)}<br>max_connections %{{y}}<extra></extra>"),
        _scatter(CONNECTIONS_AXES, mode="lines", x=x, y=limit * share,
                 name=f"scale-up at {facts.SCALE_UP_CONNECTIONS_PCT:g} % of max",
                 line={"color": GREY, "shape": "hv", "dash": "dot", "width": 1},
                 hovertemplate=f"{axis.hover(2)}<br>scale-up threshold %{{y:.0f}} connections<extra></extra>"),
    ]
    layout["yaxis4"].update(title={"text": "connections"}, rangemode="tozero")
