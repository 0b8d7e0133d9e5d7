"""The local Data API: real boto3 and the AWS CLI against ``aurora_sim.data_api.serve`` (issue 4, §1–§5; issue 10)."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aurora_sim.data_api as data_api
from aurora_sim import facts
from aurora_sim.data_api import errors, server
from aurora_sim.data_api.auth import KeyPair
from aurora_sim.data_api.server import RESOURCE_ARN, SECRET_ARN, serve

ARNS = {"resourceArn": RESOURCE_ARN, "secretArn": SECRET_ARN}
COMMUNICATIONS_LINK_FAILURE = facts.DATA_API_RESUMING_ERROR.removeprefix("BadRequestException: ")
V2_RESUMING = ("The Aurora DB instance my_db_cluster-instance-1 is resuming after being auto-paused. "
               "Please wait a few seconds and try again.")
# A fast clock for the time tests: 100x makes the 45 s call limit 0.45 s and the 3-minute transaction limit 1.8 s.
FAST = {"auto_pause_s": 30, "resume_s": 20, "time_scale": 100.0}  # pause after 0.3 s idle, resume in 0.2 s


def _client(endpoint: server.Endpoint, **overrides: str):
    kwargs = {**endpoint.client_kwargs(), **overrides}
    return boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **kwargs)


def _error(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture(scope="module")
def v1():
    with serve(flavour="v1", auto_pause_s=None) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def v2():
    with serve(flavour="v2", auto_pause_s=None) as endpoint:
        yield endpoint


def _signed(endpoint: server.Endpoint, path: str, body: bytes, *, keys: KeyPair | None = None,
            when: dt.datetime | None = None) -> dict[str, str]:
    """Headers that sign ``body`` for ``path`` as botocore signs a request (optionally at another time)."""
    keys = keys or endpoint.keys
    request = AWSRequest(method="POST", url=endpoint.url + path, data=body,
                         headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "rds-data", keys.region)
    moment = when or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return {**dict(request.headers.items()), "Host": urlsplit(endpoint.url).netloc}


def _post(endpoint: server.Endpoint, path: str, body: bytes, headers: dict[str, str] | None = None,
          method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(endpoint.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _assert_json_error(status: int, headers: dict[str, str], body: bytes, code: str, expected_status: int) -> dict:
    assert status == expected_status, f"expected {expected_status}, got {status}: {body[:200]!r}"
    assert headers["content-type"] == "application/json"
    assert headers["x-amzn-errortype"].split(":")[0] == code, headers
    assert headers["x-amzn-requestid"]
    document = json.loads(body)
    assert isinstance(document["message"], str) and document["message"], document
    return document


# --- every operation through unmodified boto3 ------------------------------------------------------------------

def test_execute_statement_returns_customer_rows(v1):
    response = _client(v1).execute_statement(**ARNS, database="mydb", sql="SELECT * FROM Customer",
                                             includeResultMetadata=True)
    assert len(response["records"]) >= 15, f"expected about 20 customers, got {len(response['records'])}"
    assert response["columnMetadata"][0]["name"].lower() == "id"
    assert response["numberOfRecordsUpdated"] == 0


def test_transactions_and_batch_execute_through_boto3(v1):
    client = _client(v1)
    client.execute_statement(**ARNS, sql="CREATE TABLE IF NOT EXISTS Note (id BIGINT, body VARCHAR)")
    transaction = client.begin_transaction(**ARNS, database="mydb")["transactionId"]
    client.batch_execute_statement(**ARNS, sql="INSERT INTO Note VALUES (:id, :body)", transactionId=transaction,
                                   parameterSets=[[{"name": "id", "value": {"longValue": i}},
                                                   {"name": "body", "value": {"stringValue": f"note {i}"}}]
                                                  for i in range(3)])
    assert client.commit_transaction(**ARNS, transactionId=transaction)["transactionStatus"] == \
        "Transaction Committed"
    transaction = client.begin_transaction(**ARNS)["transactionId"]
    client.execute_statement(**ARNS, sql="DELETE FROM Note", transactionId=transaction)
    assert client.rollback_transaction(**ARNS, transactionId=transaction)["transactionStatus"] == "Rollback Complete"
    count = client.execute_statement(**ARNS, sql="SELECT count(*) FROM Note")["records"][0][0]["longValue"]
    assert count == 3, f"expected the 3 committed notes to survive the rollback, got {count}"
    assert v1.gate.status() == "available"


def test_injection_through_a_parameter_leaves_customer_intact(v1):
    client = _client(v1)
    before = client.execute_statement(**ARNS, sql="SELECT count(*) FROM Customer")["records"][0][0]["longValue"]
    attack = {"name": "name", "value": {"stringValue": "x'; DROP TABLE Customer; --"}}
    found = client.execute_statement(**ARNS, sql="SELECT * FROM Customer WHERE name = :name", parameters=[attack])
    assert found["records"] == []
    after = client.execute_statement(**ARNS, sql="SELECT count(*) FROM Customer")["records"][0][0]["longValue"]
    assert after == before, f"expected {before} customers after the attempt, got {after}"


def test_execute_sql_is_deprecated(v1):
    with pytest.raises(ClientError) as excinfo:
        _client(v1).execute_sql(dbClusterOrInstanceArn=RESOURCE_ARN, awsSecretStoreArn=SECRET_ARN,
                                sqlStatements="SELECT 1")
    assert _error(excinfo) == ("BadRequestException",
                               "This API is deprecated and not available. Use ExecuteStatement API instead")


# --- the error table, per flavour ------------------------------------------------------------------------------

@pytest.mark.parametrize(("flavour", "code"), [("v1", "BadRequestException"), ("v2", "DatabaseErrorException")])
def test_sql_error_per_flavour(flavour, code, request):
    endpoint = request.getfixturevalue(flavour)
    with pytest.raises(ClientError) as excinfo:
        _client(endpoint).execute_statement(**ARNS, sql="SELECT * FROM NoSuchTable")
    got_code, message = _error(excinfo)
    assert got_code == code
    assert message.startswith("ERROR: ") and message.endswith("SQLState: 42P01"), message


@pytest.mark.parametrize(("flavour", "which", "code", "message"), [
    ("v1", "resourceArn", "BadRequestException", "HttpEndpoint is not enabled for cluster other"),
    ("v2", "resourceArn", "HttpEndpointNotEnabledException",
     "HttpEndpoint is not enabled for resource arn:aws:rds:us-east-1:123456789012:cluster:other"),
    ("v1", "secretArn", "BadRequestException",
     "Error fetching secret arn:aws:secretsmanager:us-east-1:123456789012:secret:other : "
     "Secrets Manager can't find the specified secret."),
    ("v2", "secretArn", "SecretsErrorException",
     "Secrets Manager can't find the specified secret arn:aws:secretsmanager:us-east-1:123456789012:secret:other."),
])
def test_unknown_arn_per_flavour(flavour, which, code, message, request):
    endpoint = request.getfixturevalue(flavour)
    arns = {**ARNS, which: ARNS[which].rsplit(":", 1)[0] + ":other"}
    with pytest.raises(ClientError) as excinfo:
        _client(endpoint).execute_statement(**arns, sql="SELECT 1")
    assert _error(excinfo) == (code, message)


@pytest.mark.parametrize(("flavour", "code", "status"), [("v1", "BadRequestException", 400),
                                                      ("v2", "TransactionNotFoundException", 404)])
def test_unknown_transaction_per_flavour(flavour, code, status, request):
    with pytest.raises(ClientError) as excinfo:
        _client(request.getfixturevalue(flavour)).commit_transaction(**ARNS, transactionId="no-such-transaction")
    assert _error(excinfo) == (code, "Transaction no-such-transaction is not found")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT repeat('x', 70000)", "Packet for query is too large"),
    ("SELECT repeat('x', 1000) FROM generate_series(1, 2000)",
     "Database returned more than the allowed response size limit"),
])
@pytest.mark.parametrize(("flavour", "code"), [("v1", "BadRequestException"), ("v2", "UnsupportedResultException")])
def test_oversized_results_per_flavour(flavour, code, sql, message, request):
    with pytest.raises(ClientError) as excinfo:
        _client(request.getfixturevalue(flavour)).execute_statement(**ARNS, sql=sql)
    assert _error(excinfo) == (code, message)


def test_a_batch_has_no_fixed_number_of_parameter_sets(v1):
    """'There isn't a fixed upper limit on the number of parameter sets' (UG data-api.md): 1,001 sets run."""
    one = [{"name": "a", "value": {"longValue": 1}}]
    answer = _client(v1).batch_execute_statement(**ARNS, sql="SELECT :a", parameterSets=[one] * 1001)
    assert len(answer["updateResults"]) == 1001


