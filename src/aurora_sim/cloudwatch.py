"""The CloudWatch metrics a run would have published, and alarms evaluated over them.

A v1 cluster sends one value of each metric per minute (``facts.METRIC_PUBLISH_PERIOD_S``). Here each row of the
run's ``metrics`` table is one such value: ``ServerlessDatabaseCapacity`` is the capacity at that instant (0 while
paused or resuming), ``CPUUtilization`` and ``DatabaseConnections`` the row's CPU % and open connections, and
``Queries`` (Aurora MySQL only) the row's completed requests per second. An engine that is down for a whole row
(paused or resuming throughout) publishes no engine metrics for it: those datapoints are *missing*, not zero
(``facts.METRICS_PUBLISHED_WHILE_PAUSED``). ``metric_statistics`` aggregates the values per period as
``GetMetricStatistics`` does; ``publish`` puts them in the run's DuckDB as ``cloudwatch_metrics``; ``Alarm`` and
``evaluate`` (module ``alarms``) replay an alarm over them.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 600, 2.0)]), duration_s=1800, seed=1)
    >>> five = metric_statistics(run, "CPUUtilization", period_s=300, statistics=["SampleCount", "Maximum"])
    >>> five["SampleCount"].tolist()[:2], list(five.columns)
    ([5.0, 5.0], ['time_s', 'Timestamp', 'SampleCount', 'Maximum', 'Unit'])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone

import numpy as np
import pandas as pd

from . import facts, names
from ._validate import _check_choice, _check_positive
from .simulation import Run

RUN_DATE = "2024-01-01"  # any date: a run's time 0 is midnight of it, plus ``start_h`` hours
_ENGINE_METRIC_COLUMN = {"CPUUtilization": "cpu_pct", "DatabaseConnections": "connections"}


def run_timestamps(seconds: np.ndarray | float, start_h: float = 0.0) -> np.ndarray:
    """A run's seconds as wall-clock timestamps (``datetime64[ms]``): time 0 is ``start_h`` o'clock on ``RUN_DATE``.

    Example:
        >>> str(run_timestamps(90.0, start_h=2))
        '2024-01-01T02:01:30.000'
    """
    if not 0 <= start_h < 24:
        raise ValueError(f"start_h={start_h!r} must be an hour of the day, 0 <= start_h < 24")
    milliseconds = np.round((np.asarray(seconds, dtype=float) + start_h * 3600) * 1000).astype("int64")
    return np.datetime64(RUN_DATE, "ms") + milliseconds.astype("timedelta64[ms]")


def check_metric(run: Run, metric_name: str) -> None:
    """Raise a ValueError unless ``run``'s engine publishes ``metric_name``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(engine="aurora-postgresql"), Workload(segments=[(0, 60, 1.0)]),
        ...                duration_s=60)
        >>> check_metric(run, "Queries")
        Traceback (most recent call last):
        ...
        ValueError: metric_name='Queries' is published by Aurora MySQL only; this run is aurora-postgresql
    """
    _check_choice("metric_name", metric_name, facts.CLOUDWATCH_METRICS)
    if metric_name in facts.MYSQL_ONLY_METRICS and run.config.engine != "aurora-mysql":
        msg = f"metric_name={metric_name!r} is published by Aurora MySQL only; this run is {run.config.engine}"
        raise ValueError(msg)


def engine_up_s(run: Run, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Seconds within each ``[start_s, end_s)`` during which the engine ran (active or scaling, not paused or
    resuming), from the exact ``capacity`` table.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> run = tour().run()
        >>> engine_up_s(run, np.array([0.0]), np.array([600.0])).tolist()
        [600.0]
    """
    steps = run.sql("SELECT time_s, state FROM capacity ORDER BY time_s, seq").df()
    times = steps["time_s"].to_numpy(dtype=float)
    up = steps["state"].isin([names.ACTIVE, names.SCALING]).to_numpy(dtype=float)
    cumulative = np.concatenate(([0.0], np.cumsum(up[:-1] * np.diff(times))))  # seconds up at each change

    def up_until(t: np.ndarray) -> np.ndarray:
        index = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)  # the change in force at t
        return cumulative[index] + up[index] * np.maximum(t - times[index], 0.0)

    return up_until(np.asarray(end_s, dtype=float)) - up_until(np.asarray(start_s, dtype=float))


