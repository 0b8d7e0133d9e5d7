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

from .pools import ConnectCost, Step, connect_cost, describe_error, pool_hygiene_demo, steps_table
from .startup import CONNECT_TIMEOUT_S, DSN_ENV_VAR, PostgresServer, in_ci, server, system_bin_dirs
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
    "CaughtError",
    "ConnectCost",
    "LockWait",
    "PostgresServer",
    "Step",
    "caught_errors",
    "connect_cost",
    "describe_error",
    "idle_in_transaction_demo",
    "in_ci",
    "lock_wait_demo",
    "pool_hygiene_demo",
    "server",
    "statement_timeout_demo",
    "steps_table",
    "system_bin_dirs",
]
