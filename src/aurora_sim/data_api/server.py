"""The HTTP endpoint: botocore's rds-data REST-JSON protocol on loopback, in a background thread.

One request goes: route (404/405) → body (411/413) → signature (403) → ``ParamValidator`` against the operation's
input shape (400) → resource and secret ARNs → a statement of only comments (400) → the cluster gate
(pause/resume) → the SQL layer, cut at the call limit. Every error leaves as ``errors.ApiError.wire`` sends it: JSON,
never an empty body; every answer is valid JSON (a NaN double travels as the string "NaN"). ``listener`` bounds the
connection threads and how long a slow client may take to send a request.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import itertools
import json
import math
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from email.message import Message

import botocore.session
from botocore.validate import ParamValidator

from aurora_sim import facts
from aurora_sim.data_api import sql
from aurora_sim.data_api.auth import KeyPair, verify
from aurora_sim.data_api.errors import DEPRECATED_EXECUTE_SQL, FLAVOURS, ApiError, check_request, error_for
from aurora_sim.data_api.gate import ClusterGate, check_time_scale
from aurora_sim.data_api.listener import REQUEST_S, BoundedHTTPServer, DeadlineRequestHandler
from aurora_sim.data_api.params import has_sql

RESOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:my_db_cluster"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:my_secret"
DATABASE = "mydb"
MAX_BODY_BYTES = facts.DATA_API_REQUEST_LIMIT_BYTES
# What a restart keeps; the start-up banner, --help, the README and notebook 08 say the same.
RESTART_NOTE = ("Nothing survives a restart: each start creates a fresh database holding the sample Customer table, "
                "and stopping the endpoint discards it, with every table, row and open transaction.")
CLOSE_WAIT_S = 5.0  # on exit, how long interrupted statements get to end before the database closes
ROUTES = {
    "/Execute": "ExecuteStatement",
    "/BatchExecute": "BatchExecuteStatement",
    "/BeginTransaction": "BeginTransaction",
    "/CommitTransaction": "CommitTransaction",
    "/RollbackTransaction": "RollbackTransaction",
    "/ExecuteSql": "ExecuteSql",
}
_MODEL = botocore.session.get_session().get_service_model("rds-data")


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A running endpoint: where it listens and what to call it with.

    ``client_kwargs()`` gives ``boto3.client("rds-data", **endpoint.client_kwargs())`` everything it needs.
    """

    url: str
    flavour: str
    resource_arn: str
    secret_arn: str
    database: str
    keys: KeyPair
    secret: dict = field(repr=False)
    gate: ClusterGate = field(repr=False)

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("rds-data", ...)`` against this endpoint."""
        return {"endpoint_url": self.url, "region_name": self.keys.region,
                "aws_access_key_id": self.keys.access_key_id, "aws_secret_access_key": self.keys.secret_access_key}

    def export_lines(self) -> list[str]:
        """Ready-to-paste shell lines that point the AWS CLI and SDKs at this endpoint's key pair and region."""
        return [f"export AWS_ACCESS_KEY_ID={self.keys.access_key_id}",
                f"export AWS_SECRET_ACCESS_KEY={self.keys.secret_access_key}",
                f"export AWS_DEFAULT_REGION={self.keys.region}"]

    def cli_command(self, sql_text: str = "SELECT * FROM Customer") -> str:
        """The seed's ``aws rds-data execute-statement`` command, plus ``--endpoint-url``."""
        return (f'aws rds-data execute-statement --resource-arn "{self.resource_arn}" '
                f'--secret-arn "{self.secret_arn}" --database "{self.database}" --sql "{sql_text}" '
                f"--endpoint-url {self.url}")


def secret_value(*, database: str = DATABASE, resource_arn: str = RESOURCE_ARN) -> dict:
    """What the secret stand-in holds, as Secrets Manager stores an RDS secret.

    Example:
        >>> sorted(secret_value())
        ['dbname', 'engine', 'host', 'password', 'port', 'username']
    """
    cluster = resource_arn.rsplit(":", 1)[-1]
    region = resource_arn.split(":")[3] if resource_arn.count(":") >= 5 else "us-east-1"
    return {"username": "admin", "password": "local-data-api-example", "engine": "postgres",
            "host": f"{cluster}.cluster-abcdefghijkl.{region}.rds.amazonaws.com", "port": 5432, "dbname": database}


