"""The SQL layer behind the local Data API: one endpoint's database on the workbook's real PostgreSQL.

``Database`` answers with the members of the rds-data 2018-08-01 responses (botocore's model). Its SQL runs on the
shared PostgreSQL (``aurora_sim.realdb``) in a database of its own (``provision``), through a small pool of psycopg
connections as the secret's ordinary user. Outside a transaction every call borrows a connection (and leaves it
reset); ``BeginTransaction`` pins one connection to the transaction ID until commit, rollback or expiry. A call cut
at the Data API's limit is cancelled on its own connection only (``cancel``), so other calls never notice.

Results and their ``columnMetadata`` come from PostgreSQL's description of each result (``results``); errors are
PostgreSQL's own, in the form the Data API sends them: ``ERROR: <message>`` with pgJDBC's ``Detail:``, ``Hint:``,
``Position:`` and ``Where:`` lines, then ``; SQLState: <code>``.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psycopg
from psycopg import RawCursor
from psycopg.types.numeric import Int8Dumper
from psycopg.types.string import StrDumperVarchar, TextLoader
from psycopg_pool import ConnectionPool

from ..realdb.startup import CONNECT_TIMEOUT_S, shared_server
from . import params
from .catalog import Catalog
from .params import RequestError
from .provision import EndpointDatabase
from .results import (
    JSON_RESULT_LIMIT_BYTES,
    TEXT_LOADED,
    Column,
    ResultShape,
    ResultTooLarge,
    UnsupportedResult,
    check_sizes,
    formatted,
)

__all__ = ["Database", "RequestError", "ResultTooLarge", "SqlError", "TransactionNotFound", "UnsupportedResult"]

SECRET_USER, SECRET_PASSWORD = "admin", "local-data-api-example"
SQL_WORKERS = 16  # calls the endpoint runs at once (server.py's executor)
MAX_OPEN_TRANSACTIONS = 32  # this local endpoint's own limit; AWS documents none
# A pinned transaction holds a connection between its calls, so the pool keeps one per possible transaction on top
# of one per worker: a worker then always finds a connection, and a transaction's COMMIT always finds a worker.
# (With fewer, workers blocked waiting for connections held by open transactions whose COMMITs waited for workers.)
POOL_MAX_CONNECTIONS = SQL_WORKERS + MAX_OPEN_TRANSACTIONS
_POOL_WAIT_S = 60  # longer than the 45 s call limit: a call waiting for a connection is cut by the limit first
_FETCH_ROWS = 1000
_DML = re.compile(r"^(INSERT|UPDATE|DELETE|MERGE)\b")


class SqlError(Exception):
    """An error the database raised, in the Data API's form: ``ERROR: <message>[ detail lines]; SQLState: <code>``.

    Example:
        >>> str(SqlError('relation "nope" does not exist', "42P01", details="\\n  Position: 15"))
        'ERROR: relation "nope" does not exist\\n  Position: 15; SQLState: 42P01'
    """

    def __init__(self, message: str, sqlstate: str, *, details: str = "", severity: str | None = "ERROR") -> None:
        self.message, self.sqlstate, self.details = message, sqlstate, details
        prefix = f"{severity}: " if severity else ""
        super().__init__(f"{prefix}{message}{details}; SQLState: {sqlstate}")


class TransactionNotFound(Exception):
    """A transaction id that is unknown, already committed or rolled back, or expired.

    Example:
        >>> str(TransactionNotFound("abc"))
        'Transaction abc is not found'
    """

    def __init__(self, transaction_id: str) -> None:
        self.transaction_id = transaction_id
        self.message = f"Transaction {transaction_id} is not found"
        super().__init__(self.message)


def sql_error(error: psycopg.Error) -> SqlError:
    """PostgreSQL's error as pgJDBC prints it (message, then Detail, Hint, Position and Where lines).

    Example:
        >>> str(sql_error(psycopg.errors.UndefinedTable('relation "nope" does not exist')))
        'ERROR: relation "nope" does not exist; SQLState: 42P01'
    """
    diag = error.diag
    sqlstate = getattr(error, "sqlstate", None) or diag.sqlstate or "08006"
    message = diag.message_primary or (str(error).strip().splitlines() or [type(error).__name__])[0]
    lines = [(label, value) for label, value in (("Detail", diag.message_detail), ("Hint", diag.message_hint),
                                                 ("Position", diag.statement_position), ("Where", diag.context))
             if value]
    details = "".join(f"\n  {label}: {value.strip()}" for label, value in lines)
    return SqlError(message, sqlstate, details=details, severity=diag.severity_nonlocalized or "ERROR")


@dataclass(eq=False)
class _Transaction:
    connection: psycopg.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Result:
    """What one statement gave: its columns (None: no rows), the rows, and the rows it changed."""

    columns: list[Column] | None
    rows: list[tuple]
    updated: int
    returning: bool


class Database:
    """One endpoint's database on the shared PostgreSQL, holding ``Customer`` (loaded from the packaged CSV).

    Args:
        database: The name the Data API calls it (the server's real name adds the process id and a counter).
        flavour: ``v1`` or ``v2``: decides ``generatedFields`` in batches and which result types are refused.
        admin_dsn: A superuser connection string; default: the shared server's (``realdb.shared_server()``).

    Raises:
        RuntimeError: No PostgreSQL is available (the message says why and how to fix it).

    Example:
        >>> db = Database()
        >>> db.execute("SELECT name FROM Customer WHERE id = :id", [{"name": "id", "value": {"longValue": 1}}])
        {'records': [[{'stringValue': 'Ana Souza'}]], 'numberOfRecordsUpdated': 0}
        >>> db.close()
    """

    def __init__(self, *, database: str = "mydb", flavour: str = "v1", admin_dsn: str | None = None,
                 user: str = SECRET_USER, password: str = SECRET_PASSWORD) -> None:
        if admin_dsn is None:
            server = shared_server()
            if not server.available:
                msg = f"the local Data API needs PostgreSQL: {server.reason}"
                raise RuntimeError(msg)
            admin_dsn = server.dsn
        self.database, self.flavour = database, flavour
        self.endpoint_db = EndpointDatabase.create(admin_dsn, database=database, user=user, password=password)
        self._lock = threading.Lock()
        self._transactions: dict[str, _Transaction] = {}
        self._beginning = 0  # begin() calls between the limit check and their registration
        self._running: dict[object, psycopg.Connection] = {}
        self._closed = False
        self._catalog = Catalog()
        try:
            self._pool = ConnectionPool(self.endpoint_db.conninfo, min_size=1, max_size=POOL_MAX_CONNECTIONS,
                                        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                                                "application_name": "aurora_sim.data_api"},
                                        configure=_configure, reset=_reset, timeout=_POOL_WAIT_S, open=True,
                                        name=f"data-api-{self.endpoint_db.name}")
            self._pool.wait(timeout=CONNECT_TIMEOUT_S * 2)
        except BaseException:
            self.endpoint_db.drop()
            raise

    def __repr__(self) -> str:
        return f"Database(database={self.database!r}, open_transactions={self.open_transactions()})"

    # ExecuteStatement / BatchExecuteStatement

    def execute(self, sql: str, parameters: list[dict] | None = None, *, database: str | None = None,
                transaction_id: str | None = None, include_result_metadata: bool = False,
                format_records_as: str | None = None, result_set_options: dict | None = None,
                call_id: object = None) -> dict:
        """Run SQL and return the ExecuteStatement response members.

        Several `;`-separated statements all run (together, when outside a transaction) and the first one's result
        is returned: "For Aurora PostgreSQL, multistatements return only the first query response" (Aurora
        Serverless v1; v2 refuses them before they get here).

        Returns:
            `records` (rows of `Field` dicts) for a statement that returns rows, or `formattedRecords` (a JSON array
            of objects) when `format_records_as="JSON"`; `columnMetadata` when `include_result_metadata` (never
            with JSON); `numberOfRecordsUpdated`. No `generatedFields`: Aurora PostgreSQL answers RETURNING instead.

        Raises:
            RequestError: A bad parameter, format or option (see `params.bind`).
            SqlError: PostgreSQL refused the statement, or `database` does not exist (3D000).
            TransactionNotFound: `transaction_id` is unknown, ended or expired.
            ResultTooLarge: A row over 64 KB or a result over 1 MiB (10 MB as JSON).
            UnsupportedResult: (v2) a geometric or monetary value, or a nested array.

        Example:
            >>> db = Database()
            >>> db.execute("UPDATE Customer SET balance = balance + 1 WHERE id <= 2")["numberOfRecordsUpdated"]
            2
            >>> db.execute("SELECT balance FROM Customer WHERE id = 1", format_records_as="JSON")["formattedRecords"]
            '[{"balance":"121.50"}]'
            >>> db.close()
        """
        shape = ResultShape.from_options(result_set_options, self.flavour)
        if format_records_as not in (None, "NONE", "JSON"):
            msg = f"formatRecordsAs={format_records_as!r} must be one of ('NONE', 'JSON')"
            raise RequestError(msg)
        statements = [params.bind(statement, parameters) for statement in params.split_statements(sql)]
        if not statements:
            raise SqlError("syntax error: the statement is empty", "42601")
        with self._session(database, transaction_id) as connection:
            together = transaction_id is None and len(statements) > 1
            with self._maybe_transaction(connection, together):
                first = self._run(connection, *statements[0], call_id=call_id)
                for statement, values in statements[1:]:
                    self._run(connection, statement, values, call_id=call_id)
            if first.columns is not None and include_result_metadata and format_records_as != "JSON":
                first.columns = self._catalog.with_sources(connection, first.columns)
        return _response(first, shape, include_result_metadata, as_json=format_records_as == "JSON")

    def batch_execute(self, sql: str, parameter_sets: list[list[dict]] | None, *, database: str | None = None,
                      transaction_id: str | None = None, call_id: object = None) -> dict:
        """Run one statement once per parameter set: ``{"updateResults": [{"generatedFields": […]}, …]}``.

        "The SQL statement is executed as many times as the number of parameter sets provided" (API reference): no
        parameter sets, no run. Outside a transaction the whole batch commits together or not at all. Each entry's
        ``generatedFields`` holds the row a ``RETURNING`` clause gave (Aurora Serverless v1; v2 leaves it empty
        for PostgreSQL, UG data-api.differences).

        Raises:
            RequestError, SqlError, TransactionNotFound: As for `execute`.

        Example:
            >>> db = Database()
            >>> db.batch_execute("DELETE FROM Customer WHERE id = :id RETURNING id",
            ...                  [[{"name": "id", "value": {"longValue": i}}] for i in (1, 2)])
            {'updateResults': [{'generatedFields': [{'longValue': 1}]}, {'generatedFields': [{'longValue': 2}]}]}
            >>> db.close()
        """
        # No cap on the number of sets: "There isn't a fixed upper limit" (UG data-api.md); the 4 MiB request
        # limit the HTTP layer enforces bounds a batch.
        bound = [params.bind(sql, parameter_set) for parameter_set in parameter_sets or []]
        shape = ResultShape(flavour=self.flavour)
        results = []
        with self._session(database, transaction_id) as connection, \
                self._maybe_transaction(connection, transaction_id is None and bool(bound)):
            for statement, values in bound:
                result = self._run(connection, statement, values, call_id=call_id)
                generated = []
                if result.columns is not None and result.rows and self.flavour == "v1":
                    generated = shape.records(result.columns, result.rows[:1])[0]
                results.append({"generatedFields": generated})
        return {"updateResults": results}

    # BeginTransaction / CommitTransaction / RollbackTransaction

    def begin(self, *, database: str | None = None) -> str:
        """Open a transaction on a connection of its own and return its id (an opaque string).

        Example:
            >>> db = Database()
            >>> transaction_id = db.begin()
            >>> db.open_transactions(), db.rollback(transaction_id), db.open_transactions()
            (1, {'transactionStatus': 'Rollback Complete'}, 0)
            >>> db.close()
        """
        self._check_database(database)
        self._check_open()
        with self._lock:  # count the transactions being begun too, so that racing begins cannot pass the limit
            if len(self._transactions) + self._beginning >= MAX_OPEN_TRANSACTIONS:
                msg = (f"this local endpoint holds at most {MAX_OPEN_TRANSACTIONS} open transactions; commit or "
                       "roll back one first (AWS documents no such limit)")
                raise RequestError(msg)
            self._beginning += 1
        try:
            connection = self._pool.getconn()
            try:
                connection.execute("BEGIN")
            except psycopg.Error as error:
                self._pool.putconn(connection)
                raise sql_error(error) from None
            transaction_id = secrets.token_urlsafe(48)
            with self._lock:
                self._transactions[transaction_id] = _Transaction(connection)
        finally:
            with self._lock:
                self._beginning -= 1
        return transaction_id

    def commit(self, transaction_id: str) -> dict:
        """Commit and end the transaction: ``{"transactionStatus": "Transaction Committed"}``.

        Raises:
            TransactionNotFound: The id is unknown, ended or expired.
            SqlError: An earlier statement failed, so PostgreSQL rolled the transaction back instead (25P02, with
                pgJDBC's text), or the commit itself failed. Either way the transaction has ended.
        """
        transaction = self._take(transaction_id)
        with transaction.lock:
            try:
                status = transaction.connection.execute("COMMIT").statusmessage
            except psycopg.Error as error:
                raise sql_error(error) from None
            finally:
                self._pool.putconn(transaction.connection)
        if status == "ROLLBACK":
            raise SqlError("The database returned ROLLBACK, so the transaction cannot be committed.", "25P02",
                           severity=None)
        return {"transactionStatus": "Transaction Committed"}

    def rollback(self, transaction_id: str) -> dict:
        """Roll back and end the transaction: ``{"transactionStatus": "Rollback Complete"}``.

        Raises:
            TransactionNotFound: The id is unknown, ended or expired.
        """
        self._end(self._take(transaction_id))
        return {"transactionStatus": "Rollback Complete"}

    def open_transactions(self) -> int:
        """How many transactions are open (the endpoint keeps the cluster awake while this is above 0)."""
        with self._lock:
            return len(self._transactions)

    def expire_transaction(self, transaction_id: str) -> None:
        """Roll back a transaction the endpoint found idle too long; later calls with its id get TransactionNotFound.

        An id that is already gone is ignored, so an expiry racing a commit is harmless.
        """
        with self._lock:
            transaction = self._transactions.pop(transaction_id, None)
        if transaction is not None:
            self._end(transaction)

    # cancelling and closing

    def cancel(self, call_id: object) -> bool:
        """Cancel the statement call `call_id` is running, on its own connection only; False if none is running.

        The statement fails with SQLSTATE 57014; every other call, and the connection itself, carries on.
        """
        with self._lock:
            connection = self._running.get(call_id)
            if connection is not None:
                with suppress(psycopg.Error):
                    connection.cancel_safe(timeout=CONNECT_TIMEOUT_S)
        return connection is not None

    def interrupt(self) -> int:
        """Cancel every running statement (each fails with SQLSTATE 57014); returns how many were running."""
        with self._lock:
            running = list(self._running)
        return sum(self.cancel(call_id) for call_id in running)

    def close(self) -> None:
        """Cancel running statements, roll back open transactions, close the pool and drop the database; idempotent."""
        with self._lock:
            transactions, self._transactions = list(self._transactions.values()), {}
            already, self._closed = self._closed, True
        if already:
            return
        deadline = time.monotonic() + 5
        while self.interrupt() and time.monotonic() < deadline:  # a running statement keeps its connection busy
            time.sleep(0.01)
        for transaction in transactions:
            self._end(transaction)
        self._pool.close(timeout=5)
        self.endpoint_db.drop()

    # helpers

    @contextmanager
    def _session(self, database: str | None, transaction_id: str | None):
        """The connection a call uses: one borrowed from the pool, or its transaction's (under that one's lock)."""
        self._check_database(database)
        self._check_open()
        if transaction_id is None:
            with self._pool.connection() as connection:
                yield connection
            return
        with self._lock:
            transaction = self._transactions.get(transaction_id)
        if transaction is None:
            raise TransactionNotFound(transaction_id)
        with transaction.lock:
            yield transaction.connection

    @contextmanager
    def _maybe_transaction(self, connection: psycopg.Connection, wrap: bool):
        """BEGIN … COMMIT around the block when `wrap` (a ROLLBACK if it raises)."""
        if not wrap:
            yield
            return
        connection.execute("BEGIN")
        try:
            yield
        except BaseException:
            with suppress(psycopg.Error):
                connection.execute("ROLLBACK")
            raise
        try:
            connection.execute("COMMIT")
        except psycopg.Error as error:
            raise sql_error(error) from None

    def _run(self, connection: psycopg.Connection, statement: str, values: list, *, call_id: object) -> _Result:
        """Execute one statement, registered under `call_id` so that `cancel` finds its connection."""
        call_id = object() if call_id is None else call_id  # a direct call still gets a key of its own
        with self._lock:
            self._running[call_id] = connection
        try:
            with RawCursor(connection) as cursor:
                cursor.execute(statement, values or None, prepare=False)
                if cursor.pgresult is None or cursor.description is None:
                    return _Result(None, [], max(cursor.rowcount, 0), returning=False)
                columns = self._catalog.columns(connection, cursor)
                rows = _fetch_bounded(cursor)
                returning = bool(_DML.match(cursor.statusmessage or ""))
                return _Result(columns, rows, cursor.rowcount if returning else 0, returning)
        except psycopg.Error as error:
            raise sql_error(error) from None
        finally:
            with self._lock:
                self._running.pop(call_id, None)

    def _take(self, transaction_id: str) -> _Transaction:
        with self._lock:
            transaction = self._transactions.pop(transaction_id, None)
        if transaction is None:
            raise TransactionNotFound(transaction_id)
        return transaction

    def _end(self, transaction: _Transaction) -> None:
        with transaction.lock:
            with suppress(psycopg.Error):
                transaction.connection.execute("ROLLBACK")
            self._pool.putconn(transaction.connection)

    def _check_database(self, database: str | None) -> None:
        if database is not None and database != self.database:
            raise SqlError(f'database "{database}" does not exist', "3D000")

    def _check_open(self) -> None:
        if self._closed:
            msg = "Database is closed"
            raise RuntimeError(msg)


def _configure(connection: psycopg.Connection) -> None:
    """Bind as the Data API does (integers as bigint, strings as varchar); load dates, numerics… as text."""
    connection.prepare_threshold = None  # no server-side prepared statements: a reset (DISCARD ALL) leaves none
    adapters = connection.adapters
    adapters.register_dumper(int, Int8Dumper)
    adapters.register_dumper(str, StrDumperVarchar)
    for name in TEXT_LOADED:
        info = psycopg.postgres.types.get(name)
        if info is not None:
            adapters.register_loader(info.oid, TextLoader)


def _reset(connection: psycopg.Connection) -> None:
    """A borrowed connection goes back as new: no SET, temporary table or cursor leaks into the next call."""
    connection.execute("DISCARD ALL")


def _fetch_bounded(cursor: psycopg.Cursor) -> list[tuple]:
    """Fetch rows in batches, refusing once they surely exceed every size limit (so memory stays bounded).

    A row's repr is under 4 times its JSON size even as formattedRecords (`Decimal('1')` against `"c":"1"`).
    """
    rows: list[tuple] = []
    approximate_bytes = 0
    while batch := cursor.fetchmany(_FETCH_ROWS):
        rows.extend(batch)
        approximate_bytes += sum(len(repr(row)) for row in batch)
        if approximate_bytes > 4 * JSON_RESULT_LIMIT_BYTES:
            raise ResultTooLarge("Database returned more than the allowed response size limit")
    return rows


def _response(result: _Result, shape: ResultShape, include_metadata: bool, *, as_json: bool) -> dict:
    """The ExecuteStatement response members for one statement's result."""
    response: dict = {}
    if result.columns is not None:
        shape.check_supported(result.columns)
        records = shape.records(result.columns, result.rows)
        if as_json:
            response["formattedRecords"] = formatted(result.columns, records)
        else:
            check_sizes(records)
            response["records"] = records
            if include_metadata:
                response["columnMetadata"] = [column.metadata() for column in result.columns]
    elif as_json:
        response["formattedRecords"] = "[]"
    elif include_metadata:
        response["columnMetadata"] = []
    response["numberOfRecordsUpdated"] = result.updated
    return response