def samples(run: Run, metric_name: str) -> pd.DataFrame:
    """The values the cluster published for ``metric_name``: one per ``metrics`` row (``time_s``, ``value``),
    missing rows left out, as CloudWatch stores nothing for them.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> capacity = samples(tour().run(), "ServerlessDatabaseCapacity")
        >>> len(capacity) == tour().run().sql("SELECT count(*) FROM metrics").fetchall()[0][0]
        True
    """
    check_metric(run, metric_name)
    rows = run.sql("SELECT time_s, capacity_acu, cpu_pct, connections, requests_completed FROM metrics "
                   "ORDER BY time_s").df()
    period = run.metrics_period_s
    if metric_name == "ServerlessDatabaseCapacity":
        values = rows["capacity_acu"].to_numpy(dtype=float)
    elif metric_name == "Queries":
        values = rows["requests_completed"].to_numpy(dtype=float) / period
    else:
        values = rows[_ENGINE_METRIC_COLUMN[metric_name]].to_numpy(dtype=float)
    time_s = rows["time_s"].to_numpy(dtype=float)
    published = np.ones(len(rows), dtype=bool)
    if metric_name not in facts.METRICS_PUBLISHED_WHILE_PAUSED:
        published = engine_up_s(run, time_s, np.minimum(time_s + period, run.duration_s)) > 0
    return pd.DataFrame({"time_s": time_s[published], "value": values[published]})


def _check_period(run: Run, period_s: int) -> None:
    _check_positive("period_s", period_s)
    if period_s % facts.METRIC_PUBLISH_PERIOD_S or period_s % run.metrics_period_s:
        msg = (f"period_s={period_s!r} must be a multiple of {facts.METRIC_PUBLISH_PERIOD_S} s (CloudWatch "
               f"periods) and of the run's metrics_period_s={run.metrics_period_s:g}")
        raise ValueError(msg)


def metric_statistics(run: Run, metric_name: str, *, period_s: int = 60,
                      statistics: Sequence[str] = ("Average",), start_s: float = 0.0, end_s: float | None = None,
                      start_h: float = 0.0) -> pd.DataFrame:
    """``metric_name`` over the run as ``GetMetricStatistics`` returns it: one row per period that holds at least
    one published value, with the asked ``statistics`` and the metric's ``Unit`` (``time_s`` is the period's
    start, ``Timestamp`` the same on the clock, time 0 at ``start_h`` o'clock). ``start_s`` and ``end_s``
    (``StartTime``, ``EndTime``) keep the periods that start within ``[start_s, end_s)``.

    Raises:
        ValueError: For an unknown metric or statistic, or a period that is not a multiple of a minute and of
            the run's metrics period.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> capacity = metric_statistics(tour().run(), "ServerlessDatabaseCapacity", period_s=600,
        ...                              statistics=("Minimum", "Maximum"))
        >>> capacity[["Minimum", "Maximum"]].iloc[0].tolist()  # the tour scales up within its first 10 minutes
        [1.0, 2.0]
    """
    _check_period(run, period_s)
    statistics = list(statistics)
    for statistic in statistics:
        _check_choice("statistics", statistic, facts.METRIC_STATISTICS)
    if not statistics:
        raise ValueError(f"statistics={statistics!r} is empty; allowed: {facts.METRIC_STATISTICS}")
    values = samples(run, metric_name)
    values["time_s"] = np.floor(values["time_s"] / period_s) * period_s
    grouped = values.groupby("time_s")["value"]
    functions = {"SampleCount": "count", "Average": "mean", "Sum": "sum", "Minimum": "min", "Maximum": "max"}
    table = grouped.agg([functions[s] for s in statistics])
    table.columns = statistics
    table = table.astype(float).reset_index()
    end_s = run.duration_s if end_s is None else end_s
    table = table[(table["time_s"] >= start_s) & (table["time_s"] < end_s)].reset_index(drop=True)
    table.insert(1, "Timestamp", run_timestamps(table["time_s"].to_numpy(), start_h))
    table["Unit"] = facts.CLOUDWATCH_METRICS[metric_name]
    return table


