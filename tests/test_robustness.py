"""Issue 12: the engine never crashes or hangs on input it accepts, and the local Data API never answers 5xx.

Each test is one reproduction from the issue: what once crashed, spun, ate memory, answered 500 or printed a traceback,
and what it does now.
"""

from __future__ import annotations

import datetime as dt
import gc
import http.client
import json
import math
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from aurora_sim import (
    ClusterConfig,
    ConnectionPool,
    LongTransaction,
    ModelAssumptions,
    RetryPolicy,
    Workload,
    backoff,
    simulate,
)
from aurora_sim.data_api import listener
from aurora_sim.data_api.server import RESOURCE_ARN, RESTART_NOTE, SECRET_ARN, serve
from test_properties import check_every_request_ends_exactly_once

ARNS = {"resourceArn": RESOURCE_ARN, "secretArn": SECRET_ARN}
IDLE = Workload(segments=[(0, 60, 0.0)])
ONE_RPS = Workload(segments=[(0, 60, 1.0)])


def _simulate(workload=ONE_RPS, *, config=None, duration_s=60, **kwargs):
    return simulate(config or ClusterConfig(), workload, duration_s=duration_s, **kwargs)


# --- the engine: a crash on accepted input --------------------------------------------------------------------------

# The 7 of the first 200 seeds that crashed: with a cost variation of 3, some requests cost ~1e-40 ACU-s, their end
# equals the service level while the cluster is paused, and the batch path divided 0 by a rate of 0.
CRASHED_AT_COST_CV_3 = [92, 113, 144, 167, 174, 179, 187]


