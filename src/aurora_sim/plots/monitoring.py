"""An alarm over a run: the metric it watches against its threshold, and the state it was in, on one clock axis."""

from __future__ import annotations

import textwrap

import numpy as np
import plotly.graph_objects as go

from .. import facts
from ..alarms import ALARM, INSUFFICIENT_DATA, OK, Alarm, AlarmEvaluation
from ..names import PAUSED, RESUMING, SCALE_FAILED
from ._style import (
    BLUE,
    CPU_COLOUR,
    FONT,
    GREEN,
    GREY,
    LEGEND_BELOW,
    TEMPLATE,
    TITLE_FONT,
    VERMILLION,
    _capacity_steps,
    _state_bands,
    time_axis,
)

STATE_LEVEL = {OK: 0, INSUFFICIENT_DATA: 1, ALARM: 2}
STATE_COLOUR = {OK: GREEN, INSUFFICIENT_DATA: GREY, ALARM: VERMILLION}
HEIGHT_PX = 560
_SHORT_UNIT = {"Percent": "%", "Count/Second": "per second"}  # the metric's name is in the title and the legend


def alarm(evaluation: AlarmEvaluation, *, title: str | None = None) -> go.Figure:
    """The alarm's metric per period (gaps where nothing was published) against its threshold, the run's failed
    scalings and paused stretches behind it, and under it the alarm's state at every evaluation (hover a change
    for CloudWatch's reason).

    Example:
        >>> from aurora_sim.alarms import Alarm, evaluate
        >>> from aurora_sim.scenarios import night_shift
        >>> fig = alarm(evaluate(Alarm(metric_name="CPUUtilization", threshold=70), night_shift().run()))
        >>> [trace.name for trace in fig.data][:2]
        ['CPUUtilization (Average per 60 s)', 'threshold 70']
    """
    return go.Figure(alarm_dict(evaluation, title=title))


def alarm_dict(evaluation: AlarmEvaluation, *, title: str | None = None) -> dict:
    """``alarm`` as a plain figure dict, not validated by plotly (what a panel's redraw sends from).

    Example:
        >>> from aurora_sim.alarms import Alarm, evaluate
        >>> from aurora_sim.scenarios import night_shift
        >>> figure = alarm_dict(evaluate(Alarm(metric_name="CPUUtilization", threshold=70), night_shift().run()))
        >>> figure["data"][1]["name"]
        'threshold 70'
    """
    watched, run = evaluation.alarm, evaluation.run
    axis = time_axis(run.duration_s, day_start_h=evaluation.start_h)
    points = evaluation.datapoints
    x_points = axis.x(points["time_s"].to_numpy() + watched.period_s / 2)  # a datapoint stands for its period
    unit = facts.CLOUDWATCH_METRICS[watched.metric_name]
    traces = [
        {"type": "scatter", "x": x_points, "y": points["value"], "mode": "lines+markers", "connectgaps": False,
         "name": f"{watched.metric_name} ({watched.statistic} per {watched.period_s} s)", "xaxis": "x",
         "yaxis": "y", "line": {"color": CPU_COLOUR if unit == "Percent" else BLUE, "width": 1.5},
         "marker": {"size": 4, "color": np.where(points["breaching"], VERMILLION, CPU_COLOUR).tolist()},
         "hovertemplate": f"{axis.hover()}<br>%{{y:.1f}} ({unit})<extra></extra>"},
        {"type": "scatter", "x": [axis.x(0), axis.x(run.duration_s)], "y": [watched.threshold] * 2, "mode": "lines",
         "name": f"threshold {watched.threshold:g}", "xaxis": "x", "yaxis": "y", "hoverinfo": "skip",
         "line": {"color": VERMILLION, "dash": "dash", "width": 1.5}},
    ]
    traces += _failed_scalings(evaluation, axis)
    traces += _state_traces(evaluation, axis)
    steps = _capacity_steps(run)
    layout = {
        "title": _title(watched, title), "height": HEIGHT_PX, "font": FONT, "template": TEMPLATE,
        "hovermode": "closest", "legend": LEGEND_BELOW, "margin": {"l": 80, "r": 30, "t": 75, "b": 60},
        "xaxis": {"domain": [0, 1], "anchor": "y", "matches": "x2", "showticklabels": False,
                  **axis.layout(0, run.duration_s)},
        "xaxis2": {"domain": [0, 1], "anchor": "y2", "title": {"text": axis.title}, **axis.layout(0, run.duration_s)},
        "yaxis": {"domain": [0.36, 1], "title": {"text": _SHORT_UNIT.get(unit, unit)}, "rangemode": "tozero"},
        "yaxis2": {"domain": [0, 0.24], "title": {"text": "state"}, "range": [-0.5, 2.5],
                   "tickvals": list(STATE_LEVEL.values()), "tickfont": {"size": 10},
                   "ticktext": [state.replace("_", "<br>") for state in STATE_LEVEL]},
        "shapes": _state_bands(steps, axis, states=(PAUSED, RESUMING)),
    }
    return {"data": traces, "layout": layout}


