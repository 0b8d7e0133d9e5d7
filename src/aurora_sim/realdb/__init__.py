"""A real PostgreSQL for the lessons a simulator should not fake: connection cost, pool hygiene, timeouts, locks.

``server()`` gives the notebooks a server for a ``with`` block: the one named by ``AURORA_WORKBOOK_PG_DSN`` when
that is set (never stopped), otherwise the workbook's **shared server**, one per user and machine (``shared``): its
data in the user's cache folder, started on first use with the ``pgserver`` package's PostgreSQL (else the
system's ``initdb``/``pg_ctl``), listening on a Unix socket only, and reused by every later cell, notebook, Data
API endpoint and test run. It keeps running on purpose; ``python -m aurora_sim.realdb stop`` (or ``make clean``)
stops it. PostgreSQL refuses to run as root, so as root it runs as a system user (``pgserver``, which pgserver
creates with ``useradd``, or ``nobody`` for the system's binaries).

Every demonstration opens its own connections with ``connect_timeout``, closes them, and returns the errors it
provokes as data (class, SQLSTATE, message), so a notebook can print them.

Example (needs a server, so written as code rather than a doctest; tests/test_realdb.py runs it)::

    with server() as pg:
        if not pg.available:
            print(pg.reason)  # one line, and the notebook skips the section
        else:
            print(statement_timeout_demo(pg.dsn).sqlstate)  # 57014
"""

from .pools import ConnectCost, Step, connect_cost, describe_error, pool_hygiene_demo, steps_table
from .shared import STOP_COMMAND, Binaries, default_home, postgres_binaries
from .shared import status as shared_server_status
from .shared import stop as stop_shared_server
from .startup import CONNECT_TIMEOUT_S, DSN_ENV_VAR, PostgresServer, in_ci, server, shared_server, system_bin_dirs
from .timeouts import (
    CaughtError,
    LockWait,
    caught_errors,
    idle_in_transaction_demo,
    lock_wait_demo,
    statement_timeout_demo,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DSN_ENV_VAR",
    "STOP_COMMAND",
    "Binaries",
    "CaughtError",
    "ConnectCost",
    "LockWait",
    "PostgresServer",
    "Step",
    "caught_errors",
    "connect_cost",
    "default_home",
    "describe_error",
    "idle_in_transaction_demo",
    "in_ci",
    "lock_wait_demo",
    "pool_hygiene_demo",
    "postgres_binaries",
    "server",
    "shared_server",
    "shared_server_status",
    "statement_timeout_demo",
    "steps_table",
    "stop_shared_server",
    "system_bin_dirs",
]
