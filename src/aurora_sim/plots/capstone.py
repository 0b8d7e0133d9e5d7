"""Notebook 12's figure: several plans' weeks on one workload — the capacity each keeps, and what it has cost so far.

``capstone_week_dict`` builds the figure as plain values, read from the runs' frames (no query, no plotly
validation): what the capstone panel redraws from. ``capstone_week`` is the same figure as a ``go.Figure``.

Example:
    >>> from aurora_sim import ProvisionedConfig, ServerlessV2Config, Workload, simulate
    >>> wl = Workload(segments=[(0, 3600, 1.0)])
    >>> runs = {"v2": simulate(ServerlessV2Config(), wl, duration_s=3600),
    ...         "provisioned": simulate(ProvisionedConfig(instance_class="db.t3.small"), wl, duration_s=3600)}
    >>> [trace.name for trace in capstone_week(runs).data]
    ['v2', 'provisioned', 'v2', 'provisioned']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..models import tariff
from ..simulation import Run
from ._style import BLUE, ORANGE, PURPLE, SKY_BLUE, TEMPLATE, VERMILLION, _thinned, time_axis

_COLOURS = (BLUE, ORANGE, PURPLE, SKY_BLUE, VERMILLION)
_HOUR_S, _DAY_S = 3600, 86_400


def _capacity_steps(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The capacity step function within the run (in log order), with a last point at its end so the line
    reaches it."""
    frame = run.frame("capacity")
    time_s = frame["time_s"].to_numpy(dtype=float)
    acu = frame["capacity_acu"].to_numpy(dtype=float)
    if "seq" in frame and not (np.diff(frame["seq"].to_numpy()) > 0).all():
        order = np.argsort(frame["seq"].to_numpy(), kind="stable")
        time_s, acu = time_s[order], acu[order]
    kept = time_s <= run.duration_s
    time_s, acu = time_s[kept], acu[kept]
    return np.append(time_s, run.duration_s), np.append(acu, acu[-1])


def _cost_so_far(time_s: np.ndarray, acu: np.ndarray, price_per_acu_hour: float) -> np.ndarray:
    """USD spent up to each change: the capacity integrated at the model's price (minimums per activation left
    out: they move the total by cents)."""
    spent = np.concatenate(([0.0], np.cumsum(acu[:-1] * np.diff(time_s))))
    return spent / _HOUR_S * price_per_acu_hour


def capstone_week(runs: Mapping[str, Run], *, title: str = "The week under each plan", start_s: float = 0.0
                  ) -> go.Figure:
    """Top: the capacity each plan keeps (0 while paused); bottom: what each has cost so far, in USD. A week's
    runs show days since Monday 00:00; a window of a few hours (``start_s``: where it starts in the week) shows
    the time of day."""
    return go.Figure(capstone_week_dict(runs, title=title, start_s=start_s))


def capstone_week_dict(runs: Mapping[str, Run], *, title: str = "The week under each plan", start_s: float = 0.0
                       ) -> dict:
    """``capstone_week`` as a plain figure dict, not validated by plotly (a panel's redraw diffs it against what
    its figure shows and sends only the change).

    Example:
        >>> from aurora_sim import ServerlessV2Config, Workload, simulate
        >>> run = simulate(ServerlessV2Config(), Workload(segments=[(0, 3600, 1.0)]), duration_s=3600)
        >>> figure = capstone_week_dict({"v2": run}, start_s=17 * 3600)
        >>> figure["data"][0]["name"], figure["layout"]["xaxis2"]["title"]["text"]
        ('v2', 'time of day')
    """
    if not runs:
        raise ValueError("runs={} is empty: give at least one {label: run}")
    duration_s = next(iter(runs.values())).duration_s
    in_days = start_s == 0 and duration_s > _DAY_S
    axis = None if in_days else time_axis(duration_s, day_start_h=(start_s % _DAY_S) / _HOUR_S)
    steps = {name: _capacity_steps(run) for name, run in runs.items()}
    capacity_lines, cost_lines = [], []
    for index, (name, run) in enumerate(runs.items()):
        time_s, acu = steps[name]
        spent = _cost_so_far(time_s, acu, tariff(run.config).price_per_acu_hour_usd)
        time_s, acu, spent = _thinned(time_s, acu, spent)
        x = time_s / _DAY_S if axis is None else axis.x(time_s)
        at = "day %{x:.2f}" if axis is None else axis.hover()
        colour = _COLOURS[index % len(_COLOURS)]
        capacity_lines.append({"type": "scatter", "x": x, "y": acu, "name": name, "mode": "lines",
                               "legendgroup": name, "line": {"shape": "hv", "color": colour, "width": 1.5},
                               "hovertemplate": f"{at}<br>{name}: %{{y:g}} ACU<extra></extra>"})
        cost_lines.append({"type": "scatter", "x": x, "y": spent, "name": name, "mode": "lines",
                           "showlegend": False, "legendgroup": name, "xaxis": "x2", "yaxis": "y2",
                           "line": {"color": colour, "width": 2},
                           "hovertemplate": f"{at}<br>{name}: USD %{{y:.2f}} so far<extra></extra>"})
    layout = _layout()
    if axis is None:
        layout["xaxis2"]["title"] = {"text": "days since Monday 00:00"}
    else:
        for name in ("xaxis", "xaxis2"):
            layout[name].update(axis.layout(0, duration_s))
        layout["xaxis2"]["title"] = {"text": axis.title}
    layout.update(title={"text": title}, height=520, margin={"l": 60, "r": 20, "t": 80, "b": 60},
                  legend={"orientation": "h", "y": -0.18}, template=TEMPLATE)
    return {"data": capacity_lines + cost_lines, "layout": layout}


@cache
def _layout_json() -> str:
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45],
                           subplot_titles=("capacity (ACU)", "cost so far (USD)"))
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def _layout() -> dict:
    """A fresh copy of the two-panel layout (built once)."""
    return json.loads(_layout_json())