@pytest.mark.parametrize("seed", CRASHED_AT_COST_CV_3)
def test_a_paused_cluster_never_divides_by_its_zero_rate(seed):
    workload = Workload(segments=[(0, 60, 5.0), (1000, 1100, 5.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "invalid value encountered in divide" was the first sign
        run = simulate(ClusterConfig(), workload, duration_s=1100, seed=seed,
                       assumptions=ModelAssumptions(query_cost_cv=3.0))
    check_every_request_ends_exactly_once(run)


def test_a_vanishing_cost_variation_costs_every_request_the_mean():
    run = _simulate(assumptions=ModelAssumptions(query_cost_cv=1e-285))  # 1 / cv**2 once divided by zero
    check_every_request_ends_exactly_once(run)


# --- the engine: accepted input that hung or ate memory is refused up front, naming the parameter ----------------

REFUSED = [
    ("duration_s=1e12", lambda: _simulate(duration_s=1e12),
     "duration_s=1000000000000.0 is outside 0..31622400 (seconds: at most 366 days)"),
    ("metrics_period_s=1e-6", lambda: _simulate(metrics_period_s=1e-6), "metrics_period_s=1e-06 is outside 1.."),
    ("controller_period_s=1e-4", lambda: ModelAssumptions(controller_period_s=1e-4),
     "controller_period_s=0.0001 is outside 1..3600 (seconds)"),
    ("scaling_point_poll_s=1e-6", lambda: ModelAssumptions(scaling_point_poll_s=1e-6),
     "scaling_point_poll_s=1e-06 is outside 1..600 (seconds)"),
    ("query_cost_cv=11", lambda: ModelAssumptions(query_cost_cv=11), "query_cost_cv=11 is outside 0..10.0"),
    ("max_attempts=10**9", lambda: RetryPolicy("fixed", max_attempts=10**9),
     "max_attempts=1000000000 is outside 1..100 (attempts, the first included)"),
    ("cap_s=1e12", lambda: RetryPolicy("exponential", cap_s=1e12), "cap_s=1000000000000.0 is outside 0..3600.0"),
    ("1e9 requests/s", lambda: _simulate(Workload(segments=[(0, 60, 1e9)])),
     "segments ask for about 6e+10 requests before duration_s=60 (segments[0]: 1e+09 requests/s for 60 s); "
     "simulate() keeps at most 20,000,000 requests"),
    ("query_cpu_s=1e6", lambda: Workload(segments=[(0, 60, 1.0)], query_cpu_s=1e6),
     "query_cpu_s=1000000.0 is outside 0..3600.0 (mean ACU-seconds per request; model a longer statement as a "
     "LongQuery)"),
    ("a year of 1-s controller steps",
     lambda: _simulate(duration_s=365 * 86_400, assumptions=ModelAssumptions(controller_period_s=1)),
     "over simulate()'s limit of 60 s"),
    ("a year of 1-s metrics rows", lambda: _simulate(duration_s=365 * 86_400, metrics_period_s=1),
     "asks for 31,536,000 metrics rows; simulate() keeps at most 2,000,000"),
    ("a million tracked requests x 10 attempts",
     lambda: _simulate(Workload(segments=[(0, 10_000, 100.0)], retry=RetryPolicy("full_jitter", max_attempts=10)),
                       duration_s=10_000),
     "1e+06 tracked requests × up to 10 attempts each (RetryPolicy.max_attempts)"),
    ("a pool checking 1,000 connections every millisecond",
     lambda: _simulate(Workload(segments=[(0, 60, 1.0)], connections=ConnectionPool(
         min_size=1000, max_size=1000, idle_timeout_s=1e-3)), duration_s=3600),
     "pool checks (min_size=1000 × duration_s / idle_timeout_s=0.001)"),
    ("seed=-1", lambda: _simulate(seed=-1),
     "seed=-1 must be >= 0 (numpy's SeedSequence takes a non-negative integer)"),
    ("a parameter without a value", lambda: ClusterConfig(engine="aurora-postgresql",
                                                          parameters=[("statement_timeout",)]),
     "parameters[0]=('statement_timeout',) must be a (name, milliseconds) pair"),
    ("statement_timeout=10**30", lambda: ClusterConfig(engine="aurora-postgresql",
                                                       parameters={"statement_timeout": 10**30}),
     "must be <= 2147483647 (milliseconds: the most aurora-postgresql accepts)"),
    ("idle_in_transaction_session_timeout=2**31",
     lambda: ClusterConfig(engine="aurora-postgresql", parameters={"idle_in_transaction_session_timeout": 2**31}),
     "parameters['idle_in_transaction_session_timeout']=2147483648 must be <= 2147483647"),
    ("max_execution_time=2**32", lambda: ClusterConfig(parameters={"max_execution_time": 2**32}),
     "parameters['max_execution_time']=4294967296 must be <= 4294967295 (milliseconds: the most aurora-mysql "
     "accepts)"),
    ("a parameter named twice", lambda: ClusterConfig(parameters=[("max_execution_time", 1),
                                                                  ("max_execution_time", 2)]),
     "sets 'max_execution_time' a second time"),
    ("a transaction split a billion ways", lambda: LongTransaction(start_s=0, duration_s=60).split(10**9, 0),
     "pieces=1000000000 must be <= 1000"),
    ("a billion racing clients", lambda: backoff.contended_write_experiment("none", 10**9),
     "clients=1000000000 must be <= 1000"),
    ("a thousand clients a thousand times", lambda: backoff.contended_write_experiment("none", 1000, runs=1000),
     "is over 200,000,000; lower runs or clients"),
    ("a billion retries in the sleep table", lambda: backoff.sleep_table({"x": RetryPolicy("fixed")}, 10**9),
     "retries=1000000000 must be <= 100"),
]


@pytest.mark.parametrize(("call", "message"), [(call, message) for _, call, message in REFUSED],
                         ids=[name for name, _, _ in REFUSED])
def test_too_much_is_refused_at_once_naming_the_parameter(call, message):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
    assert time.perf_counter() - started < 1.0, "the refusal must come before any work"


def test_the_largest_engine_parameters_are_accepted_and_run():
    most = {"statement_timeout": 2**31 - 1, "idle_in_transaction_session_timeout": 2**31 - 1}
    check_every_request_ends_exactly_once(_simulate(config=ClusterConfig(engine="aurora-postgresql", parameters=most)))
    check_every_request_ends_exactly_once(_simulate(config=ClusterConfig(parameters={"max_execution_time": 2**32 - 1})))


def test_a_backlog_that_cannot_drain_in_seven_days_says_why():
    # Paused at ~360 s; every request of the next minute is held through the resume, 3,600 ACU-s each on 1 ACU.
    workload = Workload(segments=[(0, 1, 0.0), (400, 500, 20.0)], query_cpu_s=3600)
    with pytest.raises(RuntimeError, match=re.escape("the cluster cannot finish the work it accepted "
                                                     "(query_cpu_s=3600 mean per request, max_capacity=1 ACU)")):
        simulate(ClusterConfig(max_capacity=1), workload, duration_s=500,
                 assumptions=ModelAssumptions(query_cost_cv=0))


def _peak_mib(days: float) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        _simulate(IDLE, config=ClusterConfig(auto_pause=False), duration_s=days * 86_400)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_over_simulated_time_while_the_cluster_is_up():
    # The controller kept every window sample it ever took: about 3.5 MiB per simulated day (1 → 4 days: +10.5 MiB
    # then, +1.9 MiB now, the metrics rows).
    short, long = _peak_mib(1), _peak_mib(4)
    assert long - short < 5, f"1 idle day peaked at {short:.1f} MiB, 4 days at {long:.1f} MiB"


# --- the Data API's HTTP layer ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def endpoint():
    with serve(flavour="v1", auto_pause_s=None) as running:
        yield running


@pytest.fixture(scope="module")
def endpoint_v2():
    with serve(flavour="v2", auto_pause_s=None) as running:
        yield running


@pytest.fixture
def no_traceback(capfd):
    """The server's threads print to this process's stderr: nothing there may look like a traceback."""
    yield
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err[-2000:]


def _client(endpoint):
    return boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())


def _signed_headers(endpoint, path: str, body: bytes) -> list[tuple[str, str]]:
    request = AWSRequest(method="POST", url=endpoint.url + path, data=body,
                         headers={"Content-Type": "application/json"})
    keys = endpoint.keys
    signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "rds-data", keys.region)
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)):
        signer.add_auth(request)
    return [*request.headers.items(), ("Host", urlsplit(endpoint.url).netloc)]


