"""Each endpoint's own database on the shared PostgreSQL, and the secret's ordinary role that uses it.

``EndpointDatabase.create`` makes a fresh database for one endpoint (named after the endpoint's ``database``, with
this process's id and a counter so concurrent endpoints never meet), loads ``Customer`` from the packaged
``data/customer.csv`` and hands the table to the secret's user. That user is an ordinary role: no superuser, no
``CREATEDB`` or ``CREATEROLE``, not a member of ``pg_read_server_files`` or ``pg_write_server_files``, and no
``CREATE`` on the database (so no extensions and no new schemas); it may create tables in ``public``. The database
is dropped when the endpoint stops, and databases left by a process that died are dropped by the next endpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time
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

        Databases whose endpoint process is gone are dropped first, so nothing accumulates.
        """
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
