"""The SQL layer behind the local Data API: an in-memory DuckDB with a `Customer` table, typed results, transactions.

`Database.execute` answers with the members of an ExecuteStatement response (botocore rds-data 2018-08-01):
`records` of typed `Field` values (or `formattedRecords`), `columnMetadata`, `numberOfRecordsUpdated`. DuckDB's
errors come back in the PostgreSQL form Aurora PostgreSQL uses, `ERROR: <message>; SQLState: <code>`.

Each transaction is its own DuckDB connection holding a `BEGIN`. DuckDB uses optimistic concurrency control: when
two open transactions update the same row, the second update fails at once with a conflict (SQLState 40001)
where MySQL or PostgreSQL would make it wait for the first transaction's lock.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources

import duckdb

from .. import facts
from . import params
from .params import RequestError

__all__ = ["Database", "RequestError", "ResultTooLarge", "SqlError", "TransactionNotFound"]

# Data API limits (DOC: UG data-api.md; API: botocore rds-data BatchExecuteStatement).
RESULT_LIMIT_BYTES = facts.DATA_API_RESPONSE_LIMIT_BYTES
ROW_LIMIT_BYTES = facts.DATA_API_ROW_LIMIT_BYTES
JSON_RESULT_LIMIT_BYTES = facts.DATA_API_JSON_RESULT_LIMIT_BYTES
_FETCH_ROWS = 1000

CUSTOMER_DDL = """CREATE TABLE Customer (
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    email VARCHAR,
    balance DECIMAL(10, 2) NOT NULL,
    signup_date DATE NOT NULL
)"""

# DuckDB exception class → PostgreSQL SQLSTATE; anything else is XX000 (internal_error). Constraint errors are
# class 23 (see _CONSTRAINTS); transaction errors 40001 for a conflict, 25P02 once aborted, else 25000.
_SQLSTATES = (
    (duckdb.ParserException, "42601"),
    (duckdb.CatalogException, "42P01"),
    (duckdb.ConversionException, "22P02"),
    (duckdb.InterruptException, "57014"),
)
# Constraint Error text → PostgreSQL's class 23 code; a key violation (and anything else) is 23505.
_CONSTRAINTS = (("NOT NULL", "23502"), ("CHECK constraint", "23514"), ("foreign key", "23503"))
_DUCKDB_PREFIX = re.compile(r"^[A-Za-z ]*Error: ")
_CHANGING = ("INSERT", "UPDATE", "DELETE", "MERGE_INTO")  # DuckDB StatementType names
_QUERIES = ("SELECT", "EXPLAIN", "PRAGMA", "CALL", "EXECUTE", "RELATION")


class SqlError(Exception):
    """An error the database raised, in the PostgreSQL form: `ERROR: <message>; SQLState: <code>`.

    Example:
        >>> str(SqlError('relation "nope" does not exist', "42P01"))
        'ERROR: relation "nope" does not exist; SQLState: 42P01'
    """

    def __init__(self, message: str, sqlstate: str) -> None:
        self.message, self.sqlstate = message, sqlstate
        super().__init__(f"ERROR: {message}; SQLState: {sqlstate}")


class ResultTooLarge(Exception):
    """A result over the Data API's size limits (1 MiB a response, 64 KB a row; 10 MB as formattedRecords).

    Example:
        >>> ResultTooLarge("Packet for query is too large").message
        'Packet for query is too large'
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def sql_error(error: duckdb.Error) -> SqlError:
    """Map a DuckDB error to PostgreSQL's form: the first line of its text, with a SQLSTATE for its class.

    Example:
        >>> str(sql_error(duckdb.ParserException('Parser Error: syntax error at or near "SELEC"\\n\\nLINE 1: ...')))
        'ERROR: syntax error at or near "SELEC"; SQLState: 42601'
    """
    text = str(error).strip()
    message = _DUCKDB_PREFIX.sub("", text.splitlines()[0] if text else type(error).__name__)
    if isinstance(error, duckdb.TransactionException):
        if "conflict" in text.lower():
            return SqlError(message, "40001")
        return SqlError(message, "25P02" if "aborted" in text else "25000")
    if isinstance(error, duckdb.ConstraintException):
        constraint = next((code for word, code in _CONSTRAINTS if word in text), "23505")
        return SqlError(message, constraint)
    sqlstate = next((code for kind, code in _SQLSTATES if isinstance(error, kind)), "XX000")
    return SqlError(message, sqlstate)


