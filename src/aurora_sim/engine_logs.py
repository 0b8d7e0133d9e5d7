"""The engine logs a run would have published to CloudWatch Logs, each line in the engine's own format.

A v1 cluster publishes every log its parameters switch on, to the log group ``/aws/rds/cluster/<cluster>/<log
type>`` (``facts.LOG_GROUP_TEMPLATE``): Aurora MySQL an ``error`` log (always on), a ``general`` log
(``general_log``), a ``slowquery`` log (``slow_query_log`` with ``long_query_time`` and
``log_queries_not_using_indexes``) and an ``audit`` log (``server_audit_logging`` with ``server_audit_events``);
Aurora PostgreSQL one ``error`` log, the server's own log, whose lines depend on ``log_min_duration_statement``,
``log_statement``, ``log_lock_waits`` (after ``deadlock_timeout``) and ``log_temp_files``, and always shows
connections and disconnections. ``ClusterConfig`` carries no log parameters yet, so they are an argument here.

Where the lines come from (``sessions.executions``): every request the run served is one connection running the
application's statement (``APP_SESSION``); it ran for the time the engine was up between its arrival and its
end, so waiting for a resume is not query time, queueing for CPU is. Every blocking operation is one session
labelled by a ``Session`` (user, statement, …; ``DEFAULT_SESSIONS`` by kind): a transaction logs ``BEGIN``, its
statement and ``COMMIT``; a long query one statement as long as the operation; a table lock its ``LOCK`` and its
release. The run has no lock waits of its own: two sessions whose ``locks`` name the same table and overlap are
logged as the later one waiting for the earlier until it ends (the waiting session held its connection and
blocked scaling all along, as the model has it). A failed request ran no statement and logs nothing. Engine
start and stop lines follow the run's ``resumed``, ``scale_completed`` and ``paused`` events (the texts are the
engines' own; which lines Aurora writes there is not documented). The model has no autovacuum:
``log_autovacuum_min_duration`` is accepted and logs nothing.

Example:
    >>> from aurora_sim.scenarios import tour
    >>> run = tour().run()
    >>> logs = tables(run, {"slow_query_log": 1, "long_query_time": 2})
    >>> sorted(logs), len(logs["slowquery"]) > 0
    (['audit', 'error', 'general', 'slowquery'], True)
    >>> logs["slowquery"]["message"].iloc[0].splitlines()[2].split()[1::2]
    ['Query_time:', 'Lock_time:', 'Rows_sent:', 'Rows_examined:']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from . import facts
from ._tables import WholeTable
from ._validate import _check_type
from .cloudwatch import attach, run_timestamps
from .log_formats import mysql_audit, mysql_error, mysql_general, mysql_slow_query, postgresql_log
from .log_sessions import APP_SESSION, DEFAULT_SESSIONS, Session, executions
from .simulation import Run

__all__ = ["APP_SESSION", "DEFAULT_CLUSTER", "DEFAULT_SESSIONS", "Session", "attach", "log_parameters", "publish",
           "query", "tables"]

DEFAULT_CLUSTER = "aurora-workbook"
_OFF, _ON = 0, 1
_DEFAULTS = {
    "aurora-mysql": {"slow_query_log": _OFF, "long_query_time": facts.DEFAULT_LONG_QUERY_TIME_S,
                     "log_queries_not_using_indexes": _OFF, "general_log": _OFF, "server_audit_logging": _OFF,
                     "server_audit_events": ""},
    "aurora-postgresql": {"log_min_duration_statement": -1, "log_statement": "none", "log_lock_waits": _OFF,
                          "deadlock_timeout": facts.DEFAULT_DEADLOCK_TIMEOUT_MS, "log_temp_files": -1,
                          "log_autovacuum_min_duration": -1, "log_connections": _ON, "log_disconnections": _ON},
}
_SWITCHES = ("slow_query_log", "log_queries_not_using_indexes", "general_log", "server_audit_logging",
             "log_lock_waits", "log_connections", "log_disconnections")
_MILLISECONDS_FROM_MINUS_ONE = ("log_min_duration_statement", "log_temp_files", "log_autovacuum_min_duration")


def log_parameters(engine: str, parameters: Mapping[str, object] | None = None) -> dict[str, object]:
    """``parameters`` checked against the engine's log parameters, with every other one at its default.

    Switches take 0 or 1 (or False/True); ``long_query_time`` seconds within 0–31,536,000;
    ``log_min_duration_statement``, ``log_temp_files`` and ``log_autovacuum_min_duration`` -1 (off) or more;
    ``deadlock_timeout`` milliseconds above 0; ``log_statement`` one of none, ddl, mod, all;
    ``server_audit_events`` a comma-separated list of CONNECT, QUERY, QUERY_DCL, QUERY_DDL, QUERY_DML, TABLE.

    Raises:
        ValueError: For a parameter the engine does not have, a value outside its range, or turning off
            ``log_connections``/``log_disconnections`` (on in v1, not modifiable).

    Example:
        >>> log_parameters("aurora-mysql", {"slow_query_log": True})["long_query_time"]
        10.0
        >>> log_parameters("aurora-postgresql", {"log_disconnections": 0})
        Traceback (most recent call last):
        ...
        ValueError: parameters['log_disconnections']=0: on in Aurora Serverless v1 and not modifiable
    """
    _check_type("engine", engine, str, "an engine name")
    if engine not in facts.LOG_PARAMETERS:
        raise ValueError(f"engine={engine!r} must be one of {tuple(facts.LOG_PARAMETERS)}")
    parameters = dict(parameters or {})
    checked = dict(_DEFAULTS[engine])
    for name, value in parameters.items():
        if name not in facts.LOG_PARAMETERS[engine]:
            other = [e for e, known in facts.LOG_PARAMETERS.items() if name in known]
            where = f" (it is an {other[0]} parameter)" if other else ""
            msg = (f"parameters[{name!r}]={value!r}: not a log parameter of {engine}{where}; allowed: "
                   f"{facts.LOG_PARAMETERS[engine]}")
            raise ValueError(msg)
        checked[name] = _checked_value(engine, name, value)
    return checked


def _checked_value(engine: str, name: str, value: object) -> object:
    label = f"parameters[{name!r}]"
    if name in _SWITCHES:
        if value not in (0, 1) or isinstance(value, float):
            raise ValueError(f"{label}={value!r} must be 0 (off) or 1 (on)")
        if name in facts.ALWAYS_ON_LOG_PARAMETERS.get(engine, ()) and not value:
            raise ValueError(f"{label}={value!r}: on in Aurora Serverless v1 and not modifiable")
        return int(value)
    if name == "long_query_time":
        low, high = facts.LONG_QUERY_TIME_RANGE_S
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"{label}={value!r} must be seconds within {low}..{high:,}")
        return float(value)
    if name in _MILLISECONDS_FROM_MINUS_ONE or name == "deadlock_timeout":
        lowest = 1 if name == "deadlock_timeout" else -1
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            rule = "milliseconds > 0" if lowest == 1 else "-1 (off) or a whole number >= 0"
            raise ValueError(f"{label}={value!r} must be {rule}")
        return value
    if name == "log_statement":
        if value not in facts.LOG_STATEMENT_VALUES:
            raise ValueError(f"{label}={value!r} must be one of {facts.LOG_STATEMENT_VALUES}")
        return value
    events = [part.strip() for part in str(value).split(",") if part.strip()]  # server_audit_events
    unknown = [event for event in events if event not in facts.SERVER_AUDIT_EVENTS]
    if not isinstance(value, str) or unknown:
        raise ValueError(f"{label}={value!r} must list events from {facts.SERVER_AUDIT_EVENTS}, comma-separated")
    return ",".join(events)


def tables(run: Run, parameters: Mapping[str, object] | None = None, *,
           sessions: Sequence[Session | None] = (), cluster: str = DEFAULT_CLUSTER,
           start_h: float = 0.0) -> dict[str, pd.DataFrame]:
    """One table per log type of the run's engine, one row per log event (empty when its parameter is off).

    Every table starts with ``log_group``, ``log_stream``, ``time_s``, ``timestamp`` (time 0 at ``start_h``
    o'clock) and ``message`` (the event as the engine writes it); the other columns are that message's fields,
    parsed, for SQL. ``sessions[i]`` labels the run's blocking operation ``i`` (``None`` or missing: the kind's
    ``DEFAULT_SESSIONS`` entry).

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> logs = tables(tour().run())
        >>> [len(logs[kind]) for kind in ("general", "slowquery", "audit")], len(logs["error"]) > 0
        ([0, 0, 0], True)
    """
    settings = log_parameters(run.config.engine, parameters)
    _check_type("cluster", cluster, str, "a cluster identifier")
    activity = executions(run, sessions)
    group = {kind: facts.LOG_GROUP_TEMPLATE.format(cluster=cluster, log_type=kind)
             for kind in facts.LOG_TYPES[run.config.engine]}
    stream = f"{cluster}-instance-1"  # v1 hides its one DB instance; the model names the stream after the cluster
    start_s = start_h * 3600
    if run.config.engine == "aurora-postgresql":
        built = {"error": postgresql_log(run, activity, settings, start_s)}
    else:
        version = run.config.engine_version
        built = {"error": mysql_error(run, activity, version, start_s),
                 "general": mysql_general(activity, settings, version, start_s),
                 "slowquery": mysql_slow_query(activity, settings, version, start_s),
                 "audit": mysql_audit(activity, settings, stream, start_s)}
    return {kind: _with_common_columns(frame, group[kind], stream, start_h) for kind, frame in built.items()}


def _with_common_columns(frame: pd.DataFrame, group: str, stream: str, start_h: float) -> pd.DataFrame:
    frame = frame.sort_values("time_s", kind="stable").reset_index(drop=True)
    common = pd.DataFrame({"log_group": group, "log_stream": stream, "time_s": frame["time_s"].astype(float),
                           "timestamp": run_timestamps(frame["time_s"].to_numpy(dtype=float), start_h)},
                          index=frame.index)
    return pd.concat([common, frame.drop(columns="time_s")], axis=1)


def publish(run: Run, parameters: Mapping[str, object] | None = None, *,
            sessions: Sequence[Session | None] = (), cluster: str = DEFAULT_CLUSTER,
            start_h: float = 0.0) -> pd.DataFrame:
    """Put ``tables(...)`` in the run's DuckDB as ``log_<type>`` (``log_error``, ``log_slowquery``, …) and
    ``log_events`` (every log's common columns), and return one row per log group with its events.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> run = tour().run()
        >>> groups = publish(run, {"general_log": 1})
        >>> run.sql("SELECT count(*) FROM log_general").fetchall()[0][0] == int(groups.loc["general", "events"])
        True
    """
    built = tables(run, parameters, sessions=sessions, cluster=cluster, start_h=start_h)
    settings = log_parameters(run.config.engine, parameters)
    for kind, frame in built.items():
        attach(run, f"log_{kind}", frame)
    common = "log_group, log_stream, time_s, timestamp, message"
    union = " UNION ALL ".join(f"SELECT {common} FROM log_{kind}" for kind in built)
    run.sql(f"CREATE OR REPLACE TEMP VIEW log_events AS {union}")  # a view: no copy of the lines
    rows = {kind: (frame["log_group"].iloc[0] if len(frame) else
                   facts.LOG_GROUP_TEMPLATE.format(cluster=cluster, log_type=kind), len(frame),
                   _switched_on_by(run.config.engine, kind, settings)) for kind, frame in built.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["log group", "events", "published because"]
                                  ).rename_axis("log type")


def query(run: Run, sql: str) -> pd.DataFrame:
    """``run.sql(sql)`` as a table a notebook shows whole: log lines are long, and pandas would cut them.

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> run = tour().run()
        >>> _ = publish(run)
        >>> query(run, "SELECT message FROM log_error LIMIT 1")["message"].str.endswith("ready for connections.").all()
        np.True_
    """
    return WholeTable(run.sql(sql).df())


def _switched_on_by(engine: str, kind: str, settings: Mapping[str, object]) -> str:
    if engine == "aurora-postgresql":
        on = [name for name in ("log_min_duration_statement", "log_temp_files") if settings[name] != -1]
        on += [name for name in ("log_lock_waits",) if settings[name]]
        on += [f"log_statement={settings['log_statement']}"] if settings["log_statement"] != "none" else []
        return "always (with log_connections, log_disconnections" + "".join(f", {n}" for n in on) + ")"
    switch = {"error": None, "general": "general_log", "slowquery": "slow_query_log",
              "audit": "server_audit_logging"}[kind]
    if switch is None:
        return "always (the error log is on by default)"
    return f"{switch}=1" if settings[switch] else f"not published: {switch}=0"