def _raw_exchange(endpoint, raw: bytes, *, timeout_s: float = 20) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(endpoint.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as connection:
        connection.sendall(raw)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def _request_bytes(headers: list[tuple[str, str]], body: bytes, path: str = "/Execute") -> bytes:
    lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("statement", ["-- nothing", "/* x */", "/* a */ -- b\n ;", "/* nested /* twice */ */"])
@pytest.mark.parametrize("flavour", ["v1", "v2"])
def test_a_statement_of_only_comments_is_a_4xx(statement, flavour, request, no_traceback):
    running = request.getfixturevalue("endpoint" if flavour == "v1" else "endpoint_v2")
    with pytest.raises(ClientError) as caught:
        _client(running).execute_statement(**ARNS, sql=statement)
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, caught.value.response
    assert "the statement is empty" in caught.value.response["Error"]["Message"]


def test_a_body_shorter_than_its_content_length_is_a_400_not_a_500(endpoint, no_traceback):
    started = time.monotonic()
    status, headers, body = _raw_exchange(
        endpoint, b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"sql\":")
    took = time.monotonic() - started
    assert status == 400 and headers["x-amzn-errortype"].startswith("BadRequestException"), (status, body)
    assert headers["connection"] == "close"
    assert took < listener.REQUEST_S + 2, f"answered after {took:.1f} s"
    time.sleep(0.2)  # the server thread's last words, if any, reach stderr before the fixture reads it


def test_a_nan_double_is_valid_json_as_aws_sends_it(endpoint):
    body = json.dumps({**ARNS, "sql": "SELECT CAST('NaN' AS DOUBLE PRECISION) AS d, "
                                      "CAST('-Infinity' AS DOUBLE PRECISION) AS e, 'NaN' AS s"}).encode()
    for extra in ({}, {"formatRecordsAs": "JSON"}):
        payload = json.dumps({**json.loads(body), **extra}).encode()
        status, _, raw = _raw_exchange(endpoint, _request_bytes(
            [*_signed_headers(endpoint, "/Execute", payload), ("Content-Length", str(len(payload)))], payload))
        assert status == 200, raw
        document = json.loads(raw, parse_constant=pytest.fail)  # a bare NaN or Infinity token fails the test
        if extra:
            assert json.loads(document["formattedRecords"], parse_constant=pytest.fail) == [
                {"d": "NaN", "e": "-Infinity", "s": "NaN"}]
        else:
            assert document["records"][0][:2] == [{"doubleValue": "NaN"}, {"doubleValue": "-Infinity"}]
    record = _client(endpoint).execute_statement(**ARNS, sql=json.loads(body)["sql"])["records"][0]
    assert math.isnan(record[0]["doubleValue"]) and record[1]["doubleValue"] == -math.inf  # botocore: float("NaN")


def test_a_second_authorization_header_is_refused(endpoint):
    body = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    signed = [*_signed_headers(endpoint, "/Execute", body), ("Content-Length", str(len(body)))]
    authorization = next(value for name, value in signed if name.lower() == "authorization")
    for extra in (authorization, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/x"):
        for headers in ([*signed, ("Authorization", extra)], [("Authorization", extra), *signed]):
            status, response_headers, raw = _raw_exchange(endpoint, _request_bytes(headers, body))
            assert status == 403, raw
            assert response_headers["x-amzn-errortype"].startswith("InvalidSignatureException")
            assert b"2 Authorization headers" in raw


def test_a_repeated_signed_header_no_longer_matches_its_signature(endpoint):
    # SigV4 joins a repeated header's values with commas: the signature over one X-Amz-Date does not cover two.
    body = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    signed = [*_signed_headers(endpoint, "/Execute", body), ("Content-Length", str(len(body)))]
    amz_date = next(value for name, value in signed if name.lower() == "x-amz-date")
    status, headers, raw = _raw_exchange(endpoint, _request_bytes([*signed, ("X-Amz-Date", amz_date)], body))
    assert status == 403 and headers["x-amzn-errortype"].startswith("InvalidSignatureException"), raw


def test_two_content_lengths_are_a_400(endpoint):
    body = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    signed = [*_signed_headers(endpoint, "/Execute", body), ("Content-Length", str(len(body))),
              ("Content-Length", "1")]
    status, _, raw = _raw_exchange(endpoint, _request_bytes(signed, body))
    assert status == 400 and b"2 Content-Length headers" in raw, raw


def test_the_listen_queue_takes_a_burst_of_connects_at_once(endpoint):
    # Python's default queue of 5 made about one connect in six wait for a SYN retry: 1.02 s.
    parts = urlsplit(endpoint.url)

    def connect_s() -> tuple[float, socket.socket]:
        started = time.monotonic()
        connection = socket.create_connection((parts.hostname, parts.port), timeout=10)
        return time.monotonic() - started, connection

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(lambda _: connect_s(), range(300)))
    for _, connection in results:
        connection.close()
    slowest = max(seconds for seconds, _ in results)
    assert slowest < 0.9, f"the slowest of 300 connects took {slowest:.2f} s"
    assert _client(endpoint).execute_statement(**ARNS, sql="SELECT 1")["records"] == [[{"longValue": 1}]]


def _trickle(parts, stop_after_s: float) -> float:
    """Send one byte of a request line every 2 s; return how long the server let the connection live."""
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=stop_after_s) as connection:
        for byte in b"POST /Execute HTTP/1.1\r\nHost: x\r\n":
            try:
                connection.sendall(bytes([byte]))
                connection.settimeout(2.0)
                if connection.recv(1) == b"":
                    break
            except TimeoutError:
                continue  # still open: trickle on
            except OSError:
                break
            if time.monotonic() - started > stop_after_s:
                break
    return time.monotonic() - started