def test_invalid_body_is_refused_with_the_validation_report(v1):
    body = json.dumps({**ARNS, "sql": 42, "surprise": True}).encode()
    status, headers, raw = _post(v1, "/Execute", body, _signed(v1, "/Execute", body))
    document = _assert_json_error(status, headers, raw, "BadRequestException", 400)
    assert "Parameter validation failed" in document["message"]
    assert 'Unknown parameter in input: "surprise"' in document["message"]
    assert "Invalid type for parameter sql" in document["message"]


# --- pause and resume ------------------------------------------------------------------------------------------

def test_v1_first_call_after_pause_fails_and_starts_the_resume():
    with serve(flavour="v1", **FAST) as endpoint:
        client = _client(endpoint)
        client.execute_statement(**ARNS, sql="SELECT 1")
        time.sleep(0.45)
        assert endpoint.gate.status() == "paused"
        with pytest.raises(ClientError) as excinfo:
            client.execute_statement(**ARNS, sql="SELECT 1")
        assert _error(excinfo) == ("BadRequestException", COMMUNICATIONS_LINK_FAILURE)
        started = time.monotonic()
        client.execute_statement(**ARNS, sql="SELECT 1")  # waits for the resume, then runs
        waited = time.monotonic() - started
        assert 0.1 < waited < 0.45, f"expected the second call to wait out the 0.2 s resume, waited {waited:.2f} s"
        assert endpoint.gate.resumes == 1


