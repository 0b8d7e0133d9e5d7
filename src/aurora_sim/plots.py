"""Static plotly figures of a ``Run``: the timeline, request latencies, and a cost/latency comparison.

Every factory takes finished runs and returns a ``plotly.graph_objects.Figure``; none of them simulates.
They read the run's DuckDB tables and aggregate or sample there, so a 1-hour run at 100 requests/s
(~360 k requests) still gives a figure of a few thousand points. Colours come from the Okabe-Ito
palette (colour-blind safe) and are defined once below.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0)]), duration_s=900, seed=1)
    >>> [trace.name for trace in timeline(run).data][:2]
    ['offered load (req/s)', 'served (req/s)']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import facts
from .cluster import PAUSED, RESUMING, SCALING
from .config import ModelAssumptions
from .costs import acu_hours, billed_acu_hours, cost_usd
from .scaling import resume_times_s
from .simulation import Run

__all__ = ["EVENT_KINDS", "cold_starts", "cost_latency_summary", "latency", "resume_distribution", "timeline"]

# --- Names: event kinds (DESIGN §4) ------------------------------------------------------------------------------

SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED = "scale_started", "scaling_point_found", "scale_completed"
SCALE_FAILED, SCALE_FORCED = "scale_failed", "scale_forced"
TRANSACTION_ABORTED, CONNECTION_CLOSED = "transaction_aborted", "connection_closed"
PAUSE_STARTED, PAUSE_CANCELLED, PAUSED_EVENT = "pause_started", "pause_cancelled", "paused"
RESUME_STARTED, RESUMED = "resume_started", "resumed"
EVENT_KINDS = (SCALE_STARTED, SCALING_POINT_FOUND, SCALE_COMPLETED, SCALE_FAILED, SCALE_FORCED, TRANSACTION_ABORTED,
               CONNECTION_CLOSED, PAUSE_STARTED, PAUSED_EVENT, PAUSE_CANCELLED, RESUME_STARTED, RESUMED)

# --- Palette (Okabe-Ito), defined once ---------------------------------------------------------------------------

BLACK, ORANGE, SKY_BLUE, GREEN = "#000000", "#E69F00", "#56B4E9", "#009E73"
YELLOW, BLUE, VERMILLION, PURPLE, GREY = "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"

STATE_STYLE = {  # state: (colour, legend text) of its shaded band
    PAUSED: (BLUE, "paused (0 ACU, not billed)"),
    RESUMING: (ORANGE, "resuming (cold start)"),
    SCALING: (YELLOW, "scaling (looking for a scaling point)"),
}
STATE_OPACITY = 0.18

EVENT_STYLE = {  # kind: (colour, marker symbol, legend text); problems are vermillion
    SCALE_STARTED: (BLACK, "triangle-up-open", "scale started"),
    SCALING_POINT_FOUND: (GREEN, "circle-open", "scaling point found"),
    SCALE_COMPLETED: (GREEN, "triangle-up", "scale completed"),
    SCALE_FAILED: (VERMILLION, "x", "scale failed (rolled back)"),
    SCALE_FORCED: (VERMILLION, "star", "scale forced (not seamless)"),
    TRANSACTION_ABORTED: (VERMILLION, "diamond", "transactions aborted"),
    CONNECTION_CLOSED: (PURPLE, "hexagon", "connections closed by the cluster"),
    PAUSE_STARTED: (BLUE, "hourglass", "pause started"),
    PAUSED_EVENT: (BLUE, "square", "paused"),
    PAUSE_CANCELLED: (BLUE, "circle-x-open", "pause cancelled"),
    RESUME_STARTED: (ORANGE, "triangle-right-open", "resume started"),
    RESUMED: (ORANGE, "triangle-right", "resumed"),
}
PROBLEM_EVENTS = (SCALE_FAILED, SCALE_FORCED, TRANSACTION_ABORTED, CONNECTION_CLOSED)
EVENT_LIFT = {SCALE_FAILED: 1, SCALE_FORCED: 1, TRANSACTION_ABORTED: 2, CONNECTION_CLOSED: 3}  # × lift above line

LOAD_COLOUR, SERVED_COLOUR, FAILED_COLOUR, CPU_COLOUR = BLACK, GREEN, VERMILLION, SKY_BLUE
CAPACITY_COLOUR, CONNECTIONS_COLOUR, LIMIT_COLOUR = BLUE, BLUE, BLACK
OK_COLOUR, P50_COLOUR, P95_COLOUR, COLD_START_COLOUR = SKY_BLUE, GREEN, BLUE, ORANGE
ERROR_STYLES = ((VERMILLION, "x"), (PURPLE, "diamond"), (ORANGE, "square"), (BLACK, "cross"))
COST_COLOUR = GREY

HOURS_ABOVE_S = 3 * 3600  # runs longer than this get an x axis in hours
FONT = {"family": "Arial, Helvetica, sans-serif", "size": 13}


def _time_unit(duration_s: float) -> tuple[float, str]:
    """Seconds per x-axis unit and its name: minutes, or hours for runs longer than 3 h."""
    return (3600.0, "h") if duration_s > HOURS_ABOVE_S else (60.0, "min")


# --- Tables read once, each in one query ------------------------------------------------------------------------

def _capacity_steps(run: Run) -> pd.DataFrame:
    """The capacity table within ``[0, duration_s]``, last row per instant, closed at ``duration_s``."""
    steps = run.sql("SELECT time_s, state, capacity_acu FROM capacity WHERE time_s <= ? ORDER BY time_s",
                    params=[run.duration_s]).df()
    steps = steps.drop_duplicates("time_s", keep="last").reset_index(drop=True)
    steps["end_s"] = np.append(steps["time_s"].to_numpy()[1:], run.duration_s)
    return steps


def _state_bands(steps: pd.DataFrame, unit_s: float, states: Sequence[str] = (PAUSED, RESUMING, SCALING)) -> list:
    """One shaded vertical band per period in a non-active state; the first of each state joins the legend."""
    shapes, in_legend = [], set()
    for start, end, state in zip(steps["time_s"], steps["end_s"], steps["state"], strict=True):
        if state not in states or end <= start:
            continue
        colour, text = STATE_STYLE[state]
        shapes.append({
            "type": "rect", "xref": "x", "yref": "paper", "x0": start / unit_s, "x1": end / unit_s, "y0": 0, "y1": 1,
            "fillcolor": colour, "opacity": STATE_OPACITY, "line": {"width": 0}, "layer": "below",
            "name": text, "legendgroup": f"state-{state}", "showlegend": state not in in_legend, "legendrank": 900})
        in_legend.add(state)
    return shapes


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
    layout["shapes"] = [*_state_bands(steps, unit_s), *layout["shapes"]]
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


# The timeline's axes, as make_subplots names them: load (CPU left, requests/s right), capacity, connections.
CPU_AXES, RATE_AXES, CAPACITY_AXES, CONNECTIONS_AXES = ("x", "y"), ("x", "y2"), ("x2", "y3"), ("x3", "y4")
TEMPLATE = "plotly_white"


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


# --- 2. Request latencies --------------------------------------------------------------------------------------

def _sample_requests(run: Run, max_points: int) -> tuple[pd.DataFrame, int]:
    """About ``max_points`` requests at most: the slowest ok ones, then an even share of each outcome/error.

    Within a share the sample is 1-in-N by request id (ids follow submit order, so it is spread in time).
    """
    total, = run.sql("SELECT count(*) FROM requests").fetchall()[0]
    columns = "request_id, submitted_s, latency_s, outcome, error"
    if total <= max_points:
        return run.sql(f"SELECT {columns} FROM requests").df(), total
    slowest = max_points // 10
    kinds = run.sql("SELECT outcome, error, count(*) FROM requests GROUP BY ALL").fetchall()
    per_kind = max(1, (max_points - slowest) // len(kinds))
    parts = [run.sql(f"SELECT {columns} FROM requests WHERE outcome = 'ok' ORDER BY latency_s DESC "
                     f"LIMIT {slowest}").df()]
    for outcome, error, count in kinds:
        stride = -(-count // per_kind)  # ceil: at most per_kind rows of this kind
        match = "error IS NULL" if error is None else "error = $error"
        params = {"outcome": outcome} | ({} if error is None else {"error": error})
        parts.append(run.sql(f"SELECT {columns} FROM requests WHERE outcome = $outcome AND {match} "
                             f"AND request_id % {stride} = 0", params=params).df())
    return pd.concat(parts, ignore_index=True).drop_duplicates("request_id"), total


def cold_starts(run: Run) -> pd.DataFrame:
    """One row per resume: when it started and ended, and the slowest request submitted during it.

    The cold-start request is the slowest of those submitted in ``[resume_started, resumed]`` (the cluster
    resumes because of them); when none was (a blocking operation woke it), the first submitted after.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]),
        ...                duration_s=1800, seed=1)
        >>> row = cold_starts(run).iloc[0]
        >>> round(float(row.resume_s), 1), round(float(row.latency_s), 1)
        (37.7, 37.8)
    """
    return run.sql(f"""
        WITH starts AS (
            SELECT time_s AS resume_started_s,
                   (SELECT min(time_s) FROM events e2 WHERE e2.kind = '{RESUMED}' AND e2.time_s >= e.time_s)
                       AS resumed_s
            FROM events e WHERE kind = '{RESUME_STARTED}'),
        during AS (
            SELECT s.resume_started_s, s.resumed_s,
                   arg_max(r.request_id, r.latency_s) AS request_id
            FROM starts s LEFT JOIN requests r
              ON r.submitted_s >= s.resume_started_s AND r.submitted_s <= coalesce(s.resumed_s, 'infinity')
            GROUP BY ALL),
        chosen AS (
            SELECT resume_started_s, resumed_s,
                   coalesce(request_id, (SELECT arg_min(request_id, submitted_s) FROM requests
                                         WHERE submitted_s >= resume_started_s)) AS request_id
            FROM during)
        SELECT c.resume_started_s, c.resumed_s, c.resumed_s - c.resume_started_s AS resume_s,
               r.request_id, r.submitted_s, r.latency_s, r.outcome, r.error
        FROM chosen c LEFT JOIN requests r USING (request_id)
        ORDER BY c.resume_started_s""").df()


def latency(run: Run, *, highlight_cold_start: bool = True, max_points: int = 5000) -> go.Figure:
    """Each request's latency against the time it was submitted, with p50/p95 lines and the cold starts.

    A log y axis (ms) spans 10 ms queries and 40 s cold starts. Above ``max_points`` requests the figure
    shows a sample: the slowest tenth of the budget, then an even share of each outcome and error text
    (1-in-N by request id); the title says how many are shown. Errors get their own colour and symbol and
    show the engine's error text on hover; refused requests (0 ms) sit on the bottom edge. The p50/p95
    lines are per metrics period, over ok requests that *finished* in it. The cold-start request of each
    resume (see ``cold_starts``) gets a large marker and an annotation.

    Args:
        run: A finished simulation.
        highlight_cold_start: Mark and annotate the cold-start request of each resume.
        max_points: Upper bound (about) on the request markers drawn.

    Returns:
        A static ``go.Figure``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]),
        ...                duration_s=1800, seed=1)
        >>> fig = latency(run)
        >>> [trace.name for trace in fig.data if trace.name.startswith("cold")]
        ['cold start']
    """
    unit_s, unit = _time_unit(run.duration_s)
    sample, total = _sample_requests(run, max_points)
    fig = go.Figure()
    positive = sample["latency_s"][sample["latency_s"] > 0]
    # Refused requests last 0 ms, which a log axis cannot show: they sit on a floor a decade below the rest.
    floor_ms = 10 ** (np.floor(np.log10(1000 * float(positive.min()))) - 1) if len(positive) else 1.0
    groups = sample.groupby(["outcome", "error"], dropna=False, sort=False, observed=True)
    order = sorted(groups.groups, key=lambda key: (key[0] != "ok", str(key[1])))
    errors_seen = 0
    for key in order:
        rows = groups.get_group(key)
        outcome, error = key
        latency_ms = rows["latency_s"].to_numpy() * 1000
        if outcome == "ok":
            name, colour, symbol, size, why = "ok", OK_COLOUR, "circle", 4, ""
        else:
            colour, symbol = ERROR_STYLES[errors_seen % len(ERROR_STYLES)]
            errors_seen += 1
            short = str(error) if isinstance(error, str) else outcome
            name, size, why = f"{outcome}: {short[:48]}{'…' if len(short) > 48 else ''}", 7, short
            if (latency_ms == 0).all():
                name += " (0 ms: drawn at the bottom)"
        fig.add_trace(go.Scatter(
            x=rows["submitted_s"] / unit_s, y=np.maximum(latency_ms, floor_ms), name=name, mode="markers",
            marker={"color": colour, "symbol": symbol, "size": size, "opacity": 0.6 if outcome == "ok" else 0.85},
            customdata=np.column_stack([latency_ms, rows["request_id"]]),
            hovertemplate=(f"submitted %{{x:.2f}} {unit}<br>latency %{{customdata[0]:,.1f}} ms"
                           f"<br>request %{{customdata[1]}}<br>{why}<extra>{outcome}</extra>")))
    _percentile_lines(fig, run, unit_s, unit)
    if highlight_cold_start:
        _mark_cold_starts(fig, run, unit_s, unit)
    shown = f"all {total:,} requests" if len(sample) >= total else f"{len(sample):,} of {total:,} requests (sampled)"
    fig.update_layout(
        title={"text": f"Request latency by submit time · {shown}", "x": 0.01}, font=FONT,
        template="plotly_white", height=560,
        legend={"font": {"size": 11}, "orientation": "h", "yanchor": "top", "y": -0.16, "x": 0},
        shapes=_state_bands(_capacity_steps(run), unit_s, states=(PAUSED, RESUMING)),  # the only shapes
        margin={"l": 70, "r": 30, "t": 70, "b": 120})
    fig.update_xaxes(title_text=f"submitted at ({unit} since start)", range=[0, run.duration_s / unit_s])
    fig.update_yaxes(title_text="latency (ms, log scale)", type="log")
    return fig


def _percentile_lines(fig: go.Figure, run: Run, unit_s: float, unit: str) -> None:
    metrics = run.sql("SELECT time_s, p50_latency_ms, p95_latency_ms FROM metrics ORDER BY time_s").df()
    x = np.append(metrics["time_s"].to_numpy(), run.duration_s) / unit_s
    period = run.metrics_period_s
    for column, name, colour in (("p50_latency_ms", "p50", P50_COLOUR), ("p95_latency_ms", "p95", P95_COLOUR)):
        values = metrics[column].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            mode="lines",
            x=x, y=np.append(values, values[-1:]), name=f"{name} per {period:g} s (ok, by finish time)",
            line={"color": colour, "shape": "hv", "width": 2}, connectgaps=False,
            hovertemplate=f"%{{x:.1f}} {unit}<br>{name} %{{y:,.1f}} ms<extra></extra>"))


def _mark_cold_starts(fig: go.Figure, run: Run, unit_s: float, unit: str) -> None:
    starts = cold_starts(run).dropna(subset=["request_id"])
    if starts.empty:
        return
    latency_ms = starts["latency_s"].to_numpy() * 1000
    resume = starts["resume_s"].fillna(float("nan")).to_numpy(dtype=float)
    fig.add_trace(go.Scatter(
        x=starts["submitted_s"] / unit_s, y=latency_ms, name="cold start", mode="markers",
        marker={"color": COLD_START_COLOUR, "symbol": "star", "size": 20, "line": {"color": BLACK, "width": 1.5}},
        customdata=np.column_stack([latency_ms / 1000, resume]),
        hovertemplate=(f"cold start at %{{x:.2f}} {unit}<br>latency %{{customdata[0]:.1f}} s"
                       f"<br>resume took %{{customdata[1]:.1f}} s<extra></extra>")))
    for x, y in zip(starts["submitted_s"] / unit_s, latency_ms, strict=True):
        fig.add_annotation(x=x, y=np.log10(y), text=f"<b>cold start: {y / 1000:.0f} s</b>", showarrow=True,
                           arrowhead=2, ax=40, ay=-30, font={"color": BLACK}, bgcolor="rgba(255,255,255,0.8)",
                           bordercolor=COLD_START_COLOUR)


# --- 3. Comparing runs -----------------------------------------------------------------------------------------

def _summary_row(label: str, run: Run) -> dict[str, object]:
    p95, failed, total = run.sql(
        "SELECT quantile_cont(latency_s, 0.95) FILTER (WHERE outcome = 'ok'), "
        "count(*) FILTER (WHERE outcome <> 'ok'), count(*) FROM requests").fetchall()[0]
    resumes, = run.sql(f"SELECT count(*) FROM events WHERE kind = '{RESUMED}' AND time_s <= ?",
                       params=[run.duration_s]).fetchall()[0]
    return {"label": label, "cost_usd": cost_usd(run), "acu_hours": acu_hours(run),
            "billed_acu_hours": billed_acu_hours(run), "activations": 1 + resumes,
            "p95_ms": None if p95 is None else p95 * 1000, "failed": failed, "requests": total}


def cost_latency_summary(runs: Mapping[str, Run] | Sequence[tuple[str, Run]]) -> go.Figure:
    """Compare runs (e.g. pause timeouts or minimum capacities): what each costs, how fast, how many failed.

    Top panel: bars of the bill in USD (``costs.cost_usd``: billed ACU-hours × the ACU-hour price, at least
    5 minutes per activation) on the left axis, and the p95 latency of ok requests as diamonds on the right
    axis (ms, log). Bottom panel: failed requests (errors and timeouts) per run. Hover gives ACU-hours,
    activations and request counts.

    Args:
        runs: ``{label: run}`` or ``[(label, run), ...]``, in the order to show.

    Returns:
        A static ``go.Figure``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> wl = Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)])
        >>> runs = {f"min {acu} ACU": simulate(ClusterConfig(min_capacity=acu), wl, duration_s=1800, seed=1)
        ...         for acu in (1, 2)}
        >>> [trace.name for trace in cost_latency_summary(runs).data]
        ['cost (USD)', 'p95 latency, ok requests (ms)', 'failed requests']
    """
    pairs = list(runs.items()) if isinstance(runs, Mapping) else list(runs)
    table = pd.DataFrame([_summary_row(str(label), run) for label, run in pairs])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.68, 0.32],
                        specs=[[{"secondary_y": True}], [{}]])
    detail = np.column_stack([table["acu_hours"], table["billed_acu_hours"], table["activations"],
                              table["requests"], table["failed"]])
    fig.add_trace(go.Bar(
        x=table["label"], y=table["cost_usd"], name="cost (USD)", marker_color=COST_COLOUR,
        text=[f"${cost:.3f}" for cost in table["cost_usd"]], textposition="outside", customdata=detail,
        hovertemplate=("<b>%{x}</b><br>cost $%{y:.4f}<br>%{customdata[0]:.3f} ACU-hours used, "
                       "%{customdata[1]:.3f} billed<br>%{customdata[2]} activation(s)<extra></extra>")),
        row=1, col=1)
    fig.add_trace(go.Scatter(
        x=table["label"], y=table["p95_ms"], name="p95 latency, ok requests (ms)", mode="markers+text",
        marker={"color": BLUE, "symbol": "diamond", "size": 14, "line": {"color": BLACK, "width": 1}},
        text=[_ms_text(v) for v in table["p95_ms"]], textposition="middle right",
        textfont={"color": BLUE}, hovertemplate="<b>%{x}</b><br>p95 %{y:,.1f} ms<extra></extra>"),
        row=1, col=1, secondary_y=True)
    fig.add_trace(go.Scatter(
        x=table["label"], y=table["failed"], name="failed requests", mode="markers+text",
        marker={"color": VERMILLION, "symbol": "x", "size": 13}, text=[f"{n:,}" for n in table["failed"]],
        textposition="middle right", textfont={"color": VERMILLION}, customdata=detail,
        hovertemplate="<b>%{x}</b><br>%{y:,} of %{customdata[3]:,} requests failed<extra></extra>"),
        row=2, col=1)
    price = facts.PRICE_PER_ACU_HOUR_USD
    fig.update_layout(
        title={"text": f"Cost and latency per run (${price:g} per ACU-hour, "
                       f"≥ {facts.MIN_BILLED_S_PER_ACTIVATION // 60} min billed per activation)", "x": 0.01},
        font=FONT, template="plotly_white", height=560, bargap=0.45,
        legend={"orientation": "h", "y": -0.12, "x": 0}, margin={"l": 70, "r": 70, "t": 70, "b": 80})
    top = float(table["cost_usd"].max()) if len(table) else 1.0
    fig.update_yaxes(title_text="cost (USD)", range=[0, 1.2 * top or 1], row=1, col=1, secondary_y=False)
    p95 = table["p95_ms"].dropna().astype(float)
    p95 = p95[p95 > 0]
    span = [np.log10(p95.min() / 3), np.log10(p95.max() * 3)] if len(p95) else None
    fig.update_yaxes(title_text="p95 latency (ms, log)", type="log", range=span, tickmode="auto", showgrid=False,
                     color=BLUE, row=1, col=1, secondary_y=True)
    fig.update_yaxes(title_text="failed requests", rangemode="tozero", color=VERMILLION, row=2, col=1)
    return fig


def _ms_text(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "no ok requests"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


# --- 4. The cold-start distribution ---------------------------------------------------------------------------

def resume_distribution(assumptions: ModelAssumptions | None = None, *, count: int = 5000,
                        seed: int = 2020) -> go.Figure:
    """A histogram of ``count`` modelled cold starts against the measured quantiles (dashed lines).

    Example:
        >>> fig = resume_distribution(count=500)
        >>> fig.data[0].type, len(fig.layout.shapes)
        ('histogram', 5)
    """
    assumptions = ModelAssumptions() if assumptions is None else assumptions
    draws = resume_times_s(assumptions, np.random.default_rng(seed), count)
    measured = facts.MEASURED_RESUME_S
    figure = go.Figure(
        data=[{"type": "histogram", "x": draws, "nbinsx": 60, "marker": {"color": SKY_BLUE},
               "name": f"model: {count:,} resumes drawn"}],
        layout={
            "title": {"text": "Resume time: model draws (bars) vs the measured quantiles (dashed)", "x": 0.01},
            "xaxis": {"title": {"text": "cold start (s)"}}, "yaxis": {"title": {"text": "number of draws"}},
            "template": TEMPLATE, "height": 420, "font": FONT, "showlegend": True, "legend": {"x": 0.7, "y": 0.9},
            "margin": {"t": 80},
            "shapes": [{"type": "line", "xref": "x", "x0": value, "x1": value, "yref": "paper", "y0": 0, "y1": 1,
                        "line": {"color": VERMILLION, "dash": "dash", "width": 2}} for value in measured.values()],
            "annotations": [{"text": f"{name} {value:g} s", "xref": "x", "x": value, "yref": "paper",
                             "y": 1 - 0.06 * (i % 2), "yanchor": "bottom", "showarrow": False,
                             "font": {"color": VERMILLION}} for i, (name, value) in enumerate(measured.items())],
        })
    return figure
