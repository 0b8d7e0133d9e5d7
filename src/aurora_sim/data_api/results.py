"""A PostgreSQL result as the Data API returns it: typed ``Field`` values, ``columnMetadata`` and ``formattedRecords``.

Everything comes from PostgreSQL's own description of the result: each column's type OID and modifier, and the
table and column it came from. The metadata follows what pgJDBC (the JDBC driver behind the Data API for Aurora
PostgreSQL) reports for them: JDBC type codes (``bool`` is ``BIT``, -7; ``numeric`` is ``NUMERIC``, 2), precision
and scale from the type modifier, ``nullable`` 0 for a ``NOT NULL`` column and 1 otherwise, ``tableName`` for a
table's column, ``serial``/``bigserial`` for an auto-increment column, and an empty ``schemaName`` (pgJDBC's
``getSchemaName`` always answers "").
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from .. import facts
from .params import RequestError

RESULT_LIMIT_BYTES = facts.DATA_API_RESPONSE_LIMIT_BYTES
ROW_LIMIT_BYTES = facts.DATA_API_ROW_LIMIT_BYTES
JSON_RESULT_LIMIT_BYTES = facts.DATA_API_JSON_RESULT_LIMIT_BYTES
UNKNOWN_LENGTH = 2_147_483_647  # pgJDBC's "unknown length" (Integer.MAX_VALUE)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # a Java long

# PostgreSQL type OIDs (pg_type.dat) → (name, JDBC type code) as pgJDBC's TypeInfoCache lists its core types.
CORE_TYPES = {
    16: ("bool", -7), 17: ("bytea", -2), 18: ("char", 1), 19: ("name", 12), 20: ("int8", -5), 21: ("int2", 5),
    23: ("int4", 4), 25: ("text", 12), 26: ("oid", -5), 114: ("json", 1111), 142: ("xml", 2009),
    600: ("point", 1111), 700: ("float4", 7), 701: ("float8", 8), 790: ("money", 8), 1042: ("bpchar", 1),
    1043: ("varchar", 12), 1082: ("date", 91), 1083: ("time", 92), 1114: ("timestamp", 93),
    1184: ("timestamptz", 93), 1186: ("interval", 1111), 1266: ("timetz", 92), 1560: ("bit", -7),
    1700: ("numeric", 2), 1790: ("refcursor", 2012), 2950: ("uuid", 1111), 3802: ("jsonb", 1111),
}
_LONGS, _DOUBLES = {20, 21, 23, 26}, {700, 701}
_BOOLEAN, _BYTEA, _NUMERIC, _TIMESTAMPTZ = 16, 17, 1700, 1184
_SIGNED = {20, 21, 23, 700, 701, 1700}
_CASE_INSENSITIVE = {16, 20, 21, 23, 26, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 1560, 1562, 1700}
_DATETIMES = {1082: 13, 1083: 8, 1266: 14, 1114: 22, 1184: 28, 1186: 49}  # pgJDBC display size, fraction apart
# Aurora Serverless v2 answers UnsupportedResultException for "geometric and monetary types" (UG data-api.differences).
V2_UNSUPPORTED = {"money", "point", "line", "lseg", "box", "path", "polygon", "circle"}
# Loaded as PostgreSQL's own text (the Data API sends them as stringValue); bool, integers, floats and bytea are not.
TEXT_LOADED = ("numeric", "date", "time", "timetz", "timestamp", "timestamptz", "interval", "json", "jsonb", "uuid",
               "money", "inet", "cidr", "macaddr", "macaddr8", "xml", "int4range", "int8range", "numrange",
               "tsrange", "tstzrange", "daterange", "int4multirange", "int8multirange", "nummultirange",
               "tsmultirange", "tstzmultirange", "datemultirange", "tsvector", "tsquery", "pg_lsn", "jsonpath")


class ResultTooLarge(Exception):
    """A result over the Data API's size limits (1 MiB a response, 64 KB a row; 10 MB as formattedRecords).

    Example:
        >>> ResultTooLarge("Packet for query is too large").message
        'Packet for query is too large'
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedResult(Exception):
    """A v2 result holding a type Aurora Serverless v2's Data API refuses (geometric, monetary, nested arrays).

    Example:
        >>> UnsupportedResult("money").message
        'The result contains the unsupported data type money'
    """

    def __init__(self, type_name: str) -> None:
        self.message = f"The result contains the unsupported data type {type_name}"
        super().__init__(self.message)


@dataclass(frozen=True)
class PgType:
    """What a type OID is: pgJDBC's name for it, its JDBC code, and for an array its element type.

    Example:
        >>> PgType.core(1700).jdbc_code, PgType.core(1700).name
        (2, 'numeric')
    """

    oid: int
    name: str
    jdbc_code: int
    element: PgType | None = None

    @classmethod
    def core(cls, oid: int) -> PgType:
        name, code = CORE_TYPES[oid]
        return cls(oid, name, code)

    @property
    def base_oid(self) -> int:
        return self.element.oid if self.element is not None else self.oid