def test_v1_call_still_waiting_for_the_resume_at_its_limit_gets_the_resume_error():
    # A model assumption (AWS documents neither): the resume error again, not StatementTimeoutException.
    with serve(flavour="v1", auto_pause_s=None, resume_s=60, time_scale=100.0) as endpoint:
        client = _client(endpoint)
        endpoint.gate.pause()
        with pytest.raises(ClientError):
            client.execute_statement(**ARNS, sql="SELECT 1")  # finds it paused: starts the 0.6 s resume
        started = time.monotonic()
        with pytest.raises(ClientError) as excinfo:
            client.execute_statement(**ARNS, sql="SELECT 1")  # waits out its 0.45 s limit while resuming
        waited = time.monotonic() - started
        assert _error(excinfo) == ("BadRequestException", COMMUNICATIONS_LINK_FAILURE)
        assert 0.4 < waited < 0.6, f"expected the call to wait out its 0.45 s limit, waited {waited:.2f} s"
        assert endpoint.gate.resumes == 1


def test_v2_every_call_fails_until_resumed():
    with serve(flavour="v2", **FAST) as endpoint:
        client = _client(endpoint)
        endpoint.gate.pause()
        for _ in range(2):
            with pytest.raises(ClientError) as excinfo:
                client.execute_statement(**ARNS, sql="SELECT 1")
            assert _error(excinfo) == ("DatabaseResumingException", V2_RESUMING)
        time.sleep(0.25)
        assert client.execute_statement(**ARNS, sql="SELECT 1")["records"] == [[{"longValue": 1}]]


def test_open_transaction_keeps_the_cluster_awake_until_it_expires():
    with serve(flavour="v1", **FAST) as endpoint:
        client = _client(endpoint)
        transaction = client.begin_transaction(**ARNS)["transactionId"]
        time.sleep(0.5)
        assert endpoint.gate.status() == "available", "an open transaction must keep the cluster from pausing"
        time.sleep(1.9)  # the transaction expires at 180 s / 100 = 1.8 s; the cluster pauses 0.3 s later
        assert endpoint.gate.status() == "paused"
        with pytest.raises(ClientError):
            client.execute_statement(**ARNS, sql="SELECT 1")  # the communications link failure; resumes
        with pytest.raises(ClientError) as excinfo:
            client.commit_transaction(**ARNS, transactionId=transaction)
        assert _error(excinfo) == ("BadRequestException", f"Transaction {transaction} is not found")


