"""Notebook 07 on a real PostgreSQL: the PostgreSQL-only operations that take a v1 scaling point, and the
connection slots the server keeps for superusers.

Each operation the User Guide names (``NOTIFY``, "documented" to prevent scaling; session-level advisory locks,
``LISTEN`` and cursors ``WITH HOLD``, "not recommended") is run for real, and the server is asked what the session
still holds once its statement, or its transaction, is over. Names are unique per call and everything is released
and closed at the end, so the demo can share a server with other users.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack

import pandas as pd
import psycopg

from .._tables import WholeTable
from .startup import _CONNECT_KWARGS

_STATE_SQL = ("SELECT state, xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = %s")
_COLUMNS = ["what the session ran", "what the server shows afterwards", "the session now"]


def _session_now(admin: psycopg.Connection, pid: int) -> str:
    """How ``pg_stat_activity`` sees session ``pid``: its state, and whether a transaction is open."""
    state, in_transaction = admin.execute(_STATE_SQL, (pid,)).fetchone()
    return f"{state}, {'a transaction open' if in_transaction else 'no transaction open'}"


def _connect(stack: ExitStack, dsn: str, *, autocommit: bool) -> psycopg.Connection:
    return stack.enter_context(psycopg.connect(dsn, autocommit=autocommit, **_CONNECT_KWARGS))


def _advisory_lock(stack: ExitStack, dsn: str, admin: psycopg.Connection) -> list[str]:
    key = secrets.randbelow(2**31)
    holder = _connect(stack, dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (key,))
    granted = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s",
                            (holder.info.backend_pid,)).fetchone()[0]
    other = _connect(stack, dsn, autocommit=True)
    taken = other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    shown = (f"pg_locks: {granted} advisory lock granted to the session; another session's "
             f"pg_try_advisory_lock → {str(taken).lower()}")
    now = _session_now(admin, holder.info.backend_pid)
    holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return ["SELECT pg_advisory_lock(key)", shown, now]


def _listen_and_notify(stack: ExitStack, dsn: str, admin: psycopg.Connection) -> list[list[str]]:
    channel = f"aurora_wb_{secrets.token_hex(4)}"
    listener = _connect(stack, dsn, autocommit=True)
    listener.execute(f"LISTEN {channel}")
    channels = [row[0] for row in listener.execute("SELECT pg_listening_channels()").fetchall()]
    listen_row = [f"LISTEN {channel}", f"pg_listening_channels(): {', '.join(channels)}",
                  _session_now(admin, listener.info.backend_pid)]
    sender = _connect(stack, dsn, autocommit=False)
    sender.execute(f"NOTIFY {channel}, 'order 42'")
    before = list(listener.notifies(timeout=0.2, stop_after=1))
    pending_now = _session_now(admin, sender.info.backend_pid)
    sender.commit()
    after = list(listener.notifies(timeout=2.0, stop_after=1))
    received = (f"'{after[0].payload}' from process {after[0].pid}" if after else "nothing (unexpected)")
    notify_row = [f"BEGIN; NOTIFY {channel}, 'order 42'; … COMMIT",
                  f"before COMMIT the listener received {len(before)} notification(s); after COMMIT {received}",
                  f"before COMMIT: {pending_now}"]
    listener.execute(f"UNLISTEN {channel}")
    return [listen_row, notify_row]


def _hold_cursor(stack: ExitStack, dsn: str, admin: psycopg.Connection) -> list[str]:
    session = _connect(stack, dsn, autocommit=False)
    session.execute("DECLARE report CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100000) AS g")
    session.commit()
    holdable = session.execute("SELECT is_holdable FROM pg_cursors WHERE name = 'report'").fetchone()
    first = [row[0] for row in session.execute("FETCH 3 FROM report").fetchall()]
    session.commit()
    now = _session_now(admin, session.info.backend_pid)
    session.execute("CLOSE report")
    session.commit()
    shown = (f"pg_cursors after COMMIT: report, is_holdable = {holdable[0] if holdable else None}; "
             f"FETCH 3 still returns {first}")
    return ["BEGIN; DECLARE report CURSOR WITH HOLD FOR SELECT …; COMMIT", shown, now]


def session_state_demo(dsn: str) -> WholeTable:
    """Run each PostgreSQL-only operation the User Guide names, and read what the session holds afterwards.

    An advisory lock taken with ``pg_advisory_lock`` stays granted to an idle session with no transaction open; a
    ``LISTEN`` registration stays with its session; a ``NOTIFY`` waits in its sender's open transaction and is
    delivered only at ``COMMIT``; a cursor ``WITH HOLD`` outlives the transaction that declared it. One row each.

    Example (needs a server; tests/test_engines.py runs it)::

        with server() as pg:
            session_state_demo(pg.dsn).loc["advisory lock", "the session now"]  # 'idle, no transaction open'
    """
    with ExitStack() as stack:
        admin = _connect(stack, dsn, autocommit=True)
        advisory = _advisory_lock(stack, dsn, admin)
        listen, notify = _listen_and_notify(stack, dsn, admin)
        cursor = _hold_cursor(stack, dsn, admin)
    rows = {"advisory lock": advisory, "LISTEN": listen, "NOTIFY": notify, "cursor WITH HOLD": cursor}
    return WholeTable.from_dict(rows, orient="index", columns=_COLUMNS).rename_axis("operation")


def connection_slots(dsn: str) -> pd.DataFrame:
    """The server's ``max_connections`` and the slots it keeps for superusers: an application (not a superuser)
    is refused that many connections before ``max_connections``.

    Example (needs a server; tests/test_engines.py runs it)::

        with server() as pg:
            connection_slots(pg.dsn).loc["superuser_reserved_connections", "value"]  # '3'
    """
    names = ("server_version", "max_connections", "superuser_reserved_connections")
    with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone()[0] for name in names]
    return pd.DataFrame({"value": values}, index=pd.Index(names, name="setting"))
