"""The panel every demo uses: controls wired with interactive_output to one FigureWidget, redrawn in place."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

import anywidget
import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.basedatatypes import Undefined
from plotly.io.json import to_json_plotly

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


def figure_widget(figure: go.Figure | dict) -> go.FigureWidget:
    """``figure`` (a ``go.Figure`` or a figure dict such as ``plots.timeline_dict`` returns) as a
    ``go.FigureWidget`` that resizes with its output area (shown with ``full_width``).

    Example:
        >>> figure_widget(go.Figure())._config
        {'responsive': True}
    """
    if isinstance(figure, dict):
        # plotly validates every value of a figure it is given: 0.1 s of a notebook's first panel, for figure dicts
        # the plots module builds the same way each time (tests/test_widgets.py validates every panel's and holds
        # what is sent to what a validated widget sends).
        widget = go.FigureWidget(_sendable(figure), _validate=False)
    else:
        widget = go.FigureWidget(figure)
    widget._config = {"responsive": True}  # FigureWidget takes plotly.js's config only through this trait
    widget._drawn = _as_dict(figure)  # what `redraw` compares the next figure with
    return widget


def _sendable(figure: dict) -> dict:
    """``figure`` as plotly's validation hands it to the browser: pandas columns as numpy arrays, and a template
    given by name expanded into its settings (plotly.js knows no template names)."""
    layout = _with_numpy_arrays(figure.get("layout", {}))
    if isinstance(layout.get("template"), str):
        layout["template"] = json.loads(_template_json(layout["template"]))  # a copy of its own for each figure
    return {**figure, "data": [_with_numpy_arrays(trace) for trace in figure.get("data", [])], "layout": layout}


def _with_numpy_arrays(part: dict) -> dict:
    """A copy of a trace or layout dict with every pandas column in it (nested too) as a numpy array."""
    copy = {}
    for key, value in part.items():
        if isinstance(value, dict):
            value = _with_numpy_arrays(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):  # shapes, annotations
            value = [_with_numpy_arrays(item) for item in value]
        copy[key] = _plain(value)
    return copy


@cache
def _template_json(name: str) -> str:
    return to_json_plotly(pio.templates[name].to_plotly_json())


def _as_dict(figure: go.Figure | dict) -> dict:
    """A figure's data and layout as plain values (numpy arrays kept: ``to_dict`` would encode each in base64)."""
    return figure if isinstance(figure, dict) else {"data": figure._data, "layout": figure._layout}


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

    ``draw`` returns a ``go.Figure`` or, faster, a figure dict (``plots.timeline_dict``): each redraw sends the
    figure only what changed (``redraw``). ``describe`` writes the summary line from the run's ``report.Summary``
    (e.g. to show retries). When a redraw would show the same x range as the last one, the figure keeps the
    range the learner zoomed to (and the legend entries they switched off).
    ``summarize`` turns what ``compute`` returns into what ``describe`` reads: a panel whose ``compute`` returns
    several runs (notebook 07: one per engine) passes its own pair.
    """

    def __init__(self, controls: dict[str, widgets.ValueWidget], compute: Callable[..., Run],
                 draw: Callable[[Run], go.Figure | dict], *, title: str = "",
                 describe: Callable[[Summary], str] = Summary.describe,
                 summarize: Callable[[Run], object] = summarize) -> None:
        self.controls, self._compute, self._draw, self._describe = controls, compute, draw, describe
        self._summarize = summarize
        self.run = compute(**self.values())
        self.figure = figure_widget(draw(self.run))
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
            redraw(self.figure, self._draw(run))
            self.summary.value = self._describe(self._summarize(run))
        return run

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def redraw(target: go.FigureWidget, source: go.Figure | dict) -> None:
    """Send ``target`` only what differs between ``source`` and the figure drawn into it last, as one update
    message (the one ``batch_update`` sends): each changed trace property (usually ``x`` and ``y``) and layout
    setting, not the whole figure again. Settings the new figure leaves as they were keep what the learner did in
    the browser (a zoom, a pressed button, a legend entry switched off). A different number or kind of traces
    replaces them all.

    Example:
        >>> widget = figure_widget({"data": [{"type": "scatter", "y": [1, 2]}], "layout": {"title": {"text": "a"}}})
        >>> redraw(widget, {"data": [{"type": "scatter", "y": [1, 3]}], "layout": {"title": {"text": "a"}}})
        >>> list(widget.data[0].y), widget.layout.title.text
        ([1, 3], 'a')
    """
    new = _as_dict(source)
    old = getattr(target, "_drawn", None) or _as_dict(target)
    old_traces, new_traces = old.get("data", []), new.get("data", [])
    if [trace.get("type", "scatter") for trace in old_traces] != [t.get("type", "scatter") for t in new_traces]:
        with target.batch_update():
            target.data = ()
            target.add_traces(new_traces)
        old_traces = new_traces
    restyle: dict[str, list] = {}
    changed = [index for index, (before, after) in enumerate(zip(old_traces, new_traces, strict=True))
               if _note_changes(restyle, _changes(before, after), index)]
    relayout = {path: _plain(value) for path, value in _changes(old.get("layout", {}), new.get("layout", {}))}
    # plotly_update takes the values as they are: validating each one again (as assigning them inside
    # batch_update does) took 35 ms a redraw, for values built the same way as the figure validated at first.
    target.plotly_update(restyle_data={key: [values.get(index, Undefined) for index in changed]
                                       for key, values in restyle.items()},
                         relayout_data=relayout, trace_indexes=changed)
    for key in relayout:  # a list of shapes or annotations is rebuilt from the new values when next read
        target.layout._compound_array_props.pop(key, None)
    target._drawn = new


def _note_changes(restyle: dict[str, dict[int, object]], changes: list[tuple[str, object]], index: int) -> bool:
    """Add a trace's ``changes`` to ``restyle`` (path → {trace index: value}); True if there were any."""
    for path, value in changes:
        restyle.setdefault(path, {})[index] = _plain(value)
    return bool(changes)


def _plain(value: object) -> object:
    """A pandas column as the numpy array plotly would have made of it (plotly_update compares values as given)."""
    return np.asarray(value) if _is_array(value) and not isinstance(value, np.ndarray) else value


def _changes(before: dict, after: dict, prefix: str = "") -> list[tuple[str, object]]:
    """The ``(dotted path, new value)`` of every setting that differs between two figure dicts (None: removed)."""
    found = []
    for key, value in after.items():
        path = f"{prefix}{key}"
        if key not in before:
            found.append((path, value))
        elif isinstance(value, dict) and isinstance(before[key], dict):
            found += _changes(before[key], value, f"{path}.")
        elif not _same(before[key], value):
            found.append((path, value))
    found += [(f"{prefix}{key}", None) for key in before if key not in after]
    return found


def _same(a: object, b: object) -> bool:
    """Equal figure values: arrays element by element (NaN equal to NaN), lists and dicts item by item.

    Example:
        >>> _same({"x": np.array([1.0, np.nan])}, {"x": [1.0, float("nan")]}), _same([1, 2], (1, 3))
        (True, False)
    """
    if _is_array(a) or _is_array(b):
        a, b = np.asarray(a), np.asarray(b)
        numeric = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=numeric))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN
    return type(a) is type(b) and a == b


def _is_array(value: object) -> bool:
    """A numpy array or anything that turns into one (a pandas column), not a plain number or text."""
    return hasattr(value, "__array__") and not isinstance(value, str | bytes | int | float | np.generic)


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


