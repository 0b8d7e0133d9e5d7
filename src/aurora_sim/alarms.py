"""CloudWatch alarms replayed over a run's metrics: the states an alarm would have taken and when it changed.

An ``Alarm`` watches one metric's statistic per period and compares it with a threshold. At the end of every
period CloudWatch looks back over an *evaluation range* of recent datapoints (``facts.ALARM_EXTRA_DATAPOINTS``
more than the evaluation periods, as AWS's example shows) and decides, following the CloudWatch User Guide:

- with at least ``evaluation_periods`` real datapoints, the most recent that many count, and the alarm is in
  ``ALARM`` when at least ``datapoints_to_alarm`` of them breach ("M out of N"), else ``OK``;
- with fewer, the missing ones are filled in by ``treat_missing_data``: ``breaching`` and ``notBreaching`` fill
  them as breaching or not; ``ignore`` keeps the current state and ``missing`` goes to ``INSUFFICIENT_DATA``,
  unless the real datapoints decide it (enough of them breach, or one of them does not).

The rule for ``missing`` and ``ignore`` with a few real datapoints is the model's reading of AWS's two example
tables (``tests/test_cloudwatch.py`` replays every row of both); AWS publishes no general rule.

Example:
    >>> from aurora_sim.scenarios import tour
    >>> busy = Alarm(metric_name="CPUUtilization", threshold=70)
    >>> evaluate(busy, tour().run()).history()["new_state"].tolist()[:2]
    ['OK', 'ALARM']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import facts
from ._tables import WholeTable
from ._validate import _check_choice, _check_number, _check_type
from .cloudwatch import _check_period, check_metric, metric_statistics, run_timestamps
from .simulation import Run

OK, ALARM, INSUFFICIENT_DATA = facts.ALARM_STATES
_WORDS = {"GreaterThanThreshold": "greater than", "GreaterThanOrEqualToThreshold": "greater than or equal to",
          "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}
BREACHING, NOT_BREACHING, MISSING = "X", "0", "-"  # one datapoint, as AWS's tables write it


@dataclass(frozen=True, kw_only=True)
class Alarm:
    """A CloudWatch metric alarm, as ``PutMetricAlarm`` takes it (names in Python's style).

    ``datapoints_to_alarm`` defaults to ``evaluation_periods`` ("N out of N").

    Example:
        >>> Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5, datapoints_to_alarm=3)
        Alarm(CPUUtilization Average > 70 for 3 of 5 periods of 60 s, missing data: missing)
        >>> Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=2, datapoints_to_alarm=3)
        Traceback (most recent call last):
        ...
        ValueError: datapoints_to_alarm=3 must be <= evaluation_periods=2
    """

    metric_name: str
    threshold: float
    comparison: str = "GreaterThanThreshold"
    statistic: str = "Average"
    period_s: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = facts.DEFAULT_TREAT_MISSING_DATA
    name: str = ""

    def __post_init__(self) -> None:
        _check_choice("metric_name", self.metric_name, facts.CLOUDWATCH_METRICS)
        _check_number("threshold", self.threshold)
        _check_choice("comparison", self.comparison, facts.ALARM_COMPARISONS)
        _check_choice("statistic", self.statistic, facts.METRIC_STATISTICS)
        _check_type("period_s", self.period_s, int, "a whole number of seconds")
        if self.period_s <= 0 or self.period_s % facts.METRIC_PUBLISH_PERIOD_S:
            raise ValueError(f"period_s={self.period_s!r} must be a positive multiple of "
                             f"{facts.METRIC_PUBLISH_PERIOD_S} s")
        _check_type("evaluation_periods", self.evaluation_periods, int, "a whole number")
        if self.evaluation_periods < 1:
            raise ValueError(f"evaluation_periods={self.evaluation_periods!r} must be >= 1")
        if self.evaluation_periods * self.period_s > facts.ALARM_MAX_EVALUATION_S:
            raise ValueError(f"evaluation_periods={self.evaluation_periods!r} × period_s={self.period_s!r} must "
                             f"not exceed {facts.ALARM_MAX_EVALUATION_S:,} s (one day)")
        if self.datapoints_to_alarm is None:
            object.__setattr__(self, "datapoints_to_alarm", self.evaluation_periods)
        _check_type("datapoints_to_alarm", self.datapoints_to_alarm, int, "a whole number")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            low = "1" if self.datapoints_to_alarm < 1 else ""
            rule = f">= {low}" if low else f"<= evaluation_periods={self.evaluation_periods}"
            raise ValueError(f"datapoints_to_alarm={self.datapoints_to_alarm!r} must be {rule}")
        _check_choice("treat_missing_data", self.treat_missing_data, facts.TREAT_MISSING_DATA)
        _check_type("name", self.name, str, "a string")

    def breaches(self, value: float) -> bool:
        """Whether one datapoint's ``value`` is on the wrong side of the threshold.

        Example:
            >>> Alarm(metric_name="DatabaseConnections", threshold=1, comparison="LessThanThreshold").breaches(0)
            True
        """
        operator = facts.ALARM_COMPARISONS[self.comparison]
        return {">": value > self.threshold, ">=": value >= self.threshold, "<": value < self.threshold,
                "<=": value <= self.threshold}[operator]

    def __repr__(self) -> str:
        operator = facts.ALARM_COMPARISONS[self.comparison]
        label = f"{self.name}: " if self.name else ""
        return (f"Alarm({label}{self.metric_name} {self.statistic} {operator} {self.threshold:g} for "
                f"{self.datapoints_to_alarm} of {self.evaluation_periods} periods of {self.period_s} s, "
                f"missing data: {self.treat_missing_data})")


def decide(alarm: Alarm, window: str, current: str) -> str:
    """The state ``alarm`` takes from an evaluation range written as AWS's tables write it, oldest first
    (``X`` breaching, ``0`` not, ``-`` missing), given its ``current`` state.

    Example:
        >>> three = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3)
        >>> decide(three, "0XX-X", OK), decide(three, "-----", OK)
        ('ALARM', 'INSUFFICIENT_DATA')
    """
    points = list(window)
    real = [point for point in points if point != MISSING]
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    if len(real) >= n:
        return ALARM if real[-n:].count(BREACHING) >= m else OK
    treat = alarm.treat_missing_data
    if treat in ("breaching", "notBreaching"):
        filled = real + [BREACHING if treat == "breaching" else NOT_BREACHING] * (n - len(real))
        return ALARM if filled.count(BREACHING) >= m else OK
    if real.count(BREACHING) >= m:
        return ALARM
    if NOT_BREACHING in real:
        return OK
    if treat == "ignore":
        return current
    return ALARM if points and points[0] == BREACHING else INSUFFICIENT_DATA


@dataclass(frozen=True)
class AlarmEvaluation:
    """An alarm replayed over a run: its ``datapoints`` (one per period, NaN when missing) and ``states`` (one
    per evaluation, at each period's end); ``run`` is the run it watched."""

    alarm: Alarm
    datapoints: pd.DataFrame
    states: pd.DataFrame
    run: Run
    start_h: float = 0.0

    def __repr__(self) -> str:
        changes = len(self.history())
        return (f"AlarmEvaluation({self.alarm!r}: {len(self.states)} evaluations, {changes} state changes, "
                f"{self.seconds_in(ALARM) / 60:g} min in ALARM)")

    def history(self) -> pd.DataFrame:
        """The state changes, as ``DescribeAlarmHistory`` lists them: when, from, to, and CloudWatch's reason.

        Example:
            >>> from aurora_sim.scenarios import tour
            >>> alarm = Alarm(metric_name="CPUUtilization", threshold=70)
            >>> evaluate(alarm, tour().run()).history().columns.tolist()
            ['time_s', 'clock', 'old_state', 'new_state', 'reason']
        """
        states = self.states
        previous = states["state"].shift(fill_value=INSUFFICIENT_DATA)
        changed = states[states["state"] != previous].copy()
        changed.insert(2, "old_state", previous[changed.index])
        changed = changed.rename(columns={"state": "new_state"})
        changed.insert(1, "clock", pd.to_datetime(run_timestamps(changed["time_s"].to_numpy(),
                                                                 self.start_h)).strftime("%H:%M"))
        return WholeTable(changed[["time_s", "clock", "old_state", "new_state", "reason"]].reset_index(drop=True))

    def seconds_in(self, state: str) -> float:
        """How long the alarm spent in ``state`` (from each evaluation to the next).

        Example:
            >>> from aurora_sim.scenarios import tour
            >>> evaluate(Alarm(metric_name="CPUUtilization", threshold=1000), tour().run()).seconds_in("ALARM")
            0.0
        """
        _check_choice("state", state, facts.ALARM_STATES)
        return float((self.states["state"] == state).sum() * self.alarm.period_s)

    def fired_between(self, start_s: float, end_s: float) -> bool:
        """Whether the alarm was in ``ALARM`` at any evaluation within ``[start_s, end_s]``."""
        within = self.states[(self.states["time_s"] >= start_s) & (self.states["time_s"] <= end_s)]
        return bool((within["state"] == ALARM).any())


def evaluate(alarm: Alarm, run: Run, *, start_h: float = 0.0) -> AlarmEvaluation:
    """Replay ``alarm`` over ``run``: it starts in ``INSUFFICIENT_DATA`` and is evaluated at the end of every
    period of the run.

    Raises:
        ValueError: If the run's engine does not publish the metric, or the period does not fit the run.

    Example:
        >>> from aurora_sim.scenarios import office_day
        >>> paused = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3,
        ...                treat_missing_data="breaching")
        >>> evaluate(paused, office_day().run()).seconds_in("ALARM") > 0   # the cluster pauses: CPU goes missing
        True
    """
    _check_type("alarm", alarm, Alarm, "an Alarm")
    check_metric(run, alarm.metric_name)
    _check_period(run, alarm.period_s)
    datapoints = _datapoints(alarm, run)
    states, reasons = alarm_states(alarm, datapoints["value"].tolist())
    end_s = datapoints["time_s"].to_numpy() + alarm.period_s
    table = pd.DataFrame({"time_s": end_s, "state": states, "reason": reasons})
    return AlarmEvaluation(alarm, datapoints, table, run, start_h)


def alarm_states(alarm: Alarm, values: Sequence[float | None]) -> tuple[list[str], list[str]]:
    """The state after each datapoint of ``values`` (one per period, ``None`` or NaN when missing), starting from
    ``INSUFFICIENT_DATA``, and the reason of each change ("" where the state stayed).

    Example:
        >>> alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=2)
        >>> alarm_states(alarm, [50, 90, 95, 40, None, None, None, None])[0]
        ['OK', 'OK', 'ALARM', 'OK', 'OK', 'OK', 'OK', 'INSUFFICIENT_DATA']
    """
    marks = [MISSING if value is None or math.isnan(value) else BREACHING if alarm.breaches(value)
             else NOT_BREACHING for value in values]
    reach = alarm.evaluation_periods + facts.ALARM_EXTRA_DATAPOINTS
    states, reasons, state = [], [], INSUFFICIENT_DATA
    for k in range(len(marks)):
        window = MISSING * max(reach - k - 1, 0) + "".join(marks[max(k - reach + 1, 0):k + 1])
        new_state = decide(alarm, window, state)
        reasons.append(_reason(alarm, window, state, new_state) if new_state != state else "")
        states.append(new_state)
        state = new_state
    return states, reasons


def _datapoints(alarm: Alarm, run: Run) -> pd.DataFrame:
    """One row per period of the run: the statistic's value (NaN when nothing was published) and whether it
    breaches."""
    periods = math.ceil(run.duration_s / alarm.period_s - 1e-9)
    grid = pd.DataFrame({"time_s": np.arange(periods, dtype=float) * alarm.period_s})
    values = metric_statistics(run, alarm.metric_name, period_s=alarm.period_s, statistics=[alarm.statistic])
    grid = grid.merge(values[["time_s", alarm.statistic]], on="time_s", how="left")
    grid = grid.rename(columns={alarm.statistic: "value"})
    grid["breaching"] = [alarm.breaches(v) if not math.isnan(v) else False for v in grid["value"]]
    return grid


def _reason(alarm: Alarm, window: str, old: str, new: str) -> str:
    """A state change's reason, worded as CloudWatch words it."""
    real = [p for p in window if p != MISSING][-alarm.evaluation_periods:]
    if new == INSUFFICIENT_DATA:
        return f"Insufficient Data: {window.count(MISSING)} datapoints were unknown."
    if new == old:
        return ""
    filled = alarm.evaluation_periods - len(real)
    fills = alarm.treat_missing_data in ("breaching", "notBreaching") and filled > 0
    note = f" ({filled} missing treated as {alarm.treat_missing_data})" if fills else ""
    needed = alarm.datapoints_to_alarm if new == ALARM else alarm.evaluation_periods - alarm.datapoints_to_alarm + 1
    return (f"Threshold Crossed: {real.count(BREACHING)} out of the last {len(real)} datapoints were "
            f"{_WORDS[alarm.comparison]} the threshold ({alarm.threshold:g}){note} (minimum {needed} "
            f"datapoint{'s' if needed != 1 else ''} for "
            f"{old} -> {new} transition).")