@contextlib.contextmanager
def serve(*, host: str = "127.0.0.1", port: int = 0, flavour: str = "v1", auto_pause_s: float | None = 300,
          resume_s: float | None = None, time_scale: float = 1.0, database: str = DATABASE,
          resource_arn: str = RESOURCE_ARN, secret_arn: str = SECRET_ARN, keys: KeyPair | None = None,
          seed: int = 0, backend: object | None = None,
          allow_plain_http_beyond_loopback: bool = False) -> Iterator[Endpoint]:
    """Run a local Data API endpoint for the ``with`` block, then stop it (always).

    Args:
        flavour: ``v1`` (an Aurora Serverless v1 cluster's Data API) or ``v2`` (an Aurora Serverless v2 cluster's).
        auto_pause_s: Idle seconds before the cluster pauses; ``None`` never pauses.
        resume_s: Seconds a resume takes; ``None`` draws each from ``scaling.resume_time_s``.
        time_scale: Divides the pause delay, resume time, 3-minute transaction idle limit and 45 s call limit.
        backend: A ``sql.Database``-like object to serve instead of a fresh ``sql.Database(database=database)``.
        allow_plain_http_beyond_loopback: The endpoint speaks plain HTTP, so by default it listens on loopback only
            (``check_bind_address``); True lets ``host`` be any address.

    Raises:
        ValueError: For an unknown flavour, a negative delay or a time scale that breaks botocore's timeout, and for
            a ``host`` beyond loopback unless ``allow_plain_http_beyond_loopback``.

    Example:
        >>> with serve(auto_pause_s=None) as endpoint:
        ...     endpoint.url.startswith("http://127.0.0.1:")
        True
    """
    _check_arguments(flavour, auto_pause_s, resume_s, time_scale, port)
    check_bind_address(host, allow_plain_http_beyond_loopback)
    server = _Server((host, port), _Handler)  # binds now: a taken port fails before anything else starts
    owned, db = backend is None, backend
    try:
        db = sql.Database(database=database, flavour=flavour) if owned else backend
        gate = ClusterGate(flavour=flavour, auto_pause_s=auto_pause_s, resume_s=resume_s, time_scale=time_scale,
                           resource_arn=resource_arn, expire=db.expire_transaction,
                           open_transactions=db.open_transactions, seed=seed)
        bound_host, bound_port = server.server_address[:2]
        url_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        endpoint = Endpoint(url=f"http://{url_host}:{bound_port}", flavour=flavour, resource_arn=resource_arn,
                            secret_arn=secret_arn, database=database, keys=keys or KeyPair(),
                            secret=secret_value(database=database, resource_arn=resource_arn), gate=gate)
        server.app = _App(endpoint, db, gate)
        # How often the loop looks for a stop request: a `with serve()` block's exit waits up to this long.
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  name=f"data-api-{bound_port}", daemon=True)
        thread.start()
        try:
            yield endpoint
        finally:
            server.shutdown()
            thread.join()
    finally:
        server.server_close()
        if server.app is not None:
            server.app.close()
        if owned and db is not None:
            db.close()


def _check_arguments(flavour: str, auto_pause_s: float | None, resume_s: float | None, time_scale: float,
                     port: int) -> None:
    if flavour not in FLAVOURS:
        msg = f"flavour={flavour!r} must be one of {FLAVOURS}"
        raise ValueError(msg)
    if auto_pause_s is not None and not auto_pause_s > 0:
        msg = f"auto_pause_s={auto_pause_s!r} must be > 0 (or None: never pause)"
        raise ValueError(msg)
    if resume_s is not None and not resume_s >= 0:
        msg = f"resume_s={resume_s!r} must be >= 0 (or None: draw each resume)"
        raise ValueError(msg)
    check_time_scale(time_scale)
    if not 0 <= port <= 65_535:
        msg = f"port={port!r} is outside 0..65535 (0 picks a free port)"
        raise ValueError(msg)