def test_a_client_trickling_one_byte_every_2_s_is_cut_off_within_seconds(endpoint, no_traceback):
    parts = urlsplit(endpoint.url)
    before = threading.active_count()
    with ThreadPoolExecutor(max_workers=20) as pool:
        lives = list(pool.map(lambda _: _trickle(parts, stop_after_s=30), range(20)))
        assert _client(endpoint).execute_statement(**ARNS, sql="SELECT 1")["records"] == [[{"longValue": 1}]]
    assert max(lives) < listener.REQUEST_S + 3, f"tricklers held for up to {max(lives):.1f} s"
    assert threading.active_count() <= before + 1, "connection threads outlived their clients"


class _Hello(listener.DeadlineRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # http.server's naming
        self.send_answer_timeout()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_connection_threads_are_bounded_and_idle_ones_are_let_go(monkeypatch):
    monkeypatch.setattr(listener, "KEEP_ALIVE_S", 0.5)
    server = listener.BoundedHTTPServer(("127.0.0.1", 0), _Hello, max_connections=4)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        silent = [socket.create_connection((host, port), timeout=5) for _ in range(12)]
        peak = 0
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            peak = max(peak, server.busy_connections())
            time.sleep(0.01)
        assert peak == 4, f"{peak} connection threads for 12 silent clients and a bound of 4"
        answer = http.client.HTTPConnection(host, port, timeout=10)
        answer.request("GET", "/")
        assert answer.getresponse().read() == b"ok"  # served once the silent ones were let go
        answer.close()
        for connection in silent:
            connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_start_up_banner_and_help_say_what_survives_a_restart():
    helped = subprocess.run([sys.executable, "-m", "aurora_sim.data_api", "--help"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
    assert " ".join(RESTART_NOTE.split()) in " ".join(helped.split())
    process = subprocess.Popen([sys.executable, "-m", "aurora_sim.data_api", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not (lines and lines[-1].startswith("PID")):
            line = process.stdout.readline()
            assert line, f"the server exited early: {process.stderr.read()}"
            lines.append(line)
        assert RESTART_NOTE in "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=30)