# DuckDB type id → (JDBC type code, PostgreSQL type name as pgJDBC reports it, precision, signed, value kind).
_TYPES = {
    "boolean": (16, "bool", 1, False, "boolean"),
    "tinyint": (-6, "int2", 3, True, "long"),
    "smallint": (5, "int2", 5, True, "long"),
    "integer": (4, "int4", 10, True, "long"),
    "bigint": (-5, "int8", 19, True, "bigint"),
    "hugeint": (2, "numeric", 39, True, "bigint"),
    "utinyint": (5, "int2", 3, False, "long"),
    "usmallint": (4, "int4", 5, False, "long"),
    "uinteger": (-5, "int8", 10, False, "long"),
    "ubigint": (2, "numeric", 20, False, "bigint"),
    "uhugeint": (2, "numeric", 39, False, "bigint"),
    "float": (7, "float4", 8, True, "double"),
    "double": (8, "float8", 17, True, "double"),
    "decimal": (3, "numeric", 38, True, "decimal"),
    "varchar": (12, "varchar", 2147483647, False, "string"),
    "date": (91, "date", 13, False, "date"),
    "time": (92, "time", 15, False, "time"),
    "time with time zone": (2013, "timetz", 21, False, "time"),
    "timestamp": (93, "timestamp", 29, False, "timestamp"),
    "timestamp_s": (93, "timestamp", 29, False, "timestamp"),
    "timestamp_ms": (93, "timestamp", 29, False, "timestamp"),
    "timestamp_ns": (93, "timestamp", 29, False, "timestamp"),
    "timestamp with time zone": (2014, "timestamptz", 35, False, "timestamptz"),
    "blob": (-2, "bytea", 2147483647, False, "blob"),
    "uuid": (1111, "uuid", 36, False, "string"),
    "null": (0, "unknown", 0, False, "string"),
}
_OTHER = (1111, None, 2147483647, False, "string")  # interval, struct, map, enum…: sent as text
_ARRAY_MEMBERS = {"boolean": "booleanValues", "long": "longValues", "double": "doubleValues"}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # a Java long


@dataclass(frozen=True)
class ResultShape:
    """How results are typed, from ExecuteStatement's `resultSetOptions`.

    DECIMAL is a stringValue unless `decimalReturnType` is DOUBLE_OR_LONG (then longValue at scale 0, else
    doubleValue); BIGINT is a longValue unless `longReturnType` is STRING. Dates and times are strings
    ("2021-03-04", "12:00:00", "2021-03-04 12:00:00"; TIMESTAMP WITH TIME ZONE in UTC); BLOB is base64 text.

    Example:
        >>> ResultShape.from_options({"decimalReturnType": "DOUBLE_OR_LONG"}).decimal_return_type
        'DOUBLE_OR_LONG'
    """

    decimal_return_type: str = "STRING"
    long_return_type: str = "LONG"

    @classmethod
    def from_options(cls, options: dict | None) -> ResultShape:
        options = dict(options or {})
        allowed = {"decimalReturnType": ("STRING", "DOUBLE_OR_LONG"), "longReturnType": ("STRING", "LONG")}
        for key, value in options.items():
            if key not in allowed or value not in allowed[key]:
                msg = f"resultSetOptions {key}={value!r} is not allowed; allowed: {allowed}"
                raise RequestError(msg)
        return cls(options.get("decimalReturnType", "STRING"), options.get("longReturnType", "LONG"))

    def records(self, description: list, rows: list[tuple]) -> list[list[dict]]:
        """Rows as lists of `Field` dicts."""
        types = [column[1] for column in description]
        return [[self.field(kind, value) for kind, value in zip(types, row, strict=True)] for row in rows]

    def field(self, duckdb_type, value) -> dict:
        """One value as a `Field`: `{"isNull": True}` or the one member its type maps to."""
        if value is None:
            return {"isNull": True}
        kind = _TYPES.get(duckdb_type.id, _OTHER)[4]
        if duckdb_type.id in ("list", "array"):
            return {"arrayValue": self._array(dict(duckdb_type.children)["child"], value)}
        if kind == "boolean":
            return {"booleanValue": bool(value)}
        if kind == "long" or (kind == "bigint" and self.long_return_type == "LONG" and _LONG_MIN <= value <= _LONG_MAX):
            return {"longValue": int(value)}
        if kind == "double":
            return {"doubleValue": float(value)}
        if kind == "decimal" and self.decimal_return_type == "DOUBLE_OR_LONG":
            if dict(duckdb_type.children)["scale"] == 0 and _LONG_MIN <= value <= _LONG_MAX:
                return {"longValue": int(value)}
            return {"doubleValue": float(value)}
        if kind == "blob":
            return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
        return {"stringValue": _text(kind, value)}

    def _array(self, child_type, values) -> dict:
        """An `ArrayValue`: booleanValues, longValues, doubleValues or stringValues, or arrayValues if nested."""
        if child_type.id in ("list", "array"):
            return {"arrayValues": [None if v is None else self._array(dict(child_type.children)["child"], v)
                                    for v in values]}
        fields = [self.field(child_type, value) for value in values]
        member = next((_ARRAY_MEMBERS[k] for k in _ARRAY_MEMBERS
                       if all(k + "Value" in f or "isNull" in f for f in fields)), "stringValues")
        if member == "stringValues":
            return {member: [None if "isNull" in f else str(to_json_value(f)) for f in fields]}
        return {member: [None if "isNull" in f else next(iter(f.values())) for f in fields]}

    def column_metadata(self, description: list) -> list[dict]:
        """`ColumnMetadata` for each column. DuckDB does not say which table a column came from, so every column
        is reported nullable (1) with empty schemaName and tableName, as JDBC drivers report expressions."""
        return [_column_metadata(name, duckdb_type) for name, duckdb_type, *_ in description]


