"""Log lines in each engine's own format, written from a run's ``log_sessions.Activity`` (``engine_logs`` decides
which logs are on and where they go).

MySQL 5.7 writes ``2024-01-01T02:14:05.123456Z`` stamps, MySQL 5.6 ``240101  2:14:05``; the slow query log's
entries carry ``# Query_time``/``Lock_time``/``Rows_sent``/``Rows_examined``; the audit log is Aurora's
comma-separated ``timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode``.
PostgreSQL's lines start with RDS's ``log_line_prefix`` ``%t:%r:%u@%d:[%p]:``. Every line is one event; the
``start_s`` argument shifts the clock (time 0 is midnight of ``cloudwatch.RUN_DATE``).

Text is built on numpy object arrays: pandas' string columns took 3.4 s for the 257 k lines of a PostgreSQL
night, object arrays take a tenth of that.

Example:
    >>> print(mysql_timestamps(np.array([3600.5]), "5.7")[0], mysql_timestamps(np.array([3600.5]), "5.6")[0])
    2024-01-01T01:00:00.500000Z 240101  1:00:00
    >>> print(postgresql_timestamps(np.array([3600.5]))[0])
    2024-01-01 01:00:00 UTC
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from . import names
from .cloudwatch import RUN_DATE
from .log_sessions import PID_OFFSET, Activity
from .simulation import Run

_EPOCH_S = int((np.datetime64(RUN_DATE, "s") - np.datetime64("1970-01-01", "s")).astype(int))
_DML, _DDL, _DCL = ("SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE"), ("CREATE", "ALTER", "DROP", "RENAME",
                                                                          "TRUNCATE"), ("GRANT", "REVOKE")
_MOD = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "COPY")  # PostgreSQL's log_statement = 'mod' adds these to DDL
POSTMASTER_PID = 4242


def _o(values: object) -> np.ndarray:
    """``values`` as a numpy array of Python strings, ready for element-wise ``+``."""
    array = np.asarray(values)
    return (array if array.dtype == object else array.astype(str)).astype(object)


def _stamps(time_s: np.ndarray, start_s: float) -> np.ndarray:
    micros = np.round((np.asarray(time_s, dtype=float) + start_s) * 1e6).astype("int64")
    return np.datetime64(RUN_DATE, "us") + micros.astype("timedelta64[us]")


def _set_char(strings: np.ndarray, position: int, char: str) -> np.ndarray:
    """Fixed-width strings with one character replaced, without a Python loop."""
    width = strings.dtype.itemsize // 4
    chars = strings.astype(f"U{width}").view("U1").reshape(-1, width).copy()
    chars[:, position] = char
    return chars.view(f"U{width}").ravel()


def mysql_timestamps(time_s: np.ndarray, version: str, start_s: float = 0.0) -> np.ndarray:
    """The stamps MySQL ``version`` writes in its logs for ``time_s`` (seconds since midnight of ``RUN_DATE``)."""
    iso = np.datetime_as_string(_stamps(time_s, start_s), unit="us")
    if version != "5.6":
        return _o(iso) + "Z"
    return _o([f"{s[2:4]}{s[5:7]}{s[8:10]} {int(s[11:13]):>2}{s[13:19]}" for s in iso])


def postgresql_timestamps(time_s: np.ndarray, start_s: float = 0.0) -> np.ndarray:
    """``%t``: ``2024-01-01 02:14:05 UTC``."""
    iso = np.datetime_as_string(_stamps(time_s, start_s).astype("datetime64[s]"), unit="s")
    return _o(_set_char(iso, 10, " ")) + " UTC"


def _epoch(time_s: np.ndarray, start_s: float, scale: int = 1) -> np.ndarray:
    return np.floor((_EPOCH_S + np.asarray(time_s, dtype=float) + start_s) * scale).astype("int64")


def _first_word(statements: pd.Series) -> pd.Series:
    return pd.Series([text.split(maxsplit=1)[0].upper() if text else "" for text in _o(statements)],
                     index=statements.index)


def _floats(values: object, decimals: int) -> np.ndarray:
    return _o([f"{value:.{decimals}f}" for value in np.asarray(values, dtype=float).tolist()])


# --- Aurora MySQL --------------------------------------------------------------------------------------------


def mysql_slow_query(activity: Activity, settings: Mapping[str, object], version: str,
                     start_s: float = 0.0) -> pd.DataFrame:
    """One entry per statement slower than ``long_query_time`` (or not using an index, with
    ``log_queries_not_using_indexes``), written when it ends."""
    s = activity.statements
    query_s = (s["end_s"] - s["start_s"]).to_numpy()
    slow = query_s > float(settings["long_query_time"])
    if settings["log_queries_not_using_indexes"]:
        slow |= ~s["uses_index"].to_numpy(dtype=bool)
    s = s[slow & bool(settings["slow_query_log"])].reset_index(drop=True)
    query_s, lock_s = (s["end_s"] - s["start_s"]).to_numpy(), s["lock_wait_s"].to_numpy(dtype=float)
    stamps = mysql_timestamps(s["end_s"].to_numpy(), version, start_s).tolist()
    started = _epoch(s["start_s"].to_numpy(), start_s).tolist()
    columns = ("user", "host", "connection_id", "rows_sent", "rows_examined", "statement")
    message = [f"# Time: {stamp}\n# User@Host: {user}[{user}] @  [{host}]  Id: {connection:>5}\n"
               f"# Query_time: {query:.6f}  Lock_time: {lock:.6f} Rows_sent: {sent}  Rows_examined: {examined}\n"
               f"SET timestamp={start};\n{statement};"
               for stamp, start, query, lock, user, host, connection, sent, examined, statement in zip(
                   stamps, started, query_s.tolist(), lock_s.tolist(), *(s[c].tolist() for c in columns),
                   strict=True)]
    return pd.DataFrame({"time_s": s["end_s"], "user": s["user"], "host": s["host"],
                         "connection_id": s["connection_id"], "query_time_s": query_s, "lock_time_s": lock_s,
                         "rows_sent": s["rows_sent"], "rows_examined": s["rows_examined"],
                         "statement": s["statement"], "message": message})


def mysql_general(activity: Activity, settings: Mapping[str, object], version: str,
                  start_s: float = 0.0) -> pd.DataFrame:
    """Every connection (``Connect``, ``Quit``) and statement (``Query``) when ``general_log`` is on."""
    if not settings["general_log"]:
        return _empty(["time_s", "connection_id", "command", "argument", "message"])
    c, s = activity.connections, activity.statements
    parts = [
        pd.DataFrame({"time_s": c["connect_s"], "connection_id": c["connection_id"], "command": "Connect",
                      "argument": _o(c["user"]) + "@" + _o(c["host"]) + " on " + _o(c["database"]) + " using TCP/IP",
                      "order": 0}),
        pd.DataFrame({"time_s": s["start_s"], "connection_id": s["connection_id"], "command": "Query",
                      "argument": _o(s["statement"]), "order": 1}),
        pd.DataFrame({"time_s": c["disconnect_s"], "connection_id": c["connection_id"], "command": "Quit",
                      "argument": "", "order": 2}),
    ]
    lines = pd.concat(parts, ignore_index=True).sort_values(["time_s", "order"], kind="stable")
    lines = lines.drop(columns="order").reset_index(drop=True)
    stamps = mysql_timestamps(lines["time_s"].to_numpy(), version, start_s)
    lines["message"] = [f"{stamp}\t{connection:>6} {command}\t{argument}" for stamp, connection, command, argument
                        in zip(stamps.tolist(), *(lines[c].tolist() for c in ("connection_id", "command", "argument")),
                               strict=True)]
    return lines


def _audit_operations(statements: pd.Series, events: set[str]) -> pd.Series:
    """True for the statements the listed ``server_audit_events`` log."""
    if "QUERY" in events:
        return pd.Series(True, index=statements.index)
    word, logged = _first_word(statements), pd.Series(False, index=statements.index)
    for event, words in (("QUERY_DML", _DML), ("QUERY_DDL", _DDL), ("QUERY_DCL", _DCL)):
        if event in events:
            logged |= word.isin(words)
    return logged


def mysql_audit(activity: Activity, settings: Mapping[str, object], server_host: str,
                start_s: float = 0.0) -> pd.DataFrame:
    """Advanced Auditing when ``server_audit_logging`` is on: ``CONNECT``/``DISCONNECT`` with ``CONNECT``, each
    statement the ``QUERY`` events name (``TABLE`` events are not modelled: the model knows no tables)."""
    columns = ["time_s", "user", "host", "connection_id", "query_id", "operation", "database", "object", "retcode"]
    events = set(str(settings["server_audit_events"]).split(",")) - {""}
    if not settings["server_audit_logging"] or not events:
        return _empty([*columns, "message"])
    c, s = activity.connections, activity.statements
    parts = []
    if "CONNECT" in events:
        for order, operation, time_column in ((0, "CONNECT", "connect_s"), (2, "DISCONNECT", "disconnect_s")):
            parts.append(pd.DataFrame({"time_s": c[time_column], "user": c["user"], "host": c["host"],
                                       "connection_id": c["connection_id"], "query_id": 0, "operation": operation,
                                       "database": c["database"], "object": "", "retcode": 0, "order": order}))
    queries = s[_audit_operations(s["statement"], events)]
    parts.append(pd.DataFrame({"time_s": queries["end_s"], "user": queries["user"], "host": queries["host"],
                               "connection_id": queries["connection_id"], "query_id": 0, "operation": "QUERY",
                               "database": queries["database"], "object": queries["statement"], "retcode": 0,
                               "order": 1}))
    lines = pd.concat(parts, ignore_index=True).sort_values(["time_s", "order"], kind="stable")
    lines = lines.drop(columns="order").reset_index(drop=True)
    is_query = (lines["operation"] == "QUERY").to_numpy()
    lines.loc[is_query, "query_id"] = np.arange(1, int(is_query.sum()) + 1)
    objects = _o(lines["object"])
    quoted = np.where(is_query, "'" + _o([text.replace("'", "\\'") for text in objects]) + "'", "")
    lines["message"] = (_o(_epoch(lines["time_s"].to_numpy(), start_s, 1_000_000)) + "," + server_host + ","
                        + _o(lines["user"]) + "," + _o(lines["host"]) + "," + _o(lines["connection_id"]) + ","
                        + _o(lines["query_id"]) + "," + _o(lines["operation"]) + "," + _o(lines["database"]) + ","
                        + _o(quoted) + "," + _o(lines["retcode"]))
    return lines


def _engine_events(run: Run) -> pd.DataFrame:
    return run.sql("SELECT time_s, kind, message FROM events WHERE kind IN ($1, $2, $3, $4, $5) ORDER BY seq",
                   params=[names.RESUMED, names.SCALE_COMPLETED, names.PAUSED_EVENT, names.TRANSACTION_ABORTED,
                           names.CONNECTION_CLOSED]).df()


def mysql_error(run: Run, activity: Activity, version: str, start_s: float = 0.0) -> pd.DataFrame:
    """The engine's start (after a resume or a scaling) and stop (at a pause) notes; on by default."""
    events = _engine_events(run)
    events = events[events["kind"].isin([names.RESUMED, names.SCALE_COMPLETED, names.PAUSED_EVENT])]
    text = np.where(events["kind"] == names.PAUSED_EVENT, "mysqld: Shutdown complete",
                    "mysqld: ready for connections.")
    thread = " 0 " if version != "5.6" else " "
    frame = pd.DataFrame({"time_s": events["time_s"].to_numpy(), "level": "Note", "text": text})
    frame["message"] = (mysql_timestamps(events["time_s"].to_numpy(), version, start_s) + thread + "[Note] "
                        + _o(text))
    return frame


