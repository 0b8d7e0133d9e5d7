"""aurora_sim.realdb against a real PostgreSQL started by realdb.server() (pgserver, else the system's binaries).

Locally, without any server, the server-backed tests skip with the reason; under CI (the CI variable set)
realdb.server() raises instead, so nothing is skipped there.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import psutil  # a dependency of pgserver
import psycopg
import pytest

from aurora_sim import realdb
from aurora_sim.realdb import startup


def _alive(pid: int) -> bool:
    """A process that still runs (an exited child not yet reaped by init, a zombie, does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postmasters() -> set[int]:
    """Running postgres processes whose parent is not a postgres: each one is a server's postmaster.

    A backend's parent is its postmaster; classifying by parent in one snapshot is immune to a backend that
    exits while we look (a connection closed just before).
    """
    procs = {p.pid: p.info for p in psutil.process_iter(["name", "ppid", "status"])}
    return {pid for pid, info in procs.items() if info["name"] == "postgres" and info["status"] != psutil.STATUS_ZOMBIE
            and procs.get(info["ppid"], {}).get("name") != "postgres"}


def _family(pid: int) -> set[int]:
    """The postmaster and its children (checkpointer, walwriter, backends, ...)."""
    parent = psutil.Process(pid)
    return {pid} | {child.pid for child in parent.children(recursive=True)}


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """One server for the module: started once (about 1 s), stopped at the end."""
    mp = pytest.MonkeyPatch()
    mp.delenv(realdb.DSN_ENV_VAR, raising=False)
    try:
        with realdb.server() as server:
            if not server.available:  # under CI server() raised instead
                pytest.skip(f"no PostgreSQL here (CI unset): {server.reason}")
            yield server
    finally:
        mp.undo()


@pytest.fixture
def no_server_can_start(monkeypatch):
    """Neither pgserver nor system binaries: what a machine without PostgreSQL looks like."""

    def fail(tmp: Path):
        raise ModuleNotFoundError("No module named 'pgserver' (simulated)")

    monkeypatch.delenv(realdb.DSN_ENV_VAR, raising=False)
    monkeypatch.setattr(startup, "_start_pgserver", fail)
    monkeypatch.setattr(startup, "system_bin_dirs", lambda: [])


# ---------------------------------------------------------------- starting, reusing, stopping


def test_server_started_here_is_ours_and_logs(pg):
    assert pg.source in ("pgserver", "system"), pg.detail
    assert pg.postmaster_pid and _alive(pg.postmaster_pid), f"postmaster {pg.postmaster_pid} is not running"
    assert pg.log_path is not None and pg.log_path.exists(), f"no server log at {pg.log_path}"
    assert "stopped and deleted on exit" in pg.detail
    assert repr(pg) == f"PostgresServer(source={pg.source!r}, available=True)"


def _assert_leaves_nothing(monkeypatch, expected_source: str, root_runs_it_as: str) -> None:
    monkeypatch.delenv(realdb.DSN_ENV_VAR, raising=False)
    with realdb.server() as server:
        assert server.source == expected_source, server.detail
        if os.geteuid() == 0:  # PostgreSQL refuses root
            assert psutil.Process(server.postmaster_pid).username() == root_runs_it_as
        assert realdb.statement_timeout_demo(server.dsn).sqlstate == "57014"
        family = _family(server.postmaster_pid)
        folder = server.log_path.parent.parent
        assert folder.exists()
    left = sorted(pid for pid in family if _alive(pid))
    assert not left, f"processes {left} of the server (postmaster {server.postmaster_pid}) still run after the with"
    strays = [p.pid for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
    assert not [pid for pid in strays if _alive(pid)], f"processes {strays} still refer to {folder}"
    assert not folder.exists(), f"temporary folder {folder} was not deleted"


def test_server_leaves_no_process_and_no_folder(pg, monkeypatch):
    _assert_leaves_nothing(monkeypatch, pg.source, "pgserver" if pg.source == "pgserver" else "nobody")


@pytest.fixture
def system_binaries_only(pg, monkeypatch):
    """pgserver fails; initdb/pg_ctl from the system, else pgserver's own binaries standing in for them."""

    def fail(tmp: Path):
        raise RuntimeError("pgserver failed (simulated)")

    bin_dirs = realdb.system_bin_dirs()
    if not bin_dirs:
        import pgserver._commands

        bin_dirs = [pgserver._commands.POSTGRES_BIN_PATH]
    monkeypatch.delenv(realdb.DSN_ENV_VAR, raising=False)
    monkeypatch.setattr(startup, "_start_pgserver", fail)
    monkeypatch.setattr(startup, "system_bin_dirs", lambda: bin_dirs)


def test_system_binaries_fallback_when_pgserver_fails(system_binaries_only, monkeypatch):
    """initdb/pg_ctl run directly (as `nobody` when root) and are stopped the same way."""
    _assert_leaves_nothing(monkeypatch, "system", "nobody")


def test_safety_net_ends_a_server_that_did_not_stop(system_binaries_only):
    """server() SIGQUITs any postmaster whose postmaster.pid is still in its folder (a failed start or stop)."""
    with realdb.server() as server:
        family = _family(server.postmaster_pid)
        folder = server.log_path.parent.parent
        startup._kill_leftover_servers(folder)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = sorted(pid for pid in family if _alive(pid))
        assert not left, f"processes {left} survived SIGQUIT"
    assert not folder.exists(), f"temporary folder {folder} was not deleted"


def test_dsn_from_environment_is_reused_and_not_stopped(pg, monkeypatch):
    before = _postmasters()
    assert pg.postmaster_pid in before
    monkeypatch.setenv(realdb.DSN_ENV_VAR, pg.dsn)
    with realdb.server() as reused:
        assert reused.source == "environment", reused.detail
        assert reused.dsn == pg.dsn
        assert reused.postmaster_pid is None and reused.log_path is None
        started = _postmasters() - before
        assert not started, f"postgres servers {sorted(started)} were started although {realdb.DSN_ENV_VAR} is set"
    assert _alive(pg.postmaster_pid), "the server named by the environment variable was stopped"
    assert realdb.statement_timeout_demo(pg.dsn).session_survived


def test_without_server_unavailable_locally(no_server_can_start, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with realdb.server() as server:
        assert not server.available
        assert server.dsn is None and server.source == "none"
        assert server.reason.startswith("could not start PostgreSQL (pgserver: ModuleNotFoundError"), server.reason
        assert "system PostgreSQL: FileNotFoundError: no initdb/pg_ctl" in server.reason
        assert realdb.DSN_ENV_VAR in server.reason


@pytest.mark.parametrize("ci", ["1", "true"])
def test_without_server_raises_under_ci(no_server_can_start, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    expected = re.escape("CI is set and no PostgreSQL is available: could not start")
    with pytest.raises(RuntimeError, match=expected), realdb.server():
        pass


def test_unreachable_environment_dsn_is_reported_not_replaced(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(realdb.DSN_ENV_VAR, "host=/nonexistent-aurora-workbook port=5432 dbname=postgres")
    with realdb.server() as server:
        assert not server.available
        assert server.reason.startswith(f"{realdb.DSN_ENV_VAR} is set but connecting failed: OperationalError")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(RuntimeError, match="CI is set and no PostgreSQL is available"), realdb.server():
        pass


# ---------------------------------------------------------------- notebook 01


def test_pool_is_faster_than_connect_per_query(pg):
    cost = realdb.connect_cost(pg.dsn, samples=100)
    assert cost.pool_median_ms < cost.connect_median_ms, f"pool not faster by median: {cost}"
    assert cost.connect_p95_ms >= cost.connect_median_ms and cost.pool_p95_ms >= cost.pool_median_ms
    assert re.fullmatch(r"ConnectCost\(samples=100, connect \d+\.\d\d ms vs pool \d+\.\d\d ms median: \d+x\)",
                        repr(cost)), repr(cost)


def test_pool_hygiene_steps(pg):
    steps = realdb.pool_hygiene_demo(pg.dsn)
    assert [type(s) for s in steps] == [realdb.Step] * 6
    lifetime, again, unchecked, checked, returned, leaked = (s.outcome for s in steps)
    first_pid = int(re.search(r"backend pid (\d+)", lifetime).group(1))
    second_pid = int(re.search(r"backend pid (\d+)", again).group(1))
    assert second_pid != first_pid, f"max_lifetime did not recycle: pid {first_pid} then {second_pid}"
    assert unchecked == "failed: AdminShutdown (57P01): terminating connection due to administrator command"
    assert checked.startswith("returned 1 on backend pid "), checked
    assert checked.endswith("the check caught 1 dead connection(s)"), checked
    assert "idle connections before 1, inside 0, after 1" in returned, returned
    assert leaked.startswith("PoolTimeout: couldn't get a connection after 0.30 sec"), leaked


# ---------------------------------------------------------------- notebook 05


def test_statement_timeout_cancels_the_statement_only(pg):
    caught = realdb.statement_timeout_demo(pg.dsn, timeout_ms=200)
    assert (caught.error_class, caught.sqlstate) == ("QueryCanceled", "57014")
    assert caught.message == "canceling statement due to statement timeout"
    assert caught.session_survived
    assert 150 <= caught.elapsed_ms < 1000, f"cancelled after {caught.elapsed_ms:.0f} ms, expected about 200"


def test_idle_in_transaction_timeout_ends_the_session(pg):
    caught = realdb.idle_in_transaction_demo(pg.dsn, timeout_ms=300)
    assert (caught.error_class, caught.sqlstate) == ("IdleInTransactionSessionTimeout", "25P03")
    assert caught.message == "terminating connection due to idle-in-transaction timeout"
    assert not caught.session_survived
    assert "session ended" in repr(caught)


def test_lock_wait_shows_waiter_blocker_and_log(pg):
    result = realdb.lock_wait_demo(pg.dsn, server_log=pg.log_path)
    locks = result.locks
    waiting = locks[~locks["granted"]]
    assert len(waiting) == 1, f"expected one ungranted lock, got\n{locks}"
    row = waiting.iloc[0]
    holder_pid = int(locks.loc[locks["session"] == "holder", "pid"].iloc[0])
    assert (row["session"], row["locktype"], row["mode"]) == ("waiter", "transactionid", "ShareLock")
    assert list(row["blocked_by"]) == [holder_pid]
    assert row["wait_event_type"] == "Lock"
    assert result.waiter_outcome.startswith("updated the row after waiting"), result.waiter_outcome
    waiter_pid = int(row["pid"])
    assert any(f"process {waiter_pid} still waiting for ShareLock on transaction" in line
               for line in result.log_lines), f"no lock-wait line in {result.log_lines}"
    assert any(f"Process holding the lock: {holder_pid}." in line for line in result.log_lines)
    with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
        left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'aurora_wb_%'").fetchall()
    assert not left, f"schemas {left} were not dropped"


def test_lock_wait_without_log_says_so(pg):
    result = realdb.lock_wait_demo(pg.dsn)
    assert result.log_lines == ()
    assert result.log_note.startswith("no server log"), result.log_note
    assert result.waiter_outcome.startswith("updated the row"), result.waiter_outcome


# ---------------------------------------------------------------- validation and reprs (no server needed)


@pytest.mark.parametrize(
    ("function", "kwargs", "message"),
    [
        (realdb.connect_cost, {"samples": 1}, "samples=1 is outside 2..100000 (queries per method)"),
        (realdb.statement_timeout_demo, {"timeout_ms": 0},
         "timeout_ms=0 is outside 1..999 (milliseconds, below the 1 s sleep)"),
        (realdb.idle_in_transaction_demo, {"timeout_ms": 0}, "timeout_ms=0 is outside 1..5000 (milliseconds)"),
        (realdb.pool_hygiene_demo, {"max_lifetime_s": 0.01}, "max_lifetime_s=0.01 is outside 0.1..10 (seconds)"),
        (realdb.lock_wait_demo, {"wait_timeout_ms": 100}, "wait_timeout_ms=100 is outside 500..30000 (milliseconds)"),
    ],
)
def test_bad_values_are_named(function, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        function("host=/nonexistent dbname=never-contacted", **kwargs)


def test_result_reprs():
    error = realdb.CaughtError(error_class="QueryCanceled", sqlstate="57014", message="m", elapsed_ms=201.4,
                               session_survived=True)
    assert repr(error) == "CaughtError(QueryCanceled 57014 'm' after 201 ms, session survived)"
    lock = realdb.LockWait(locks=pd.DataFrame({"pid": [1, 2]}), waiter_outcome="ok", log_lines=("a",),
                           log_note="")
    assert repr(lock) == "LockWait(locks=2 rows, waiter='ok', log_lines=1)"
