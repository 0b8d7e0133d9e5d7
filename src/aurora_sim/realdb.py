"""A real PostgreSQL for the lessons a simulator should not fake: connection cost, pool hygiene, timeouts, locks.

``server()`` gives the notebooks a server for the length of a ``with`` block. It reuses the one named by
``AURORA_WORKBOOK_PG_DSN`` when that is set (and never stops it); otherwise it starts a throwaway one in a
temporary folder: first with the ``pgserver`` package (PostgreSQL binaries installed by pip), else with the
system's ``initdb``/``pg_ctl``. PostgreSQL refuses to run as root, so as root pgserver runs it as a system user
``pgserver`` (which it creates with ``useradd``) and the system fallback runs it as ``nobody``. Both listen on a
Unix socket in the temporary folder only, and both are stopped and deleted on exit.

Every demonstration opens its own connections with ``connect_timeout``, closes them, and returns the errors it
provokes as data (class, SQLSTATE, message), so a notebook can print them.

Example (needs a server, so written as code rather than a doctest; tests/test_realdb.py runs it)::

    with server() as pg:
        if not pg.available:
            print(pg.reason)  # one line, and the notebook skips the section
        else:
            print(statement_timeout_demo(pg.dsn).sqlstate)  # 57014
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

DSN_ENV_VAR = "AURORA_WORKBOOK_PG_DSN"
CONNECT_TIMEOUT_S = 5
# Sent in the startup packet (no extra round trip): no statement of ours can hang a notebook.
_CONNECT_KWARGS = {"connect_timeout": CONNECT_TIMEOUT_S, "options": "-c statement_timeout=10s"}
_START_TIMEOUT_S = 20
_UNPRIVILEGED_USER = "nobody"


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    """A PostgreSQL to run the demonstrations on, or the reason there is none.

    Attributes:
        dsn: libpq connection string; None when unavailable.
        source: "environment" (AURORA_WORKBOOK_PG_DSN), "pgserver", "system" (initdb/pg_ctl) or "none".
        detail: One line for the notebook: what runs where, or why nothing does.
        log_path: The server's log file when this process started the server, else None.
        postmaster_pid: The server's main process when this process started it, else None.

    Example:
        >>> pg = PostgresServer(dsn=None, source="none", detail="no PostgreSQL binaries found")
        >>> pg.available, pg.reason
        (False, 'no PostgreSQL binaries found')
        >>> pg
        PostgresServer(source='none', available=False)
    """

    dsn: str | None
    source: str
    detail: str
    log_path: Path | None = None
    postmaster_pid: int | None = None

    @property
    def available(self) -> bool:
        return self.dsn is not None

    @property
    def reason(self) -> str:
        """Why the server is unavailable ("" when it is available)."""
        return "" if self.available else self.detail

    def __repr__(self) -> str:
        return f"PostgresServer(source={self.source!r}, available={self.available})"


def in_ci() -> bool:
    """True when the CI variable is set (to anything but "", "0", "false" or "no"): then nothing may be skipped.

    Example:
        >>> in_ci() == (os.environ.get("CI", "").lower() not in ("", "0", "false", "no"))
        True
    """
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def server() -> Iterator[PostgresServer]:
    """Yield a PostgreSQL for the block: the one in AURORA_WORKBOOK_PG_DSN, else a temporary one started here.

    A server started here lives in a temporary folder and is stopped (no process left) and deleted on exit,
    also when the block raises. A server named by the environment variable is only connected to, never stopped.

    Raises:
        RuntimeError: Under CI (see ``in_ci``) when no server is available; locally the yielded object has
            ``available == False`` and a ``reason`` instead.

    Example (needs a server; tests/test_realdb.py runs it)::

        with server() as pg:
            print(pg.available, pg.source)  # True pgserver
    """
    dsn = os.environ.get(DSN_ENV_VAR, "").strip()
    if dsn:
        yield _check_environment_server(dsn)
        return
    with tempfile.TemporaryDirectory(prefix="aurora-pg-", ignore_cleanup_errors=True) as tmp:
        failures = []
        for name, start in (("pgserver", _start_pgserver), ("system PostgreSQL", _start_system_postgres)):
            try:
                pg, stop = start(Path(tmp))
            except Exception as exc:  # any failure moves on to the next way of starting one
                _kill_leftover_servers(Path(tmp))
                failures.append(f"{name}: {type(exc).__name__}: {_first_line(exc)}")
                continue
            try:
                yield pg
            finally:
                stop()
                _kill_leftover_servers(Path(tmp))
            return
        yield _unavailable("could not start PostgreSQL (" + "; ".join(failures) + ")")


def _kill_leftover_servers(folder: Path) -> None:
    """Safety net: a postmaster.pid still under `folder` means a server that did not stop; SIGQUIT ends it at once."""
    for pid_file in folder.glob("*/postmaster.pid"):
        with suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().split()[0]), getattr(signal, "SIGQUIT", signal.SIGTERM))


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0  # no geteuid on Windows


def _unavailable(reason: str) -> PostgresServer:
    detail = f"{reason}. Set {DSN_ENV_VAR} to a server you can use, or `pip install pgserver`."
    if in_ci():
        raise RuntimeError(f"CI is set and no PostgreSQL is available: {detail}")
    return PostgresServer(dsn=None, source="none", detail=detail)


def _check_environment_server(dsn: str) -> PostgresServer:
    try:
        version = _server_version(dsn)
    except psycopg.Error as exc:
        return _unavailable(f"{DSN_ENV_VAR} is set but connecting failed: {type(exc).__name__}: {_first_line(exc)}")
    return PostgresServer(dsn=dsn, source="environment", detail=f"PostgreSQL {version} from {DSN_ENV_VAR}; "
                          "this workbook did not start it and will not stop it")


def _server_version(dsn: str) -> str:
    with psycopg.connect(dsn, **_CONNECT_KWARGS) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _start_pgserver(tmp: Path) -> tuple[PostgresServer, Callable[[], None]]:
    """pgserver's embedded binaries; as root it runs them as a user `pgserver` it creates (useradd)."""
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver
    handle = pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        dsn = handle.get_uri()
        with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as conn:  # throwaway data: skip the fsyncs
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("SELECT pg_reload_conf()")
        as_user = " as system user 'pgserver' (running as root)" if _is_root() else ""
        pg = PostgresServer(dsn=dsn, source="pgserver", log_path=Path(handle.log), postmaster_pid=handle.get_pid(),
                            detail=f"PostgreSQL {_server_version(dsn)} started by pgserver in a temporary folder"
                            f"{as_user}; stopped and deleted on exit")
    except BaseException:
        handle.cleanup()
        raise
    return pg, handle.cleanup


