"""Notebook 11 on a real PostgreSQL: log a slow statement and a lock wait, and read the server's own log lines.

Aurora Serverless v1 publishes what the cluster parameter group switches on; here the same parameters are
switched on for single sessions with ``SET`` (superuser settings on the workbook's server: nothing changes
server-wide, so other notebooks and the Data API never see them). ``slow_statement_and_lock_wait`` runs one
statement past ``log_min_duration_statement`` and one fast one, then makes a session wait on a row lock past
``deadlock_timeout`` with ``log_lock_waits`` on, and returns the lines the server wrote about them.

Example (needs a server; tests/test_engine_logs.py runs it)::

    with realdb.server() as pg:
        lines = server_log.slow_statement_and_lock_wait(pg.dsn, pg.log_path).lines
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from .._tables import WholeTable
from .startup import CONNECT_TIMEOUT_S
from .timeouts import _poll

_CONNECT = {"connect_timeout": CONNECT_TIMEOUT_S, "options": "-c statement_timeout=10s"}
# PostgreSQL's default log_line_prefix '%m [%p] ': milliseconds, time zone, process id.
LINE = re.compile(r"^(?P<timestamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: \S+)?) \[(?P<pid>\d+)\] "
                  r"(?P<severity>[A-Z]+):  (?P<text>.*)$")
SLOW, FAST = "SELECT pg_sleep({seconds})", "SELECT count(*) FROM {table}"


@dataclass(frozen=True)
class ServerLog:
    """The server's log lines about the demonstration's sessions (``lines``), and what was switched on (``note``)."""

    lines: pd.DataFrame
    note: str

    def __repr__(self) -> str:
        return f"ServerLog({len(self.lines)} lines: {self.note})"


def parse_lines(text: str, pids: dict[int, str]) -> pd.DataFrame:
    """The lines of a server log written by the processes in ``pids`` (pid → what that session did), parsed.

    Example:
        >>> log = "2026-01-01 02:00:00.123 UTC [42] LOG:  duration: 401.2 ms  statement: SELECT pg_sleep(0.4)"
        >>> parse_lines(log, {42: "slow statement"})[["session", "severity"]].values.tolist()
        [['slow statement', 'LOG']]
    """
    rows = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and int(match["pid"]) in pids:
            rows.append({"session": pids[int(match["pid"])], "timestamp": match["timestamp"],
                         "pid": int(match["pid"]), "severity": match["severity"], "text": match["text"],
                         "message": line})
    return WholeTable(rows, columns=["session", "timestamp", "pid", "severity", "text", "message"])


def slow_statement_and_lock_wait(dsn: str, server_log: Path | None, *, min_duration_ms: int = 200,
                                 sleep_s: float = 0.4, deadlock_timeout_ms: int = 100) -> ServerLog:
    """Log one slow statement (and not a fast one) and one lock wait, and read the server's lines about them.

    Raises:
        ValueError: If ``sleep_s`` is not above ``min_duration_ms`` (the statement would not be slow) or a
            setting is outside its range.
    """
    if not 10 <= min_duration_ms <= 5000 or not min_duration_ms / 1000 < sleep_s <= 5:
        raise ValueError(f"min_duration_ms={min_duration_ms!r} must be 10..5000 and sleep_s={sleep_s!r} above it, "
                         "at most 5 s")
    if not 10 <= deadlock_timeout_ms <= 2000:
        raise ValueError(f"deadlock_timeout_ms={deadlock_timeout_ms!r} must be 10..2000 (milliseconds)")
    schema = f"aurora_wb_{uuid.uuid4().hex[:8]}"
    table = f"{schema}.accounts"
    offset = _size(server_log)  # the shared server's log is long: read only what this demonstration adds
    with psycopg.connect(dsn, autocommit=True, **_CONNECT) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, balance_usd int NOT NULL)")
        admin.execute(f"INSERT INTO {table} VALUES (1, 100)")
        try:
            slow_pid = _slow_statement(dsn, table, min_duration_ms, sleep_s)
            waiter_pid = _lock_wait(dsn, admin, table, deadlock_timeout_ms)
        finally:
            with suppress(psycopg.Error):
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    note = (f"log_min_duration_statement = {min_duration_ms} ms for the first session; log_lock_waits = on and "
            f"deadlock_timeout = {deadlock_timeout_ms} ms for the waiting one")
    if server_log is None:
        return ServerLog(parse_lines("", {}), note + "; the server's log is not readable from here")
    pids = {slow_pid: "slow statement", waiter_pid: "lock wait"}
    _poll(lambda: {"duration:", "acquired"} <= {word for word in ("duration:", "acquired")
                                                 if word in _read(server_log, offset)}, 2.0)
    return ServerLog(parse_lines(_read(server_log, offset), pids), note)


def _slow_statement(dsn: str, table: str, min_duration_ms: int, sleep_s: float) -> int:
    with psycopg.connect(dsn, autocommit=True, **_CONNECT) as session:
        session.execute(f"SET log_min_duration_statement = {int(min_duration_ms)}")
        session.execute(FAST.format(table=table))  # fast: not logged
        session.execute(SLOW.format(seconds=sleep_s))
        return session.info.backend_pid


def _lock_wait(dsn: str, admin: psycopg.Connection, table: str, deadlock_timeout_ms: int) -> int:
    """A holder updates the row and keeps its transaction open; a waiter updates it too, and waits."""
    with psycopg.connect(dsn, **_CONNECT) as holder, psycopg.connect(dsn, **_CONNECT) as waiter:
        holder.execute(f"UPDATE {table} SET balance_usd = balance_usd - 10 WHERE id = 1")
        waiter.execute("SET log_lock_waits = on")
        waiter.execute(f"SET deadlock_timeout = '{int(deadlock_timeout_ms)}ms'")
        waiter.execute("SET lock_timeout = '5s'")
        waiter.commit()
        thread = threading.Thread(target=_update, args=(waiter, table), daemon=True)
        thread.start()
        pid = waiter.info.backend_pid
        _poll(lambda: admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                    (pid,)).fetchone() == (True,), 5.0)
        time.sleep(3 * deadlock_timeout_ms / 1000)  # past deadlock_timeout: the server logs the wait
        holder.commit()
        thread.join(6.0)
        return pid


def _update(waiter: psycopg.Connection, table: str) -> None:
    with suppress(psycopg.Error):
        waiter.execute(f"UPDATE {table} SET balance_usd = balance_usd + 10 WHERE id = 1")
        waiter.commit()


def _size(path: Path | None) -> int:
    try:
        return Path(path).stat().st_size if path is not None else 0
    except OSError:
        return 0


def _read(path: Path, offset: int) -> str:
    """The log from byte ``offset`` on (from the start if the log was rotated meanwhile)."""
    try:
        with Path(path).open("rb") as log:
            log.seek(offset if offset <= _size(path) else 0)
            return log.read().decode(errors="replace")
    except OSError:
        return ""

