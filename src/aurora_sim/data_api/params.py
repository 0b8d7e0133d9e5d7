"""Named parameters for the Data API: find `:name` placeholders in SQL and turn `Field` values into bound values.

The Data API takes SQL with `:name` placeholders and a list of `SqlParameter` objects
(`{"name": "id", "value": {"longValue": 1}}`). Here a small tokenizer finds the placeholders, skipping string
literals ('it''s :x'), quoted identifiers ("a:b"), dollar-quoted strings ($$ :x $$), comments (-- :x and
/* :x */) and `::` casts, and rewrites them to PostgreSQL's positional `$1`, `$2`, … so the values travel to the
database separately from the SQL text: a value is bound, never spliced in, so it cannot change the statement.

Values are typed as the Data API types them for PostgreSQL: a longValue is a `bigint`, a doubleValue a `double
precision`, a stringValue a `varchar` (the database connections register those dumpers), and a `typeHint` turns a
stringValue into a `date`, `time`, `timestamp`, `numeric`, `uuid` or `json` value. So a stringValue compared with a
DATE column needs its `typeHint`, as on Aurora.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from psycopg.types.json import Json

TYPE_HINTS = ("DATE", "DECIMAL", "JSON", "TIME", "TIMESTAMP", "UUID")  # API: botocore rds-data TypeHint
FIELD_MEMBERS = ("isNull", "booleanValue", "longValue", "doubleValue", "stringValue", "blobValue", "arrayValue")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")


class RequestError(Exception):
    """A request the Data API refuses before running it (the endpoint answers 400 BadRequestException).

    Example:
        >>> RequestError("Array parameters are not supported").message
        'Array parameters are not supported'
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def tokens(sql: str) -> Iterator[tuple[str, int, int]]:
    """Split SQL into `(kind, start, end)` pieces; kinds: code, string, identifier, comment, placeholder, end.

    `end` is a top-level `;`. An unterminated literal or comment runs to the end of the text (the database
    then reports the syntax error).

    Example:
        >>> [(kind, "SELECT ':a', x::int, :b -- :c"[s:e]) for kind, s, e in tokens("SELECT ':a', x::int, :b -- :c")
        ...  if kind != "code"]
        [('string', "':a'"), ('placeholder', ':b'), ('comment', '-- :c')]
    """
    i, n, code_start = 0, len(sql), 0
    while i < n:
        kind, end = _special_at(sql, i)
        if kind is None:
            i += 2 if sql.startswith("::", i) else 1
            continue
        if code_start < i:
            yield "code", code_start, i
        yield kind, i, end
        i = code_start = end
    if code_start < n:
        yield "code", code_start, n


def _special_at(sql: str, i: int) -> tuple[str | None, int]:
    """The non-code token starting at `i` and its end, or (None, i)."""
    ch, n = sql[i], len(sql)
    if ch == "'":
        escapes = i > 0 and sql[i - 1] in "eE" and not _word_before(sql, i - 1)
        return "string", _quoted_end(sql, i, "'", backslash=escapes)
    if ch == '"':
        return "identifier", _quoted_end(sql, i, '"', backslash=False)
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        return "comment", n if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        return "comment", _block_comment_end(sql, i)
    if ch == "$" and (match := _DOLLAR_TAG.match(sql, i)) and not _word_before(sql, i):
        close = sql.find(match.group(0), match.end())
        return "string", n if close < 0 else close + len(match.group(0))
    if ch == ":" and not sql.startswith("::", i) and (name := _NAME.match(sql, i + 1)):
        return "placeholder", name.end()
    if ch == ";":
        return "end", i + 1
    return None, i


def _word_before(sql: str, i: int) -> bool:
    """Whether the character before `i` belongs to a word (so `$` or `E` there is not a quote opener)."""
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")


def _quoted_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    """End of a quoted run opened at `i`; a doubled quote (and, in E'…', a backslash) escapes."""
    j, n = i + 1, len(sql)
    while j < n:
        if backslash and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return n


def _block_comment_end(sql: str, i: int) -> int:
    """End of a /* … */ comment opened at `i`; comments nest, as in PostgreSQL."""
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return n


def placeholders(sql: str) -> list[str]:
    """The placeholder names in SQL, in order of first use.

    Example:
        >>> placeholders("SELECT * FROM Customer WHERE id = :id OR name = ':name' OR id = :id + :n")
        ['id', 'n']
    """
    names = [sql[start + 1 : end] for kind, start, end in tokens(sql) if kind == "placeholder"]
    return list(dict.fromkeys(names))


def split_statements(sql: str) -> list[str]:
    """Split SQL at top-level semicolons; empty statements are dropped.

    Example:
        >>> split_statements("SELECT ';'; SELECT 2;")
        ["SELECT ';'", ' SELECT 2']
    """
    pieces, start = [], 0
    for kind, token_start, token_end in tokens(sql):
        if kind == "end":
            pieces.append(sql[start:token_start])
            start = token_end
    pieces.append(sql[start:])
    return [piece for piece in pieces if has_sql(piece)]


def has_sql(sql: str) -> bool:
    """Whether the text holds anything but blanks and comments.

    Example:
        >>> has_sql("  -- a comment"), has_sql("/* c */ SELECT 1")
        (False, True)
    """
    return any(kind != "comment" and sql[start:end].strip() for kind, start, end in tokens(sql))


