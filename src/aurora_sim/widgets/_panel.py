"""The panel every demo uses: controls wired with interactive_output to one FigureWidget, redrawn in place."""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import ipywidgets as widgets
import plotly.graph_objects as go

from .. import (
    _quick_start,  # noqa: F401  (before plotly's widget module imports nbformat)
    facts,
)
from ..report import Summary, summarize
from ..simulation import Run

_STYLE = {"description_width": "initial"}
_WIDE = widgets.Layout(width="340px")


class _FitWidth(anywidget.AnyWidget):
    """An empty strip under a figure that makes the figure fit the output area's width, now and on every resize.

    plotly's FigureWidget lays itself out before JupyterLab attaches it to the page, so it falls back to
    plotly's default 700 px (a learner saw 370 px of plot in a 1,000-px output area). Its figures are
    ``responsive`` (see ``figure_widget``): they fit again on a window ``resize`` event, which this strip sends
    once it is on the page and whenever its width changes.
    """

    _esm = """
export default {
  render({ el }) {
    let width = 0;
    const observer = new ResizeObserver((entries) => {
      const now = Math.round(entries[0].contentRect.width);
      if (now > 0 && now !== width) {
        width = now;
        window.dispatchEvent(new Event("resize"));
      }
    });
    observer.observe(el);
    return () => observer.disconnect();
  },
};
"""

    def __init__(self) -> None:
        super().__init__(layout=widgets.Layout(width="100%", height="0px"))


def figure_widget(figure: go.Figure) -> go.FigureWidget:
    """``figure`` as a ``go.FigureWidget`` that resizes with its output area (shown with ``full_width``).

    Example:
        >>> figure_widget(go.Figure())._config
        {'responsive': True}
    """
    widget = go.FigureWidget(figure)
    widget._config = {"responsive": True}  # FigureWidget takes plotly.js's config only through this trait
    return widget


def full_width(figure: go.FigureWidget) -> widgets.VBox:
    """A box that shows a ``figure_widget`` at the output area's full width, e.g. a timeline outside a panel.

    Example:
        >>> box = full_width(figure_widget(go.Figure()))
        >>> [type(child).__name__ for child in box.children]
        ['FigureWidget', '_FitWidth']
    """
    return widgets.VBox([figure, _FitWidth()], layout=widgets.Layout(width="100%"))


class Panel:
    """Controls, a summary line and one persistent ``go.FigureWidget``; display it in a notebook cell.

    ``describe`` writes the summary line from the run's ``report.Summary`` (e.g. to show retries). When a
    redraw would show the same x range as the last one, the figure keeps the range the learner zoomed to.
    ``summarize`` turns what ``compute`` returns into what ``describe`` reads: a panel whose ``compute`` returns
    several runs (notebook 07: one per engine) passes its own pair.
    """

    def __init__(self, controls: dict[str, widgets.ValueWidget], compute: Callable[..., Run],
                 draw: Callable[[Run], go.Figure], *, title: str = "",
                 describe: Callable[[Summary], str] = Summary.describe,
                 summarize: Callable[[Run], object] = summarize) -> None:
        self.controls, self._compute, self._draw, self._describe = controls, compute, draw, describe
        self._summarize = summarize
        self.run = compute(**self.values())
        drawn = draw(self.run)
        self._view = _x_view(drawn)
        self.figure = figure_widget(drawn)
        self.summary = widgets.HTML(describe(summarize(self.run)))
        self.error = widgets.HTML()
        header = [widgets.HTML(f"<h4>{title}</h4>")] if title else []
        rows = [widgets.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)]
        output = widgets.interactive_output(self.update, controls)
        self.widget = widgets.VBox([*header, *rows, self.summary, self.error, full_width(self.figure), output],
                                   layout=widgets.Layout(width="100%"))

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
            drawn = self._draw(run)
            view, self._view = self._view, _x_view(drawn)
            if self._view == view:  # the same first view as before: keep what the learner zoomed to
                _keep_x_view(drawn, self.figure)
            redraw(self.figure, drawn)
            self.summary.value = self._describe(self._summarize(run))
        return run

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _x_axes(figure: go.Figure) -> list[tuple[str, object]]:
    return [(axis.plotly_name, axis) for axis in figure.select_xaxes()]


def _x_view(figure: go.Figure) -> tuple:
    """What a drawn figure shows first along x: each x axis's range, and its buttons (e.g. zoom / whole run)."""
    ranges = tuple((name, tuple(axis.range or ()), axis.autorange) for name, axis in _x_axes(figure))
    return ranges, len(figure.layout.updatemenus)


def _keep_x_view(drawn: go.Figure, shown: go.FigureWidget) -> None:
    """Give ``drawn`` the x ranges and pressed buttons that ``shown`` has now (the learner may have zoomed)."""
    drawn.update_layout({name: {"range": axis.range, "autorange": axis.autorange} for name, axis in _x_axes(shown)},
                        updatemenus=shown.layout.updatemenus)


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


