"""A bounded soak of the local Data API (issue 12): many boto3 clients at once, plus malformed and slow ones.

Starts ``python -m aurora_sim.data_api`` on loopback as a child process, then for ``--seconds`` runs
``--clients`` well-behaved boto3 clients (reads, writes inside transactions, batches) beside a few malformed
clients (bad JSON, bad signatures, short bodies, comment-only SQL, a second Authorization header, NaN results, random
bytes, resets) and slow ones (one header byte every 2 s; connections that never send). It samples the server's
memory every second and, at the end, stops the server and reads its stderr.

It passes when no answer was a 5xx, the server printed no traceback, and its memory at the end is within
``--memory-slack-mib`` of what it was after the first ten seconds.

    python benchmarks/soak_data_api.py [--seconds 60] [--clients 64] [--malformed 4] [--slow 16]

Only loopback is used, and everything is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

KEYS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
RESOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:my_db_cluster"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:my_secret"
ARNS = {"resourceArn": RESOURCE_ARN, "secretArn": SECRET_ARN, "database": "mydb"}


@dataclass
class Tally:
    """What every client saw, shared under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter = field(default_factory=Counter)
    latencies_s: list = field(default_factory=list)
    client_errors: Counter = field(default_factory=Counter)
    slow_lives_s: list = field(default_factory=list)

    def status(self, code: int, latency_s: float | None = None) -> None:
        with self.lock:
            self.statuses[code] += 1
            if latency_s is not None:
                self.latencies_s.append(latency_s)

    def error(self, kind: str) -> None:
        with self.lock:
            self.client_errors[kind] += 1


def start_server() -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "aurora_sim.data_api", "--port", "0", "--auto-pause-s", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, lines = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited early: {process.stderr.read()}")
        lines.append(line)
        if line.startswith("PID"):
            break
    url = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines)).group(0)
    return process, url


def good_client(url: str, stop: float, tally: Tally, number: int, transactions: bool) -> None:
    """Reads and batches, and (``transactions``) writes inside a transaction, committed or rolled back: all must
    succeed.

    Each client writes to a table of its own, so no client waits for another's row lock: the soak measures the
    endpoint, not a lock convoy (64 clients updating 15 shared rows in open transactions would queue behind each
    other's locks)."""
    session = boto3.session.Session()
    client = session.client("rds-data", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEYS[0],
                            aws_secret_access_key=KEYS[1],
                            config=Config(retries={"max_attempts": 1}, read_timeout=90, connect_timeout=30))
    client.execute_statement(**ARNS, sql=f"CREATE TABLE soak_{number} (id INTEGER, note VARCHAR(40))")
    calls = [
        lambda: client.execute_statement(**ARNS, sql="SELECT * FROM Customer WHERE id = :id",
                                         parameters=[{"name": "id", "value": {"longValue": number % 15 + 1}}]),
        lambda: client.execute_statement(**ARNS, sql="SELECT count(*) FROM Customer", formatRecordsAs="JSON"),
        lambda: _transaction(client, number) if transactions else client.execute_statement(
            **ARNS, sql=f"INSERT INTO soak_{number} VALUES (:id, 'soak')",
            parameters=[{"name": "id", "value": {"longValue": number}}]),
        lambda: client.batch_execute_statement(**ARNS, sql="SELECT :x", parameterSets=[
            [{"name": "x", "value": {"longValue": i}}] for i in range(3)]),
    ]
    step = 0
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            response = calls[step % len(calls)]()
            tally.status(response["ResponseMetadata"]["HTTPStatusCode"], time.monotonic() - started)
        except ClientError as error:
            tally.status(error.response["ResponseMetadata"]["HTTPStatusCode"])
            tally.error(f"good client got {error.response['Error']['Code']}")
        except Exception as error:  # a soak counts every kind of failure, it does not stop at the first
            tally.error(f"good client: {type(error).__name__}")
        step += 1


def _transaction(client, number: int) -> dict:
    tx = client.begin_transaction(**ARNS)["transactionId"]
    client.execute_statement(**ARNS, transactionId=tx, sql=f"INSERT INTO soak_{number} VALUES (:id, :note)",
                             parameters=[{"name": "id", "value": {"longValue": number}},
                                         {"name": "note", "value": {"stringValue": "soak"}}])
    client.execute_statement(**ARNS, transactionId=tx, sql="SELECT * FROM Customer WHERE id = :id",
                             parameters=[{"name": "id", "value": {"longValue": number % 15 + 1}}])
    end = client.commit_transaction if number % 2 else client.rollback_transaction
    return end(resourceArn=RESOURCE_ARN, secretArn=SECRET_ARN, transactionId=tx)


def _signed(url: str, path: str, body: bytes) -> list[tuple[str, str]]:
    request = AWSRequest(method="POST", url=url + path, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*KEYS), "rds-data", "us-east-1").add_auth(request)
    return [*request.headers.items(), ("Host", urlsplit(url).netloc), ("Content-Length", str(len(body)))]


