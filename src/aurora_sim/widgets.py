"""Control panels: explicit sliders wired with ``interactive_output`` to one ``FigureWidget`` updated in place.

Each demo is a plain function of slider values that returns a ``Run`` (tests call it directly, at the
slider extremes too); a ``Panel`` wires controls to it, redraws with a ``plots`` factory inside
``batch_update()`` and shows a one-line summary. Runs are cached on the frozen scenario, so moving a
slider back is instant. Slider ranges come from ``facts``: no position makes an invalid config.

Example:
    >>> run = minimum_capacity_demo(min_capacity=4)
    >>> run.config.min_capacity
    4
    >>> setup_check_figure(0.5).data[0].name
    'sin(x - shift)'
"""

from __future__ import annotations

import math
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from . import (
    _quick_start,  # noqa: F401  (before plotly's widget module imports nbformat)
    facts,
    plots,
    scenarios,
)
from .report import summarize
from .scenarios import flash_sale, office_day
from .simulation import Run

_STYLE = {"description_width": "initial"}
_WIDE = widgets.Layout(width="340px")


class Panel:
    """Controls, a summary line and one persistent ``go.FigureWidget``; display it in a notebook cell."""

    def __init__(self, controls: dict[str, widgets.ValueWidget], compute: Callable[..., Run],
                 draw: Callable[[Run], go.Figure], *, title: str = "") -> None:
        self.controls, self._compute, self._draw = controls, compute, draw
        self.run = compute(**self.values())
        self.figure = go.FigureWidget(draw(self.run))
        self.summary = widgets.HTML(summarize(self.run).describe())
        self.error = widgets.HTML()
        header = [widgets.HTML(f"<h4>{title}</h4>")] if title else []
        rows = [widgets.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)]
        output = widgets.interactive_output(self.update, controls)
        self.widget = widgets.VBox([*header, *rows, self.summary, self.error, self.figure, output])

    def values(self) -> dict[str, object]:
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values: object) -> Run:
        """Re-run with ``values`` and redraw in place (``interactive_output`` calls this on every change)."""
        try:
            run = self._compute(**values)
        except ValueError as error:  # a combination the sliders allow but the model refuses: say so, keep the plot
            self.error.value = f"<span style='color:#b2182b'>{error}</span>"
            return self.run
        self.error.value = ""
        if run is not self.run:
            self.run = run
            redraw(self.figure, self._draw(run))
            self.summary.value = summarize(run).describe()
        return run

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def redraw(target: go.FigureWidget, source: go.Figure) -> None:
    """Copy ``source`` into ``target`` in one ``batch_update`` (traces updated in place when their count allows)."""
    with target.batch_update():
        if len(target.data) == len(source.data):
            for old, new in zip(target.data, source.data, strict=True):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            target.data = ()
            target.add_traces(list(source.data))
        layout = source.layout.to_plotly_json()
        if layout.get("template") == target.layout.template.to_plotly_json():
            del layout["template"]  # re-validating an unchanged template was half the redraw (14 of 28 ms)
        target.layout.update(layout, overwrite=True)


def _ladder_slider(description: str, engine: str, value: int) -> widgets.SelectionSlider:
    return widgets.SelectionSlider(options=list(facts.CAPACITY_LADDER[engine]), value=value,
                                   description=description, continuous_update=False, style=_STYLE, layout=_WIDE)


def _link_min_max(low: widgets.SelectionSlider, high: widgets.SelectionSlider) -> None:
    """Keep min ≤ max by moving the other slider, so the pair never describes an invalid cluster."""
    def _raise_max(change: dict) -> None:
        if high.value < change["new"]:
            high.value = change["new"]

    def _lower_min(change: dict) -> None:
        if low.value > change["new"]:
            low.value = change["new"]

    low.observe(_raise_max, names="value")
    high.observe(_lower_min, names="value")


# --- notebook 00 -------------------------------------------------------------------------------------------


def setup_check_figure(shift: float = 0.0) -> go.Figure:
    """A sine wave moved by ``shift``: if a slider moves it, widgets and plotly work in this front-end."""
    x = np.linspace(0, 4 * math.pi, 200)
    figure = go.Figure(go.Scatter(x=x, y=np.sin(x - shift), name="sin(x - shift)", line={"width": 3}))
    figure.update_layout(title="If this line moves when you move the slider, you're ready.", height=300,
                         xaxis_title="x", yaxis_title="sin(x − shift)", margin={"t": 50, "b": 40})
    return figure


def setup_check_panel() -> widgets.VBox:
    """A slider and a FigureWidget: the set-up check of notebook 00."""
    slider = widgets.FloatSlider(value=0.0, min=0.0, max=2 * math.pi, step=0.25, description="shift",
                                 continuous_update=False)
    figure = go.FigureWidget(setup_check_figure(0.0))

    def _move(shift: float) -> None:
        redraw(figure, setup_check_figure(shift))

    return widgets.VBox([slider, figure, widgets.interactive_output(_move, {"shift": slider})])


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
    return Panel(controls, explore_demo, plots.timeline, title="Explore: any workload on any cluster")


def _timeout_action_buttons() -> widgets.ToggleButtons:
    return widgets.ToggleButtons(options=[(_SHORT_ACTION[a], a) for a in facts.TIMEOUT_ACTIONS],
                                 value=facts.DEFAULT_TIMEOUT_ACTION, description="timeout action", style=_STYLE)


def _pause_slider() -> widgets.SelectionSlider:
    return widgets.SelectionSlider(options=list(PAUSE_OPTIONS_S), value=facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S,
                                   description="pause after idle (s)", continuous_update=False, style=_STYLE,
                                   layout=_WIDE)


# --- notebook 02 -------------------------------------------------------------------------------------------

SPIKE_RPS_RANGE = (10.0, 100.0)
_SHORT_ACTION = {"RollbackCapacityChange": "Rollback", "ForceApplyCapacityChange": "Force apply"}


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
    return Panel(controls, minimum_capacity_demo, plots.timeline, title="Flash sale: minutes 10 to 30")


# --- notebook 03 -------------------------------------------------------------------------------------------

PAUSE_OPTIONS_S = (300, 600, 1800, 2700, 3600, 7200, 14_400, 86_400)
PREWARM_OPTIONS_S = (0, 60, 120, 300, 600, 1800, 3600)


def pause_resume_demo(seconds_until_auto_pause: int = 300, monitoring_agent: bool = False,
                      prewarm_s: float = 0, auto_pause: bool = True) -> Run:
    """The office day with the given pause settings (the work behind notebook 03's panels)."""
    return office_day(seconds_until_auto_pause=seconds_until_auto_pause, monitoring_agent=monitoring_agent,
                      prewarm_s=prewarm_s, auto_pause=auto_pause).run()


def pause_resume_panel(draw: Callable[[Run], go.Figure] = plots.timeline) -> Panel:
    """Pause timeout, a monitoring agent's idle connection and a pre-warm job → the office day."""
    controls = {
        "seconds_until_auto_pause": _pause_slider(),
        "prewarm_s": widgets.SelectionSlider(options=list(PREWARM_OPTIONS_S), value=0,
                                             description="warm-up job before 09:00 (s)", continuous_update=False,
                                             style=_STYLE, layout=_WIDE),
        "monitoring_agent": widgets.Checkbox(value=False, description="monitoring agent holds a connection",
                                             indent=False, layout=widgets.Layout(width="auto")),
    }
    return Panel(controls, pause_resume_demo, draw, title="An office day, 06:00 to 22:00 (time 0 = 06:00)")
