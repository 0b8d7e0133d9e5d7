"""The panel every demo uses: controls wired with interactive_output to one FigureWidget, redrawn in place."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import (
    _quick_start,  # noqa: F401  (before plotly's widget module imports nbformat)
    facts,
)
from ..report import summarize
from ..simulation import Run

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



PAUSE_OPTIONS_S = (300, 600, 1800, 2700, 3600, 7200, 14_400, 86_400)
_SHORT_ACTION = {"RollbackCapacityChange": "Rollback", "ForceApplyCapacityChange": "Force apply"}


def _timeout_action_buttons() -> widgets.ToggleButtons:
    return widgets.ToggleButtons(options=[(_SHORT_ACTION[a], a) for a in facts.TIMEOUT_ACTIONS],
                                 value=facts.DEFAULT_TIMEOUT_ACTION, description="timeout action", style=_STYLE)


def _pause_slider() -> widgets.SelectionSlider:
    return widgets.SelectionSlider(options=list(PAUSE_OPTIONS_S), value=facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S,
                                   description="pause after idle (s)", continuous_update=False, style=_STYLE,
                                   layout=_WIDE)