def _malformed_requests(url: str, rng: random.Random) -> bytes:
    """One hostile request, as raw bytes."""
    good = json.dumps({**ARNS, "sql": "SELECT 1"}).encode()
    kind = rng.randrange(9)
    if kind == 0:  # not JSON, signed
        body = b"{not json"
        headers = _signed(url, "/Execute", body)
    elif kind == 1:  # a tampered body
        headers, body = _signed(url, "/Execute", good), good.replace(b"1", b"2")
    elif kind == 2:  # comment-only SQL
        body = json.dumps({**ARNS, "sql": "-- nothing"}).encode()
        headers = _signed(url, "/Execute", body)
    elif kind == 3:  # a second Authorization header
        headers, body = _signed(url, "/Execute", good), good
        headers.append(("Authorization", "AWS4-HMAC-SHA256 Credential=x"))
    elif kind == 4:  # NaN and infinities as JSON
        body = json.dumps({**ARNS, "sql": "SELECT CAST('NaN' AS DOUBLE PRECISION) AS d", "formatRecordsAs": "JSON"})
        headers = _signed(url, "/Execute", body.encode())
        body = body.encode()
    elif kind == 5:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    elif kind == 6:  # over the size limit, declared only
        return b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
    elif kind == 7:  # an unknown path
        headers, body = _signed(url, "/Nope", good), good
        return _raw("/Nope", headers, body)
    else:  # a statement that fails in the database
        body = json.dumps({**ARNS, "sql": "SELEC 1"}).encode()
        headers = _signed(url, "/Execute", body)
    return _raw("/Execute", headers, body)


def _raw(path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]) + "\r\n\r\n").encode() + body


def malformed_client(url: str, stop: float, tally: Tally, seed: int) -> None:
    rng, parts = random.Random(seed), urlsplit(url)
    while time.monotonic() < stop:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=20) as connection:
                connection.sendall(_malformed_requests(url, rng))
                if rng.random() < 0.1:  # leave abruptly: a reset the server must not print
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    continue
                status_line = connection.makefile("rb").readline()
                if status_line:
                    tally.status(int(status_line.split()[1]))
        except OSError as error:
            tally.error(f"malformed client: {type(error).__name__}")
        time.sleep(0.01)


def slow_client(url: str, stop: float, tally: Tally, trickle: bool) -> None:
    """Trickle one header byte every 2 s, or connect and send nothing; record how long the server kept it."""
    parts = urlsplit(url)
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
                connection.settimeout(2.0)
                for byte in b"POST /Execute HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n":
                    if trickle:
                        connection.sendall(bytes([byte]))
                    try:
                        if connection.recv(1) == b"":
                            break
                    except TimeoutError:
                        continue
                    if time.monotonic() - started > 30:
                        break
        except OSError:
            pass
        with tally.lock:
            tally.slow_lives_s.append(time.monotonic() - started)


def sample_memory(pid: int, stop: float, samples: list) -> None:
    process = psutil.Process(pid)
    started = time.monotonic()
    while time.monotonic() < stop:
        samples.append((time.monotonic() - started, process.memory_info().rss / 2**20, process.num_threads()))
        time.sleep(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--malformed", type=int, default=4)
    parser.add_argument("--slow", type=int, default=16)
    parser.add_argument("--transaction-clients", type=int, default=16,
                        help="how many of the clients also open transactions (each pins a database connection)")
    parser.add_argument("--memory-slack-mib", type=float, default=30.0)
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 0 < args.clients <= 256 and 0 <= args.malformed <= 32
            and 0 <= args.slow <= 256):
        parser.error("bounded soak: --seconds in (0, 600], --clients in 1..256, --malformed 0..32, --slow 0..256")
    process, url = start_server()
    tally, memory = Tally(), []
    stop = time.monotonic() + args.seconds
    threads = [threading.Thread(target=sample_memory, args=(process.pid, stop, memory))]
    threads += [threading.Thread(target=good_client, args=(url, stop, tally, n, n < args.transaction_clients))
                for n in range(args.clients)]
    threads += [threading.Thread(target=malformed_client, args=(url, stop, tally, n)) for n in range(args.malformed)]
    threads += [threading.Thread(target=slow_client, args=(url, stop, tally, n % 2 == 0)) for n in range(args.slow)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 120)
    elapsed = time.monotonic() - started
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return report(args, tally, memory, stderr, elapsed, process.returncode)


def report(args: argparse.Namespace, tally: Tally, memory: list, stderr: str, elapsed: float, code: int) -> int:
    fives = {status: n for status, n in tally.statuses.items() if status >= 500}
    good = sorted(tally.latencies_s)
    early = [rss for t, rss, _ in memory if t <= 10] or [0.0]
    late = [rss for t, rss, _ in memory if t >= args.seconds - 10] or [0.0]
    growth = statistics.median(late) - statistics.median(early)
    threads = max((n for _, _, n in memory), default=0)
    print(f"soak: {args.clients} boto3 clients ({args.transaction_clients} with transactions), {args.malformed} "
          f"malformed, {args.slow} slow, {elapsed:.0f} s, server exit status {code}")
    print(f"answers by status: {dict(sorted(tally.statuses.items()))}")
    if good:
        p50, p95 = good[len(good) // 2], good[int(len(good) * 0.95)]
        print(f"successful calls: {len(good)} ({len(good) / elapsed:.0f}/s); latency p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {good[-1] * 1000:.0f} ms")
    print(f"client-side errors: {dict(tally.client_errors) or 'none'}")
    if tally.slow_lives_s:
        print(f"slow connections: {len(tally.slow_lives_s)}, longest held {max(tally.slow_lives_s):.1f} s")
    print(f"server memory: {statistics.median(early):.0f} MiB after 10 s, {statistics.median(late):.0f} MiB at the "
          f"end ({growth:+.1f} MiB); at most {threads} threads")
    traceback = "Traceback" in stderr or "Exception occurred" in stderr
    print(f"server stderr: {len(stderr)} characters, traceback: {'YES' if traceback else 'none'}")
    failures = []
    if fives:
        failures.append(f"5xx answers {fives}")
    if traceback:
        failures.append("a traceback on the server's stderr:\n" + stderr[-3000:])
    if growth > args.memory_slack_mib:
        failures.append(f"memory grew {growth:.1f} MiB")
    if any(kind.startswith("good client") for kind in tally.client_errors):
        failures.append(f"well-behaved clients failed: {dict(tally.client_errors)}")
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
