"""Who ran which statement when: the sessions behind a run's engine logs (see ``engine_logs`` for the rules).

Example:
    >>> from aurora_sim.scenarios import tour
    >>> activity = executions(tour().run())
    >>> activity.statements.columns.tolist()[:4]
    ['connection_id', 'user', 'host', 'port']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import names
from ._validate import _check_positive, _check_type
from .cloudwatch import engine_up_s
from .simulation import Run
from .workload import (
    AdvisoryLock,
    HoldCursor,
    IdleConnection,
    Listen,
    LongQuery,
    LongTransaction,
    Notify,
    TableLock,
    TemporaryTable,
)

SHORT_STATEMENT_S = 0.002  # BEGIN, COMMIT, a LOCK and the like: how long the model lets them take
JOB_CONNECTION_ID_BASE, REQUEST_CONNECTION_ID_BASE = 100, 1000  # MySQL thread ids; PostgreSQL pids add PID_OFFSET
PID_OFFSET = 20_000


@dataclass(frozen=True, kw_only=True)
class Session:
    """Who runs a blocking operation, and what it runs: the labels its log lines carry.

    ``statement_s``: how long its statement runs (``None``: a long query runs the whole operation, anything else
    a moment). ``uses_index`` False puts it in MySQL's slow log under ``log_queries_not_using_indexes``.
    ``temp_file_kb``: the temporary file its statement writes (PostgreSQL's ``log_temp_files``). ``locks``: a table
    it locks for its whole life; a later session locking the same table waits for it.

    Example:
        >>> Session(user="reporting", statement="SELECT 1", statement_s=-1)
        Traceback (most recent call last):
        ...
        ValueError: statement_s=-1 must be > 0
    """

    user: str
    statement: str
    host: str = "10.0.2.15"
    database: str = "shop"
    statement_s: float | None = None
    uses_index: bool = True
    rows_sent: int = 1
    rows_examined: int = 1
    temp_file_kb: int = 0
    locks: str = ""

    def __post_init__(self) -> None:
        for name in ("user", "statement", "host", "database", "locks"):
            _check_type(name, getattr(self, name), str, "a string")
        if not self.user or not self.statement:
            raise ValueError(f"user={self.user!r} and statement={self.statement!r} must not be empty")
        if self.statement_s is not None:
            _check_positive("statement_s", self.statement_s)
        for name in ("rows_sent", "rows_examined", "temp_file_kb"):
            _check_type(name, getattr(self, name), int, "a whole number")
            _check_positive(name, getattr(self, name), allow_zero=True)
        _check_type("uses_index", self.uses_index, bool, "True or False")


APP_SESSION = Session(user="shop_app", host="10.0.1.10", statement="SELECT * FROM orders WHERE order_id = ?")
DEFAULT_SESSIONS = {
    LongTransaction: Session(user="app",
                             statement="UPDATE orders SET status = 'archived' WHERE created < '2023-01-01'"),
    LongQuery: Session(user="app", statement="SELECT customer_id, sum(total) FROM orders GROUP BY customer_id",
                       uses_index=False, rows_examined=1_000_000, rows_sent=50_000),
    TemporaryTable: Session(user="app", statement="CREATE TEMPORARY TABLE recent_orders AS SELECT * FROM orders "
                            "WHERE created > now() - interval 1 day"),
    TableLock: Session(user="app", statement="LOCK TABLES orders WRITE", locks="orders"),
    IdleConnection: Session(user="monitor", host="10.0.3.7", statement="SELECT 1"),
    AdvisoryLock: Session(user="app", statement="SELECT pg_advisory_lock(42)"),
    Listen: Session(user="app", statement="LISTEN orders_changed"),
    Notify: Session(user="app", statement="NOTIFY orders_changed"),
    HoldCursor: Session(user="app", statement="DECLARE orders_cursor CURSOR WITH HOLD FOR SELECT * FROM orders"),
}
_POSTGRESQL_TABLE_LOCK = "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
_COLUMNS = ["connection_id", "user", "host", "port", "database", "start_s", "end_s", "statement", "uses_index",
            "rows_sent", "rows_examined", "temp_file_kb", "lock_wait_s", "lock_holder", "lock_kind", "lock_table",
            "source", "session_start_s", "session_end_s"]


@dataclass(frozen=True)
class Activity:
    """Every statement executed (``statements``) and every connection (``connections``) of a run."""

    statements: pd.DataFrame
    connections: pd.DataFrame


def executions(run: Run, sessions: Sequence[Session | None] = ()) -> Activity:
    """The statements and connections behind the run's logs: its served requests and its blocking operations
    (``sessions[i]`` labels blocking operation ``i``)."""
    _check_type("sessions", sessions, (list, tuple), "a list of Session (or None) per blocking operation")
    for index, session in enumerate(sessions):
        if session is not None and not isinstance(session, Session):
            raise ValueError(f"sessions[{index}]={session!r} must be a Session or None")
    requests = _request_statements(run)
    jobs = _job_statements(run, sessions)
    parts = [part for part in (requests, jobs) if len(part)] or [requests]  # an empty part would sway the dtypes
    statements = pd.concat(parts, ignore_index=True).sort_values(["start_s", "connection_id"],
                                                                 kind="stable").reset_index(drop=True)
    connections = statements.groupby("connection_id", sort=False).agg(
        user=("user", "first"), host=("host", "first"), port=("port", "first"), database=("database", "first"),
        connect_s=("session_start_s", "first"), disconnect_s=("session_end_s", "first")).reset_index()
    return Activity(statements.drop(columns=["session_start_s", "session_end_s"]), connections)


def _request_statements(run: Run) -> pd.DataFrame:
    """One statement per served request: it ran while the engine was up between its arrival and its end."""
    served = run.sql("SELECT request_id, submitted_s, finished_s FROM requests WHERE outcome = 'ok' "
                     "ORDER BY request_id").df()
    ids = served["request_id"].to_numpy(dtype=np.int64)
    end = served["finished_s"].to_numpy(dtype=float)
    query_s = engine_up_s(run, served["submitted_s"].to_numpy(dtype=float), end)
    start = end - query_s
    session = APP_SESSION
    prefix, _, suffix = session.statement.partition("?")  # "?" stands for each request's own order id
    text = (prefix + pd.Series(ids + 100_000).astype(str) + suffix) if "?" in session.statement \
        else session.statement
    return pd.DataFrame({
        "connection_id": ids + REQUEST_CONNECTION_ID_BASE, "user": session.user, "host": session.host,
        "port": 40_000 + ids % 20_000, "database": session.database, "start_s": start, "end_s": end,
        "statement": text, "uses_index": session.uses_index, "rows_sent": session.rows_sent,
        "rows_examined": session.rows_examined, "temp_file_kb": 0, "lock_wait_s": 0.0, "lock_holder": -1,
        "lock_kind": "", "lock_table": "", "source": "request", "session_start_s": start, "session_end_s": end})


def _job_statements(run: Run, sessions: Sequence[Session | None]) -> pd.DataFrame:
    """The statements of every blocking operation's session, lock waits included."""
    engine = run.config.engine
    jobs = []
    for index, op in enumerate(run.workload.blocking):
        session = sessions[index] if index < len(sessions) and sessions[index] is not None \
            else default_session(type(op), engine)
        connect_s = next_up_s(run, op.start_s)
        if connect_s >= op.end_s:
            continue
        jobs.append((index, op, session, connect_s))
    waits = _lock_waits(jobs)
    rows = []
    for index, op, session, connect_s in jobs:
        release_s, holder, lock_kind = waits.get(index, (connect_s, -1, ""))
        base = {"connection_id": JOB_CONNECTION_ID_BASE + index, "user": session.user, "host": session.host,
                "port": 50_000 + index, "database": session.database, "uses_index": session.uses_index,
                "temp_file_kb": 0, "lock_wait_s": 0.0, "lock_holder": -1, "lock_kind": "", "lock_table": "",
                "source": "job",
                "session_start_s": connect_s, "session_end_s": op.end_s, "rows_sent": 0, "rows_examined": 0}
        for text, start, end, main in _job_script(op, session, connect_s, release_s, engine):
            row = {**base, "statement": text, "start_s": start, "end_s": end}
            wait_s = max(min(release_s, op.end_s) - start, 0.0)
            if main:
                row.update(rows_sent=session.rows_sent, rows_examined=session.rows_examined,
                           temp_file_kb=session.temp_file_kb, lock_wait_s=wait_s, lock_holder=holder,
                           lock_kind=lock_kind, lock_table=session.locks if lock_kind else "")
            rows.append(row)
    return pd.DataFrame(rows, columns=_COLUMNS)


def default_session(kind: type, engine: str) -> Session:
    """The ``Session`` a blocking operation of ``kind`` gets when none is given (table locks in the engine's SQL).

    Example:
        >>> default_session(TableLock, "aurora-postgresql").statement
        'LOCK TABLE orders IN ACCESS EXCLUSIVE MODE'
    """
    session = DEFAULT_SESSIONS[kind]
    if kind is TableLock and engine == "aurora-postgresql":
        session = dataclasses.replace(session, statement=_POSTGRESQL_TABLE_LOCK.format(table=session.locks))
    return session


def _job_script(op: object, session: Session, connect_s: float, release_s: float,
                engine: str) -> list[tuple[str, float, float, bool]]:
    """(statement, start, end, is the session's own statement) for one blocking operation's session; its own
    statement waits until ``release_s`` for a lock another session holds."""
    end_s = op.end_s
    main_s = (end_s - connect_s) if isinstance(op, LongQuery) and session.statement_s is None \
        else (session.statement_s or SHORT_STATEMENT_S)
    main_start = connect_s + (SHORT_STATEMENT_S if _opens_transaction(op, engine) else 0.0)
    main_end = min(max(release_s, main_start) + main_s, end_s)
    script = []
    if _opens_transaction(op, engine):
        script.append(("BEGIN", connect_s, connect_s + SHORT_STATEMENT_S, False))
    script.append((session.statement, main_start, main_end, True))
    closing = "UNLOCK TABLES" if isinstance(op, TableLock) and engine == "aurora-mysql" else "COMMIT"
    if _opens_transaction(op, engine) or isinstance(op, TableLock):
        script.append((closing, max(end_s - SHORT_STATEMENT_S, main_end), end_s, False))
    return script


def _opens_transaction(op: object, engine: str) -> bool:
    return isinstance(op, LongTransaction) or (isinstance(op, TableLock) and engine == "aurora-postgresql")


def _lock_waits(jobs: list[tuple[int, object, Session, float]]) -> dict[int, tuple[float, int, str]]:
    """index → (when the lock it waits for is released, the holder's connection id, "relation" or "transaction")
    for every session that asked for a table another session held."""
    waits = {}
    for index, op, session, connect_s in jobs:
        if not session.locks:
            continue
        holders = [(h_index, h_op) for h_index, h_op, h_session, h_connect in jobs
                   if h_index != index and h_session.locks == session.locks and h_connect <= connect_s < h_op.end_s
                   and (h_connect, h_index) < (connect_s, index)]
        if holders:
            h_index, h_op = max(holders, key=lambda holder: holder[1].end_s)
            kind = "relation" if isinstance(op, TableLock) else "transaction"  # what the waiter asked for
            waits[index] = (h_op.end_s, JOB_CONNECTION_ID_BASE + h_index, kind)
    return waits


def next_up_s(run: Run, time_s: float) -> float:
    """The first moment at or after ``time_s`` at which the engine runs (a session arriving while the cluster is
    paused or resuming connects once it is back).

    Example:
        >>> from aurora_sim.scenarios import tour
        >>> next_up_s(tour().run(), 0.0)
        0.0
    """
    steps = run.sql("SELECT time_s, state FROM capacity ORDER BY time_s, seq").df()
    times = steps["time_s"].to_numpy(dtype=float)
    up = steps["state"].isin([names.ACTIVE, names.SCALING]).to_numpy()
    index = max(int(np.searchsorted(times, time_s, side="right")) - 1, 0)
    if up[index]:
        return float(time_s)
    later = np.flatnonzero(up[index + 1:])
    return float(times[index + 1 + later[0]]) if len(later) else float("inf")
