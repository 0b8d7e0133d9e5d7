"""Colours, symbols, the time axis and the table readers every figure shares (Okabe-Ito palette: colour-blind safe)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..names import (
    CONNECTION_CLOSED,
    ENDPOINT_MOVED,
    FAILING_OVER,
    FAILOVER_COMPLETED,
    FAILOVER_STARTED,
    INSTANCE_FAILED,
    MAINTENANCE_APPLIED,
    MAINTENANCE_PENDING,
    PAUSE_CANCELLED,
    PAUSE_STARTED,
    PAUSED,
    PAUSED_EVENT,
    RESUME_STARTED,
    RESUMED,
    RESUMING,
    SCALE_COMPLETED,
    SCALE_FAILED,
    SCALE_FORCED,
    SCALE_STARTED,
    SCALING,
    SCALING_POINT_FOUND,
    TRANSACTION_ABORTED,
)
from ..simulation import Run

# --- Palette (Okabe-Ito), defined once ---------------------------------------------------------------------------

BLACK, ORANGE, SKY_BLUE, GREEN = "#000000", "#E69F00", "#56B4E9", "#009E73"
YELLOW, BLUE, VERMILLION, PURPLE, GREY = "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"

STATE_STYLE = {  # state: (colour, legend text) of its shaded band
    PAUSED: (BLUE, "paused (0 ACU, not billed)"),
    RESUMING: (ORANGE, "resuming (cold start)"),
    SCALING: (YELLOW, "scaling (looking for a scaling point)"),
    FAILING_OVER: (VERMILLION, "failing over (no DB instance)"),
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
    INSTANCE_FAILED: (VERMILLION, "x-thin-open", "instance failed"),
    FAILOVER_STARTED: (VERMILLION, "circle-open", "failover started"),
    ENDPOINT_MOVED: (GREEN, "diamond-open", "endpoint moved (DNS)"),
    FAILOVER_COMPLETED: (GREEN, "circle", "failover completed"),
    MAINTENANCE_PENDING: (GREY, "circle-dot", "maintenance pending"),
    MAINTENANCE_APPLIED: (GREY, "star-square", "maintenance applied"),
}
PROBLEM_EVENTS = (SCALE_FAILED, SCALE_FORCED, TRANSACTION_ABORTED, CONNECTION_CLOSED, INSTANCE_FAILED)
# × lift above the capacity line
EVENT_LIFT = {SCALE_FAILED: 1, SCALE_FORCED: 1, TRANSACTION_ABORTED: 2, CONNECTION_CLOSED: 3, INSTANCE_FAILED: 1}

LOAD_COLOUR, SERVED_COLOUR, FAILED_COLOUR, CPU_COLOUR = BLACK, GREEN, VERMILLION, SKY_BLUE
CAPACITY_COLOUR, CONNECTIONS_COLOUR, LIMIT_COLOUR = BLUE, BLUE, BLACK
OK_COLOUR, P50_COLOUR, P95_COLOUR, COLD_START_COLOUR = SKY_BLUE, GREEN, BLUE, ORANGE
ERROR_STYLES = ((VERMILLION, "x"), (PURPLE, "diamond"), (ORANGE, "square"), (BLACK, "cross"))
COST_COLOUR = GREY

HOURS_ABOVE_S = 3 * 3600  # runs longer than this get an x axis in hours
FONT = {"family": "Arial, Helvetica, sans-serif", "size": 13}
TITLE_FONT = {"size": 15}  # the default 17 px cut long titles off in a 700-px panel
TEMPLATE = "plotly_white"
# A legend in one or more rows under the plot leaves the plot the figure's full width (a legend beside it took
# ~300 px of a panel). Anchored to the foot of the figure ("container"), plotly.js reserves its height below the
# bottom margin, whatever the number of rows; placed in "paper" units, it ran into the x-axis title once resized.
LEGEND_BELOW = {"orientation": "h", "xref": "paper", "x": 0, "xanchor": "left", "yref": "container", "y": 0,
                "yanchor": "bottom", "font": {"size": 11}, "tracegroupgap": 4}
CLOCK_DAY = np.datetime64("2000-01-01T00:00:00", "ms")  # any date: only the time of day is ever shown


@dataclass(frozen=True)
class TimeAxis:
    """How a figure turns a run's seconds into x values: minutes or hours since the start, or the time of day.

    Example:
        >>> time_axis(3600).x(90.0), time_axis(3600).title
        (1.5, 'time since start (min)')
        >>> clock = time_axis(16 * 3600, day_start_h=6)
        >>> clock.x(3 * 3600 + 90), clock.title
        ('2000-01-01T09:01:30.000', 'time of day')
    """

    unit_s: float
    unit: str
    day_start_h: float | None = None

    @property
    def is_clock(self) -> bool:
        return self.day_start_h is not None

    def x(self, seconds: float | np.ndarray) -> float | str | np.ndarray:
        """``seconds`` (a number or an array) as x values: a float per unit, or an ISO time on the clock."""
        values = np.asarray(seconds, dtype=float)
        if self.day_start_h is not None:
            ms = np.round((self.day_start_h * 3600 + values) * 1000).astype("int64")
            values = np.datetime_as_string(CLOCK_DAY + ms.astype("timedelta64[ms]"), unit="ms")
        else:
            values = values / self.unit_s
        return values.item() if values.ndim == 0 else values

    def hover(self, decimals: int = 1) -> str:
        """The hovertemplate piece that shows a point's x."""
        return "%{x|%H:%M:%S}" if self.is_clock else f"%{{x:.{decimals}f}} {self.unit}"

    @property
    def title(self) -> str:
        return "time of day" if self.is_clock else f"time since start ({self.unit})"

    def layout(self, start_s: float, end_s: float) -> dict:
        """Axis settings showing ``[start_s, end_s]``: a clock axis gets "06:00" ticks."""
        axis = {"range": [self.x(start_s), self.x(end_s)]}
        if self.is_clock:
            axis.update(type="date", tickformat="%H:%M", hoverformat="%H:%M:%S")
        return axis