# --- Aurora PostgreSQL ---------------------------------------------------------------------------------------


def _pg_lines(time_s: object, frame: pd.DataFrame, severity: object, text: object) -> pd.DataFrame:
    return pd.DataFrame({"time_s": np.asarray(time_s, dtype=float), "host": _o(frame["host"]),
                         "port": _o(frame["port"]), "user": _o(frame["user"]), "database": _o(frame["database"]),
                         "pid": _o(frame["connection_id"] + PID_OFFSET), "severity": severity, "text": _o(text)})


def _session_time(seconds: np.ndarray) -> np.ndarray:
    """``disconnection: session time: 1:30:00.000``."""
    ms = np.round(np.asarray(seconds, dtype=float) * 1000).astype("int64").tolist()
    return _o([f"{m // 3_600_000}:{m // 60_000 % 60:02d}:{m // 1000 % 60:02d}.{m % 1000:03d}" for m in ms])


def postgresql_log(run: Run, activity: Activity, settings: Mapping[str, object], start_s: float = 0.0) -> pd.DataFrame:
    """The server's log: connections, statements and durations, lock waits, temporary files, engine start/stop
    and the errors of forced scaling and timeouts, one row per line."""
    c, s = activity.connections, activity.statements
    host, port, user, database = _o(c["host"]), _o(c["port"]), _o(c["user"]), _o(c["database"])
    unknown = c.assign(user="[unknown]", database="[unknown]")
    session_time = _session_time(c["disconnect_s"] - c["connect_s"])
    parts = [_pg_lines(c["connect_s"], unknown, "LOG",
                       [f"connection received: host={h} port={p}" for h, p in zip(host, port, strict=True)]),
             _pg_lines(c["connect_s"], c, "LOG", [f"connection authorized: user={u} database={d}"
                                                  for u, d in zip(user, database, strict=True)]),
             _pg_lines(c["disconnect_s"], c, "LOG", [
                 f"disconnection: session time: {t} user={u} database={d} host={h} port={p}"
                 for t, u, d, h, p in zip(session_time, user, database, host, port, strict=True)])]
    logged = _logged_statements(s, str(settings["log_statement"]))
    parts.append(_pg_lines(s["start_s"][logged], s[logged], "LOG", "statement: " + _o(s["statement"][logged])))
    parts += _durations(s, logged, int(settings["log_min_duration_statement"]))
    parts += _lock_wait_lines(s, settings)
    parts += _temp_file_lines(s, int(settings["log_temp_files"]))
    parts.append(_engine_lines(run))
    lines = pd.concat([p for p in parts if len(p)], ignore_index=True).sort_values("time_s", kind="stable")
    lines = lines.reset_index(drop=True)
    stamps = postgresql_timestamps(lines["time_s"].to_numpy(), start_s)
    # One f-string per line: 257 k lines in 0.15 s, where fifteen array additions took 0.65 s.
    lines["message"] = [f"{stamp}:{host}({port}):{user}@{database}:[{pid}]:{severity}:  {text}" if host else
                        f"{stamp}::{user}@{database}:[{pid}]:{severity}:  {text}"
                        for stamp, host, port, user, database, pid, severity, text in zip(
                            stamps.tolist(), *(lines[c].tolist() for c in ("host", "port", "user", "database", "pid",
                                                                          "severity", "text")), strict=True)]
    return lines.drop(columns="port")