class _SlowDatabase:
    """A stand-in whose statements take ``seconds``: enough to cross a scaled call limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def execute(self, sql, parameters=None, **options):
        time.sleep(self.seconds)
        return {"records": [], "numberOfRecordsUpdated": 0}

    def open_transactions(self) -> int:
        return 0

    def expire_transaction(self, transaction_id: str) -> None:
        pass


def test_call_over_the_limit_is_a_statement_timeout():
    with serve(backend=_SlowDatabase(0.8), auto_pause_s=None, time_scale=100.0) as endpoint:
        started = time.monotonic()
        with pytest.raises(ClientError) as excinfo:
            _client(endpoint).execute_statement(**ARNS, sql="SELECT pg_sleep(60)")
        elapsed = time.monotonic() - started
        assert _error(excinfo) == ("StatementTimeoutException", "Request timed out")
        assert excinfo.value.response["dbConnectionId"] > 0
        assert 0.4 < elapsed < 0.75, f"expected the cut at 45 s / 100, got {elapsed:.2f} s"


@pytest.mark.parametrize(("keep_running", "still_running"), [(False, 0), (True, 1)])
def test_continue_after_timeout_decides_whether_the_statement_goes_on(keep_running, still_running):
    slow = "SELECT pg_sleep(30)"
    with serve(auto_pause_s=None, time_scale=100.0) as endpoint:
        client = _client(endpoint)
        with pytest.raises(ClientError) as excinfo:
            client.execute_statement(**ARNS, sql=slow, continueAfterTimeout=keep_running)
        assert _error(excinfo) == ("StatementTimeoutException", "Request timed out")
        time.sleep(0.2)
        assert endpoint.gate.running == still_running, f"continueAfterTimeout={keep_running}: {endpoint.gate}"
        assert client.execute_statement(**ARNS, sql="SELECT 1")["records"] == [[{"longValue": 1}]]
        started = time.monotonic()
    assert time.monotonic() - started < 3, "serve() must stop a still-running statement on exit"


# --- who gets in -----------------------------------------------------------------------------------------------

def test_wrong_access_key_is_unrecognized(v1):
    with pytest.raises(ClientError) as excinfo:
        _client(v1, aws_access_key_id="AKIAIOSFODNN7WRONG00").execute_statement(**ARNS, sql="SELECT 1")
    assert _error(excinfo) == ("UnrecognizedClientException", "The security token included in the request is invalid.")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_secret_key_is_an_invalid_signature(v1):
    with pytest.raises(ClientError) as excinfo:
        _client(v1, aws_secret_access_key="x" * 40).execute_statement(**ARNS, sql="SELECT 1")
    code, message = _error(excinfo)
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match")


def test_tampered_body_is_an_invalid_signature(v1):
    body = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    headers = _signed(v1, "/Execute", body)
    status, response_headers, raw = _post(v1, "/Execute", body.replace(b"SELECT 1", b"SELECT 2"), headers)
    _assert_json_error(status, response_headers, raw, "InvalidSignatureException", 403)
    assert _post(v1, "/Execute", body, headers)[0] == 200  # the untampered body, same headers


def test_stale_clock_is_refused(v1):
    ten_minutes_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    with mock.patch("botocore.auth.get_current_datetime", return_value=ten_minutes_ago), \
            pytest.raises(ClientError) as excinfo:
        _client(v1).execute_statement(**ARNS, sql="SELECT 1")
    code, message = _error(excinfo)
    assert code == "InvalidSignatureException"
    assert message.startswith("Signature expired: "), message


def test_unsigned_request_is_refused(v1):
    body = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    status, headers, raw = _post(v1, "/Execute", body, {"Content-Type": "application/json"})
    _assert_json_error(status, headers, raw, "MissingAuthenticationTokenException", 403)


# --- the front door --------------------------------------------------------------------------------------------

def test_unknown_path_is_a_json_404(v1):
    status, headers, raw = _post(v1, "/Nope", b"{}", {"Content-Type": "application/json"})
    _assert_json_error(status, headers, raw, "UnknownOperationException", 404)


def test_get_is_a_json_405(v1):
    status, headers, raw = _post(v1, "/Execute", b"", method="GET")
    _assert_json_error(status, headers, raw, "MethodNotAllowedException", 405)


def test_body_over_4_mib_is_refused_unread(v1):
    parts = urlsplit(v1.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/Execute")
        connection.putheader("Content-Length", str(server.MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        status, headers, raw = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
    document = _assert_json_error(status, headers, raw, "RequestEntityTooLargeException", 413)
    assert "4 MiB" in document["message"]


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"TRACE /Execute HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /Execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
])
def test_malformed_http_gets_a_json_4xx(v1, raw, status):
    parts = urlsplit(v1.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(raw)
        response = http.client.HTTPResponse(connection)
        response.begin()
        headers = {k.lower(): v for k, v in response.getheaders()}
        body = response.read()
    _assert_json_error(response.status, headers, body, headers["x-amzn-errortype"].split(":")[0], status)


_MEMBERS = ("resourceArn", "secretArn", "sql", "database", "schema", "parameters", "transactionId",
            "includeResultMetadata", "continueAfterTimeout", "resultSetOptions", "formatRecordsAs", "parameterSets")
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=12)
_DOCUMENTS = st.dictionaries(st.sampled_from(_MEMBERS) | st.text(max_size=12), _VALUES, max_size=6)
_REQUESTS = st.one_of(
    _DOCUMENTS.map(lambda d: json.dumps(d).encode()),
    _DOCUMENTS.map(lambda d: json.dumps({**ARNS, **d}).encode()),
    st.builds(lambda sql, extra: json.dumps({**ARNS, "sql": sql, **extra}).encode(),
              st.text(max_size=60), st.dictionaries(st.sampled_from(_MEMBERS[3:]), _VALUES, max_size=2)),
    st.binary(max_size=200),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(server.ROUTES)), body=_REQUESTS)
def test_fuzzed_bodies_get_a_well_formed_4xx(v1, path, body):
    status, headers, raw = _post(v1, path, body, _signed(v1, path, body))
    assert status != 200 or headers["content-type"] == "application/json"
    if status == 200:
        json.loads(raw)
        return
    assert 400 <= status < 500, f"expected a 4xx for {body[:120]!r} on {path}, got {status}: {raw[:300]!r}"
    code = headers["x-amzn-errortype"].split(":")[0]
    _assert_json_error(status, headers, raw, code, status)


# --- the AWS CLI and ``python -m aurora_sim.data_api`` ---------------------------------------------------------

def _aws_command() -> str | None:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


def test_aws_cli_runs_the_seed_command(v1, tmp_path):
    if _aws_command() is None:  # the test extra installs awscli: missing under CI is a failure, not a pass
        message = "the AWS CLI (awscli, the test extra) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set, so this is a failure")
        pytest.skip(message)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_ACCESS_KEY_ID": v1.keys.access_key_id,
           "AWS_SECRET_ACCESS_KEY": v1.keys.secret_access_key, "AWS_DEFAULT_REGION": "us-east-1"}
    command = [_aws_command(), "rds-data", "execute-statement", "--resource-arn", RESOURCE_ARN,
               "--secret-arn", SECRET_ARN, "--database", "mydb", "--sql", "SELECT * FROM Customer",
               "--endpoint-url", v1.url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["records"]) >= 15


def test_python_m_prints_the_url_and_answers(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "aurora_sim.data_api", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, f"the server exited early: {process.stderr.read()}"
            lines.append(line)
            if line.startswith("PID"):
                break
        text = "".join(lines)
        url = re.search(r"http://127\.0\.0\.1:\d+", text).group(0)
        assert "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE" in text
        assert f"--endpoint-url {url}" in text and f"PID {process.pid}" in text
        client = boto3.client("rds-data", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                              aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              config=Config(retries={"max_attempts": 1}))
        assert client.execute_statement(**ARNS, sql="SELECT 1")["records"] == [[{"longValue": 1}]]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode in (0, -15), process.returncode


# --- parameters and exports ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("keyword", "value", "fragment"), [
    ("flavour", "v3", "flavour='v3' must be one of ('v1', 'v2')"),
    ("auto_pause_s", 0, "auto_pause_s=0 must be > 0"),
    ("resume_s", -1, "resume_s=-1 must be >= 0"),
    ("time_scale", 0.5, "time_scale=0.5 must be > 0.75"),
    ("port", 70_000, "port=70000 is outside 0..65535"),
])
def test_serve_rejects_bad_settings(keyword, value, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)), serve(**{keyword: value}):
        pass


def test_server_is_stopped_on_exit_and_a_taken_port_fails_cleanly():
    with serve(auto_pause_s=None) as endpoint:
        port = urlsplit(endpoint.url).port
        _client(endpoint).execute_statement(**ARNS, sql="SELECT 1")  # leaves a kept-alive connection open
        with pytest.raises(OSError), serve(port=port):
            pass
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not [t.name for t in threading.enumerate() if t.name == f"data-api-{port}"]


def test_api_error_wire_form_is_never_empty():
    status, headers, body = errors.ApiError("InternalServerErrorException", "boom").wire("rid")
    assert (status, headers["x-amzn-RequestId"], json.loads(body)) == (500, "rid", {"message": "boom"})
    with pytest.raises(ValueError, match=re.escape("code='Nope' must be one of")):
        errors.ApiError("Nope", "x")


def test_secret_stand_in_holds_database_credentials(v1):
    assert set(v1.secret) == {"username", "password", "engine", "host", "port", "dbname"}
    assert v1.secret["dbname"] == "mydb"


def test_blob_results_are_base64():
    assert server._json_default(b"\x00\xff") == base64.b64encode(b"\x00\xff").decode()


@pytest.mark.parametrize("name", ["ApiError", "ClusterGate", "Endpoint", "KeyPair", "serve"])
def test_is_exported(name):
    assert name in data_api.__all__ and hasattr(data_api, name)