def time_axis(duration_s: float, *, day_start_h: float | None = None) -> TimeAxis:
    """The x axis for a run of ``duration_s``: minutes, hours past 3 h, or the time of day when ``day_start_h``
    (the hour at which the run starts, e.g. ``scenarios.DAY_START_H``) is given."""
    if day_start_h is not None and not 0 <= day_start_h < 24:
        msg = f"day_start_h={day_start_h!r} must be an hour of the day, 0 <= day_start_h < 24"
        raise ValueError(msg)
    unit_s, unit = (3600.0, "h") if duration_s > HOURS_ABOVE_S else (60.0, "min")
    return TimeAxis(unit_s, unit, day_start_h)


# --- Tables read once, from the frames behind them ----------------------------------------------------------------

def _in_time_order(frame: pd.DataFrame, duration_s: float) -> pd.DataFrame:
    """Rows with ``time_s <= duration_s``, by time and, at one instant, in the order they were logged."""
    kept = frame[frame["time_s"].to_numpy() <= duration_s]
    order = np.argsort(kept["time_s"].to_numpy(), kind="stable")
    return kept if (order == np.arange(len(order))).all() else kept.iloc[order]


def _capacity_steps(run: Run) -> pd.DataFrame:
    """The capacity table within ``[0, duration_s]``, last row per instant, closed at ``duration_s``."""
    steps = _in_time_order(run.frame("capacity"), run.duration_s)[["time_s", "state", "capacity_acu"]]
    steps = steps.drop_duplicates("time_s", keep="last").reset_index(drop=True)
    steps["end_s"] = np.append(steps["time_s"].to_numpy()[1:], run.duration_s)
    return steps


MAX_POINTS = 2400  # per line: two points per pixel of a 1,200-px plot; more cannot be seen, only sent and drawn


def _thinned(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, ...]:
    """``x`` and ``ys`` cut to about ``max_points``, keeping what a plot that narrow can show: in each of
    ``max_points / 4`` runs of points, the first, the last and the lowest and highest of the first ``y``.
    Shorter lines come back unchanged.

    Example:
        >>> x = np.arange(10_000.0)
        >>> thin_x, thin_y = _thinned(x, np.sin(x / 500), max_points=400)
        >>> len(thin_x) <= 400, bool(thin_y.max() == np.sin(x / 500).max())
        (True, True)
    """
    if len(x) <= max_points:
        return (x, *ys)
    edges = np.linspace(0, len(x), max_points // 4 + 1).astype(np.int64)
    bucket = np.repeat(np.arange(len(edges) - 1), np.diff(edges))
    first = np.asarray(ys[0], dtype=float)
    keep = [edges[:-1], edges[1:] - 1]
    for extreme in (np.fmin, np.fmax):  # NaN-safe: a run of gaps keeps only its ends
        hits = np.flatnonzero(first == extreme.reduceat(first, edges[:-1])[bucket])
        keep.append(hits[np.unique(bucket[hits], return_index=True)[1]])
    index = np.unique(np.concatenate(keep))
    return (x[index], *(y[index] for y in ys))


def _state_bands(steps: pd.DataFrame, axis: TimeAxis,
                 states: Sequence[str] = (PAUSED, RESUMING, SCALING, FAILING_OVER)) -> list:
    """One shaded vertical band per period in a non-active state; the first of each state joins the legend."""
    shapes, in_legend = [], set()
    for start, end, state in zip(steps["time_s"], steps["end_s"], steps["state"], strict=True):
        if state not in states or end <= start:
            continue
        colour, text = STATE_STYLE[state]
        shapes.append({
            "type": "rect", "xref": "x", "yref": "paper", "x0": axis.x(start), "x1": axis.x(end), "y0": 0, "y1": 1,
            "fillcolor": colour, "opacity": STATE_OPACITY, "line": {"width": 0}, "layer": "below",
            "name": text, "legendgroup": f"state-{state}", "showlegend": state not in in_legend, "legendrank": 900})
        in_legend.add(state)
    return shapes