def _logged_statements(statements: pd.DataFrame, log_statement: str) -> pd.Series:
    if log_statement == "all":
        return pd.Series(True, index=statements.index)
    if log_statement == "none":
        return pd.Series(False, index=statements.index)
    return _first_word(statements["statement"]).isin(_DDL + _MOD if log_statement == "mod" else _DDL)


def _durations(s: pd.DataFrame, logged: pd.Series, threshold_ms: int) -> list[pd.DataFrame]:
    if threshold_ms < 0:
        return []
    duration_ms = ((s["end_s"] - s["start_s"]) * 1000).to_numpy()
    slow = duration_ms >= threshold_ms
    statement = np.where(logged.to_numpy()[slow], "", "  statement: " + _o(s["statement"][slow]))
    text = "duration: " + _floats(duration_ms[slow], 3) + " ms" + _o(statement)
    return [_pg_lines(s["end_s"][slow], s[slow], "LOG", text)]


def _lock_wait_lines(s: pd.DataFrame, settings: Mapping[str, object]) -> list[pd.DataFrame]:
    timeout_s = int(settings["deadlock_timeout"]) / 1000
    waited = s[(s["lock_wait_s"] >= timeout_s) & (s["lock_kind"] != "") & bool(settings["log_lock_waits"])]
    if waited.empty:
        return []
    pid, holder = _o(waited["connection_id"] + PID_OFFSET), _o(waited["lock_holder"] + PID_OFFSET)
    what = np.where(waited["lock_kind"] == "relation", "AccessExclusiveLock on relation 16386 of database 16385",
                    "ShareLock on transaction " + _o(700 + waited["lock_holder"]))
    asked, acquired = waited["start_s"], waited["start_s"] + waited["lock_wait_s"]
    still = "process " + pid + " still waiting for " + _o(what) + f" after {timeout_s * 1000:.3f} ms"
    got = "process " + pid + " acquired " + _o(what) + " after " + _floats(waited["lock_wait_s"] * 1000, 3) + " ms"
    in_time = (acquired < waited["end_s"]).to_numpy()  # a session that gave up first never acquired it
    rows = waited["lock_kind"] == "transaction"  # a row lock: PostgreSQL names the row it was updating
    context = 'while updating tuple (0,1) in relation "' + _o(waited["lock_table"][rows]) + '"'
    return [_pg_lines(asked + timeout_s, waited, "LOG", still),
            _pg_lines(asked + timeout_s, waited, "DETAIL", "Process holding the lock: " + holder + ". Wait queue: "
                      + pid + "."),
            _pg_lines(asked[rows] + timeout_s, waited[rows], "CONTEXT", context),
            _pg_lines(asked + timeout_s, waited, "STATEMENT", waited["statement"]),
            _pg_lines(acquired[in_time], waited[in_time], "LOG", got[in_time]),
            _pg_lines(acquired[in_time & rows.to_numpy()], waited[in_time & rows.to_numpy()], "CONTEXT",
                      _o(context)[in_time[rows.to_numpy()]]),
            _pg_lines(acquired[in_time], waited[in_time], "STATEMENT", waited["statement"][in_time])]


