"""Panels of notebooks 00, 02 and 03: set-up check (and its versions table), explorer, minimum capacity, pause
and resume."""

from __future__ import annotations

import importlib.metadata
import inspect
import math
import platform
import re
from collections.abc import Callable
from functools import partial

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import (
    _quick_start,  # noqa: F401  (before plotly's widget module imports nbformat)
    plots,
    scenarios,
)
from ..scenarios import flash_sale, office_day
from ..simulation import Run
from ._panel import (
    _STYLE,
    _WIDE,
    Panel,
    _FitWidth,
    _ladder_slider,
    _link_min_max,
    _pause_slider,
    _timeout_action_buttons,
    figure_widget,
    redraw,
)

# --- notebook 00 -------------------------------------------------------------------------------------------


WORKBOOK_DISTRIBUTION = "aurora-serverless-workbook"
SETUP_COMPONENTS = {"aurora_sim (this workbook)": WORKBOOK_DISTRIBUTION, "simpy": "simpy", "duckdb": "duckdb",
                    "plotly": "plotly", "ipywidgets": "ipywidgets", "anywidget": "anywidget",
                    "jupyterlab": "jupyterlab"}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*([^;]*)")


def setup_versions() -> pd.DataFrame:
    """What this kernel runs: Python and each package the panels need, the version found ("not installed" when
    missing) and the versions the workbook asks for.

    Example:
        >>> versions = setup_versions()
        >>> versions.loc["simpy", "needs"], versions.loc["simpy", "installed"] != "not installed"
        ('>=4.1, <5', True)
    """
    needs = _requirements(WORKBOOK_DISTRIBUTION)
    rows = {"Python": (platform.python_version(),
                       importlib.metadata.metadata(WORKBOOK_DISTRIBUTION)["Requires-Python"])}
    for label, distribution in SETUP_COMPONENTS.items():
        rows[label] = (_installed_version(distribution), needs.get(distribution, ""))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["installed", "needs"]).rename_axis("component")


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _requirements(distribution: str) -> dict[str, str]:
    """The version specifier of each requirement of ``distribution`` (extras included), by package name."""
    found = {}
    for line in importlib.metadata.requires(distribution) or []:
        match = _REQUIREMENT.match(line)
        if match:  # lower bound first: ">=4.1, <5"
            parts = sorted((part.strip() for part in match.group(2).split(",") if part.strip()),
                           key=lambda part: not part.startswith(">"))
            found[match.group(1).lower().replace("_", "-")] = ", ".join(parts)
    return found


