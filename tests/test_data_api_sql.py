"""The Data API's SQL layer on the real PostgreSQL: typed Fields both ways, parameters, errors, transactions, limits."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import botocore.session
import pytest

from aurora_sim.data_api.params import RequestError, bind, placeholders, split_statements
from aurora_sim.data_api.provision import customer_rows, wait_until_dropped
from aurora_sim.data_api.sql import (
    Database,
    ResultTooLarge,
    SqlError,
    TransactionNotFound,
    UnsupportedResult,
)

ROOT = Path(__file__).resolve().parents[1]
MODEL = botocore.session.get_session().get_service_model("rds-data")


@pytest.fixture
def db():
    database = Database()
    yield database
    database.close()


def _param(name: str, **field) -> dict:
    hint = field.pop("typeHint", None)
    parameter = {"name": name, "value": field}
    if hint:
        parameter["typeHint"] = hint
    return parameter


def _one(db: Database, sql: str, parameters=None, **options) -> dict:
    """The only field of the only row."""
    (row,) = db.execute(sql, parameters, **options)["records"]
    (field,) = row
    return field


def _count(db: Database, where: str = "TRUE", **options) -> int:
    return _one(db, f"SELECT count(*) FROM Customer WHERE {where}", **options)["longValue"]


# data


def test_packaged_customer_csv_equals_the_top_level_copy():
    packaged = resources.files("aurora_sim").joinpath("data/customer.csv").read_bytes()
    assert packaged == (ROOT / "data" / "customer.csv").read_bytes()


def test_customer_is_loaded_with_its_schema(db):
    assert _count(db) == customer_rows() == 20
    assert _count(db, "email IS NULL") >= 1
    rows = db.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                      "WHERE table_name = 'customer' ORDER BY ordinal_position")["records"]
    schema = [tuple(next(iter(field.values())) for field in row) for row in rows]
    assert schema == [("id", "integer", "NO"), ("name", "character varying", "NO"),
                      ("email", "character varying", "YES"), ("balance", "numeric", "NO"),
                      ("signup_date", "date", "NO")]


def test_each_endpoint_has_its_own_database_dropped_at_close():
    first, second = Database(), Database()
    try:
        first.execute("DELETE FROM Customer")
        assert _count(first) == 0 and _count(second) == 20, "a change in one endpoint's database leaked"
        assert first.endpoint_db.name != second.endpoint_db.name
        assert _one(first, "SELECT current_user") == {"stringValue": "admin"}
    finally:
        first.close()
        second.close()
    assert wait_until_dropped(first.endpoint_db.admin_dsn, first.endpoint_db.name)


# results: every Field type


@pytest.mark.parametrize(("expression", "field"), [
    ("TRUE", {"booleanValue": True}),
    ("42", {"longValue": 42}),
    ("42::BIGINT", {"longValue": 42}),
    ("42::SMALLINT", {"longValue": 42}),
    ("1.5::DOUBLE PRECISION", {"doubleValue": 1.5}),
    ("1.5::REAL", {"doubleValue": 1.5}),
    ("'héllo'", {"stringValue": "héllo"}),
    ("NULL", {"isNull": True}),
    ("NULL::INTEGER", {"isNull": True}),
    ("1.50::NUMERIC(10, 2)", {"stringValue": "1.50"}),
    ("'\\x00ff'::BYTEA", {"blobValue": "AP8="}),
    ("DATE '2021-03-04'", {"stringValue": "2021-03-04"}),
    ("TIME '12:00:00'", {"stringValue": "12:00:00"}),
    ("TIME '12:00:01.5'", {"stringValue": "12:00:01.5"}),
    ("TIMESTAMP '2021-03-04 12:00:00'", {"stringValue": "2021-03-04 12:00:00"}),
    ("TIMESTAMP '2021-03-04 12:00:00.123'", {"stringValue": "2021-03-04 12:00:00.123"}),
    ("TIMESTAMPTZ '2021-03-04 12:00:00+02'", {"stringValue": "2021-03-04 10:00:00"}),
    ("INTERVAL '1 day 2 hours'", {"stringValue": "1 day 02:00:00"}),
    ("'6f1c1f0e-0000-4000-8000-000000000001'::UUID", {"stringValue": "6f1c1f0e-0000-4000-8000-000000000001"}),
    ("'{\"a\": 1}'::JSONB", {"stringValue": '{"a": 1}'}),
    ("ARRAY[1, 2, NULL]", {"arrayValue": {"longValues": [1, 2, None]}}),
    ("ARRAY[1.5::FLOAT8]", {"arrayValue": {"doubleValues": [1.5]}}),
    ("ARRAY[TRUE]", {"arrayValue": {"booleanValues": [True]}}),
    ("ARRAY['a', 'b']", {"arrayValue": {"stringValues": ["a", "b"]}}),
    ("ARRAY[1.5::NUMERIC]", {"arrayValue": {"stringValues": ["1.5"]}}),
    ("ARRAY[[1, 2], [3, 4]]", {"arrayValue": {"arrayValues": [{"longValues": [1, 2]}, {"longValues": [3, 4]}]}}),
])
def test_each_type_comes_back_as_its_field(db, expression, field):
    got = _one(db, f"SELECT {expression}")
    assert got == field, f"SELECT {expression} gave {got}, expected {field}"
    assert set(got) <= set(MODEL.shape_for("Field").members), f"{got} uses a member the Field model lacks"


def test_decimal_and_long_return_types(db):
    sql = "SELECT 120.50::NUMERIC(10, 2), 7::NUMERIC(10, 0), 9007199254740993::BIGINT"
    default = db.execute(sql)["records"][0]
    assert default == [{"stringValue": "120.50"}, {"stringValue": "7"}, {"longValue": 9007199254740993}]
    options = {"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"}
    shaped = db.execute(sql, result_set_options=options)["records"][0]
    assert shaped == [{"doubleValue": 120.5}, {"longValue": 7}, {"stringValue": "9007199254740993"}]


def test_bad_result_set_option_is_a_request_error(db):
    with pytest.raises(RequestError, match="decimalReturnType='FLOAT'"):
        db.execute("SELECT 1", result_set_options={"decimalReturnType": "FLOAT"})


def test_column_metadata_describes_customer_as_pgjdbc_does(db):
    metadata = db.execute("SELECT * FROM Customer LIMIT 1", include_result_metadata=True)["columnMetadata"]
    assert [(m["name"], m["label"], m["type"], m["typeName"], m["nullable"]) for m in metadata] == [
        ("id", "id", 4, "int4", 0), ("name", "name", 12, "varchar", 0), ("email", "email", 12, "varchar", 1),
        ("balance", "balance", 2, "numeric", 0), ("signup_date", "signup_date", 91, "date", 0)]
    balance = metadata[3]
    assert (balance["precision"], balance["scale"], balance["isSigned"]) == (10, 2, True)
    assert {(m["tableName"], m["schemaName"]) for m in metadata} == {("customer", "")}
    model_members = set(MODEL.shape_for("ColumnMetadata").members)
    for column in metadata:
        assert set(column) == model_members, f"{model_members ^ set(column)} differ from ColumnMetadata"
        assert column["arrayBaseColumnType"] == 0


def test_column_names_are_postgresql_s(db):
    response = db.execute("SELECT count(*), 1, now() IS NOT NULL, current_schema()", include_result_metadata=True)
    assert [m["name"] for m in response["columnMetadata"]] == ["count", "?column?", "?column?", "current_schema"]
    assert response["records"][0][3] == {"stringValue": "public"}


@pytest.mark.parametrize(("expression", "code", "type_name", "precision", "scale"), [
    ("1::BIGINT", -5, "int8", 19, 0), ("TRUE", -7, "bool", 1, 0), ("1.5::FLOAT8", 8, "float8", 17, 17),
    ("'x'::BYTEA", -2, "bytea", 2147483647, 0), ("TIME '12:00:00'", 92, "time", 15, 6),
    ("TIMESTAMP '2021-03-04 12:00:00'", 93, "timestamp", 29, 6), ("now()", 93, "timestamptz", 35, 6),
    ("'x'::TEXT", 12, "text", 2147483647, 0), ("'x'::VARCHAR(20)", 12, "varchar", 20, 0),
    ("1.5::NUMERIC", 2, "numeric", 0, 0), ("'{}'::JSONB", 1111, "jsonb", 2147483647, 0),
    ("ARRAY[1, 2]", 2003, "_int4", 10, 0),
])
def test_column_metadata_type_codes(db, expression, code, type_name, precision, scale):
    (column,) = db.execute(f"SELECT {expression} AS c", include_result_metadata=True)["columnMetadata"]
    assert (column["type"], column["typeName"], column["precision"], column["scale"]) == \
        (code, type_name, precision, scale)
    assert (column["nullable"], column["tableName"]) == (1, "")


def test_serial_column_is_auto_increment(db):
    db.execute("CREATE TABLE Ticket (id SERIAL PRIMARY KEY, body TEXT)")
    db.execute("INSERT INTO Ticket (body) VALUES ('a')")
    id_column, body = db.execute("SELECT * FROM Ticket", include_result_metadata=True)["columnMetadata"]
    assert (id_column["typeName"], id_column["isAutoIncrement"], id_column["nullable"]) == ("serial", True, 0)
    assert (body["typeName"], body["isAutoIncrement"], body["nullable"]) == ("text", False, 1)


def test_enum_and_domain_types_are_named_from_the_catalog(db):
    db.execute("CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE DOMAIN positive AS INTEGER CHECK (VALUE > 0)")
    mood, number = db.execute("SELECT 'ok'::mood, 5::positive", include_result_metadata=True)["columnMetadata"]
    assert (mood["type"], mood["typeName"]) == (12, "mood")
    assert (number["type"], number["typeName"]) == (4, "int4"), "a domain's value arrives as its base type"


def test_json_format_gives_formatted_records_without_metadata(db):
    response = db.execute("SELECT id, email, balance FROM Customer WHERE id = 4", format_records_as="JSON",
                          include_result_metadata=True)
    assert "columnMetadata" not in response and "records" not in response
    assert json.loads(response["formattedRecords"]) == [{"id": 4, "email": None, "balance": "88.10"}]
    blob = db.execute("SELECT 'ab'::BYTEA AS b, ARRAY[1, 2] AS a", format_records_as="JSON")["formattedRecords"]
    assert json.loads(blob) == [{"b": "YWI=", "a": [1, 2]}]


def test_execute_response_members_are_modelled(db):
    members = set(MODEL.operation_model("ExecuteStatement").output_shape.members)
    for response in (db.execute("SELECT 1", include_result_metadata=True),
                     db.execute("SELECT 1", format_records_as="JSON"), db.execute("DELETE FROM Customer")):
        assert set(response) <= members
        assert "generatedFields" not in response, "Aurora PostgreSQL has no generatedFields: RETURNING instead"


@pytest.mark.parametrize(("sql", "updated", "has_records"), [
    ("SELECT * FROM Customer", 0, True),
    ("INSERT INTO Customer VALUES (21, 'New', NULL, 1.00, DATE '2022-01-01')", 1, False),
    ("INSERT INTO Customer (id, name, balance, signup_date) VALUES (21, 'New', 1.00, DATE '2022-01-01')", 1, False),
    ("UPDATE Customer SET balance = balance + 1 WHERE id <= 3", 3, False),
    ("DELETE FROM Customer WHERE email IS NULL", 3, False),
    ("INSERT INTO Customer VALUES (21, 'New', NULL, 1.00, DATE '2022-01-01') RETURNING id", 1, True),
    ("CREATE TABLE Extra (a INTEGER)", 0, False),
])
def test_number_of_records_updated(db, sql, updated, has_records):
    response = db.execute(sql)
    assert response["numberOfRecordsUpdated"] == updated
    assert ("records" in response) == has_records


def test_several_statements_all_run_and_the_first_result_returns(db):
    """'For Aurora PostgreSQL, multistatements return only the first query response' (v1; UG data-api.differences)."""
    response = db.execute("SELECT count(*) FROM Customer; DELETE FROM Customer WHERE id = :a; SELECT 99",
                          [_param("a", longValue=1)])
    assert response["records"] == [[{"longValue": 20}]]
    assert _count(db) == 19, "the later statements must have run too"


def test_several_statements_outside_a_transaction_are_all_or_nothing(db):
    with pytest.raises(SqlError, match="SQLState: 42P01"):
        db.execute("DELETE FROM Customer; SELECT * FROM Nope")
    assert _count(db) == 20


# parameters


@pytest.mark.parametrize(("parameter", "expected"), [
    (_param("v", longValue=7), {"longValue": 7}),
    (_param("v", doubleValue=2.5), {"doubleValue": 2.5}),
    (_param("v", booleanValue=False), {"booleanValue": False}),
    (_param("v", stringValue="x'y"), {"stringValue": "x'y"}),
    (_param("v", blobValue=base64.b64encode(b"\x00\x01").decode()), {"blobValue": "AAE="}),
    (_param("v", blobValue=b"\x00\x01"), {"blobValue": "AAE="}),
    (_param("v", isNull=True), {"isNull": True}),
    (_param("v", stringValue="2021-03-04", typeHint="DATE"), {"stringValue": "2021-03-04"}),
    (_param("v", stringValue="12:30:00", typeHint="TIME"), {"stringValue": "12:30:00"}),
    (_param("v", stringValue="2021-03-04 12:30:00.25", typeHint="TIMESTAMP"),
     {"stringValue": "2021-03-04 12:30:00.25"}),
    (_param("v", stringValue="10.25", typeHint="DECIMAL"), {"stringValue": "10.25"}),
    (_param("v", stringValue="6f1c1f0e-0000-4000-8000-000000000001", typeHint="UUID"),
     {"stringValue": "6f1c1f0e-0000-4000-8000-000000000001"}),
    (_param("v", stringValue='{"a": [1]}', typeHint="JSON"), {"stringValue": '{"a": [1]}'}),
])
def test_each_field_binds_and_round_trips(db, parameter, expected):
    assert _one(db, "SELECT :v", [parameter]) == expected


@pytest.mark.parametrize(("hint", "type_name"), [
    ("DATE", "date"), ("TIME", "time without time zone"), ("TIMESTAMP", "timestamp without time zone"),
    ("DECIMAL", "numeric"), ("UUID", "uuid"), ("JSON", "json")])
def test_type_hints_bind_typed_values(db, hint, type_name):
    text = {"DATE": "2021-03-04", "TIME": "12:00:00", "TIMESTAMP": "2021-03-04 12:00:00", "DECIMAL": "10.25",
            "UUID": "6f1c1f0e-0000-4000-8000-000000000001", "JSON": "[1]"}[hint]
    parameter = [_param("v", stringValue=text, typeHint=hint)]
    assert _one(db, "SELECT pg_typeof(:v)::text", parameter) == {"stringValue": type_name}


@pytest.mark.parametrize(("field", "type_name"), [
    ({"longValue": 1}, "bigint"), ({"doubleValue": 1.5}, "double precision"), ({"booleanValue": True}, "boolean"),
    ({"stringValue": "x"}, "character varying"), ({"blobValue": "AA=="}, "bytea")])
def test_untyped_fields_bind_as_pgjdbc_binds_them(db, field, type_name):
    assert _one(db, "SELECT pg_typeof(:v)::text", [{"name": "v", "value": field}]) == {"stringValue": type_name}


def test_a_date_column_needs_the_type_hint_as_on_aurora(db):
    sql = "UPDATE Customer SET signup_date = :d WHERE id = 1"
    with pytest.raises(SqlError, match=re.escape('column "signup_date" is of type date but expression is of type '
                                                 "character varying")):
        db.execute(sql, [_param("d", stringValue="2022-02-02")])
    assert db.execute(sql, [_param("d", stringValue="2022-02-02", typeHint="DATE")])["numberOfRecordsUpdated"] == 1


def test_parameter_filters_customer(db):
    rows = db.execute("SELECT name FROM Customer WHERE signup_date < :d AND email IS NOT NULL ORDER BY id",
                      [_param("d", stringValue="2021-02-01", typeHint="DATE")])["records"]
    assert rows == [[{"stringValue": "Ana Souza"}], [{"stringValue": "Ben Carter"}]]


@pytest.mark.parametrize("sql", [
    "SELECT ':x'",
    "SELECT 'it''s :x'",
    "SELECT E'\\' :x'",
    'SELECT 1 AS ":x"',
    "SELECT 1 -- :x",
    "SELECT 1 /* :x /* nested */ :x */",
    "SELECT '1'::INTEGER",
    "SELECT $$ :x $$",
    "SELECT $tag$ :x $tag$",
])
def test_text_that_only_looks_like_a_placeholder_is_left_alone(db, sql):
    assert placeholders(sql) == []
    assert bind(sql, []) == (sql, [])
    db.execute(sql)


def test_placeholders_rewrite_to_positional_and_repeat():
    sql, values = bind("SELECT :a, :b::INTEGER, :a, ':a'", [_param("b", stringValue="2"), _param("a", longValue=1)])
    assert (sql, values) == ("SELECT $1, $2::INTEGER, $1, ':a'", [1, "2"])


def test_split_statements_respects_literals():
    assert split_statements("SELECT ';' ; -- ;\nSELECT 2;") == ["SELECT ';' ", " -- ;\nSELECT 2"]


def test_injection_through_a_parameter_leaves_customer_intact(db):
    attack = "x'; DROP TABLE Customer; --"
    response = db.execute("SELECT id FROM Customer WHERE name = :name", [_param("name", stringValue=attack)])
    assert response["records"] == []
    assert _count(db) == 20
    db.execute("INSERT INTO Customer VALUES (21, :name, NULL, 0, DATE '2022-01-01')",
               [_param("name", stringValue=attack)])
    assert _one(db, "SELECT name FROM Customer WHERE id = 21") == {"stringValue": attack}


@pytest.mark.parametrize(("sql", "parameters", "message"), [
    ("SELECT :missing", [_param("other", longValue=1)],
     "No value specified for parameter 'missing': the SQL uses :missing, but the parameters name only ['other']"),
    ("SELECT :ids", [{"name": "ids", "value": {"arrayValue": {"longValues": [1, 2]}}}],
     "Array parameters are not supported"),
    ("SELECT :d", [_param("d", stringValue="2021-13-45x", typeHint="DATE")],
     "parameter 'd': stringValue='2021-13-45x' does not match typeHint DATE (expected YYYY-MM-DD)"),
    ("SELECT :d", [_param("d", stringValue="2021-02-30", typeHint="DATE")],
     "parameter 'd': stringValue='2021-02-30' does not match typeHint DATE (expected YYYY-MM-DD)"),
    ("SELECT :t", [_param("t", stringValue="noon", typeHint="TIMESTAMP")],
     "parameter 't': stringValue='noon' does not match typeHint TIMESTAMP (expected YYYY-MM-DD HH:MM:SS[.FFF])"),
    ("SELECT :n", [_param("n", stringValue="ten", typeHint="DECIMAL")],
     "parameter 'n': stringValue='ten' does not match typeHint DECIMAL (expected a decimal number)"),
    ("SELECT :u", [_param("u", stringValue="not-a-uuid", typeHint="UUID")],
     "parameter 'u': stringValue='not-a-uuid' does not match typeHint UUID (expected a UUID)"),
    ("SELECT :j", [_param("j", stringValue="{oops", typeHint="JSON")],
     "parameter 'j': stringValue='{oops' does not match typeHint JSON (expected JSON text)"),
    ("SELECT :n", [_param("n", longValue=1, typeHint="DATE")],
     "parameter 'n': typeHint='DATE' applies to a stringValue, not a longValue"),
    ("SELECT :b", [_param("b", blobValue="***")], "parameter 'b': blobValue='***' is not base64"),
    ("SELECT :v", [{"name": "v", "value": {}}], "parameter 'v': value={} must set exactly one of"),
    ("SELECT :v", [_param("v", longValue=1), _param("v", longValue=2)],
     "parameter name='v' is given twice; each name may appear once"),
])
def test_bad_parameters_are_request_errors(db, sql, parameters, message):
    with pytest.raises(RequestError, match=re.escape(message)):
        db.execute(sql, parameters)


# errors in PostgreSQL form


@pytest.mark.parametrize(("sql", "text"), [
    ("SELEC 1", 'ERROR: syntax error at or near "SELEC"\n  Position: 1; SQLState: 42601'),
    ("SELECT * FROM Nope", 'ERROR: relation "nope" does not exist\n  Position: 15; SQLState: 42P01'),
    ("INSERT INTO Customer VALUES (1, 'Dup', NULL, 0, DATE '2022-01-01')",
     'ERROR: duplicate key value violates unique constraint "customer_pkey"\n  Detail: Key (id)=(1) already exists.'
     "; SQLState: 23505"),
    ("INSERT INTO Customer VALUES (99, NULL, NULL, 0, DATE '2022-01-01')",
     'ERROR: null value in column "name" of relation "customer" violates not-null constraint\n'
     "  Detail: Failing row contains (99, null, null, 0.00, 2022-01-01).; SQLState: 23502"),
    ("SELECT 'abc'::INTEGER", 'ERROR: invalid input syntax for type integer: "abc"\n  Position: 8; SQLState: 22P02'),
    ("SELECT nocolumn FROM Customer", 'ERROR: column "nocolumn" does not exist\n  Position: 8; SQLState: 42703'),
    ("SELECT 1/0", "ERROR: division by zero; SQLState: 22012"),
])
def test_sql_errors_in_postgresql_form(db, sql, text):
    with pytest.raises(SqlError) as caught:
        db.execute(sql)
    assert str(caught.value) == text
    assert text == f"ERROR: {caught.value.message}{caught.value.details}; SQLState: {caught.value.sqlstate}"


def test_unknown_database_is_3d000(db):
    for call in (lambda: db.execute("SELECT 1", database="otherdb"), lambda: db.begin(database="otherdb"),
                 lambda: db.batch_execute("SELECT 1", None, database="otherdb")):
        with pytest.raises(SqlError, match=re.escape('ERROR: database "otherdb" does not exist; SQLState: 3D000')):
            call()
    assert _count(db, database="mydb") == 20


def _run_in_thread(db: Database, sql: str, call_id: str, outcome: list) -> threading.Thread:
    def run() -> None:
        try:
            outcome.append(db.execute(sql, call_id=call_id))
        except SqlError as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    return worker


def _wait_until_running(db: Database, call_id: str) -> None:
    deadline = time.monotonic() + 5
    while call_id not in db._running and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the statement has reached the server


def test_cancel_stops_only_that_call_s_statement(db):
    cancelled, untouched = [], []
    first = _run_in_thread(db, "SELECT pg_sleep(5)", "first", cancelled)
    second = _run_in_thread(db, "SELECT pg_sleep(0.6), 'done'", "second", untouched)
    _wait_until_running(db, "first")
    _wait_until_running(db, "second")
    started = time.monotonic()
    assert db.cancel("first") and not db.cancel("no-such-call")
    first.join(5)
    second.join(5)
    assert time.monotonic() - started < 2, "the cancelled statement should end at once"
    (error,) = cancelled
    assert isinstance(error, SqlError) and error.sqlstate == "57014"
    assert str(error) == "ERROR: canceling statement due to user request; SQLState: 57014"
    assert untouched[0]["records"] == [[{"stringValue": ""}, {"stringValue": "done"}]], untouched


def test_interrupt_cancels_every_running_statement(db):
    outcomes: list = []
    workers = [_run_in_thread(db, "SELECT pg_sleep(5)", f"call-{i}", outcomes) for i in range(2)]
    for i in range(2):
        _wait_until_running(db, f"call-{i}")
    assert db.interrupt() == 2
    for worker in workers:
        worker.join(5)
    assert [error.sqlstate for error in outcomes] == ["57014", "57014"]


# transactions


def test_committed_transaction_is_visible(db):
    transaction_id = db.begin()
    assert db.open_transactions() == 1
    db.execute("DELETE FROM Customer WHERE id = 1", transaction_id=transaction_id)
    assert _count(db, "id = 1") == 1, "an uncommitted delete must not be visible outside its transaction"
    assert _count(db, "id = 1", transaction_id=transaction_id) == 0
    assert db.commit(transaction_id) == {"transactionStatus": "Transaction Committed"}
    assert _count(db, "id = 1") == 0
    assert db.open_transactions() == 0


def test_rolled_back_transaction_is_not(db):
    transaction_id = db.begin()
    db.execute("UPDATE Customer SET balance = 0", transaction_id=transaction_id)
    assert db.rollback(transaction_id) == {"transactionStatus": "Rollback Complete"}
    assert _count(db, "balance = 0") == 2


@pytest.mark.parametrize("ending", ["commit", "rollback", "expire", "unknown"])
def test_ended_or_unknown_transaction_is_not_found(db, ending):
    transaction_id = db.begin()
    if ending == "commit":
        db.commit(transaction_id)
    elif ending == "rollback":
        db.rollback(transaction_id)
    elif ending == "expire":
        db.execute("DELETE FROM Customer", transaction_id=transaction_id)
        db.expire_transaction(transaction_id)
        assert _count(db) == 20, "expiry must roll the transaction back"
    else:
        db.rollback(transaction_id)
        transaction_id = "no-such-transaction"
    for call in (lambda: db.execute("SELECT 1", transaction_id=transaction_id), lambda: db.commit(transaction_id),
                 lambda: db.rollback(transaction_id),
                 lambda: db.batch_execute("SELECT 1", None, transaction_id=transaction_id)):
        with pytest.raises(TransactionNotFound) as caught:
            call()
        assert str(caught.value) == f"Transaction {transaction_id} is not found"
        assert caught.value.transaction_id == transaction_id
    db.expire_transaction(transaction_id)  # already gone: ignored


def test_conflicting_update_waits_for_the_first_transaction_s_lock(db):
    """PostgreSQL, unlike the DuckDB backend before it, makes the second writer wait for the first one's row lock."""
    first, second = db.begin(), db.begin()
    db.execute("UPDATE Customer SET balance = 1 WHERE id = 1", transaction_id=first)
    outcome: list = []
    waiter = threading.Thread(target=lambda: outcome.append(
        db.execute("UPDATE Customer SET balance = balance + 2 WHERE id = 1", transaction_id=second)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and not outcome, "the second update should wait for the first transaction"
    db.commit(first)
    waiter.join(5)
    assert outcome[0]["numberOfRecordsUpdated"] == 1
    db.commit(second)
    assert _one(db, "SELECT balance FROM Customer WHERE id = 1") == {"stringValue": "3.00"}


def test_commit_after_a_failed_statement_rolls_back_with_25p02(db):
    transaction_id = db.begin()
    db.execute("DELETE FROM Customer WHERE id = 1", transaction_id=transaction_id)
    with pytest.raises(SqlError, match="SQLState: 22012"):
        db.execute("SELECT 1/0", transaction_id=transaction_id)
    with pytest.raises(SqlError, match="current transaction is aborted"):
        db.execute("SELECT 1", transaction_id=transaction_id)
    with pytest.raises(SqlError) as caught:
        db.commit(transaction_id)
    assert str(caught.value) == ("The database returned ROLLBACK, so the transaction cannot be committed.; "
                                 "SQLState: 25P02")
    assert db.open_transactions() == 0 and _count(db, "id = 1") == 1


def test_close_rolls_back_open_transactions_and_drops_the_database():
    database = Database()
    database.begin()
    database.close()
    assert database.open_transactions() == 0
    assert wait_until_dropped(database.endpoint_db.admin_dsn, database.endpoint_db.name)
    database.close()


# batches


def test_batch_runs_once_per_parameter_set(db):
    sets = [[_param("id", longValue=100 + i), _param("name", stringValue=f"Batch {i}")] for i in range(3)]
    result = db.batch_execute("INSERT INTO Customer VALUES (:id, :name, NULL, 0, DATE '2022-01-01')", sets)
    assert result == {"updateResults": [{"generatedFields": []}] * 3}
    assert _count(db, "name LIKE 'Batch %'") == 3


@pytest.mark.parametrize(("flavour", "generated"), [("v1", [[{"longValue": 100}], [{"longValue": 101}]]),
                                                    ("v2", [[], []])])
def test_batch_generated_fields_come_from_returning_on_v1_only(flavour, generated):
    """v1: "The generated fields object in the update result includes inserted values"; v2 PostgreSQL: empty."""
    database = Database(flavour=flavour)
    try:
        sets = [[_param("id", longValue=100 + i)] for i in range(2)]
        result = database.batch_execute("INSERT INTO Customer VALUES (:id, 'B', NULL, 0, DATE '2022-01-01') "
                                        "RETURNING id", sets)
    finally:
        database.close()
    assert [entry["generatedFields"] for entry in result["updateResults"]] == generated


def test_failing_batch_outside_a_transaction_changes_nothing(db):
    sets = [[_param("id", longValue=i)] for i in (100, 1)]  # id 1 exists
    with pytest.raises(SqlError, match="SQLState: 23505"):
        db.batch_execute("INSERT INTO Customer VALUES (:id, 'B', NULL, 0, DATE '2022-01-01')", sets)
    assert _count(db, "id = 100") == 0


def test_batch_inside_a_transaction(db):
    transaction_id = db.begin()
    db.batch_execute("DELETE FROM Customer WHERE id = :id", [[_param("id", longValue=1)]],
                     transaction_id=transaction_id)
    db.rollback(transaction_id)
    assert _count(db, "id = 1") == 1


def test_batch_has_no_fixed_number_of_parameter_sets(db):
    sets = [[_param("id", longValue=i)] for i in range(1001)]
    assert len(db.batch_execute("DELETE FROM Customer WHERE id = :id", sets)["updateResults"]) == 1001
    assert _count(db) == 0


@pytest.mark.parametrize("parameter_sets", [None, []])
def test_batch_without_parameter_sets_does_not_run(db, parameter_sets):
    """'The SQL statement is executed as many times as the number of parameter sets provided' (API reference)."""
    assert db.batch_execute("DELETE FROM Customer WHERE id = 1", parameter_sets) == {"updateResults": []}
    assert _count(db, "id = 1") == 1


def test_batch_with_one_empty_parameter_set_runs_once(db):
    assert db.batch_execute("DELETE FROM Customer WHERE id = 1", [[]]) == {"updateResults": [{"generatedFields": []}]}
    assert _count(db, "id = 1") == 0


# size limits and refused types


def test_row_over_64_kb_is_too_large(db):
    with pytest.raises(ResultTooLarge) as caught:
        db.execute("SELECT repeat('x', 70000)")
    assert caught.value.message == "Packet for query is too large"
    assert _one(db, "SELECT length(repeat('x', 60000))") == {"longValue": 60000}


def test_result_over_1_mib_is_too_large(db):
    with pytest.raises(ResultTooLarge) as caught:
        db.execute("SELECT repeat('x', 1000) FROM generate_series(1, 1100)")
    assert caught.value.message == "Database returned more than the allowed response size limit"
    assert len(db.execute("SELECT repeat('x', 1000) FROM generate_series(1, 1000)")["records"]) == 1000


def test_formatted_records_allow_up_to_10_mb(db):
    formatted = db.execute("SELECT repeat('x', 1000) AS s FROM generate_series(1, 1100)", format_records_as="JSON")
    assert len(json.loads(formatted["formattedRecords"])) == 1100
    with pytest.raises(ResultTooLarge, match="allowed response size limit"):
        db.execute("SELECT repeat('x', 10000) AS s FROM generate_series(1, 1100)", format_records_as="JSON")


def test_huge_result_is_refused(db):
    with pytest.raises(ResultTooLarge, match="allowed response size limit"):
        db.execute("SELECT repeat('x', 100) FROM generate_series(1, 500000)", format_records_as="JSON")


@pytest.mark.parametrize("expression", ["12.5::MONEY", "POINT(1, 2)", "ARRAY[[1], [2]]"])
def test_v2_refuses_geometric_monetary_and_nested_array_results(expression):
    database = Database(flavour="v2")
    try:
        with pytest.raises(UnsupportedResult, match=r"^The result contains the unsupported data type "):
            database.execute(f"SELECT {expression}")
    finally:
        database.close()


def test_a_killed_endpoint_s_database_is_dropped_by_the_next_one():
    script = ("import os, signal; from aurora_sim.data_api.sql import Database; "
              "print(Database().endpoint_db.name, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == -9, done.stderr
    orphan = done.stdout.split()[0]
    database = Database()
    try:
        assert wait_until_dropped(database.endpoint_db.admin_dsn, orphan, timeout_s=1)
    finally:
        database.close()



def test_endpoints_started_at_the_same_moment_all_get_their_database():
    """Notebooks run side by side (the site build runs two kernels) start endpoints at once; the shared role must
    not fail with "tuple concurrently updated" (it did, once in a site build)."""
    barrier, outcomes = threading.Barrier(8), []

    def start() -> None:
        barrier.wait()
        try:
            database = Database()
        except Exception as error:  # the failure this test is about
            outcomes.append(repr(error))
            return
        outcomes.append(database.execute("SELECT count(*) FROM Customer")["records"][0][0]["longValue"])
        database.close()

    starters = [threading.Thread(target=start) for _ in range(8)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(timeout=120)
    assert outcomes == [customer_rows()] * 8


def test_open_transactions_are_capped_so_calls_never_starve(db):
    """Each open transaction pins a connection; past the cap a begin is refused at once, and the pool still has a
    connection for every worker (64 soak clients in transactions once left every worker waiting)."""
    from aurora_sim.data_api.sql import MAX_OPEN_TRANSACTIONS, POOL_MAX_CONNECTIONS, SQL_WORKERS

    assert POOL_MAX_CONNECTIONS >= SQL_WORKERS + MAX_OPEN_TRANSACTIONS
    transactions = [db.begin() for _ in range(MAX_OPEN_TRANSACTIONS)]
    with pytest.raises(RequestError, match=f"at most {MAX_OPEN_TRANSACTIONS} open transactions"):
        db.begin()
    assert db.execute("SELECT 1")["records"] == [[{"longValue": 1}]]
    for transaction_id in transactions:
        db.commit(transaction_id)
    db.rollback(db.begin())
