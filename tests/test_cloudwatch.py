"""CloudWatch metrics from a run's tables, and alarms replayed over them, against hand-computed values and the
CloudWatch User Guide's own tables."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import numpy as np
import pytest

from aurora_sim import ClusterConfig, ModelAssumptions, Workload, cloudwatch, facts, scenarios, simulate
from aurora_sim.alarms import ALARM, INSUFFICIENT_DATA, OK, Alarm, AlarmEvaluation, alarm_states, decide, evaluate

# --- Metrics -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steady():
    """1 ACU, never paused, evenly spaced requests of exactly 0.05 ACU-s: 10/s for 5 minutes (CPU 50 %), then
    4/s for 5 minutes (CPU 20 %)."""
    return simulate(ClusterConfig(min_capacity=1, max_capacity=1, auto_pause=False),
                    Workload(segments=[(0, 300, 10.0), (300, 600, 4.0)], arrivals="regular", query_cpu_s=0.05),
                    duration_s=600, seed=1, assumptions=ModelAssumptions(query_cost_cv=0))


def test_cpu_statistics_match_a_hand_computed_ten_minute_window(steady) -> None:
    table = cloudwatch.metric_statistics(steady, "CPUUtilization", period_s=600,
                                         statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"])
    assert len(table) == 1, f"one 10-minute period expected, got {len(table)} rows"
    row = table.iloc[0]
    # Five minutes at 10 × 0.05 = 50 % of one ACU, five at 4 × 0.05 = 20 %: ten one-minute values.
    assert row["SampleCount"] == 10
    assert row["Average"] == pytest.approx(35.0, abs=0.5), f"expected (5×50 + 5×20)/10 = 35 %, got {row['Average']}"
    assert row["Minimum"] == pytest.approx(20.0, abs=0.5) and row["Maximum"] == pytest.approx(50.0, abs=0.5)
    assert row["Sum"] == pytest.approx(350.0, abs=5), f"expected 350, got {row['Sum']}"
    assert row["Unit"] == "Percent"


def test_one_minute_statistics_are_the_metrics_rows(steady) -> None:
    table = cloudwatch.metric_statistics(steady, "DatabaseConnections", statistics=["Maximum", "SampleCount"])
    rows = steady.sql("SELECT time_s, connections FROM metrics ORDER BY time_s").df()
    assert table["time_s"].tolist() == rows["time_s"].tolist()
    assert table["Maximum"].tolist() == rows["connections"].astype(float).tolist()
    assert set(table["SampleCount"]) == {1.0}, "a v1 cluster publishes one value a minute"


def test_queries_are_requests_per_second(steady) -> None:
    queries = cloudwatch.metric_statistics(steady, "Queries", period_s=300, statistics=["Average"])
    assert queries["Average"].tolist() == pytest.approx([10.0, 4.0], abs=0.1)
    assert queries["Unit"].iloc[0] == "Count/Second"


def test_a_paused_cluster_publishes_its_capacity_but_no_engine_metrics() -> None:
    run = scenarios.office_day().run()  # pauses before 09:00, at lunch and after work
    paused = run.sql("SELECT min(time_s) FROM metrics WHERE state = 'paused'").fetchall()[0][0]
    capacity = cloudwatch.samples(run, "ServerlessDatabaseCapacity")
    cpu = cloudwatch.samples(run, "CPUUtilization")
    rows = run.sql("SELECT count(*) FROM metrics").fetchall()[0][0]
    assert len(capacity) == rows, "ServerlessDatabaseCapacity is published every minute, paused or not"
    assert capacity.set_index("time_s").loc[paused, "value"] == 0
    assert paused not in set(cpu["time_s"]), f"CPUUtilization published at {paused} s while the cluster was paused"
    assert len(cpu) < rows


def test_get_metric_statistics_answers_like_boto3(steady) -> None:
    response = cloudwatch.get_metric_statistics(steady, "ServerlessDatabaseCapacity", period_s=300,
                                                statistics=["Maximum"], cluster="shop")
    assert response["Label"] == "ServerlessDatabaseCapacity"
    assert sorted(response["Datapoints"][0]) == ["Maximum", "Timestamp", "Unit"]
    stamp = response["Datapoints"][0]["Timestamp"]
    assert type(stamp) is datetime and stamp.utcoffset() == timedelta(0)  # botocore's type: aware, in UTC
    assert response["Request"]["Dimensions"] == [{"Name": "DBClusterIdentifier", "Value": "shop"}]
    assert response["Request"]["Namespace"] == "AWS/RDS"


def test_publish_puts_every_metric_in_the_runs_database(steady) -> None:
    counts = cloudwatch.publish(steady)
    assert set(counts.index) == set(facts.CLOUDWATCH_METRICS)
    stored = steady.sql("SELECT metric_name, count(*) FROM cloudwatch_metrics GROUP BY 1").fetchall()
    assert dict(stored) == counts["values"].to_dict()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric_name": "FreeableMemory"}, "metric_name='FreeableMemory' must be one of"),
    ({"period_s": 90}, "period_s=90 must be a multiple of 60"),
    ({"statistics": ["p99"]}, "statistics='p99' must be one of"),
    ({"statistics": []}, "statistics=[] is empty"),
])
def test_metric_statistics_refuses_what_cloudwatch_would(steady, kwargs: dict, message: str) -> None:
    arguments = {"metric_name": "CPUUtilization", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        cloudwatch.metric_statistics(steady, **arguments)


def test_queries_is_aurora_mysql_only() -> None:
    run = simulate(ClusterConfig(engine="aurora-postgresql"), Workload(segments=[(0, 60, 1.0)]), duration_s=60)
    with pytest.raises(ValueError, match="published by Aurora MySQL only"):
        cloudwatch.samples(run, "Queries")


# --- Alarms: AWS's documented examples ---------------------------------------------------------------------------

# The CloudWatch User Guide's two tables ("How alarm state is evaluated when data is missing"): the datapoints
# (oldest first; 0 not breaching, X breaching, - missing) and the state for missing, ignore, breaching, notBreaching.
# "retain" is "Retain current state".
THREE_OF_THREE = [
    ("0-X-X", (OK, OK, OK, OK)),
    ("0----", (OK, OK, OK, OK)),
    ("-----", (INSUFFICIENT_DATA, "retain", ALARM, OK)),
    ("0XX-X", (ALARM, ALARM, ALARM, ALARM)),
    ("----X", (INSUFFICIENT_DATA, "retain", ALARM, OK)),
    ("X----", (ALARM, "retain", ALARM, OK)),
]
TWO_OF_THREE = [
    ("0-X-X", (ALARM, ALARM, ALARM, ALARM)),
    ("00X0X", (ALARM, ALARM, ALARM, ALARM)),
    ("0-X--", (OK, OK, ALARM, OK)),
    ("----0", (OK, OK, ALARM, OK)),
    ("----X", (INSUFFICIENT_DATA, "retain", ALARM, OK)),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


@pytest.mark.parametrize(("m", "window", "expected"), [(3, *row) for row in THREE_OF_THREE]
                         + [(2, *row) for row in TWO_OF_THREE])
def test_missing_data_follows_the_user_guides_tables(m: int, window: str, expected: tuple[str, ...]) -> None:
    for treatment, state in zip(TREATMENTS, expected, strict=True):
        alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3, datapoints_to_alarm=m,
                      treat_missing_data=treatment)
        for current in (OK, ALARM):
            wanted = current if state == "retain" else state
            got = decide(alarm, window, current)
            assert got == wanted, f"{m} of 3, {window}, {treatment}, from {current}: expected {wanted}, got {got}"


def test_the_evaluation_range_is_two_datapoints_beyond_the_evaluation_periods() -> None:
    assert facts.ALARM_EXTRA_DATAPOINTS == 2  # AWS's example: 5 datapoints retrieved for 3 evaluation periods


# --- Alarms: states on crafted series ----------------------------------------------------------------------------


def test_three_of_three_alarm_on_a_crafted_series() -> None:
    alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3)
    values = [50, 80, 80, 80, 80, 60, 90, 90, 50, 50]
    states, reasons = alarm_states(alarm, values)
    assert states == [OK, OK, OK, ALARM, ALARM, OK, OK, OK, OK, OK]
    assert reasons[3].startswith("Threshold Crossed: 3 out of the last 3 datapoints were greater than the threshold")
    assert reasons[4] == "", "no reason when the state stays"


def test_m_out_of_n_needs_only_m_breaching_datapoints() -> None:
    alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5, datapoints_to_alarm=2)
    states, _ = alarm_states(alarm, [50, 90, 50, 50, 90, 50, 50, 50, 50, 50])
    assert states[4] == ALARM, f"2 of the last 5 breach at the fifth datapoint: expected ALARM, got {states[4]}"
    assert states[-1] == OK


@pytest.mark.parametrize(("treatment", "expected"), [
    # The last real 20 % keeps the alarm OK while it is within the 5 datapoints evaluated (AWS's table, row 2).
    ("missing", [OK, OK, OK, OK, OK, OK, INSUFFICIENT_DATA, OK]),
    ("notBreaching", [OK] * 8),
    ("breaching", [OK, OK, OK, OK, OK, OK, ALARM, OK]),
    ("ignore", [OK] * 8),
])
def test_a_pause_is_missing_data_and_the_treatment_decides(treatment: str, expected: list[str]) -> None:
    """CPU 20 %, then five minutes paused (nothing published), then 20 % again."""
    alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3, treat_missing_data=treatment)
    states, _ = alarm_states(alarm, [20, 20, None, None, None, None, None, 20])
    assert states == expected


def test_the_night_alarm_fires_on_the_blocked_scale_up_and_not_in_the_busy_hour() -> None:
    run = scenarios.night_shift().run()
    hasty = evaluate(Alarm(metric_name="CPUUtilization", threshold=70), run)
    patient = evaluate(Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5), run)
    assert hasty.fired_between(*scenarios.NIGHT_IMPORT_S) and hasty.fired_between(*scenarios.NIGHT_BUSY_HOUR_S)
    assert patient.fired_between(*scenarios.NIGHT_IMPORT_S)
    assert not patient.fired_between(*scenarios.NIGHT_BUSY_HOUR_S), "five hot minutes in a row: not the busy hour"


def test_treating_a_paused_clusters_missing_cpu_as_breaching_pages_every_night() -> None:
    run = scenarios.night_shift().run()
    paused = run.sql("SELECT min(time_s) FROM metrics WHERE state = 'paused'").fetchall()[0][0]
    alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3, treat_missing_data="breaching")
    evaluation = evaluate(alarm, run)
    assert evaluation.fired_between(paused, paused + 600), "no ALARM within 10 minutes of the pause"
    quiet = evaluate(Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=3,
                           treat_missing_data="notBreaching"), run)
    assert not quiet.fired_between(paused, paused + 600)


def test_history_lists_state_changes_with_clock_times() -> None:
    evaluation = evaluate(Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5),
                          scenarios.night_shift().run())
    history = evaluation.history()
    assert isinstance(evaluation, AlarmEvaluation)
    assert history["old_state"].iloc[0] == INSUFFICIENT_DATA
    assert (history["old_state"] != history["new_state"]).all()
    assert re.fullmatch(r"\d\d:\d\d", history["clock"].iloc[0])
    assert evaluation.seconds_in(ALARM) > 0 and not math.isnan(evaluation.seconds_in(OK))


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"metric_name": "ReadIOPS"}, ValueError, "metric_name='ReadIOPS' must be one of"),
    ({"comparison": ">"}, ValueError, "comparison='>' must be one of"),
    ({"statistic": "p95"}, ValueError, "statistic='p95' must be one of"),
    ({"period_s": 30}, ValueError, "period_s=30 must be a positive multiple of 60 s"),
    ({"evaluation_periods": 0}, ValueError, "evaluation_periods=0 must be >= 1"),
    ({"evaluation_periods": 1441}, ValueError, "must not exceed 86,400 s (one day)"),
    ({"evaluation_periods": 3, "datapoints_to_alarm": 4}, ValueError, "datapoints_to_alarm=4 must be <= "
                                                                      "evaluation_periods=3"),
    ({"evaluation_periods": 3, "datapoints_to_alarm": 0}, ValueError, "datapoints_to_alarm=0 must be >= 1"),
    ({"treat_missing_data": "zero"}, ValueError, "treat_missing_data='zero' must be one of"),
    ({"threshold": float("nan")}, ValueError, "threshold=nan must be a finite number"),
    ({"period_s": 60.0}, TypeError, "period_s=60.0 must be a whole number of seconds"),
])
def test_alarm_refuses_what_put_metric_alarm_would(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Alarm(**{"metric_name": "CPUUtilization", "threshold": 70, **kwargs})


def test_alarm_is_frozen_hashable_and_readable() -> None:
    alarm = Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5, datapoints_to_alarm=3)
    assert hash(alarm) == hash(Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5,
                                     datapoints_to_alarm=3))
    assert repr(alarm) == "Alarm(CPUUtilization Average > 70 for 3 of 5 periods of 60 s, missing data: missing)"
    with pytest.raises(TypeError):
        Alarm(metric_name="CPUUtilization", threshold=70, unknown=1)


def test_timestamps_start_at_the_runs_clock() -> None:
    assert str(cloudwatch.run_timestamps(np.array([0.0]), start_h=6)[0]) == "2024-01-01T06:00:00.000"
    with pytest.raises(ValueError, match="start_h=24"):
        cloudwatch.run_timestamps(0.0, start_h=24)


# --- Notebook 11's panel ---------------------------------------------------------------------------------------


def test_alarm_panel_redraws_in_place_at_every_extreme() -> None:
    import plotly.graph_objects as go

    from aurora_sim import widgets

    panel = widgets.alarm_panel()
    assert isinstance(panel.figure, go.FigureWidget) and len(panel.figure.data) > 0
    assert all(getattr(c, "continuous_update", False) is False for c in panel.controls.values()
               if hasattr(c, "continuous_update"))
    extremes = {"threshold": widgets.THRESHOLD_RANGE_PCT, "evaluation_periods": widgets.EVALUATION_PERIODS_RANGE,
                "datapoints_to_alarm": widgets.EVALUATION_PERIODS_RANGE, "period_s": widgets.ALARM_PERIOD_OPTIONS_S,
                "statistic": ("Average", "Maximum", "Minimum"), "treat_missing_data": facts.TREAT_MISSING_DATA}
    for name, values in extremes.items():
        for value in values:
            evaluation = panel.update(**{**panel.values(), name: value})
            assert isinstance(evaluation, AlarmEvaluation)
            assert evaluation.alarm.datapoints_to_alarm <= evaluation.alarm.evaluation_periods
    assert "<b>in ALARM</b>" in panel.summary.value


def test_the_panels_default_alarm_fires_in_the_import_and_the_busy_hour() -> None:
    from aurora_sim import widgets

    summary = widgets.describe_alarm(widgets.alarm_demo())
    assert "during the blocked import and in the busy hour" in summary
