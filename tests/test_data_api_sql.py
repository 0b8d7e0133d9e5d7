"""The Data API's SQL layer: typed Fields both ways, parameters, errors in PostgreSQL form, transactions, limits."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from importlib import resources
from pathlib import Path

import botocore.session
import pytest

from aurora_sim.data_api.params import RequestError, bind, placeholders, split_statements
from aurora_sim.data_api.sql import (
    Database,
    ResultTooLarge,
    SqlError,
    TransactionNotFound,
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
    assert _count(db) == 20
    assert _count(db, "email IS NULL") >= 1
    rows = db.execute("SELECT name, type, pk, \"notnull\" FROM pragma_table_info('Customer') ORDER BY cid")["records"]
    schema = [tuple(next(iter(field.values())) for field in row) for row in rows]
    assert schema == [("id", "INTEGER", True, True), ("name", "VARCHAR", False, True),
                      ("email", "VARCHAR", False, False), ("balance", "DECIMAL(10,2)", False, True),
                      ("signup_date", "DATE", False, True)]


# results: every Field type


@pytest.mark.parametrize(("expression", "field"), [
    ("TRUE", {"booleanValue": True}),
    ("42", {"longValue": 42}),
    ("42::BIGINT", {"longValue": 42}),
    ("42::SMALLINT", {"longValue": 42}),
    ("1.5::DOUBLE", {"doubleValue": 1.5}),
    ("1.5::REAL", {"doubleValue": 1.5}),
    ("'héllo'", {"stringValue": "héllo"}),
    ("NULL", {"isNull": True}),
    ("NULL::INTEGER", {"isNull": True}),
    ("1.50::DECIMAL(10, 2)", {"stringValue": "1.50"}),
    ("'\\x00\\xff'::BLOB", {"blobValue": "AP8="}),
    ("DATE '2021-03-04'", {"stringValue": "2021-03-04"}),
    ("TIME '12:00:00'", {"stringValue": "12:00:00"}),
    ("TIME '12:00:01.5'", {"stringValue": "12:00:01.5"}),
    ("TIMESTAMP '2021-03-04 12:00:00'", {"stringValue": "2021-03-04 12:00:00"}),
    ("TIMESTAMP '2021-03-04 12:00:00.123'", {"stringValue": "2021-03-04 12:00:00.123"}),
    ("TIMESTAMPTZ '2021-03-04 12:00:00+02'", {"stringValue": "2021-03-04 10:00:00"}),
    ("'6f1c1f0e-0000-4000-8000-000000000001'::UUID", {"stringValue": "6f1c1f0e-0000-4000-8000-000000000001"}),
    ("'{\"a\": 1}'::JSON", {"stringValue": '{"a": 1}'}),
    ("[1, 2, NULL]", {"arrayValue": {"longValues": [1, 2, None]}}),
    ("[1.5::DOUBLE]", {"arrayValue": {"doubleValues": [1.5]}}),
    ("[TRUE]", {"arrayValue": {"booleanValues": [True]}}),
    ("['a', 'b']", {"arrayValue": {"stringValues": ["a", "b"]}}),
    ("[[1], [2, 3]]", {"arrayValue": {"arrayValues": [{"longValues": [1]}, {"longValues": [2, 3]}]}}),
])
def test_each_type_comes_back_as_its_field(db, expression, field):
    got = _one(db, f"SELECT {expression}")
    assert got == field, f"SELECT {expression} gave {got}, expected {field}"
    assert set(got) <= set(MODEL.shape_for("Field").members), f"{got} uses a member the Field model lacks"


def test_decimal_and_long_return_types(db):
    sql = "SELECT 120.50::DECIMAL(10, 2), 7::DECIMAL(10, 0), 9007199254740993::BIGINT"
    default = db.execute(sql)["records"][0]
    assert default == [{"stringValue": "120.50"}, {"stringValue": "7"}, {"longValue": 9007199254740993}]
    options = {"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"}
    shaped = db.execute(sql, result_set_options=options)["records"][0]
    assert shaped == [{"doubleValue": 120.5}, {"longValue": 7}, {"stringValue": "9007199254740993"}]


def test_bad_result_set_option_is_a_request_error(db):
    with pytest.raises(RequestError, match="decimalReturnType='FLOAT'"):
        db.execute("SELECT 1", result_set_options={"decimalReturnType": "FLOAT"})


def test_column_metadata_describes_customer(db):
    response = db.execute("SELECT * FROM Customer LIMIT 1", include_result_metadata=True)
    metadata = response["columnMetadata"]
    assert [(m["name"], m["label"], m["type"], m["typeName"]) for m in metadata] == [
        ("id", "id", 4, "int4"), ("name", "name", 12, "varchar"), ("email", "email", 12, "varchar"),
        ("balance", "balance", 3, "numeric"), ("signup_date", "signup_date", 91, "date")]
    balance = metadata[3]
    assert (balance["precision"], balance["scale"], balance["isSigned"], balance["nullable"]) == (10, 2, True, 1)
    model_members = set(MODEL.shape_for("ColumnMetadata").members)
    for column in metadata:
        assert set(column) <= model_members, f"{set(column) - model_members} are not ColumnMetadata members"
        assert column["arrayBaseColumnType"] == 0


@pytest.mark.parametrize(("expression", "code", "type_name"), [
    ("1::BIGINT", -5, "int8"), ("TRUE", 16, "bool"), ("1.5::DOUBLE", 8, "float8"), ("'x'::BLOB", -2, "bytea"),
    ("TIME '12:00:00'", 92, "time"), ("TIMESTAMP '2021-03-04 12:00:00'", 93, "timestamp"),
    ("[1, 2]", 2003, "_int4"),
])
def test_column_metadata_type_codes(db, expression, code, type_name):
    (column,) = db.execute(f"SELECT {expression} AS c", include_result_metadata=True)["columnMetadata"]
    assert (column["type"], column["typeName"]) == (code, type_name)


def test_json_format_gives_formatted_records_without_metadata(db):
    response = db.execute("SELECT id, email, balance FROM Customer WHERE id = 4", format_records_as="JSON",
                          include_result_metadata=True)
    assert "columnMetadata" not in response and "records" not in response
    assert json.loads(response["formattedRecords"]) == [{"id": 4, "email": None, "balance": "88.10"}]
    blob = db.execute("SELECT 'ab'::BLOB AS b, [1, 2] AS a", format_records_as="JSON")["formattedRecords"]
    assert json.loads(blob) == [{"b": "YWI=", "a": [1, 2]}]


def test_execute_response_members_are_modelled(db):
    members = set(MODEL.operation_model("ExecuteStatement").output_shape.members)
    for response in (db.execute("SELECT 1", include_result_metadata=True),
                     db.execute("SELECT 1", format_records_as="JSON"), db.execute("DELETE FROM Customer")):
        assert set(response) <= members
        assert "generatedFields" not in response


@pytest.mark.parametrize(("sql", "updated", "has_records"), [
    ("SELECT * FROM Customer", 0, True),
    ("INSERT INTO Customer VALUES (21, 'New', NULL, 1.00, DATE '2022-01-01')", 1, False),
    ("UPDATE Customer SET balance = balance + 1 WHERE id <= 3", 3, False),
    ("DELETE FROM Customer WHERE email IS NULL", 3, False),
    ("INSERT INTO Customer VALUES (21, 'New', NULL, 1.00, DATE '2022-01-01') RETURNING id", 1, True),
    ("CREATE TABLE Extra (a INTEGER)", 0, False),
])
def test_number_of_records_updated(db, sql, updated, has_records):
    response = db.execute(sql)
    assert response["numberOfRecordsUpdated"] == updated
    assert ("records" in response) == has_records


def test_several_statements_return_the_last_result(db):
    response = db.execute("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (:a); SELECT a FROM t;",
                          [_param("a", longValue=5)])
    assert response["records"] == [[{"longValue": 5}]]


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
    ("DATE", "DATE"), ("TIME", "TIME"), ("TIMESTAMP", "TIMESTAMP"), ("DECIMAL", "DECIMAL(4,2)"), ("UUID", "UUID")])
def test_type_hints_bind_typed_values(db, hint, type_name):
    text = {"DATE": "2021-03-04", "TIME": "12:00:00", "TIMESTAMP": "2021-03-04 12:00:00", "DECIMAL": "10.25",
            "UUID": "6f1c1f0e-0000-4000-8000-000000000001"}[hint]
    assert _one(db, "SELECT typeof(:v)", [_param("v", stringValue=text, typeHint=hint)]) == {"stringValue": type_name}


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
    ("SELEC 1", 'ERROR: syntax error at or near "SELEC"; SQLState: 42601'),
    ("SELECT * FROM Nope", "ERROR: Table with name Nope does not exist!; SQLState: 42P01"),
    ("INSERT INTO Customer VALUES (1, 'Dup', NULL, 0, DATE '2022-01-01')",
     'ERROR: Duplicate key "id: 1" violates primary key constraint.; SQLState: 23505'),
    ("INSERT INTO Customer VALUES (99, NULL, NULL, 0, DATE '2022-01-01')",
     'ERROR: NOT NULL constraint failed: Customer."name"; SQLState: 23502'),
    ("SELECT 'abc'::INTEGER", "ERROR: Could not convert string 'abc' to INT32; SQLState: 22P02"),
    ("SELECT nocolumn FROM Customer",
     'ERROR: Referenced column "nocolumn" not found in FROM clause!; SQLState: XX000'),
])
def test_sql_errors_in_postgresql_form(db, sql, text):
    with pytest.raises(SqlError) as caught:
        db.execute(sql)
    assert str(caught.value) == text
    assert text == f"ERROR: {caught.value.message}; SQLState: {caught.value.sqlstate}"


def test_unknown_database_is_3d000(db):
    for call in (lambda: db.execute("SELECT 1", database="otherdb"), lambda: db.begin(database="otherdb"),
                 lambda: db.batch_execute("SELECT 1", None, database="otherdb")):
        with pytest.raises(SqlError, match=re.escape('ERROR: database "otherdb" does not exist; SQLState: 3D000')):
            call()
    assert _count(db, database="mydb") == 20


def test_interrupted_statement_is_57014(db):
    errors: list[SqlError] = []

    def run() -> None:
        try:
            db.execute("SELECT count(*) FROM range(10000000000) a, range(10) b WHERE a.range * b.range = -1")
        except SqlError as error:
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while worker.is_alive() and time.monotonic() < deadline:  # until the statement has started and been cancelled
        db.interrupt()
        time.sleep(0.02)
    worker.join(5)
    assert [error.sqlstate for error in errors] == ["57014"]


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


def test_conflicting_update_fails_at_once_with_40001(db):
    first, second = db.begin(), db.begin()
    db.execute("UPDATE Customer SET balance = 1 WHERE id = 1", transaction_id=first)
    started = time.monotonic()
    with pytest.raises(SqlError, match=re.escape("ERROR: Conflict on update!; SQLState: 40001")):
        db.execute("UPDATE Customer SET balance = 2 WHERE id = 1", transaction_id=second)
    assert time.monotonic() - started < 1, "DuckDB does not wait for the first transaction's lock"
    db.commit(first)
    with pytest.raises(SqlError, match=re.escape("so the transaction cannot be committed")) as caught:
        db.commit(second)
    assert caught.value.sqlstate == "25P02"
    assert db.open_transactions() == 0
    assert _one(db, "SELECT balance FROM Customer WHERE id = 1") == {"stringValue": "1.00"}


def test_close_rolls_back_open_transactions():
    database = Database()
    database.begin()
    database.close()
    assert database.open_transactions() == 0
    database.close()


# batches


def test_batch_runs_once_per_parameter_set(db):
    sets = [[_param("id", longValue=100 + i), _param("name", stringValue=f"Batch {i}")] for i in range(3)]
    result = db.batch_execute("INSERT INTO Customer VALUES (:id, :name, NULL, 0, DATE '2022-01-01')", sets)
    assert result == {"updateResults": [{}, {}, {}]}
    assert _count(db, "name LIKE 'Batch %'") == 3


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


def test_batch_without_parameter_sets_runs_once(db):
    assert db.batch_execute("DELETE FROM Customer WHERE id = 1", None) == {"updateResults": []}
    assert _count(db, "id = 1") == 0


# size limits


def test_row_over_64_kb_is_too_large(db):
    with pytest.raises(ResultTooLarge) as caught:
        db.execute("SELECT repeat('x', 70000)")
    assert caught.value.message == "Packet for query is too large"
    assert _one(db, "SELECT length(repeat('x', 60000))") == {"longValue": 60000}


def test_result_over_1_mib_is_too_large(db):
    with pytest.raises(ResultTooLarge) as caught:
        db.execute("SELECT repeat('x', 1000) FROM range(1100)")
    assert caught.value.message == "Database returned more than the allowed response size limit"
    assert len(db.execute("SELECT repeat('x', 1000) FROM range(1000)")["records"]) == 1000


def test_formatted_records_allow_up_to_10_mb(db):
    formatted = db.execute("SELECT repeat('x', 1000) AS s FROM range(1100)", format_records_as="JSON")
    assert len(json.loads(formatted["formattedRecords"])) == 1100
    with pytest.raises(ResultTooLarge, match="allowed response size limit"):
        db.execute("SELECT repeat('x', 10000) AS s FROM range(1100)", format_records_as="JSON")


def test_huge_result_is_refused_without_fetching_it_all(db):
    with pytest.raises(ResultTooLarge, match="allowed response size limit"):
        db.execute("SELECT repeat('x', 100) FROM range(10000000)", format_records_as="JSON")