def setup_check_figure(shift: float = 0.0) -> go.Figure:
    """A sine wave moved by ``shift``: if a slider moves it, widgets and plotly work in this front-end."""
    x = np.linspace(0, 4 * math.pi, 200)
    figure = go.Figure(go.Scatter(x=x, y=np.sin(x - shift), name="sin(x - shift)", line={"width": 3}))
    figure.update_layout(title="If this line moves when you move the slider, you're ready.", height=300,
                         xaxis_title="x", yaxis_title="sin(x − shift)", margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return figure


def setup_check_panel() -> widgets.VBox:
    """A slider and a FigureWidget: the set-up check of notebook 00."""
    slider = widgets.FloatSlider(value=0.0, min=0.0, max=2 * math.pi, step=0.25, description="shift",
                                 continuous_update=False)
    figure = figure_widget(setup_check_figure(0.0))

    def _move(shift: float) -> None:
        redraw(figure, setup_check_figure(shift))

    # The strip after the figure makes it fit the output area; the figure stays children[1].
    return widgets.VBox([slider, figure, _FitWidth(), widgets.interactive_output(_move, {"shift": slider})])


INTENSITY_RANGE = (0.25, 3.0)


def explore_demo(preset: str = "tour", intensity: float = 1.0, min_capacity: int = 1, max_capacity: int = 8,
                 seconds_until_auto_pause: int = 300, timeout_action: str = "RollbackCapacityChange") -> Run:
    """Any preset workload at any intensity on any cluster (the work behind the explorer panel)."""
    return scenarios.preset(preset, intensity=intensity, min_capacity=min_capacity,
                            max_capacity=max(max_capacity, min_capacity),
                            seconds_until_auto_pause=seconds_until_auto_pause, timeout_action=timeout_action).run()


def explore_panel() -> Panel:
    """Workload preset and intensity, minimum and maximum ACU, pause timeout and timeout action → the timeline."""
    low = _ladder_slider("minimum ACU", "aurora-mysql", 1)
    high = _ladder_slider("maximum ACU", "aurora-mysql", 8)
    _link_min_max(low, high)
    controls = {
        "preset": widgets.Dropdown(options=list(scenarios.PRESETS), value="tour", description="workload",
                                   style=_STYLE),
        "intensity": widgets.FloatSlider(value=1.0, min=INTENSITY_RANGE[0], max=INTENSITY_RANGE[1], step=0.25,
                                         description="intensity (× rate)", continuous_update=False, style=_STYLE,
                                         layout=_WIDE),
        "timeout_action": _timeout_action_buttons(),
        "min_capacity": low,
        "max_capacity": high,
        "seconds_until_auto_pause": _pause_slider(),
    }
    return Panel(controls, explore_demo, plots.timeline_dict, title="Explore: any workload on any cluster")


# --- notebook 02 -------------------------------------------------------------------------------------------

SPIKE_RPS_RANGE = (10.0, 100.0)


def minimum_capacity_demo(min_capacity: int = 1, max_capacity: int = 16, spike_rps: float = 48.0,
                          timeout_action: str = "RollbackCapacityChange", ramp_s: float = 0) -> Run:
    """The flash sale at the given minimum capacity (the work behind notebook 02's panel)."""
    return flash_sale(min_capacity=min_capacity, max_capacity=max(max_capacity, min_capacity),
                      spike_rps=spike_rps, timeout_action=timeout_action, ramp_s=ramp_s).run()


def minimum_capacity_panel(min_capacity: int = 1) -> Panel:
    """Minimum and maximum ACU, sale intensity, timeout action and ramp → the flash-sale timeline."""
    low = _ladder_slider("minimum ACU", "aurora-mysql", min_capacity)
    high = _ladder_slider("maximum ACU", "aurora-mysql", 16)
    _link_min_max(low, high)
    controls = {
        "min_capacity": low,
        "max_capacity": high,
        "spike_rps": widgets.FloatSlider(value=48.0, min=SPIKE_RPS_RANGE[0], max=SPIKE_RPS_RANGE[1], step=2.0,
                                         description="sale requests/s", continuous_update=False, style=_STYLE,
                                         layout=_WIDE),
        "timeout_action": _timeout_action_buttons(),
        "ramp_s": widgets.SelectionSlider(options=[0, 300, 600], value=0, description="ramp-up (s)",
                                          continuous_update=False, style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, minimum_capacity_demo, plots.timeline_dict, title="Flash sale: minutes 10 to 30")


# --- notebook 03 -------------------------------------------------------------------------------------------

PREWARM_OPTIONS_S = (0, 60, 120, 300, 600, 1800, 3600)


def pause_resume_demo(seconds_until_auto_pause: int = 300, monitoring_agent: bool = False,
                      prewarm_s: float = 0, auto_pause: bool = True) -> Run:
    """The office day with the given pause settings (the work behind notebook 03's panels)."""
    return office_day(seconds_until_auto_pause=seconds_until_auto_pause, monitoring_agent=monitoring_agent,
                      prewarm_s=prewarm_s, auto_pause=auto_pause).run()


def pause_resume_panel(draw: Callable[..., go.Figure | dict] = plots.timeline_dict) -> Panel:
    """Pause timeout, a monitoring agent's idle connection and a pre-warm job → the office day, on a clock axis
    (06:00 to 22:00) when ``draw`` takes ``day_start_h``, as ``plots.timeline_dict`` and ``plots.latency`` do."""
    if "day_start_h" in inspect.signature(draw).parameters:
        draw = partial(draw, day_start_h=scenarios.DAY_START_H)
    controls = {
        "seconds_until_auto_pause": _pause_slider(),
        "prewarm_s": widgets.SelectionSlider(options=list(PREWARM_OPTIONS_S), value=0,
                                             description="warm-up job before 09:00 (s)", continuous_update=False,
                                             style=_STYLE, layout=_WIDE),
        "monitoring_agent": widgets.Checkbox(value=False, description="monitoring agent holds a connection",
                                             indent=False, layout=widgets.Layout(width="auto")),
    }
    return Panel(controls, pause_resume_demo, draw, title="An office day, 06:00 to 22:00")

