"""Colours, symbols and the table readers every figure shares (Okabe-Ito palette: colour-blind safe)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..names import (
    CONNECTION_CLOSED,
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
TEMPLATE = "plotly_white"


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