def code_only(sql: str) -> str:
    """SQL with literals, quoted identifiers and comments blanked out, for keyword checks.

    Example:
        >>> code_only("SELECT 'returning' -- returning")
        'SELECT   '
    """
    return " ".join(sql[start:end] for kind, start, end in tokens(sql) if kind in ("code", "end", "placeholder"))


def bind(sql: str, parameters: list[dict] | None) -> tuple[str, list]:
    """Rewrite `:name` placeholders to `$1`, `$2`, … and return the SQL with the values to bind, in order.

    Parameters the SQL does not use are ignored.

    Raises:
        RequestError: A placeholder has no parameter, a parameter is malformed or named twice, a value is an
            arrayValue, or a typeHint conversion fails (the message names the parameter).

    Example:
        >>> bind("SELECT * FROM Customer WHERE id = :id AND name <> ':id'", [{"name": "id", "value": {"longValue": 3}}])
        ("SELECT * FROM Customer WHERE id = $1 AND name <> ':id'", [3])
    """
    given = _parameters_by_name(parameters or [])
    positions: dict[str, int] = {}
    values: list = []
    out: list[str] = []
    for kind, start, end in tokens(sql):
        if kind != "placeholder":
            out.append(sql[start:end])
            continue
        name = sql[start + 1 : end]
        if name not in positions:
            if name not in given:
                msg = f"No value specified for parameter {name!r}: the SQL uses :{name}, but the parameters name only "
                msg += f"{sorted(given)}"
                raise RequestError(msg)
            values.append(to_python(given[name]))
            positions[name] = len(values)
        out.append(f"${positions[name]}")
    return "".join(out), values


def _parameters_by_name(parameters: list[dict]) -> dict[str, dict]:
    by_name: dict[str, dict] = {}
    for parameter in parameters:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str) or not parameter["name"]:
            msg = f"parameter={parameter!r} must be an object with a non-empty 'name' and a 'value'"
            raise RequestError(msg)
        name = parameter["name"].removeprefix(":")
        if name in by_name:
            msg = f"parameter name={name!r} is given twice; each name may appear once"
            raise RequestError(msg)
        by_name[name] = parameter
    return by_name


def to_python(parameter: dict):
    """The Python value to bind for one `SqlParameter`: its `Field`, converted by its `typeHint`.

    `blobValue` may be bytes or base64 text (as it arrives on the wire).

    Example:
        >>> to_python({"name": "d", "value": {"stringValue": "2021-03-04"}, "typeHint": "DATE"})
        datetime.date(2021, 3, 4)
        >>> to_python({"name": "n", "value": {"isNull": True}}) is None
        True
    """
    name, field, hint = parameter.get("name"), parameter.get("value"), parameter.get("typeHint")
    if not isinstance(field, dict) or len(field) != 1 or next(iter(field)) not in FIELD_MEMBERS:
        msg = f"parameter {name!r}: value={field!r} must set exactly one of {FIELD_MEMBERS}"
        raise RequestError(msg)
    member, value = next(iter(field.items()))
    if member == "arrayValue":
        raise RequestError("Array parameters are not supported")
    if hint is not None and hint not in TYPE_HINTS:
        msg = f"parameter {name!r}: typeHint={hint!r} must be one of {TYPE_HINTS}"
        raise RequestError(msg)
    if member == "isNull":
        return None
    if member == "blobValue":
        return _blob(name, value)
    if hint is None:
        return value
    if member != "stringValue":
        msg = f"parameter {name!r}: typeHint={hint!r} applies to a stringValue, not a {member}"
        raise RequestError(msg)
    return _convert_hinted(name, value, hint)


def _blob(name, value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        msg = f"parameter {name!r}: blobValue={value!r} is not base64"
        raise RequestError(msg) from None


def _convert_hinted(name, text: str, hint: str):
    """stringValue → date, time, datetime, Decimal, UUID or checked JSON text."""
    try:
        if hint == "DATE":
            return _parse_date(text)
        if hint == "TIME":
            return _parse_time(text)
        if hint == "TIMESTAMP":
            date_part, _, time_part = text.partition(" ")
            return dt.datetime.combine(_parse_date(date_part), _parse_time(time_part))
        if hint == "DECIMAL":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError(text)
            return number
        if hint == "UUID":
            return uuid.UUID(text)
        json.loads(text)
        return Json(text, dumps=_as_is)  # bound as `json`; PostgreSQL casts it to a jsonb column on assignment
    except (ValueError, InvalidOperation, TypeError, AttributeError):
        formats = {"DATE": "YYYY-MM-DD", "TIME": "HH:MM:SS[.FFF]", "TIMESTAMP": "YYYY-MM-DD HH:MM:SS[.FFF]",
                   "DECIMAL": "a decimal number", "UUID": "a UUID", "JSON": "JSON text"}
        msg = f"parameter {name!r}: stringValue={text!r} does not match typeHint {hint} (expected {formats[hint]})"
        raise RequestError(msg) from None


def _as_is(text: str) -> str:
    return text


def _parse_date(text: str) -> dt.date:
    match = _DATE.fullmatch(text)
    if not match:
        raise ValueError(text)
    return dt.date(*map(int, match.groups()))


def _parse_time(text: str) -> dt.time:
    match = _TIME.fullmatch(text)
    if not match:
        raise ValueError(text)
    hour, minute, second, fraction = match.groups()
    microsecond = int((fraction or "0").ljust(6, "0")[:6])
    return dt.time(int(hour), int(minute), int(second), microsecond)