def system_bin_dirs() -> list[Path]:
    """Folders holding both ``initdb`` and ``pg_ctl``: the one on PATH first, then /usr/lib/postgresql/*/bin.

    Example:
        >>> all((d / "initdb").exists() and (d / "pg_ctl").exists() for d in system_bin_dirs())
        True
    """
    found = []
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file() and folder not in found:
            found.append(folder)
    return found


def _start_system_postgres(tmp: Path) -> tuple[PostgresServer, Callable[[], None]]:
    """initdb + pg_ctl from ``system_bin_dirs()``; as root, run as `nobody` (initdb refuses root)."""
    folders = system_bin_dirs()
    if not folders:
        raise FileNotFoundError("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
    bin_dir, data, log = folders[0], tmp / "data", tmp / "data" / "server.log"
    data.mkdir(mode=0o700)
    as_user: dict = {}
    if _is_root():
        import pwd  # POSIX only, like being root

        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        tmp.chmod(0o755)  # mkdtemp makes it 0700: let the unprivileged user reach its data folder
        os.chown(data, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], check=True, capture_output=True, text=True,
                       timeout=_START_TIMEOUT_S, cwd=tmp, **as_user)

    run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")
    server_options = f"-c listen_addresses='' -c fsync=off -k {shlex.quote(str(data))}"  # throwaway data
    try:
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", server_options, "-w", "-t", str(_START_TIMEOUT_S), "start")
    except subprocess.CalledProcessError as exc:
        log_text = log.read_text(errors="replace")[-500:] if log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {exc.stderr.strip()} {log_text}") from exc
    postmaster_pid = int((data / "postmaster.pid").read_text().split()[0])

    def stop() -> None:
        with suppress(subprocess.SubprocessError, OSError):  # else _kill_leftover_servers() ends it
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "10", "stop")

    dsn = f"host={data} port=5432 user=postgres dbname=postgres"
    try:
        user = f" as user {_UNPRIVILEGED_USER!r} (running as root)" if as_user else ""
        pg = PostgresServer(dsn=dsn, source="system", log_path=log, postmaster_pid=postmaster_pid,
                            detail=f"PostgreSQL {_server_version(dsn)} started from {bin_dir} in a temporary "
                            f"folder{user}; stopped and deleted on exit")
    except BaseException:
        stop()
        raise
    return pg, stop


