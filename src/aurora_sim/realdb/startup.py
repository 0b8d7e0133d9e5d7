"""Starting and stopping the PostgreSQL the real-database sections use (or reusing the one the user names)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

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
