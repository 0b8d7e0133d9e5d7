"""Runs of the same workload on different clusters (notebook 07: one per engine), drawn on one time axis."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import facts
from ..names import SCALE_FAILED
from ..simulation import Run
from ._style import (
    BLACK,
    BLUE,
    FONT,
    GREY,
    LEGEND_BELOW,
    ORANGE,
    PURPLE,
    SKY_BLUE,
    TEMPLATE,
    TITLE_FONT,
    VERMILLION,
    TimeAxis,
    _capacity_steps,
    _in_time_order,
    _thinned,
    time_axis,
)

RUN_COLOURS = (BLUE, ORANGE, PURPLE, SKY_BLUE)  # one per run, in the order given
RUN_WIDTHS = (5.0, 2.0, 2.0, 2.0)  # the first run's capacity line is wide, so a later one on top leaves it visible
LATENCY_TICKS_S = (0.01, 0.1, 1, 10, 100, 1000)
HEIGHT_PX = 760


def _demand_acu(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The CPU the workload asks for (requests/s × ACU-seconds per request) as a step function in seconds
    (``shape="hv"``): each segment's level from its start, 0 in the gaps between segments."""
    x, y = [0.0], [0.0]
    for start, end, rate in run.workload.segments:
        if start >= run.duration_s:
            break
        if start == x[-1]:  # contiguous with the previous segment (or at t = 0)
            y[-1] = rate * run.workload.query_cpu_s
        else:
            x.append(start)
            y.append(rate * run.workload.query_cpu_s)
        x.append(min(end, run.duration_s))
        y.append(0.0)
    return np.array(x), np.array(y)


def _running_cost_usd(steps) -> np.ndarray:
    """The bill so far at each capacity change and at the end: capacity × time × the ACU-hour price."""
    durations = steps["end_s"].to_numpy() - steps["time_s"].to_numpy()
    spent = np.cumsum(steps["capacity_acu"].to_numpy() * durations) / 3600 * facts.PRICE_PER_ACU_HOUR_USD
    return np.append(0.0, spent)


def engine_comparison(runs: Mapping[str, Run], *, title: str | None = None) -> go.Figure:
    """The same workload on several clusters: the CPU it asks for beside each cluster's capacity (failed
    scalings marked), p95 latency, and the running bill.

    Three panels share the time axis: (1) capacity in ACUs as each run's exact step line, with the CPU the
    workload asks for (dashed black) and every ``scale_failed`` as a vermillion ✕ (hover gives its message);
    (2) p95 latency of each metrics period (log scale); (3) what each run has cost so far (capacity × time × the
    ACU-hour price; the 5-minute minimum per activation is left out, so the summary's bill may be a little higher).

    Args:
        runs: ``{label: run}``, e.g. ``{"Aurora MySQL": mysql_run, "Aurora PostgreSQL": postgresql_run}``: the
            same workload, so one demand line fits all.

    Raises:
        ValueError: If ``runs`` is empty.

    Example:
        >>> from aurora_sim.scenarios import month_end_peak
        >>> fig = engine_comparison({"MySQL": month_end_peak().run(),
        ...                          "PostgreSQL": month_end_peak(engine="aurora-postgresql").run()})
        >>> [trace.name for trace in fig.data][:3]
        ['CPU asked for (ACU)', 'MySQL: capacity', 'MySQL: failed scaling']
    """
    # One validation of plain dicts, as plots.timeline does: make_subplots + add_trace took 50 ms, this 15 ms.
    return go.Figure(engine_comparison_dict(runs, title=title))


def engine_comparison_dict(runs: Mapping[str, Run], *, title: str | None = None) -> dict:
    """``engine_comparison`` as a plain figure dict, not validated by plotly (a panel's redraw diffs it against
    what its figure shows and sends only the change).

    Example:
        >>> from aurora_sim.scenarios import month_end_peak
        >>> engine_comparison_dict({"MySQL": month_end_peak().run()})["data"][1]["name"]
        'MySQL: capacity'
    """
    if not runs:
        raise ValueError("runs={} is empty: give at least one {label: run}")
    first = next(iter(runs.values()))
    axis = time_axis(first.duration_s)
    x_demand, y_demand = _demand_acu(first)
    traces = [_scatter(CAPACITY_AXES, x=axis.x(x_demand), y=y_demand, name="CPU asked for (ACU)", mode="lines",
                       line={"color": BLACK, "dash": "dash", "shape": "hv", "width": 1.5},
                       hovertemplate=f"{axis.hover()}<br>%{{y:.1f}} ACUs of CPU asked for<extra></extra>")]
    top = float(y_demand.max(initial=1.0))
    for index, (label, run) in enumerate(runs.items()):
        style = RUN_COLOURS[index % len(RUN_COLOURS)], RUN_WIDTHS[index % len(RUN_WIDTHS)]
        top = max(top, _add_run(traces, label, run, style, axis))
    layout = _layout()
    ladder = sorted(set().union(*(facts.CAPACITY_LADDER[run.config.engine] for run in runs.values())))
    layout["yaxis"].update(title={"text": "ACU"}, range=[0, 1.1 * top],
                           tickvals=[rung for rung in ladder if top / 16 <= rung <= top])
    layout["yaxis2"].update(title={"text": "p95 (s, log)"}, type="log", tickvals=list(LATENCY_TICKS_S),
                            ticktext=[f"{tick:g}" for tick in LATENCY_TICKS_S])
    layout["yaxis3"].update(title={"text": "USD"}, rangemode="tozero")
    for name in ("xaxis", "xaxis2", "xaxis3"):
        layout[name].update(range=[0, axis.x(first.duration_s)], showspikes=True, spikemode="across",
                            spikethickness=1, spikecolor=GREY)
    layout["xaxis3"]["title"] = {"text": axis.title}
    layout.update(title={"text": title or "The same traffic on each cluster", "x": 0.01, "font": TITLE_FONT},
                  template=TEMPLATE, font=FONT, height=HEIGHT_PX, hovermode="closest", legend=LEGEND_BELOW,
                  margin={"l": 70, "r": 30, "t": 80, "b": 60})
    return {"data": traces, "layout": layout}


