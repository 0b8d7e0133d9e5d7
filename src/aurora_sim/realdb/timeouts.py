"""Notebook 05 on a real PostgreSQL: statement and idle-in-transaction timeouts, and a lock wait."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from .._tables import WholeTable
from .pools import _check_range, describe_error
from .startup import _CONNECT_KWARGS, _first_line

# ---------------------------------------------------------------- notebook 05: timeouts and locks


@dataclass(frozen=True)
class CaughtError:
    """An error a demonstration provoked, as data; `session_survived` tells a statement error from a dead session.

    Example:
        >>> CaughtError(error_class="QueryCanceled", sqlstate="57014", elapsed_ms=201.0, session_survived=True,
        ...             message="canceling statement due to statement timeout")
        CaughtError(QueryCanceled 57014 'canceling statement due to statement timeout' after 201 ms, session survived)
    """

    error_class: str | None
    sqlstate: str | None
    message: str
    elapsed_ms: float
    session_survived: bool

    def __repr__(self) -> str:
        session = "session survived" if self.session_survived else "session ended"
        return (f"CaughtError({self.error_class} {self.sqlstate} {self.message!r} after {self.elapsed_ms:.0f} ms, "
                f"{session})")


def caught_errors(caught: Mapping[str, CaughtError]) -> pd.DataFrame:
    """The errors the demonstrations provoked, one row each, labelled by what the session did.

    Example:
        >>> error = CaughtError(error_class="QueryCanceled", sqlstate="57014", elapsed_ms=201.0,
        ...                     session_survived=True, message="canceling statement due to statement timeout")
        >>> caught_errors({"statement_timeout = 200 ms": error}).loc["statement_timeout = 200 ms", "the session"]
        'survived'
    """
    rows = {what: {"exception class": e.error_class, "SQLSTATE": e.sqlstate, "message": e.message,
                   "after (ms)": round(e.elapsed_ms), "the session": "survived" if e.session_survived else "ended"}
            for what, e in caught.items()}
    return WholeTable.from_dict(rows, orient="index").rename_axis("what the session did")


def _caught(exc: psycopg.Error | None, t0: float, conn: psycopg.Connection) -> CaughtError:
    elapsed_ms = (time.perf_counter() - t0) * 1000
    survived = False
    if not conn.closed:
        with suppress(psycopg.Error):
            survived = conn.execute("SELECT 1").fetchone() == (1,)
    return CaughtError(error_class=type(exc).__name__ if exc else None, sqlstate=getattr(exc, "sqlstate", None),
                       message=_first_line(exc) if exc else "no error", elapsed_ms=elapsed_ms,
                       session_survived=survived)


def statement_timeout_demo(dsn: str, timeout_ms: int = 200) -> CaughtError:
    """Run `SELECT pg_sleep(1)` under `SET statement_timeout`; the statement is cancelled, the session lives.

    Raises:
        ValueError: If timeout_ms is outside 1..999 (0 would disable the timeout; 1000+ would let the sleep end).
    """
    _check_range("timeout_ms", timeout_ms, 1, 999, "milliseconds, below the 1 s sleep")
    with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
        t0, error = time.perf_counter(), None
        try:
            conn.execute("SELECT pg_sleep(1)")
        except psycopg.Error as exc:
            error = exc
        return _caught(error, t0, conn)


def idle_in_transaction_demo(dsn: str, timeout_ms: int = 300) -> CaughtError:
    """BEGIN; SELECT 1; wait past `idle_in_transaction_session_timeout`: the next statement finds the session gone.

    Raises:
        ValueError: If timeout_ms is outside 1..5000 (0 would disable the timeout).
    """
    _check_range("timeout_ms", timeout_ms, 1, 5000, "milliseconds")
    with psycopg.connect(dsn, **_CONNECT_KWARGS) as conn:  # not autocommit: the first statement opens a transaction
        conn.execute(f"SET idle_in_transaction_session_timeout = {int(timeout_ms)}")
        conn.execute("SELECT 1")
        t0, error = time.perf_counter(), None
        time.sleep(timeout_ms / 1000)
        _wait_until_ended(dsn, conn.info.backend_pid)
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            error = exc
        return _caught(error, t0, conn)


@dataclass(frozen=True)
class LockWait:
    """What `lock_wait_demo` saw: the lock table, how the waiter ended, and the server's log lines about it."""

    locks: pd.DataFrame
    waiter_outcome: str
    log_lines: tuple[str, ...]
    log_note: str

    def __repr__(self) -> str:
        return (f"LockWait(locks={len(self.locks)} rows, waiter={self.waiter_outcome!r}, "
                f"log_lines={len(self.log_lines)})")

    def aftermath(self) -> pd.DataFrame:
        """After the holder rolled back: how the waiter ended, how the wait was logged, and the log's lines.

        Example:
            >>> wait = LockWait(locks=pd.DataFrame(), waiter_outcome="updated the row after waiting 105 ms",
            ...                 log_lines=(), log_note="no server log")
            >>> wait.aftermath()["seen"].tolist()
            ['updated the row after waiting 105 ms', 'no server log', '(no lines about the wait)']
        """
        lines = self.log_lines or ("(no lines about the wait)",)
        rows = [("the waiter", self.waiter_outcome), ("lock logging", self.log_note)]
        return WholeTable(rows + [("server log", line) for line in lines], columns=["what", "seen"])


