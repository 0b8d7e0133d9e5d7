"""Each endpoint's own database on the shared PostgreSQL, and the secret's ordinary role that uses it.

``EndpointDatabase.create`` makes a fresh database for one endpoint (named after the endpoint's ``database``, with
this process's id and a counter so concurrent endpoints never meet), loads ``Customer`` from the packaged
``data/customer.csv`` and hands the table to the secret's user. That user is an ordinary role: no superuser, no
``CREATEDB`` or ``CREATEROLE``, not a member of ``pg_read_server_files`` or ``pg_write_server_files``, and no
``CREATE`` on the database (so no extensions and no new schemas); it may create tables in ``public``. The database
is dropped when the endpoint stops, and databases left by a process that died are dropped by the next endpoint.

``CREATE DATABASE`` takes a tenth to a third of a second, so once a process has started a second endpoint, the next
one's database is made ahead in the background (``_Spares``): notebook 08 starts a dozen endpoints in a row. A
database made ahead is just as fresh (never handed out twice) and is dropped at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import os
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources

import psutil
import psycopg
from psycopg import sql as pgsql

from ..realdb.startup import CONNECT_TIMEOUT_S

CUSTOMER_DDL = """CREATE TABLE Customer (
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    email VARCHAR,
    balance NUMERIC(10, 2) NOT NULL,
    signup_date DATE NOT NULL
)"""
_COMMENT_PREFIX = "aurora_sim.data_api endpoint"
_COMMENT = re.compile(rf"^{re.escape(_COMMENT_PREFIX)} pid=(\d+) started=([0-9.]+)$")
_SEQUENCE = iter(range(1, 2**31))
_ADMIN = {"connect_timeout": CONNECT_TIMEOUT_S, "autocommit": True}
_PROVISION_LOCK = 0x6175_726F_7261  # an advisory-lock key of the workbook's own ("aurora")


@dataclass(frozen=True)
class EndpointDatabase:
    """One endpoint's database: its real name on the server, and how the secret's user connects to it."""

    admin_dsn: str
    name: str
    user: str
    password: str

    @property
    def conninfo(self) -> str:
        """libpq connection string for the secret's ordinary user on this database."""
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        params.update(dbname=self.name, user=self.user, password=self.password)
        return psycopg.conninfo.make_conninfo(**params)

    @classmethod
    def create(cls, admin_dsn: str, *, database: str, user: str, password: str) -> EndpointDatabase:
        """Create the role (once per server), a fresh database with ``Customer``, and return it.

        Databases whose endpoint process is gone are dropped first, so nothing accumulates. From a process's second
        endpoint on, the database may be one made ahead for it (``_Spares``), never used before.
        """
        return _SPARES.take((admin_dsn, database, user, password), cls._create_now)

    @classmethod
    def _create_now(cls, admin_dsn: str, database: str, user: str, password: str) -> EndpointDatabase:
        with psycopg.connect(admin_dsn, **_ADMIN) as admin:
            # Endpoints in several processes (notebooks, tests) share the role: changing it at the same moment
            # fails with "tuple concurrently updated", so they take turns.
            admin.execute("SELECT pg_advisory_lock(%s)", (_PROVISION_LOCK,))
            try:
                drop_orphans(admin)
                _ensure_role(admin, user, password)
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_PROVISION_LOCK,))
            name = _unique_name(database)
            started = psutil.Process().create_time()
            admin.execute(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
                          .format(pgsql.Identifier(name)))
            admin.execute(pgsql.SQL("COMMENT ON DATABASE {} IS {}").format(
                pgsql.Identifier(name), pgsql.Literal(f"{_COMMENT_PREFIX} pid={os.getpid()} started={started}")))
            for statement in ("REVOKE ALL ON DATABASE {db} FROM PUBLIC",
                              "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {user}",
                              "ALTER DATABASE {db} SET TimeZone = 'UTC'"):
                admin.execute(pgsql.SQL(statement).format(db=pgsql.Identifier(name), user=pgsql.Identifier(user)))
        endpoint_db = cls(admin_dsn=admin_dsn, name=name, user=user, password=password)
        try:
            endpoint_db._load_customers()
        except BaseException:
            endpoint_db.drop()
            raise
        return endpoint_db

    def _load_customers(self) -> None:
        """``Customer`` from the packaged CSV, owned by the secret's user (so it may change or drop it)."""
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn) | {"dbname": self.name}
        with psycopg.connect(**params, **_ADMIN) as conn:
            conn.execute(pgsql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(pgsql.Identifier(self.user)))
            conn.execute(CUSTOMER_DDL)
            text = resources.files("aurora_sim").joinpath("data/customer.csv").read_text(encoding="utf-8")
            with conn.cursor().copy("COPY Customer FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(text)
            conn.execute(pgsql.SQL("ALTER TABLE Customer OWNER TO {}").format(pgsql.Identifier(self.user)))

    def drop(self) -> None:
        """Drop the database, ending any session still in it."""
        with psycopg.connect(self.admin_dsn, **_ADMIN) as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(self.name)))

    def exists(self) -> bool:
        """Whether the database is still on the server (one made ahead outlives a server that was replaced)."""
        try:
            with psycopg.connect(self.admin_dsn, **_ADMIN) as admin:
                found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone()
        except psycopg.Error:
            return False
        return found is not None