def check_bind_address(host: str, allow_plain_http_beyond_loopback: bool = False) -> None:
    """Refuse to listen beyond loopback over plain HTTP, unless explicitly allowed.

    Signatures keep strangers out, but they do not encrypt: over plain HTTP every statement, result and secret ARN
    would cross the network readable by anyone on the path (AWS's endpoint is HTTPS only).

    Example:
        >>> check_bind_address("127.0.0.1"), check_bind_address("0.0.0.0", allow_plain_http_beyond_loopback=True)
        (None, None)
        >>> check_bind_address("0.0.0.0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: host='0.0.0.0' is not a loopback address, and this endpoint speaks plain HTTP: ...
    """
    if allow_plain_http_beyond_loopback or _is_loopback(host):
        return
    msg = (f"host={host!r} is not a loopback address, and this endpoint speaks plain HTTP: every request's SQL, its "
           "results and the secret's ARN would cross the network unencrypted. Listen on 127.0.0.1 or ::1 (the "
           "default), or pass allow_plain_http_beyond_loopback=True (--allow-plain-http-beyond-loopback) on a network "
           "you trust")
    raise ValueError(msg)


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (a name is resolved; one that fails is not)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(entry[4][0].split("%")[0]).is_loopback for entry in found)


class _Server(BoundedHTTPServer):
    """Bounded connection threads and request deadlines (``listener``), plus the app that answers."""

    app: _App | None = None