def _temp_file_lines(s: pd.DataFrame, threshold_kb: int) -> list[pd.DataFrame]:
    if threshold_kb < 0:
        return []
    spilled = s[(s["temp_file_kb"] > 0) & (s["temp_file_kb"] >= threshold_kb)]
    pid = _o(spilled["connection_id"] + PID_OFFSET)
    text = 'temporary file: path "base/pgsql_tmp/pgsql_tmp' + pid + '.0", size ' + _o(spilled["temp_file_kb"] * 1024)
    return [_pg_lines(spilled["end_s"], spilled, "LOG", text),
            _pg_lines(spilled["end_s"], spilled, "STATEMENT", spilled["statement"])]


def _engine_line(kind: str, message: str) -> tuple[str, str]:
    """(severity, text) of the server's line for one event: a stop, a start, or the error the event carries."""
    if kind == names.PAUSED_EVENT:
        return "LOG", "database system is shut down"
    if kind in (names.RESUMED, names.SCALE_COMPLETED):
        return "LOG", "database system is ready to accept connections"
    level, _, rest = message.partition(":")
    return (level, rest.strip()) if level in ("FATAL", "ERROR") else ("LOG", message)


def _engine_lines(run: Run) -> pd.DataFrame:
    """Start and stop of the server, and the errors the run's events record (forced scaling, timeouts)."""
    events = _engine_events(run)
    lines = [_engine_line(kind, str(message)) for kind, message in zip(events["kind"], events["message"],
                                                                      strict=True)]
    blank = pd.DataFrame({"host": "", "port": 0, "user": "", "database": "",
                          "connection_id": POSTMASTER_PID - PID_OFFSET}, index=range(len(events)))
    return _pg_lines(events["time_s"], blank, _o([severity for severity, _ in lines]), [text for _, text in lines])


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=float if column == "time_s" else object) for column in columns})