def _column_metadata(name: str, duckdb_type) -> dict:
    code, type_name, precision, signed, kind = _TYPES.get(duckdb_type.id, _OTHER)
    scale = 0
    base = 0
    if duckdb_type.id == "decimal":
        precision, scale = (dict(duckdb_type.children)[key] for key in ("precision", "scale"))
    if duckdb_type.id in ("list", "array"):
        child = dict(duckdb_type.children)["child"]
        child_code, child_name, *_ = _TYPES.get(child.id, _OTHER)
        code, type_name, base = 2003, "_" + (child_name or str(child).lower()), child_code
    if type_name is None:
        type_name = "json" if str(duckdb_type) == "JSON" else str(duckdb_type).lower()
    return {"name": name, "label": name, "type": code, "typeName": type_name, "schemaName": "", "tableName": "",
            "isAutoIncrement": False, "isSigned": signed, "isCurrency": False,
            "isCaseSensitive": kind == "string", "nullable": 1, "precision": precision, "scale": scale,
            "arrayBaseColumnType": base}


def _text(kind: str, value) -> str:
    if kind == "timestamptz" and isinstance(value, dt.datetime):
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        kind = "timestamp"
    if kind == "timestamp" and isinstance(value, dt.datetime):
        return _trim_fraction(value.isoformat(sep=" "))
    if kind == "time" and isinstance(value, dt.time):
        return _trim_fraction(value.isoformat())
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _trim_fraction(text: str) -> str:
    """'12:00:01.500000' → '12:00:01.5'; '12:00:00.000000+01:00' → '12:00:00+01:00'."""
    return re.sub(r"\.(\d*?)0+(?=$|[+-])", lambda m: "." + m.group(1) if m.group(1) else "", text)


def to_json_value(field_value: dict):
    """The plain JSON value of a `Field`, as `formattedRecords` shows it.

    Example:
        >>> to_json_value({"stringValue": "120.50"}), to_json_value({"isNull": True})
        ('120.50', None)
    """
    member, value = next(iter(field_value.items()))
    if member == "isNull":
        return None
    if member == "arrayValue":
        inner_member, inner = next(iter(value.items()))
        if inner_member == "arrayValues":
            return [None if v is None else to_json_value({"arrayValue": v}) for v in inner]
        return inner
    return value


@dataclass(eq=False)
class _Transaction:
    connection: duckdb.DuckDBPyConnection
    lock: threading.Lock = field(default_factory=threading.Lock)