_LOCKS_SQL = """
SELECT CASE a.pid WHEN %(holder)s THEN 'holder' ELSE 'waiter' END AS session, a.pid, l.locktype,
       l.relation::regclass::text AS relation, l.mode, l.granted, pg_blocking_pids(a.pid) AS blocked_by,
       a.state, a.wait_event_type, left(a.query, 60) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.pid IN (%(holder)s, %(waiter)s) AND l.locktype IN ('relation', 'transactionid', 'tuple')
  AND (l.relation IS NULL OR l.relation = %(table)s::regclass)
ORDER BY l.granted, session, l.locktype
"""


def lock_wait_demo(dsn: str, server_log: Path | None = None, wait_timeout_ms: int = 3000) -> LockWait:
    """One session updates a row and keeps its transaction open; a second updates the same row and waits.

    A third session reads ``pg_locks`` joined with ``pg_stat_activity`` while the second waits, then the first
    rolls back and the second goes on. With ``server_log`` (``pg.log_path`` of a server started by ``server()``)
    the waiter turns on ``log_lock_waits`` with ``deadlock_timeout = 100ms`` for its own session (superuser
    settings; nothing changes server-wide) and the server's log lines about the wait are returned.

    Raises:
        ValueError: If wait_timeout_ms is outside 500..30000 (the waiter's lock_timeout bounds the demo).
    """
    _check_range("wait_timeout_ms", wait_timeout_ms, 500, 30_000, "milliseconds")
    schema = f"aurora_wb_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.accounts"
    admin = psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS)
    holder = waiter = None
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, balance_usd int NOT NULL)")
        admin.execute(f"INSERT INTO {table} VALUES (1, 100)")
        holder = psycopg.connect(dsn, **_CONNECT_KWARGS)
        holder.execute(f"UPDATE {table} SET balance_usd = balance_usd - 10 WHERE id = 1")  # transaction stays open
        waiter = psycopg.connect(dsn, **_CONNECT_KWARGS)
        log_note = _prepare_lock_logging(waiter, server_log)
        waiter.execute(f"SET lock_timeout = {int(wait_timeout_ms)}")
        outcome: list[str] = []
        thread = threading.Thread(target=_wait_for_row, args=(waiter, table, outcome), daemon=True)
        thread.start()
        ids = {"holder": holder.info.backend_pid, "waiter": waiter.info.backend_pid, "table": table}
        _poll(lambda: admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                    (ids["waiter"],)).fetchone() == (True,), wait_timeout_ms / 1000)
        locks = pd.DataFrame(admin.execute(_LOCKS_SQL, ids).fetchall(),
                             columns=["session", "pid", "locktype", "relation", "mode", "granted", "blocked_by",
                                      "state", "wait_event_type", "query"]).fillna({"relation": ""})
        if server_log is not None:
            _poll(lambda: bool(_log_lines(server_log, ids["waiter"])), 2.0)
        holder.rollback()
        thread.join(wait_timeout_ms / 1000 + 1)
        lines = _log_lines(server_log, ids["waiter"]) if server_log is not None else ()
        return LockWait(locks=locks, waiter_outcome=outcome[0] if outcome else "still waiting (unexpected)",
                        log_lines=lines, log_note=log_note)
    finally:
        for conn in (holder, waiter):
            if conn is not None:
                conn.close()
        with suppress(psycopg.Error):
            admin.execute("SET lock_timeout = '2s'")
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


def _prepare_lock_logging(waiter: psycopg.Connection, server_log: Path | None) -> str:
    if server_log is None:
        return "no server log: the server was not started by this workbook, so its log is not readable here"
    try:
        waiter.execute("SET log_lock_waits = on")
        waiter.execute("SET deadlock_timeout = '100ms'")
    except psycopg.Error as exc:
        waiter.rollback()
        return f"could not turn on log_lock_waits: {describe_error(exc)}"
    waiter.commit()
    return f"log_lock_waits = on, deadlock_timeout = 100ms for the waiting session; log: {server_log}"


def _wait_for_row(waiter: psycopg.Connection, table: str, outcome: list[str]) -> None:
    t0 = time.perf_counter()
    try:
        waiter.execute(f"UPDATE {table} SET balance_usd = balance_usd + 10 WHERE id = 1")
        waiter.commit()
        outcome.append(f"updated the row after waiting {(time.perf_counter() - t0) * 1000:.0f} ms")
    except psycopg.Error as exc:
        outcome.append(f"{describe_error(exc)} after {(time.perf_counter() - t0) * 1000:.0f} ms")


def _wait_until_ended(dsn: str, backend_pid: int, timeout_s: float = 5.0) -> bool:
    """Wait until the server has ended backend ``backend_pid`` (seen from a second session), instead of sleeping a
    fixed margin past the timeout: the next statement then meets the server's FATAL at once."""
    with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as watcher:
        return _poll(lambda: watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                             (backend_pid,)).fetchone() == (0,), timeout_s)


def _poll(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _log_lines(server_log: Path, pid: int) -> tuple[str, ...]:
    """The log's lines from backend `pid` about a lock wait (the default log_line_prefix is '%m [%p] ')."""
    try:
        text = server_log.read_text(errors="replace")
    except OSError:
        return ()
    keep = ("still waiting for", "acquired", "DETAIL:  Process holding")
    return tuple(line for line in text.splitlines() if f"[{pid}]" in line and any(k in line for k in keep))