CAPACITY_AXES, LATENCY_AXES, BILL_AXES = ("x", "y"), ("x2", "y2"), ("x3", "y3")


@cache
def _layout_json() -> str:
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.5, 0.25, 0.25],
                           subplot_titles=("Capacity beside the CPU the traffic asks for", "p95 latency",
                                           "Running bill"))
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def _layout() -> dict:
    """A fresh copy of the three-panel layout (built once)."""
    return json.loads(_layout_json())


def _scatter(axes: tuple[str, str], **trace: object) -> dict:
    return {"type": "scatter", "xaxis": axes[0], "yaxis": axes[1], **trace}


def _numbers(column: pd.Series) -> np.ndarray:
    """A nullable integer column as numpy: integers when none is missing (as a query returned them), else floats."""
    return column.to_numpy(dtype=float, na_value=np.nan) if column.hasnans else column.to_numpy()


def _add_run(traces: list[dict], label: str, run: Run, style: tuple[str, float], axis: TimeAxis) -> float:
    """One run's capacity line (in ``style``: colour and width) and failed scalings, p95 latency and running bill;
    returns its top capacity."""
    colour, width = style
    steps = _capacity_steps(run)
    x = axis.x(np.append(steps["time_s"].to_numpy(), run.duration_s))
    capacity = steps["capacity_acu"].to_numpy()
    config = run.config
    events = run.frame("events")
    failed = events[(events["kind"] == SCALE_FAILED).to_numpy() & (events["time_s"].to_numpy() <= run.duration_s)]
    metrics = _in_time_order(run.frame("metrics"), math.inf)
    x_p95, p95_s = _thinned(metrics["time_s"].to_numpy(dtype=float), metrics["p95_latency_ms"].to_numpy() / 1000)
    traces += [
        _scatter(CAPACITY_AXES, x=x, y=np.append(capacity, capacity[-1:]), name=f"{label}: capacity",
                 legendgroup=label, mode="lines", line={"color": colour, "shape": "hv", "width": width},
                 hovertemplate=f"{axis.hover()}<br>{label}: %{{y}} ACU ({config.engine} "
                               f"{config.min_capacity}–{config.max_capacity} ACU)<extra></extra>"),
        _scatter(CAPACITY_AXES, x=axis.x(failed["time_s"].to_numpy(dtype=float)),
                 y=_numbers(failed["capacity_from"]),
                 name=f"{label}: failed scaling", legendgroup=label, mode="markers", showlegend=not failed.empty,
                 customdata=failed["message"].to_numpy(),
                 marker={"color": VERMILLION, "symbol": "x", "size": 12, "line": {"color": colour, "width": 1}},
                 hovertemplate=f"{axis.hover()}<br><b>{label}: scale failed</b><br>%{{customdata}}<extra></extra>"),
        _scatter(LATENCY_AXES, x=axis.x(x_p95), y=p95_s,
                 name=f"{label}: p95 latency", legendgroup=label, mode="lines",
                 line={"color": colour, "shape": "hv", "width": 1.5},
                 hovertemplate=f"{axis.hover()}<br>{label}: p95 %{{y:.2f}} s (over {run.metrics_period_s:g} s)"
                               "<extra></extra>"),
        _scatter(BILL_AXES, x=x, y=_running_cost_usd(steps), name=f"{label}: bill so far", legendgroup=label,
                 mode="lines", line={"color": colour, "width": 2},
                 hovertemplate=f"{axis.hover()}<br>{label}: USD %{{y:.2f}} so far<extra></extra>"),
    ]
    return float(capacity.max(initial=0))