class Database:
    """An in-memory DuckDB database named `database`, holding `Customer` (loaded from the packaged CSV).

    Safe to call from several threads: statements outside a transaction each get their own DuckDB connection;
    calls for one transaction take turns.

    Example:
        >>> db = Database()
        >>> db.execute("SELECT name FROM Customer WHERE id = :id", [{"name": "id", "value": {"longValue": 1}}])
        {'records': [[{'stringValue': 'Ana Souza'}]], 'numberOfRecordsUpdated': 0}
        >>> db.close()
    """

    def __init__(self, *, database: str = "mydb") -> None:
        self.database = database
        self._connection = duckdb.connect(":memory:")
        self._connection.execute("SET GLOBAL TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._transactions: dict[str, _Transaction] = {}
        self._running: set[duckdb.DuckDBPyConnection] = set()
        self._closed = False
        _load_customers(self._connection)

    def __repr__(self) -> str:
        return f"Database(database={self.database!r}, open_transactions={self.open_transactions()})"

    # ExecuteStatement / BatchExecuteStatement

    def execute(self, sql: str, parameters: list[dict] | None = None, *, database: str | None = None,
                transaction_id: str | None = None, include_result_metadata: bool = False,
                format_records_as: str | None = None, result_set_options: dict | None = None) -> dict:
        """Run SQL (one or more `;`-separated statements) and return the ExecuteStatement response members.

        Returns:
            `records` (rows of `Field` dicts) for a statement that returns rows, or `formattedRecords` (a JSON array
            of objects) when `format_records_as="JSON"`; `columnMetadata` when `include_result_metadata` (never
            with JSON); `numberOfRecordsUpdated`: rows changed by INSERT/UPDATE/DELETE, 0 otherwise. No
            `generatedFields`: use RETURNING, as on Aurora PostgreSQL. With several statements, the last one's
            result is returned; outside a transaction each statement commits on its own.

        Raises:
            RequestError: A bad parameter, format or option (see `params.bind`).
            SqlError: The database refused the statement, or `database` does not exist (3D000).
            TransactionNotFound: `transaction_id` is unknown, ended or expired.
            ResultTooLarge: A row over 64 KB or a result over 1 MiB (10 MB as JSON).

        Example:
            >>> db = Database()
            >>> db.execute("UPDATE Customer SET balance = balance + 1 WHERE id <= 2")["numberOfRecordsUpdated"]
            2
            >>> db.execute("SELECT balance FROM Customer WHERE id = 1", format_records_as="JSON")["formattedRecords"]
            '[{"balance":"121.50"}]'
            >>> db.close()
        """
        shape = ResultShape.from_options(result_set_options)
        if format_records_as not in (None, "NONE", "JSON"):
            msg = f"formatRecordsAs={format_records_as!r} must be one of ('NONE', 'JSON')"
            raise RequestError(msg)
        statements = [params.bind(statement, parameters) for statement in params.split_statements(sql)]
        if not statements:
            raise SqlError("syntax error: the statement is empty", "42601")
        with self._session(database, transaction_id) as connection:
            for translated, values in statements[:-1]:
                self._run(connection, translated, values)
            translated, values = statements[-1]
            kind, description, rows = self._run(connection, translated, values)
        return _response(kind, translated, description, rows, shape, include_result_metadata,
                         as_json=format_records_as == "JSON")

    def batch_execute(self, sql: str, parameter_sets: list[list[dict]] | None, *, database: str | None = None,
                      transaction_id: str | None = None) -> dict:
        """Run one statement once per parameter set; `{"updateResults": [{}, …]}`, one entry per set.

        Outside a transaction the whole batch commits together or not at all. With no parameter sets the
        statement runs once and `updateResults` is empty.

        Raises:
            RequestError: A bad parameter (a batch has no fixed number of parameter sets; the HTTP layer caps its size).
            SqlError, TransactionNotFound: As for `execute`.

        Example:
            >>> db = Database()
            >>> db.batch_execute("DELETE FROM Customer WHERE id = :id",
            ...                  [[{"name": "id", "value": {"longValue": i}}] for i in (1, 2)])
            {'updateResults': [{}, {}]}
            >>> db.close()
        """
        # No cap on the number of sets: "There isn't a fixed upper limit" (UG data-api.md); the 4 MiB request
        # limit the HTTP layer enforces bounds a batch.
        sets = parameter_sets or []
        bound = [params.bind(sql, parameter_set) for parameter_set in sets] or [params.bind(sql, [])]
        with self._session(database, transaction_id) as connection:
            own_transaction = transaction_id is None
            if own_transaction:
                connection.execute("BEGIN TRANSACTION")
            try:
                for translated, values in bound:
                    self._run(connection, translated, values)
                if own_transaction:
                    connection.execute("COMMIT")
            except duckdb.Error as error:
                raise sql_error(error) from None
        return {"updateResults": [{} for _ in sets]}

    # BeginTransaction / CommitTransaction / RollbackTransaction

    def begin(self, *, database: str | None = None) -> str:
        """Open a transaction on its own connection and return its id (an opaque string).

        Example:
            >>> db = Database()
            >>> transaction_id = db.begin()
            >>> db.open_transactions(), db.rollback(transaction_id), db.open_transactions()
            (1, {'transactionStatus': 'Rollback Complete'}, 0)
            >>> db.close()
        """
        self._check_database(database)
        with self._lock:
            self._check_open()
            connection = self._connection.cursor()
            connection.execute("BEGIN TRANSACTION")
            transaction_id = secrets.token_urlsafe(48)
            self._transactions[transaction_id] = _Transaction(connection)
        return transaction_id

    def commit(self, transaction_id: str) -> dict:
        """Commit and end the transaction: `{"transactionStatus": "Transaction Committed"}`.

        Raises:
            TransactionNotFound: The id is unknown, ended or expired.
            SqlError: The commit conflicted (40001), or an earlier statement failed, so the transaction was rolled
                back instead (25P02). Either way the transaction has ended.
        """
        transaction = self._take(transaction_id)
        with transaction.lock:
            try:
                transaction.connection.execute("SELECT 1")  # fails if an earlier statement aborted the transaction
            except duckdb.TransactionException as error:
                transaction.connection.close()
                cause = sql_error(error)
                msg = f"The database returned ROLLBACK, so the transaction cannot be committed. Cause: {cause.message}"
                raise SqlError(msg, "25P02") from None
            try:
                transaction.connection.execute("COMMIT")
            except duckdb.Error as error:
                raise sql_error(error) from None
            finally:
                transaction.connection.close()
        return {"transactionStatus": "Transaction Committed"}

    def rollback(self, transaction_id: str) -> dict:
        """Roll back and end the transaction: `{"transactionStatus": "Rollback Complete"}`.

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

    def interrupt(self) -> int:
        """Cancel every running statement (each fails with SQLState 57014); returns how many were running."""
        with self._lock:
            running = list(self._running)
        for connection in running:
            connection.interrupt()
        return len(running)

    def close(self) -> None:
        """Cancel running statements, roll back every open transaction and close the database; idempotent."""
        with self._lock:
            transactions, self._transactions = list(self._transactions.values()), {}
            already, self._closed = self._closed, True
        deadline = time.monotonic() + 5
        while self.interrupt() and time.monotonic() < deadline:  # a running statement keeps the connection busy
            time.sleep(0.01)
        for transaction in transactions:
            self._end(transaction)
        if not already:
            self._connection.close()

    # helpers

    def _session(self, database: str | None, transaction_id: str | None) -> _Session:
        self._check_database(database)
        if transaction_id is None:
            with self._lock:
                self._check_open()
                return _Session(self._connection.cursor(), None, close=True)
        with self._lock:
            transaction = self._transactions.get(transaction_id)
        if transaction is None:
            raise TransactionNotFound(transaction_id)
        return _Session(transaction.connection, transaction.lock, close=False)

    def _run(self, connection: duckdb.DuckDBPyConnection, sql: str, values: list) -> tuple[str, list, list]:
        """Execute one statement; (statement type, description, first rows up to the size limit + 1 batch)."""
        with self._lock:
            self._running.add(connection)
        try:
            kind = connection.extract_statements(sql)[0].type.name if sql.strip() else "SELECT"
            connection.execute(sql, values)
            description = connection.description or []
            rows = _fetch_bounded(connection) if description else []
        except duckdb.Error as error:
            raise sql_error(error) from None
        finally:
            with self._lock:
                self._running.discard(connection)
        return kind, description, rows

    def _take(self, transaction_id: str) -> _Transaction:
        with self._lock:
            transaction = self._transactions.pop(transaction_id, None)
        if transaction is None:
            raise TransactionNotFound(transaction_id)
        return transaction

    @staticmethod
    def _end(transaction: _Transaction) -> None:
        with transaction.lock:
            try:
                transaction.connection.execute("ROLLBACK")
            except duckdb.Error:
                pass  # already rolled back by DuckDB after a conflict; closing is all that is left
            finally:
                transaction.connection.close()

    def _check_database(self, database: str | None) -> None:
        if database is not None and database != self.database:
            raise SqlError(f'database "{database}" does not exist', "3D000")

    def _check_open(self) -> None:
        if self._closed:
            msg = "Database is closed"
            raise RuntimeError(msg)


class _Session:
    """The connection a call uses: a fresh one (closed afterwards) or a transaction's (held under its lock)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, lock: threading.Lock | None, *, close: bool) -> None:
        self.connection, self.lock, self.close = connection, lock, close

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self.lock is not None:
            self.lock.acquire()
        return self.connection

    def __exit__(self, *exc_info) -> None:
        if self.close:
            self.connection.close()
        if self.lock is not None:
            self.lock.release()


def _fetch_bounded(connection: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Fetch rows in batches, refusing once they surely exceed every size limit (so memory stays bounded).

    A row's repr is under 4 times its JSON size even as formattedRecords (`Decimal('1')` against `"c":"1"`).
    """
    rows: list[tuple] = []
    approximate_bytes = 0
    while batch := connection.fetchmany(_FETCH_ROWS):
        rows.extend(batch)
        approximate_bytes += sum(len(repr(row)) for row in batch)
        if approximate_bytes > 4 * JSON_RESULT_LIMIT_BYTES:
            raise ResultTooLarge("Database returned more than the allowed response size limit")
    return rows


def _response(kind: str, sql: str, description: list, rows: list, shape: ResultShape, include_metadata: bool, *,
              as_json: bool) -> dict:
    """The ExecuteStatement response members for one statement's result."""
    changing = kind in _CHANGING
    returning = bool(re.search(r"\breturning\b", params.code_only(sql), re.IGNORECASE))
    returns_rows = bool(description) and (kind in _QUERIES or (changing and returning))
    updated = 0
    if changing:
        updated = len(rows) if returns_rows else int(rows[0][0]) if rows else 0
    response: dict = {}
    if returns_rows:
        records = shape.records(description, rows)
        if as_json:
            response["formattedRecords"] = _formatted(description, records)
        else:
            _check_sizes(records)
            response["records"] = records
            if include_metadata:
                response["columnMetadata"] = shape.column_metadata(description)
    elif as_json:
        response["formattedRecords"] = "[]"
    elif include_metadata:
        response["columnMetadata"] = []
    response["numberOfRecordsUpdated"] = updated
    return response


def _check_sizes(records: list[list[dict]]) -> None:
    total = 2
    for record in records:
        size = len(json.dumps(record, separators=(",", ":")))
        if size > ROW_LIMIT_BYTES:
            raise ResultTooLarge("Packet for query is too large")
        total += size + 1
        if total > RESULT_LIMIT_BYTES:
            raise ResultTooLarge("Database returned more than the allowed response size limit")


def _formatted(description: list, records: list[list[dict]]) -> str:
    names = [column[0] for column in description]
    objects = []
    for record in records:
        row = {name: to_json_value(value) for name, value in zip(names, record, strict=True)}
        if len(json.dumps(row, separators=(",", ":"))) > ROW_LIMIT_BYTES:
            raise ResultTooLarge("Packet for query is too large")
        objects.append(row)
    text = json.dumps(objects, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > JSON_RESULT_LIMIT_BYTES:
        raise ResultTooLarge("Database returned more than the allowed response size limit")
    return text


def _load_customers(connection: duckdb.DuckDBPyConnection) -> None:
    """Create `Customer` with its schema, then load the packaged `data/customer.csv` (an empty e-mail is NULL)."""
    text = resources.files("aurora_sim").joinpath("data/customer.csv").read_text(encoding="utf-8")
    rows = [(int(row["id"]), row["name"], row["email"] or None, row["balance"], row["signup_date"])
            for row in csv.DictReader(io.StringIO(text))]
    connection.execute(CUSTOMER_DDL)
    insert = "INSERT INTO Customer VALUES ($1, $2, $3, CAST($4 AS DECIMAL(10, 2)), CAST($5 AS DATE))"
    connection.executemany(insert, rows)