class _Spares:
    """One database made ahead per (admin DSN, database, user, password), for a process that starts endpoints one
    after another. The first endpoint of a kind makes its database in the foreground and nothing ahead (a process
    that starts one endpoint wastes nothing); from the second on, each ``take`` starts making the next one in a
    background thread. What is left at exit is dropped; what a killed process leaves is an orphan (``drop_orphans``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ahead: dict[tuple, Future] = {}
        self._seen: set[tuple] = set()
        atexit.register(self.drop_all)

    def take(self, key: tuple, make) -> EndpointDatabase:
        """A database for ``key``: the one made ahead if it is ready and sound, else ``make(*key)`` now."""
        with self._lock:
            ahead, again = self._ahead.pop(key, None), key in self._seen
            self._seen.add(key)
        endpoint_db = _result_or_none(ahead)
        if endpoint_db is not None and not endpoint_db.exists():
            endpoint_db = None
        if endpoint_db is None:
            endpoint_db = make(*key)
        if again:
            self._make_ahead(key, make)
        return endpoint_db

    def _make_ahead(self, key: tuple, make) -> None:
        future: Future = Future()
        with self._lock:
            if key in self._ahead:
                return
            self._ahead[key] = future

        def work() -> None:
            try:
                future.set_result(make(*key))
            except BaseException as exc:  # reported as None to the next take(), which then makes its own
                future.set_exception(exc)

        threading.Thread(target=work, name="data-api-database-ahead", daemon=True).start()

    def forget(self) -> None:
        """In a forked child: the databases made ahead belong to the parent, which takes or drops them."""
        self._lock = threading.Lock()
        self._ahead, self._seen = {}, set()

    def drop_all(self) -> None:
        """Drop every database made ahead and not taken (at exit)."""
        with self._lock:
            ahead, self._ahead = list(self._ahead.values()), {}
        for future in ahead:
            endpoint_db = _result_or_none(future, timeout_s=10)
            if endpoint_db is not None:
                with contextlib.suppress(psycopg.Error):
                    endpoint_db.drop()


def _result_or_none(future: Future | None, timeout_s: float = 30) -> EndpointDatabase | None:
    if future is None:
        return None
    try:
        return future.result(timeout=timeout_s)
    except Exception:  # a failed or late database made ahead is replaced by a fresh one
        return None


_SPARES = _Spares()
os.register_at_fork(after_in_child=_SPARES.forget)


def customer_rows() -> int:
    """How many customers the packaged CSV holds.

    Example:
        >>> customer_rows()
        20
    """
    text = resources.files("aurora_sim").joinpath("data/customer.csv").read_text(encoding="utf-8")
    return sum(1 for _ in csv.DictReader(io.StringIO(text)))


def _unique_name(database: str) -> str:
    """``<database>_ep<pid>_<n>``: unique on the server, under PostgreSQL's 63-byte identifier limit."""
    suffix = f"_ep{os.getpid()}_{next(_SEQUENCE)}"
    return database[: 63 - len(suffix)] + suffix


def _ensure_role(admin: psycopg.Connection, user: str, password: str) -> None:
    """The secret's user as an ordinary login role; its attributes are (re)set every time, in case of tampering."""
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
    role = pgsql.Identifier(user)
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        admin.execute(pgsql.SQL("CREATE ROLE {} " + attributes).format(role))  # two endpoints may race here
    admin.execute(pgsql.SQL("ALTER ROLE {} " + attributes + " PASSWORD {}").format(role, pgsql.Literal(password)))
    for granted in admin.execute("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                                 "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", (user,)).fetchall():
        admin.execute(pgsql.SQL("REVOKE {} FROM {}").format(pgsql.Identifier(granted[0]), role))


def drop_orphans(admin: psycopg.Connection) -> list[str]:
    """Drop endpoint databases whose process has ended (killed before it could drop them); returns their names."""
    rows = admin.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database").fetchall()
    dropped = []
    for name, comment in rows:
        match = _COMMENT.match(comment or "")
        if match and not _same_process_alive(int(match.group(1)), float(match.group(2))):
            with contextlib.suppress(psycopg.Error):
                admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
                dropped.append(name)
    return dropped


def _same_process_alive(pid: int, started: float) -> bool:
    """Whether process `pid` still runs and is the one that started at `started` (not a reused pid)."""
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1e-3
    except psutil.Error:
        return False


def wait_until_dropped(admin_dsn: str, name: str, timeout_s: float = 5.0) -> bool:
    """True once database `name` is gone (for tests)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_dsn, **_ADMIN) as admin:
        while time.monotonic() < deadline:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return True
            time.sleep(0.05)
    return False