@dataclass(frozen=True)
class Column:
    """One result column: its label, type and type modifier, and where PostgreSQL says it comes from.

    ``source`` is the (table OID, attribute number) pair PostgreSQL's row description gives; (0, 0) for an
    expression.
    """

    name: str
    type: PgType
    modifier: int
    table_name: str = ""
    not_null: bool = False
    auto_increment: bool = False
    source: tuple[int, int] = field(default=(0, 0), compare=False, repr=False)

    def metadata(self) -> dict:
        """The column's ``ColumnMetadata``, as pgJDBC's ResultSetMetaData reports it.

        Example:
            >>> Column("balance", PgType.core(1700), modifier=(10 << 16) + 2 + 4, table_name="customer",
            ...        not_null=True).metadata()["precision"]
            10
        """
        oid, kind = self.type.base_oid, self.type
        type_name = kind.name
        if self.auto_increment and kind.name in ("int4", "int8"):
            type_name = "serial" if kind.name == "int4" else "bigserial"
        return {"name": self.name, "label": self.name, "type": kind.jdbc_code, "typeName": type_name,
                "schemaName": "", "tableName": self.table_name, "isAutoIncrement": self.auto_increment,
                "isSigned": oid in _SIGNED, "isCurrency": kind.name in ("money", "cash"),
                "isCaseSensitive": oid not in _CASE_INSENSITIVE, "nullable": 0 if self.not_null else 1,
                "precision": precision(oid, self.modifier), "scale": scale(oid, self.modifier),
                "arrayBaseColumnType": kind.element.jdbc_code if kind.element is not None else 0}


def precision(oid: int, modifier: int) -> int:
    """pgJDBC's ``getPrecision`` for a type OID and modifier.

    Example:
        >>> precision(23, -1), precision(1043, 50 + 4), precision(1114, -1), precision(25, -1)
        (10, 50, 29, 2147483647)
    """
    fixed = {21: 5, 23: 10, 26: 10, 20: 19, 700: 8, 701: 17, 18: 1, 16: 1}
    if oid in fixed:
        return fixed[oid]
    if oid == _NUMERIC:
        return 0 if modifier == -1 else ((modifier - 4) & 0xFFFF0000) >> 16
    if oid in (1042, 1043):
        return UNKNOWN_LENGTH if modifier == -1 else modifier - 4
    if oid in _DATETIMES:
        return _display_size(oid, modifier)
    if oid == 1560:
        return modifier
    return UNKNOWN_LENGTH


def scale(oid: int, modifier: int) -> int:
    """pgJDBC's ``getScale``: digits after the point (numeric), of the seconds (times), else 0.

    Example:
        >>> scale(1700, (10 << 16) + 2 + 4), scale(1114, -1), scale(701, -1), scale(23, -1)
        (2, 6, 17, 0)
    """
    if oid in (700, 701):
        return 8 if oid == 700 else 17
    if oid == _NUMERIC:
        return 0 if modifier == -1 else (modifier - 4) & 0xFFFF
    if oid in (1083, 1266, 1114, 1184):
        return 6 if modifier == -1 else modifier
    if oid == 1186:
        return 6 if modifier == -1 else modifier & 0xFFFF
    return 0


def _display_size(oid: int, modifier: int) -> int:
    if oid in (1082, 1186):
        return _DATETIMES[oid]
    seconds = {-1: 7, 0: 0, 1: 3}.get(modifier, modifier + 1)
    return _DATETIMES[oid] + seconds


