"""The local Data API against AWS's documented behaviour, through unmodified boto3 (issue 10, §1, §2 and issue 12).

The v1/v2 differences follow the AWS User Guide page "Comparing Amazon RDS Data API behaviors for Aurora Serverless
v2 and provisioned clusters with Aurora Serverless v1 clusters" (data-api.differences), section by section; the
endpoint's SQL runs on the workbook's real PostgreSQL as an ordinary role, which the last tests probe.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import psutil
import pytest
from botocore.exceptions import ClientError

from aurora_sim import realdb
from aurora_sim.data_api.server import RESOURCE_ARN, SECRET_ARN, serve
from test_data_api import _client, _error

ARNS = {"resourceArn": RESOURCE_ARN, "secretArn": SECRET_ARN}


@pytest.fixture(scope="module")
def v1():
    with serve(flavour="v1", auto_pause_s=None) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def v2():
    with serve(flavour="v2", auto_pause_s=None) as endpoint:
        yield endpoint


def _value(response: dict):
    return next(iter(response["records"][0][0].values()))


# --- a real PostgreSQL, the embedded one ------------------------------------------------------------------------

def test_the_endpoint_answers_from_the_embedded_postgresql(v1):
    assert _value(_client(v1).execute_statement(**ARNS, sql="SELECT version()")).startswith("PostgreSQL 16.")
    pg = realdb.shared_server()
    assert pg.source == "pgserver"
    executable = Path(psutil.Process(pg.postmaster_pid).exe()).resolve()
    assert realdb.shared.is_embedded_executable(executable), f"{executable} is not an embedded PostgreSQL's"


def test_errors_are_postgresql_s_with_position_and_sqlstate(v1):
    with pytest.raises(ClientError) as excinfo:
        _client(v1).execute_statement(**ARNS, sql="SELECT * FROM nope")
    assert _error(excinfo) == ("BadRequestException",
                               'ERROR: relation "nope" does not exist\n  Position: 15; SQLState: 42P01')


# --- multistatement support ------------------------------------------------------------------------------------

def test_v1_runs_every_statement_and_returns_the_first_response(v1):
    client = _client(v1)
    client.execute_statement(**ARNS, sql="CREATE TABLE IF NOT EXISTS Multi (n INTEGER)")
    response = client.execute_statement(**ARNS, sql="SELECT 1 AS first; INSERT INTO Multi VALUES (2); SELECT 3")
    assert response["records"] == [[{"longValue": 1}]]
    assert _value(client.execute_statement(**ARNS, sql="SELECT count(*) FROM Multi WHERE n = 2")) >= 1


def test_v2_refuses_several_statements(v2):
    with pytest.raises(ClientError) as excinfo:
        _client(v2).execute_statement(**ARNS, sql="SELECT 1; SELECT 2")
    assert _error(excinfo) == ("ValidationException", "Multistatements aren't supported.")
    assert _value(_client(v2).execute_statement(**ARNS, sql="SELECT ';' -- ; a single statement")) == ";"


# --- the schema parameter --------------------------------------------------------------------------------------

def test_v1_ignores_the_schema_parameter_and_v2_refuses_it(v1, v2):
    assert _value(_client(v1).execute_statement(**ARNS, schema="elsewhere", sql="SELECT 1")) == 1
    with pytest.raises(ClientError) as excinfo:
        _client(v2).execute_statement(**ARNS, schema="elsewhere", sql="SELECT 1")
    assert _error(excinfo) == ("ValidationException", "The schema parameter isn't supported")


# --- concurrent requests for one transaction ID ----------------------------------------------------------------

def _concurrent_second_call(endpoint) -> tuple[float, object]:
    """A slow call in a transaction, then a second call on it 0.2 s later: (seconds the second took, its outcome)."""
    client = _client(endpoint)
    transaction = client.begin_transaction(**ARNS)["transactionId"]
    slow = threading.Thread(target=client.execute_statement,
                            kwargs={**ARNS, "sql": "SELECT pg_sleep(0.8)", "transactionId": transaction})
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    try:
        outcome = client.execute_statement(**ARNS, sql="SELECT 1", transactionId=transaction)
    except ClientError as error:
        outcome = error
    took = time.monotonic() - started
    slow.join(5)
    client.rollback_transaction(**ARNS, transactionId=transaction)
    return took, outcome


def test_v1_queues_a_second_call_on_a_busy_transaction(v1):
    took, outcome = _concurrent_second_call(v1)
    assert outcome["records"] == [[{"longValue": 1}]]
    assert took > 0.4, f"the second call should wait for the first one's statement, took {took:.2f} s"


def test_v2_fails_a_second_call_on_a_busy_transaction_at_once(v2):
    took, outcome = _concurrent_second_call(v2)
    assert isinstance(outcome, ClientError), outcome
    assert (outcome.response["Error"]["Code"], outcome.response["Error"]["Message"]) == \
        ("DatabaseErrorException", "Transaction is still running a query")
    assert took < 0.3, f"v2 answers at once, took {took:.2f} s"


# --- BatchExecuteStatement -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("flavour", "generated"), [("v1", [{"longValue": 7}]), ("v2", [])])
def test_batch_update_results_carry_generated_fields(flavour, generated, request):
    client = _client(request.getfixturevalue(flavour))
    answer = client.batch_execute_statement(**ARNS, sql="SELECT :a AS a", parameterSets=[
        [{"name": "a", "value": {"longValue": 7}}]])
    assert answer["updateResults"] == [{"generatedFields": generated}]


def test_batch_without_parameter_sets_runs_nothing(v1):
    client = _client(v1)
    client.execute_statement(**ARNS, sql="CREATE TABLE IF NOT EXISTS Once (n INTEGER)")
    assert client.batch_execute_statement(**ARNS, sql="INSERT INTO Once VALUES (1)")["updateResults"] == []
    assert _value(client.execute_statement(**ARNS, sql="SELECT count(*) FROM Once")) == 0


# --- ExecuteStatement: unsupported results on v2 ---------------------------------------------------------------

@pytest.mark.parametrize("expression", ["12.5::MONEY", "POINT(1, 2)", "ARRAY[[1], [2]]"])
def test_v2_refuses_monetary_geometric_and_nested_array_results(v1, v2, expression):
    assert "records" in _client(v1).execute_statement(**ARNS, sql=f"SELECT {expression}")
    with pytest.raises(ClientError) as excinfo:
        _client(v2).execute_statement(**ARNS, sql=f"SELECT {expression}")
    code, message = _error(excinfo)
    assert code == "UnsupportedResultException"
    assert message.startswith("The result contains the unsupported data type "), message


# --- a timed-out call cancels its own statement only -----------------------------------------------------------

def test_a_timed_out_call_cancels_only_its_own_statement():
    with serve(auto_pause_s=None, time_scale=100.0) as endpoint:  # the 45 s limit becomes 0.45 s
        client = _client(endpoint)
        client.execute_statement(**ARNS, sql="CREATE TABLE Landed (what TEXT)")
        neighbour: list = []
        later = threading.Timer(0.25, lambda: neighbour.append(client.execute_statement(
            **ARNS, sql="INSERT INTO Landed SELECT 'neighbour' FROM pg_sleep(0.35)")))
        later.start()
        with pytest.raises(ClientError) as excinfo:
            client.execute_statement(**ARNS, sql="INSERT INTO Landed SELECT 'slow' FROM pg_sleep(3)")
        later.join(5)
        assert _error(excinfo) == ("StatementTimeoutException", "Request timed out")
        assert neighbour and neighbour[0]["numberOfRecordsUpdated"] == 1, "the neighbouring call was disturbed"
        time.sleep(0.2)
        assert endpoint.gate.running == 0, "the timed-out statement should have been cancelled"
        rows = client.execute_statement(**ARNS, sql="SELECT what FROM Landed")["records"]
        assert rows == [[{"stringValue": "neighbour"}]]


def test_continue_after_timeout_lets_the_statement_finish():
    with serve(auto_pause_s=None, time_scale=100.0) as endpoint:
        client = _client(endpoint)
        client.execute_statement(**ARNS, sql="CREATE TABLE Landed (what TEXT)")
        with pytest.raises(ClientError) as excinfo:
            client.execute_statement(**ARNS, sql="INSERT INTO Landed SELECT 'late' FROM pg_sleep(0.8)",
                                     continueAfterTimeout=True)
        assert _error(excinfo)[0] == "StatementTimeoutException"
        deadline = time.monotonic() + 5
        while endpoint.gate.running and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = client.execute_statement(**ARNS, sql="SELECT what FROM Landed")["records"]
        assert rows == [[{"stringValue": "late"}]]


# --- the SQL does not reach the host (issue 12) ----------------------------------------------------------------

FORBIDDEN = [
    ("read a server file", "SELECT pg_read_file('/etc/passwd')", "42501"),
    ("list a server folder", "SELECT pg_ls_dir('.')", "42501"),
    ("stat a server file", "SELECT pg_stat_file('postgresql.conf')", "42501"),
    ("large-object import", "SELECT lo_import('/etc/passwd')", "42501"),
    ("COPY to a server file", "COPY Customer TO '/tmp/aurora-sim-copy-test.csv'", "42501"),
    ("COPY from a server file", "COPY Customer FROM '/etc/hostname'", "42501"),
    ("COPY to a program", "COPY Customer TO PROGRAM 'id'", "42501"),
    ("ALTER SYSTEM", "ALTER SYSTEM SET work_mem = '1MB'", "42501"),
    ("a server-wide setting", "SET log_statement = 'all'", "42501"),
    ("a server-wide setting by function", "SELECT set_config('log_min_messages', 'debug5', false)", "42501"),
    ("reload the configuration", "SELECT pg_reload_conf()", "42501"),
    ("CREATE EXTENSION", "CREATE EXTENSION vector", "42501"),
    ("LOAD a library", "LOAD 'plpgsql'", "42501"),
    ("a C function", "CREATE FUNCTION pid() RETURNS int LANGUAGE c AS 'libc', 'getpid'", "42501"),
    ("become superuser", "ALTER ROLE admin SUPERUSER", "42501"),
    ("create a role", "CREATE ROLE intruder SUPERUSER LOGIN", "42501"),
    ("create a database", "CREATE DATABASE intruder", "42501"),
    ("dblink", "SELECT dblink_connect('host=/tmp dbname=postgres')", "42883"),
    ("adminpack", "SELECT pg_file_write('/tmp/aurora-sim-adminpack', 'x', false)", "42883"),
]


@pytest.mark.parametrize(("what", "sql", "sqlstate"), FORBIDDEN, ids=[row[0] for row in FORBIDDEN])
def test_sql_cannot_reach_the_host(v1, what, sql, sqlstate):
    with pytest.raises(ClientError) as excinfo:
        _client(v1).execute_statement(**ARNS, sql=sql)
    code, message = _error(excinfo)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert code == "BadRequestException" and message.startswith("ERROR: "), (code, message)
    assert re.search(rf"; SQLState: {sqlstate}$", message), f"{what}: {message}"
    assert not Path("/tmp/aurora-sim-copy-test.csv").exists() and not Path("/tmp/aurora-sim-adminpack").exists()


def test_the_secret_s_user_is_an_ordinary_role(v1):
    sql = ("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
           "pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'), "
           "pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'), "
           "pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'), "
           "has_database_privilege(current_database(), 'CREATE') FROM pg_roles WHERE rolname = current_user")
    row = _client(v1).execute_statement(**ARNS, sql=sql)["records"][0]
    assert [field["booleanValue"] for field in row] == [False] * 9