# ---------------------------------------------------------------- notebook 01: what a connection costs


@dataclass(frozen=True)
class ConnectCost:
    """Milliseconds per `SELECT 1`: opening and closing a connection each time vs borrowing one from a pool.

    Example:
        >>> ConnectCost(samples=300, connect_median_ms=4.0, connect_p95_ms=6.0, pool_median_ms=0.1, pool_p95_ms=0.2)
        ConnectCost(samples=300, connect 4.00 ms vs pool 0.10 ms median: 40x)
    """

    samples: int
    connect_median_ms: float
    connect_p95_ms: float
    pool_median_ms: float
    pool_p95_ms: float

    @property
    def speedup(self) -> float:
        """How many times faster the pool is, by median."""
        return self.connect_median_ms / self.pool_median_ms

    def __repr__(self) -> str:
        return (f"ConnectCost(samples={self.samples}, connect {self.connect_median_ms:.2f} ms vs pool "
                f"{self.pool_median_ms:.2f} ms median: {self.speedup:.0f}x)")


def _check_range(name: str, value: float, low: float, high: float, unit: str) -> None:
    """Raise ValueError naming the parameter, its value and the allowed range.

    Example:
        >>> _check_range("timeout_ms", 0, 1, 999, "milliseconds")
        Traceback (most recent call last):
        ValueError: timeout_ms=0 is outside 1..999 (milliseconds)
    """
    if not low <= value <= high:
        msg = f"{name}={value!r} is outside {low}..{high} ({unit})"
        raise ValueError(msg)