@dataclass(frozen=True)
class ResultShape:
    """How values are typed, from ExecuteStatement's ``resultSetOptions`` (and the flavour).

    NUMERIC is a stringValue unless ``decimalReturnType`` is DOUBLE_OR_LONG (then longValue at scale 0, else
    doubleValue); BIGINT is a longValue unless ``longReturnType`` is STRING. Dates and times are PostgreSQL's ISO
    text (TIMESTAMP WITH TIME ZONE in UTC, without the offset); BYTEA is base64 text.

    Example:
        >>> ResultShape.from_options({"decimalReturnType": "DOUBLE_OR_LONG"}).decimal_return_type
        'DOUBLE_OR_LONG'
    """

    decimal_return_type: str = "STRING"
    long_return_type: str = "LONG"
    flavour: str = "v1"

    @classmethod
    def from_options(cls, options: dict | None, flavour: str = "v1") -> ResultShape:
        options = dict(options or {})
        allowed = {"decimalReturnType": ("STRING", "DOUBLE_OR_LONG"), "longReturnType": ("STRING", "LONG")}
        for key, value in options.items():
            if key not in allowed or value not in allowed[key]:
                msg = f"resultSetOptions {key}={value!r} is not allowed; allowed: {allowed}"
                raise RequestError(msg)
        return cls(options.get("decimalReturnType", "STRING"), options.get("longReturnType", "LONG"), flavour)

    def check_supported(self, columns: list[Column]) -> None:
        """v2 refuses geometric and monetary types (v1 sends them as text)."""
        if self.flavour != "v2":
            return
        for column in columns:
            if column.type.name.lstrip("_") in V2_UNSUPPORTED:
                raise UnsupportedResult(column.type.name)

    def records(self, columns: list[Column], rows: list[tuple]) -> list[list[dict]]:
        """Rows as lists of ``Field`` dicts."""
        return [[self.field(column, value) for column, value in zip(columns, row, strict=True)] for row in rows]

    def field(self, column: Column, value) -> dict:
        """One value as a ``Field``: ``{"isNull": True}`` or the one member its type maps to."""
        if value is None:
            return {"isNull": True}
        if column.type.element is not None:
            return {"arrayValue": self._array(column, column.type.element.oid, value)}
        return self._scalar(column.type.oid, column.modifier, value)

    def _scalar(self, oid: int, modifier: int, value) -> dict:
        if oid == _BOOLEAN:
            return {"booleanValue": bool(value)}
        if oid in _LONGS:
            if oid == 20 and self.long_return_type == "STRING":
                return {"stringValue": str(value)}
            return {"longValue": int(value)}
        if oid in _DOUBLES:
            return {"doubleValue": float(value)}
        if oid == _NUMERIC and self.decimal_return_type == "DOUBLE_OR_LONG" and value not in ("NaN", "Infinity",
                                                                                                "-Infinity"):
            if scale(oid, modifier) == 0 and "." not in value and _LONG_MIN <= int(value) <= _LONG_MAX:
                return {"longValue": int(value)}
            return {"doubleValue": float(value)}
        if oid == _BYTEA:
            return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
        if oid == _TIMESTAMPTZ:  # PostgreSQL's text in the session's UTC, e.g. "2021-03-04 10:00:00+00"
            return {"stringValue": value.removesuffix("+00")}
        return {"stringValue": str(value)}

    def _array(self, column: Column, element_oid: int, values: list) -> dict:
        """An ``ArrayValue``: booleanValues, longValues, doubleValues or stringValues, or arrayValues if nested."""
        if any(isinstance(value, list) for value in values):
            if self.flavour == "v2":
                raise UnsupportedResult(column.type.name)
            return {"arrayValues": [None if v is None else self._array(column, element_oid, v) for v in values]}
        fields = [None if v is None else self._scalar(element_oid, -1, v) for v in values]
        member = next((k + "s" for k in ("booleanValue", "longValue", "doubleValue")
                       if fields and all(f is None or k in f for f in fields)), "stringValues")
        if member == "stringValues":
            return {member: [None if f is None else str(next(iter(f.values()))) for f in fields]}
        return {member: [None if f is None else next(iter(f.values())) for f in fields]}


def to_json_value(field_value: dict):
    """The plain JSON value of a ``Field``, as ``formattedRecords`` shows it.

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


def check_sizes(records: list[list[dict]]) -> None:
    """Refuse a row over 64 KB or a response over 1 MiB, as the Data API does.

    Example:
        >>> check_sizes([[{"stringValue": "x" * 70_000}]])
        Traceback (most recent call last):
        aurora_sim.data_api.results.ResultTooLarge: Packet for query is too large
    """
    total = 2
    for record in records:
        size = len(json.dumps(record, separators=(",", ":")))
        if size > ROW_LIMIT_BYTES:
            raise ResultTooLarge("Packet for query is too large")
        total += size + 1
        if total > RESULT_LIMIT_BYTES:
            raise ResultTooLarge("Database returned more than the allowed response size limit")


def formatted(columns: list[Column], records: list[list[dict]]) -> str:
    """``formattedRecords``: a JSON array of one object per row, at most 10 MB.

    Example:
        >>> formatted([Column("id", PgType.core(23), -1)], [[{"longValue": 1}]])
        '[{"id":1}]'
    """
    objects = []
    for record in records:
        row = {column.name: to_json_value(value) for column, value in zip(columns, record, strict=True)}
        if len(json.dumps(row, separators=(",", ":"))) > ROW_LIMIT_BYTES:
            raise ResultTooLarge("Packet for query is too large")
        objects.append(row)
    text = json.dumps(objects, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > JSON_RESULT_LIMIT_BYTES:
        raise ResultTooLarge("Database returned more than the allowed response size limit")
    return text
