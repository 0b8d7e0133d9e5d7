"""Notebook 11's panel: a CloudWatch alarm on the night's CPU, replayed as its settings change."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import (
    _quick_start,  # noqa: F401  (before plotly's widget module imports nbformat)
    facts,
    plots,
    scenarios,
)
from ..alarms import ALARM, INSUFFICIENT_DATA, Alarm, AlarmEvaluation, evaluate
from ..simulation import Run
from ._panel import _STYLE, _WIDE, figure_widget, full_width, redraw

_NARROW = widgets.Layout(width="220px")
THRESHOLD_RANGE_PCT = (10.0, 100.0)
EVALUATION_PERIODS_RANGE = (1, 10)
ALARM_PERIOD_OPTIONS_S = (60, 300)


@cache
def night_run() -> Run:
    """The night shift's run, simulated once: the panel's controls change the alarm, never the run."""
    return scenarios.night_shift().run()


@lru_cache(maxsize=256)  # the same settings give the same object: the panel's first call does not redraw
def alarm_demo(threshold: float = 70.0, evaluation_periods: int = 1, datapoints_to_alarm: int = 1,
               period_s: int = 60, statistic: str = "Average",
               treat_missing_data: str = facts.DEFAULT_TREAT_MISSING_DATA) -> AlarmEvaluation:
    """A CPU alarm replayed over the night shift (the work behind notebook 11's panel); ``datapoints_to_alarm``
    is kept within ``evaluation_periods``, as the console does.

    Example:
        >>> alarm_demo(evaluation_periods=3, datapoints_to_alarm=9).alarm.datapoints_to_alarm
        3
    """
    watched = Alarm(metric_name="CPUUtilization", threshold=threshold, statistic=statistic, period_s=period_s,
                    evaluation_periods=evaluation_periods,
                    datapoints_to_alarm=min(datapoints_to_alarm, evaluation_periods),
                    treat_missing_data=treat_missing_data)
    return evaluate(watched, night_run(), start_h=scenarios.NIGHT_START_H)


def describe_alarm(evaluation: AlarmEvaluation) -> str:
    """One HTML line: how often the alarm changed state, how long it was in ALARM, and when it fired.

    Example:
        >>> "<b>in ALARM</b>" in describe_alarm(alarm_demo())
        True
    """
    import_s, busy_s = scenarios.NIGHT_IMPORT_S, scenarios.NIGHT_BUSY_HOUR_S
    fired = [label for label, (start, end) in (("during the blocked import", import_s),
                                                ("in the busy hour", busy_s)) if evaluation.fired_between(start, end)]
    parts = [f"<b>state changes</b> {len(evaluation.history())}",
             f"<b>in ALARM</b> {evaluation.seconds_in(ALARM) / 60:.0f} min",
             f"<b>INSUFFICIENT_DATA</b> {evaluation.seconds_in(INSUFFICIENT_DATA) / 60:.0f} min",
             f"<b>fired</b> {' and '.join(fired) if fired else 'never in those two windows'}"]
    return " · ".join(parts)


class ResultPanel:
    """Controls, a summary line and one persistent ``go.FigureWidget``, like ``widgets.Panel`` but for a
    computation that is not a ``Run`` (here an ``AlarmEvaluation``)."""

    def __init__(self, controls: dict[str, widgets.ValueWidget], compute: Callable[..., object],
                 draw: Callable[[object], go.Figure | dict], describe: Callable[[object], str], *,
                 title: str = "") -> None:
        self.controls, self._compute, self._draw, self._describe = controls, compute, draw, describe
        self.result = compute(**self.values())
        self.figure = figure_widget(draw(self.result))
        self.summary = widgets.HTML(describe(self.result))
        header = [widgets.HTML(f"<h4>{title}</h4>")] if title else []
        # Controls wrap onto more lines in a narrow output area instead of running off its edge.
        wrap = widgets.Layout(flex_flow="row wrap", width="100%")
        rows = [widgets.HBox(list(controls.values())[i:i + 3], layout=wrap) for i in range(0, len(controls), 3)]
        output = widgets.interactive_output(self.update, controls)
        self.widget = widgets.VBox([*header, *rows, self.summary, full_width(self.figure), output],
                                   layout=widgets.Layout(width="100%"))

    def values(self) -> dict[str, object]:
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **values: object) -> object:
        """Recompute with ``values`` and redraw in place (``interactive_output`` calls this on every change)."""
        result = self._compute(**values)
        if result is not self.result:
            self.result = result
            redraw(self.figure, self._draw(result))
            self.summary.value = self._describe(result)
        return result

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _int_slider(description: str, value: int, bounds: tuple[int, int]) -> widgets.IntSlider:
    return widgets.IntSlider(value=value, min=bounds[0], max=bounds[1], description=description,
                             continuous_update=False, style=_STYLE, layout=_WIDE)


def alarm_panel() -> ResultPanel:
    """Threshold, evaluation periods (N), datapoints to alarm (M), period, statistic and missing-data treatment →
    the night's CPU against the threshold and the alarm's state."""
    controls = {
        "threshold": widgets.FloatSlider(value=70.0, min=THRESHOLD_RANGE_PCT[0], max=THRESHOLD_RANGE_PCT[1],
                                         step=5.0, description="threshold (CPU %)", continuous_update=False,
                                         style=_STYLE, layout=_WIDE),
        "evaluation_periods": _int_slider("evaluation periods (N)", 1, EVALUATION_PERIODS_RANGE),
        "datapoints_to_alarm": _int_slider("datapoints to alarm (M)", 1, EVALUATION_PERIODS_RANGE),
        "period_s": widgets.Dropdown(options=list(ALARM_PERIOD_OPTIONS_S), value=60, description="period (s)",
                                     style=_STYLE, layout=_NARROW),
        "statistic": widgets.Dropdown(options=["Average", "Maximum", "Minimum"], value="Average",
                                      description="statistic", style=_STYLE, layout=_NARROW),
        "treat_missing_data": widgets.ToggleButtons(options=list(facts.TREAT_MISSING_DATA),
                                                    value=facts.DEFAULT_TREAT_MISSING_DATA,
                                                    description="missing data",
                                                    style={**_STYLE, "button_width": "120px"}),
    }
    return ResultPanel(controls, alarm_demo, plots.alarm_dict, describe_alarm,
                       title="A CPU alarm over the night: 00:00 to 06:00")