def _p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method).

    Example:
        >>> _p95([float(v) for v in range(1, 101)])
        95.05
    """
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def connect_cost(dsn: str, samples: int = 300) -> ConnectCost:
    """Time `SELECT 1` with a new connection per query against one borrowed from a pool (min 1, max 4).

    The connection here is a local Unix socket without TLS; to Aurora over the network a new connection also
    pays TCP and TLS round trips, so the gap is wider there.

    Raises:
        ValueError: If samples is outside 2..100000 (the message names the value).
    """
    _check_range("samples", samples, 2, 100_000, "queries per method")
    per_request, pooled = [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        with psycopg.connect(dsn, **_CONNECT_KWARGS) as conn:
            conn.execute("SELECT 1").fetchone()
        per_request.append((time.perf_counter() - t0) * 1000)
    with ConnectionPool(dsn, min_size=1, max_size=4, timeout=CONNECT_TIMEOUT_S, kwargs=dict(_CONNECT_KWARGS)) as pool:
        pool.wait(timeout=CONNECT_TIMEOUT_S)
        for _ in range(samples):
            t0 = time.perf_counter()
            with pool.connection() as conn:
                conn.execute("SELECT 1").fetchone()
            pooled.append((time.perf_counter() - t0) * 1000)
    return ConnectCost(samples=samples, connect_median_ms=statistics.median(per_request),
                       connect_p95_ms=_p95(per_request), pool_median_ms=statistics.median(pooled),
                       pool_p95_ms=_p95(pooled))


class Step(NamedTuple):
    """One line of a demonstration: what was done, and what happened."""

    step: str
    outcome: str


def describe_error(exc: BaseException) -> str:
    """`Class (SQLSTATE): first line of the message`, as a notebook prints it.

    Example:
        >>> describe_error(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
        'QueryCanceled (57014): canceling statement due to statement timeout'
    """
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" ({sqlstate})" if sqlstate else ""
    return f"{type(exc).__name__}{code}: {_first_line(exc)}"


def _pool(dsn: str, **options) -> ConnectionPool:
    pool = ConnectionPool(dsn, min_size=1, max_size=1, timeout=CONNECT_TIMEOUT_S, kwargs=dict(_CONNECT_KWARGS),
                          open=True, **options)
    pool.wait(timeout=CONNECT_TIMEOUT_S)
    return pool


def _terminate(dsn: str, pid: int) -> None:
    """End backend `pid` from another session, as a failover or an idle-timeout on the server would."""
    with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):  # wait (at most 1 s) until it is gone
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            time.sleep(0.01)


@contextmanager
def _quiet_pool_log() -> Iterator[None]:
    """The pool logs a warning for each connection it discards; the steps already tell the story."""
    logger = logging.getLogger("psycopg.pool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def pool_hygiene_demo(dsn: str, max_lifetime_s: float = 1.0) -> list[Step]:
    """Four habits of a healthy pool, each shown on a real server; returns what was done and what happened.

    1. ``max_lifetime`` recycles connections (psycopg_pool enforces no minimum; it checks the age when a
       connection is returned, with up to 5 % jitter below the lifetime).
    2. A connection the server killed breaks the next query without a check ...
    3. ... and is replaced transparently with ``check=ConnectionPool.check_connection`` (a pre-ping).
    4. ``with pool.connection()`` returns the connection even when the block raises; a bare ``getconn()``
       leaks it, and the next caller waits for a ``PoolTimeout``.
    """
    _check_range("max_lifetime_s", max_lifetime_s, 0.1, 10, "seconds")
    steps = []
    with _quiet_pool_log():
        with _pool(dsn, max_lifetime=max_lifetime_s) as pool:
            with pool.connection() as conn:
                first = conn.info.backend_pid
                time.sleep(max_lifetime_s * 1.2)
            with pool.connection() as conn:
                second = conn.info.backend_pid
        steps.append(Step(f"max_lifetime={max_lifetime_s} s: borrow, hold {max_lifetime_s * 1.2:.1f} s, return",
                          f"backend pid {first}; the pool closed it on return (too old)"))
        steps.append(Step("borrow again", f"backend pid {second}: a new connection" if second != first
                          else f"backend pid {second}: the same connection (unexpected)"))
        for check in (None, ConnectionPool.check_connection):
            steps.append(_killed_connection_step(dsn, check))
        steps += _return_on_exception_steps(dsn)
    return steps


def _killed_connection_step(dsn: str, check: Callable | None) -> Step:
    label = "check=ConnectionPool.check_connection" if check else "no check"
    with _pool(dsn, check=check) as pool:
        with pool.connection() as conn:
            killed = conn.info.backend_pid
        _terminate(dsn, killed)
        try:
            with pool.connection() as conn:
                value = conn.execute("SELECT 1").fetchone()[0]
                pid = conn.info.backend_pid
        except psycopg.Error as exc:
            return Step(f"{label}: server ends the idle pooled connection (pid {killed}); next SELECT 1",
                        f"failed: {describe_error(exc)}")
        lost = pool.get_stats().get("connections_lost", 0)
    return Step(f"{label}: server ends the idle pooled connection (pid {killed}); next SELECT 1",
                f"returned {value} on backend pid {pid}; the check caught {lost} dead connection(s)")


def _return_on_exception_steps(dsn: str) -> list[Step]:
    steps = []
    with _pool(dsn) as pool:
        before = pool.get_stats()["pool_available"]
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
                during = pool.get_stats()["pool_available"]
                raise ValueError("a bug in the application code")
        except ValueError as exc:
            after = pool.get_stats()["pool_available"]
            steps.append(Step("`with pool.connection()`; the block raises",
                              f"ValueError: {exc}; idle connections before {before}, inside {during}, after {after}:"
                              " it went back (rolled back)"))
        leaked = pool.getconn()
        try:
            try:
                leaked.execute("SELECT 1")
                raise ValueError("a bug in the application code")
            except ValueError:
                pass  # ...and no putconn: the connection is leaked
            try:
                pool.getconn(timeout=0.3).close()
                outcome = "got a connection (unexpected)"
            except PoolTimeout as exc:
                outcome = f"{describe_error(exc)}: the pool (max_size=1) has nothing to give"
            steps.append(Step("bare `getconn()`, the code raises before `putconn()`; the next caller asks", outcome))
        finally:
            pool.putconn(leaked)
    return steps


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
        time.sleep(timeout_ms / 1000 + 0.3)
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
