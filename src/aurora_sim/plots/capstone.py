"""Notebook 12's figure: several plans' weeks on one workload — the capacity each keeps, and what it has cost so far.

Example:
    >>> from aurora_sim import ProvisionedConfig, ServerlessV2Config, Workload, simulate
    >>> wl = Workload(segments=[(0, 3600, 1.0)])
    >>> runs = {"v2": simulate(ServerlessV2Config(), wl, duration_s=3600),
    ...         "provisioned": simulate(ProvisionedConfig(instance_class="db.t3.small"), wl, duration_s=3600)}
    >>> [trace.name for trace in capstone_week(runs).data]
    ['v2', 'provisioned', 'v2', 'provisioned']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..models import tariff
from ..simulation import Run
from ._style import BLUE, ORANGE, PURPLE, SKY_BLUE, VERMILLION

_COLOURS = (BLUE, ORANGE, PURPLE, SKY_BLUE, VERMILLION)
_HOUR_S = 3600


def _capacity_steps(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The capacity step function within the run, with a last point at its end so the line reaches it."""
    rows = run.sql("SELECT time_s, capacity_acu FROM capacity WHERE time_s <= $1 ORDER BY seq",
                   params=[run.duration_s]).fetchall()
    time_s = np.array([t for t, _ in rows] + [run.duration_s], dtype=float)
    acu = np.array([c for _, c in rows] + [rows[-1][1]], dtype=float)
    return time_s, acu


def _cost_so_far(time_s: np.ndarray, acu: np.ndarray, price_per_acu_hour: float) -> np.ndarray:
    """USD spent up to each change: the capacity integrated at the model's price (minimums per activation left
    out: they move the total by cents)."""
    spent = np.concatenate(([0.0], np.cumsum(acu[:-1] * np.diff(time_s))))
    return spent / _HOUR_S * price_per_acu_hour


def capstone_week(runs: Mapping[str, Run], *, title: str = "The week under each plan") -> go.Figure:
    """Top: the capacity each plan keeps (0 while paused); bottom: what each has cost so far, in USD. Time in
    days since Monday 00:00."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45],
                           subplot_titles=("capacity (ACU)", "cost so far (USD)"))
    steps = {name: _capacity_steps(run) for name, run in runs.items()}
    for index, (name, (time_s, acu)) in enumerate(steps.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        figure.add_trace(go.Scatter(x=time_s / 86_400, y=acu, name=name, mode="lines", line={"shape": "hv",
                                    "color": colour, "width": 1.5}, legendgroup=name), row=1, col=1)
    for index, (name, run) in enumerate(runs.items()):
        time_s, acu = steps[name]
        spent = _cost_so_far(time_s, acu, tariff(run.config).price_per_acu_hour_usd)
        colour = _COLOURS[index % len(_COLOURS)]
        figure.add_trace(go.Scatter(x=time_s / 86_400, y=spent, name=name, mode="lines", showlegend=False,
                                    line={"color": colour, "width": 2}, legendgroup=name), row=2, col=1)
    figure.update_xaxes(title_text="days since Monday 00:00", row=2, col=1)
    figure.update_layout(title={"text": title}, height=520, margin={"l": 60, "r": 20, "t": 80, "b": 60},
                         legend={"orientation": "h", "y": -0.18}, template="plotly_white")
    return figure
