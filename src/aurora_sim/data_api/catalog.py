"""What PostgreSQL's catalogs say about a result: type names for OIDs, and the table column each field comes from.

pgJDBC looks both up the same way (``TypeInfoCache`` and ``PgResultSetMetaData``); the answers are cached per
database, since an OID's type does not change while the database lives.
"""

from __future__ import annotations

import dataclasses
import threading

import psycopg
from psycopg import RawCursor

from .results import CORE_TYPES, Column, PgType

# pgJDBC's JDBC type for a type that is not one of its core types, by pg_type.typtype: composite, domain, enum.
_TYPTYPE_CODES = {"c": 2002, "d": 2001, "e": 12}


class Catalog:
    """Type names and column sources, read from PostgreSQL's catalogs once and cached (per database)."""

    _TYPES_SQL = """SELECT t.oid, t.typname, n.nspname = ANY (current_schemas(true)), n.nspname, t.typtype,
                           t.typinput = 'array_in'::regproc AND t.typelem <> 0, t.typelem
                    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                    WHERE t.oid = ANY($1)"""
    # pgJDBC's own query for nullability and auto-increment (PgResultSetMetaData.fetchFieldMetaData).
    _SOURCES_SQL = """SELECT c.oid, a.attnum, c.relname, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull),
                             a.attidentity <> '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%'
                      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
                      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                      WHERE (c.oid, a.attnum) IN (SELECT * FROM unnest($1::oid[], $2::int2[]))"""

    def __init__(self) -> None:
        self._types: dict[int, PgType] = {}
        for oid in CORE_TYPES:
            core = PgType.core(oid)
            self._types[oid] = core
            info = psycopg.postgres.types.get(oid)
            if info is not None and info.array_oid:
                self._types[info.array_oid] = PgType(info.array_oid, "_" + core.name, 2003, core)
        self._lock = threading.Lock()

    def columns(self, connection: psycopg.Connection, cursor: psycopg.Cursor) -> list[Column]:
        """The result's columns: name, type and modifier, and the (table, attribute) each comes from."""
        result = cursor.pgresult
        oids = [result.ftype(i) for i in range(result.nfields)]
        types = self._resolve(connection, oids)
        return [Column(described.name, types[oids[i]], result.fmod(i), source=(result.ftable(i), result.ftablecol(i)))
                for i, described in enumerate(cursor.description)]

    def with_sources(self, connection: psycopg.Connection, columns: list[Column]) -> list[Column]:
        """The columns with tableName, NOT NULL and auto-increment filled in where they come straight from a table."""
        pairs = [column.source for column in columns if column.source[0]]
        if not pairs:
            return columns
        with RawCursor(connection) as cursor:
            cursor.execute(self._SOURCES_SQL, ([t for t, _ in pairs], [a for _, a in pairs]), prepare=False)
            found = {(table, attnum): rest for table, attnum, *rest in cursor.fetchall()}
        described = []
        for column in columns:
            table_name, not_null, auto_increment = found.get(column.source, ("", False, False))
            described.append(dataclasses.replace(column, table_name=table_name, not_null=bool(not_null),
                                                 auto_increment=bool(auto_increment)))
        return described

    def _resolve(self, connection: psycopg.Connection, oids: list[int]) -> dict[int, PgType]:
        with self._lock:
            missing = sorted({oid for oid in oids if oid not in self._types})
        if missing:
            self._fetch(connection, missing)
        with self._lock:
            return {oid: self._types.get(oid, PgType(oid, "unknown", 1111)) for oid in oids}

    def _fetch(self, connection: psycopg.Connection, oids: list[int]) -> None:
        with RawCursor(connection) as cursor:
            cursor.execute(self._TYPES_SQL, (oids,), prepare=False)
            rows = cursor.fetchall()
        elements = [row[6] for row in rows if row[5]]
        if elements:
            self._resolve(connection, elements)
        with self._lock:
            for oid, name, on_path, schema, typtype, is_array, element in rows:
                shown = name if on_path else f'"{schema}"."{name}"'
                if is_array:
                    self._types[oid] = PgType(oid, shown, 2003, self._types.get(element))
                else:
                    self._types[oid] = PgType(oid, shown, _TYPTYPE_CODES.get(typtype, 1111))