def get_metric_statistics(run: Run, metric_name: str, *, period_s: int = 60,
                          statistics: Sequence[str] = ("Average",), cluster: str = "aurora-workbook",
                          start_h: float = 0.0) -> dict:
    """The response boto3's ``cloudwatch.get_metric_statistics`` would give for the run: ``Label`` and
    ``Datapoints`` (a list of dicts with ``Timestamp``, the statistics and ``Unit``), plus the request it answers.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> response = get_metric_statistics(tour().run(), "CPUUtilization", period_s=300)
        >>> response["Label"], sorted(response["Datapoints"][0])
        ('CPUUtilization', ['Average', 'Timestamp', 'Unit'])
    """
    table = metric_statistics(run, metric_name, period_s=period_s, statistics=statistics, start_h=start_h)
    datapoints = table.drop(columns="time_s").to_dict("records")
    for point in datapoints:  # aware datetimes in UTC, as botocore parses them (a column of them pandas turns back)
        point["Timestamp"] = point["Timestamp"].to_pydatetime().replace(tzinfo=timezone.utc)
    return {"Label": metric_name, "Datapoints": datapoints,
            "Request": {"Namespace": facts.CLOUDWATCH_NAMESPACE, "MetricName": metric_name,
                        "Dimensions": [{"Name": facts.CLOUDWATCH_DIMENSION, "Value": cluster}],
                        "Period": period_s, "Statistics": list(statistics)}}


def metrics_table(run: Run, *, start_h: float = 0.0) -> pd.DataFrame:
    """Every value the run published, one row per metric and minute: ``metric_name``, ``time_s``, ``timestamp``,
    ``value``, ``unit`` (the long table ``publish`` puts in the run's DuckDB).

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> sorted(metrics_table(tour().run())["metric_name"].unique())[:2]
        ['CPUUtilization', 'DatabaseConnections']
    """
    names_here = [m for m in facts.CLOUDWATCH_METRICS
                  if m not in facts.MYSQL_ONLY_METRICS or run.config.engine == "aurora-mysql"]
    parts = [samples(run, name).assign(metric_name=name, unit=facts.CLOUDWATCH_METRICS[name]) for name in names_here]
    table = pd.concat(parts, ignore_index=True)
    table.insert(2, "timestamp", run_timestamps(table["time_s"].to_numpy(), start_h))
    return table[["metric_name", "time_s", "timestamp", "value", "unit"]]


def attach(run: Run, name: str, frame: pd.DataFrame) -> None:
    """Make ``frame`` queryable as table ``name`` through ``run.sql`` (zero copy).

    ``Run`` keeps its DuckDB connection private and has no public way to add a table yet, so this registers the
    frame on that connection directly; the frame stays visible to this run only.
    """
    run._con.register(name, frame)


def rds_events(run: Run, *, start_h: float = 0.0) -> pd.DataFrame:
    """The run's events that RDS publishes (those with an RDS event id), as the console's event list shows them:
    ``time_s``, ``timestamp``, ``rds_event_id``, ``message``.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> rds_events(tour().run())["rds_event_id"].iloc[0]
        'RDS-EVENT-0141'
    """
    events = run.sql("SELECT time_s, rds_event_id, message FROM events WHERE rds_event_id IS NOT NULL "
                     "ORDER BY seq").df()
    events.insert(1, "timestamp", run_timestamps(events["time_s"].to_numpy(), start_h))
    return events


def publish(run: Run, *, start_h: float = 0.0) -> pd.DataFrame:
    """Put ``metrics_table(run)`` in the run's DuckDB as ``cloudwatch_metrics`` (and ``rds_events(run)`` as
    ``rds_events``) and return how many values each metric published.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> run = tour().run()
        >>> counts = publish(run)
        >>> run.sql("SELECT count(*) FROM cloudwatch_metrics").fetchall()[0][0] == int(counts["values"].sum())
        True
    """
    table = metrics_table(run, start_h=start_h)
    attach(run, "cloudwatch_metrics", table)
    attach(run, "rds_events", rds_events(run, start_h=start_h))
    counts = table.groupby("metric_name", sort=False).agg(values=("value", "size"), unit=("unit", "first"))
    return counts