class _App:
    """What one request does once its bytes have arrived: signature, validation, ARNs, gate, database."""

    def __init__(self, endpoint: Endpoint, db: object, gate: ClusterGate) -> None:
        self.endpoint, self.db, self.gate = endpoint, db, gate
        self.validator = ParamValidator()
        self.executor = ThreadPoolExecutor(max_workers=sql.SQL_WORKERS, thread_name_prefix="data-api-sql")
        self.connection_ids = itertools.count(1001)
        self.pending: set[futures.Future] = set()

    def close(self) -> None:
        """Stop statements still running (a continueAfterTimeout one too) so the database can close."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.pending and hasattr(self.db, "interrupt"):
            self.db.interrupt()
        futures.wait(list(self.pending), timeout=CLOSE_WAIT_S)

    def handle(self, operation: str, path: str, headers: dict[str, str], body: bytes) -> dict:
        verify("POST", path, headers, body, self.endpoint.keys)
        if operation == "ExecuteSql":
            raise error_for("bad_request", self.endpoint.flavour, message=DEPRECATED_EXECUTE_SQL)
        params = _parse(body)
        report = self.validator.validate(params, _MODEL.operation_model(operation).input_shape)
        if report.has_errors():
            message = "Parameter validation failed:\n" + report.generate_report()
            raise error_for("bad_request", self.endpoint.flavour, message=message)
        if params["resourceArn"] != self.endpoint.resource_arn:
            raise error_for("unknown_resource", self.endpoint.flavour, resource_arn=params["resourceArn"])
        if params["secretArn"] != self.endpoint.secret_arn:
            raise error_for("unknown_secret", self.endpoint.flavour, secret_arn=params["secretArn"])
        check_request(operation, params, self.endpoint.flavour)
        _check_not_blank(operation, params, self.endpoint.flavour)
        return self._run(operation, params)

    def _run(self, operation: str, params: dict) -> dict:
        transaction_id = params.get("transactionId")
        limit_s = self.gate.enter(transaction_id)
        connection_id = next(self.connection_ids)
        try:
            future = self.executor.submit(_call, self.db, operation, params, connection_id)
        except RuntimeError:  # the executor is shutting down with the server
            self.gate.leave(transaction_id)
            raise ApiError("ServiceUnavailableError", "The endpoint is shutting down.") from None
        self.pending.add(future)
        future.add_done_callback(lambda done: (self.pending.discard(done), self.gate.leave(transaction_id)))
        try:
            result = future.result(timeout=max(limit_s, 0.0))
        except FutureTimeout:
            if not params.get("continueAfterTimeout") and hasattr(self.db, "cancel"):
                # AWS stops the statement when the call times out unless continueAfterTimeout is set: this call's
                # statement only, on its own connection.
                self.db.cancel(connection_id)
            raise error_for("timeout", self.endpoint.flavour, connection_id=connection_id) from None
        except sql.TransactionNotFound as exc:
            self.gate.ended(exc.transaction_id)
            raise error_for("transaction_not_found", self.endpoint.flavour, transaction_id=exc.transaction_id) from None
        except sql.SqlError as exc:
            raise error_for("sql", self.endpoint.flavour, message=str(exc)) from None
        except sql.RequestError as exc:
            raise error_for("bad_request", self.endpoint.flavour, message=exc.message) from None
        except sql.ResultTooLarge as exc:
            raise error_for("result_too_large", self.endpoint.flavour, message=exc.message) from None
        except sql.UnsupportedResult as exc:
            raise error_for("unsupported_result", self.endpoint.flavour, message=exc.message) from None
        if operation == "BeginTransaction":
            self.gate.began(result["transactionId"])
        elif operation in ("CommitTransaction", "RollbackTransaction"):
            self.gate.ended(params["transactionId"])
        return result


def _call(db: object, operation: str, params: dict, call_id: int) -> dict:
    database, transaction_id = params.get("database"), params.get("transactionId")
    if operation == "ExecuteStatement":
        return db.execute(params["sql"], params.get("parameters"), database=database, transaction_id=transaction_id,
                          include_result_metadata=params.get("includeResultMetadata", False),
                          format_records_as=params.get("formatRecordsAs"),
                          result_set_options=params.get("resultSetOptions"), call_id=call_id)
    if operation == "BatchExecuteStatement":
        return db.batch_execute(params["sql"], params.get("parameterSets") or [], database=database,
                                transaction_id=transaction_id, call_id=call_id)
    if operation == "BeginTransaction":
        return {"transactionId": db.begin(database=database)}
    if operation == "CommitTransaction":
        return db.commit(transaction_id)
    return db.rollback(transaction_id)


def _check_not_blank(operation: str, params: dict, flavour: str) -> None:
    """A statement of only blanks and comments (``-- nothing``, ``/* x */``) is refused as an empty one, before it
    reaches the database, whatever the backend makes of it (issue 12: it once answered 500 IndexError)."""
    if operation in ("ExecuteStatement", "BatchExecuteStatement") and not has_sql(params["sql"]):
        raise error_for("sql", flavour, message=str(sql.SqlError("syntax error: the statement is empty", "42601")))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8") if body else "{}", parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        message = f"Could not parse the request body as JSON: {str(exc)[:200]}"
        raise ApiError("BadRequestException", message) from None


def _check_single(name: str, headers: Message, code: str, rule: str) -> None:
    count = len(headers.get_all(name) or [])
    if count > 1:
        raise ApiError(code, f"The request carries {count} {name} headers; {rule}.")


def _json_default(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


# AWS's JSON protocols send a double that is not a number as the string "NaN", "Infinity" or "-Infinity" (JSON has
# no such number; botocore's rest-json parser reads a double with float(), so boto3 still returns float("nan")). A
# bare NaN token outside a string would make the body invalid JSON.
_STRING_OR_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def response_json(result: dict) -> bytes:
    """The answer's body: valid JSON even when a double is NaN or infinite, in ``records`` or ``formattedRecords``.

    Example:
        >>> body = response_json({"records": [[{"doubleValue": float("nan")}]],
        ...                       "formattedRecords": '[{"d":-Infinity}]'})
        >>> json.loads(body)
        {'records': [[{'doubleValue': 'NaN'}]], 'formattedRecords': '[{"d":"-Infinity"}]'}
    """
    formatted = result.get("formattedRecords")
    if isinstance(formatted, str) and ("NaN" in formatted or "Infinity" in formatted):
        result = {**result, "formattedRecords": _quote_non_finite(formatted)}
    try:
        return json.dumps(result, default=_json_default, allow_nan=False).encode("utf-8")
    except ValueError:  # a NaN or infinite float somewhere: the slow path, only then
        return json.dumps(_finite(result), default=_json_default, allow_nan=False).encode("utf-8")


def _quote_non_finite(text: str) -> str:
    """Quote the bare NaN/Infinity tokens of a JSON text, leaving strings that contain those words alone."""
    return _STRING_OR_NON_FINITE.sub(lambda match: f'"{match[1]}"' if match[1] else match[0], text)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def signing_headers(message: Message) -> dict[str, str]:
    """The request's headers by lower-case name, a repeated one's values joined with commas as SigV4's canonical
    request joins them (so a signature over one value does not cover a second, smuggled one).

    Example:
        >>> message = Message()
        >>> message["X-Amz-Date"], message["x-amz-date"] = "a", "b"
        >>> signing_headers(message)
        {'x-amz-date': 'a,b'}
    """
    joined: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


class _Handler(DeadlineRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aurora-sim-data-api"
    server: _Server

    def do_POST(self) -> None:  # http.server's naming
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def do_HEAD(self) -> None:  # a HEAD answer carries no body: headers only
        status, headers, _ = self._route_error("HEAD").wire()
        self.send_answer_timeout()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, header too long…) as JSON too, with a status line even
        # when the request line was too broken to name an HTTP version.
        self.close_connection = True
        self.request_version = "HTTP/1.1" if self.request_version == "HTTP/0.9" else self.request_version
        codes = {411: "LengthRequiredException", 413: "RequestEntityTooLargeException",
                 501: "MethodNotAllowedException"}
        self._send_error(ApiError(codes.get(code, "BadRequestException"), message or f"HTTP {code}"))

    def _route_error(self, method: str) -> ApiError | None:
        path = self.path.split("?", 1)[0]
        if path not in ROUTES:
            return ApiError("UnknownOperationException", f"No Data API operation at {method} {path}")
        if method != "POST":
            return ApiError("MethodNotAllowedException", f"{method} is not allowed on {path}; use POST")
        return None

    def _dispatch(self) -> None:
        request_id = str(uuid.uuid4())
        error = self._route_error(self.command)
        if error is not None:
            self.close_connection = True
            return self._send_error(error, request_id)
        try:
            body = self._read_body()
            _check_single("Authorization", self.headers, "InvalidSignatureException",
                          "a signed request carries exactly one (SigV4)")
            result = self.server.app.handle(ROUTES[self.path.split("?", 1)[0]], self.path,
                                            signing_headers(self.headers), body)
        except ApiError as exc:
            return self._send_error(exc, request_id)
        except Exception as exc:  # a bug answers 500 with a body, never a dropped connection
            return self._send_error(ApiError("InternalServerErrorException", f"{type(exc).__name__}: {exc}"),
                                    request_id)
        self._send(200, {"Content-Type": "application/json", "x-amzn-RequestId": request_id}, response_json(result))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            raise ApiError("LengthRequiredException", "A Content-Length header is required (no chunked bodies)")
        _check_single("Content-Length", self.headers, "BadRequestException", "a request carries at most one")
        raw = self.headers.get("Content-Length", "0").strip()
        if not raw.isdigit():
            self.close_connection = True
            raise ApiError("BadRequestException", f"Content-Length={raw!r} is not a number of bytes")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError("RequestEntityTooLargeException",
                           f"Request body of {length} bytes exceeds the {MAX_BODY_BYTES} byte (4 MiB) limit")
        try:
            body = self.rfile.read(length)
        except OSError:  # the client stalled (RequestTimedOut) or left mid-body: answer, then close
            self.close_connection = True
            raise ApiError("BadRequestException", f"Request body of {length} bytes did not arrive within "
                           f"{REQUEST_S:g} s of the request's first byte") from None
        if len(body) != length:
            self.close_connection = True
            raise ApiError("BadRequestException", f"Request body ended after {len(body)} of {length} bytes")
        return body

    def _send_error(self, error: ApiError, request_id: str | None = None) -> None:
        status, headers, body = error.wire(request_id)
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_answer_timeout()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client left; nothing to answer
            self.close_connection = True