def _title(watched: Alarm, title: str | None) -> dict:
    """The given title, or the alarm on two short lines, so that it fits a narrow panel."""
    common = {"x": 0.01, "xanchor": "left", "y": 0.985, "yanchor": "top", "yref": "container", "font": TITLE_FONT}
    if title:
        return {"text": title, **common}
    operator = facts.ALARM_COMPARISONS[watched.comparison]
    return {"text": f"{watched.metric_name} {watched.statistic} {operator} {watched.threshold:g}: "
                    f"{watched.datapoints_to_alarm} of {watched.evaluation_periods} × {watched.period_s} s",
            "subtitle": {"text": f"missing data: {watched.treat_missing_data}", "font": {"size": 12, "color": GREY}},
            **common}


def _failed_scalings(evaluation: AlarmEvaluation, axis: object) -> list[dict]:
    """A marker at the top of the metric panel for each failed scaling (RDS-EVENT-0143)."""
    failed = evaluation.run.sql("SELECT time_s, message FROM events WHERE kind = $1 ORDER BY seq",
                                params=[SCALE_FAILED]).df()
    if failed.empty:
        return []
    top = max(float(np.nanmax(evaluation.datapoints["value"], initial=0.0)), evaluation.alarm.threshold) * 1.08
    return [{"type": "scatter", "x": axis.x(failed["time_s"].to_numpy()), "y": [top] * len(failed),
             "mode": "markers", "name": f"scale failed ({facts.RDS_EVENT_IDS[SCALE_FAILED]})", "xaxis": "x",
             "yaxis": "y", "marker": {"symbol": "x", "size": 9, "color": VERMILLION},
             "customdata": failed["message"], "hovertemplate": f"{axis.hover()}<br>%{{customdata}}<extra></extra>"}]


def _state_traces(evaluation: AlarmEvaluation, axis: object) -> list[dict]:
    """The state as a step line, and a marker at every change with CloudWatch's reason in its hover."""
    states = evaluation.states
    x = axis.x(np.concatenate(([0.0], states["time_s"].to_numpy())))
    levels = [STATE_LEVEL[INSUFFICIENT_DATA]] + [STATE_LEVEL[s] for s in states["state"]]
    history = evaluation.history()
    return [
        {"type": "scatter", "x": x, "y": levels, "mode": "lines", "name": "alarm state", "xaxis": "x2",
         "yaxis": "y2", "line": {"shape": "hv", "color": GREY, "width": 2}, "hoverinfo": "skip"},
        {"type": "scatter", "x": axis.x(history["time_s"].to_numpy()),
         "y": [STATE_LEVEL[s] for s in history["new_state"]], "mode": "markers", "name": "state changes",
         "xaxis": "x2", "yaxis": "y2",
         "marker": {"size": 9, "color": [STATE_COLOUR[s] for s in history["new_state"]], "line": {"width": 0}},
         "customdata": np.stack([history["old_state"], history["new_state"],
                                 ["<br>".join(textwrap.wrap(reason, 70)) for reason in history["reason"]]], axis=-1),
         "hovertemplate": f"{axis.hover()}<br>%{{customdata[0]}} → %{{customdata[1]}}<br>%{{customdata[2]}}"
                          "<extra></extra>"},
    ]
