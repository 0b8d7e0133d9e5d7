"""The Data API's errors as AWS sends them, per flavour: status, headers and a JSON body that is never empty.

The flavours are cluster generations, not eras of the service. ``v1`` answers as the Data API does for an Aurora
Serverless v1 cluster: nearly everything is a ``BadRequestException`` (a SQL error, an unknown or expired
transaction, a result over the size limit), and a paused cluster's first call gets "Communications link failure".
``v2`` answers as it does for an Aurora Serverless v2 (or provisioned) cluster: the specific exceptions of
botocore's ``rds-data`` model (``DatabaseErrorException``, ``TransactionNotFoundException``,
``UnsupportedResultException``, ``DatabaseResumingException`` while resuming) and ``ValidationException`` for a
request the service refuses (a ``schema``, several statements); the v1-only ``BadRequestException`` never appears
(UG data-api.differences). Each error is an ``ApiError``; ``error_for`` turns a situation into the right one for a
flavour, and ``ApiError.wire`` gives what goes on the wire.
"""

from __future__ import annotations

import json
import uuid

from aurora_sim import facts
from aurora_sim.data_api.params import split_statements

FLAVOURS = ("v1", "v2")

# The HTTP status of each modelled error (botocore rds-data 2018-08-01 service-2.json), plus the few the service
# front door sends before a request reaches the Data API itself.
STATUS = {
    "AccessDeniedException": 403,
    "BadRequestException": 400,
    "DatabaseErrorException": 400,
    "DatabaseNotFoundException": 404,
    "DatabaseResumingException": 400,
    "DatabaseUnavailableException": 504,
    "ForbiddenException": 403,
    "HttpEndpointNotEnabledException": 400,
    "InternalServerErrorException": 500,
    "InvalidResourceStateException": 400,
    "InvalidSecretException": 400,
    "NotFoundException": 404,
    "SecretsErrorException": 400,
    "ServiceUnavailableError": 503,
    "StatementTimeoutException": 400,
    "TransactionNotFoundException": 404,
    "UnsupportedResultException": 400,
    # Not in the model, but what v2 answers for a request it refuses (UG data-api.differences).
    "ValidationException": 400,
    # The front door (not in the model): signature checks, routing, size.
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "UnknownOperationException": 404,
    "MethodNotAllowedException": 405,
    "LengthRequiredException": 411,
    "RequestEntityTooLargeException": 413,
}

DEPRECATED_EXECUTE_SQL = "This API is deprecated and not available. Use ExecuteStatement API instead"
COMMUNICATIONS_LINK_FAILURE = facts.DATA_API_RESUMING_ERROR.split(": ", 1)[1]
REQUEST_TIMED_OUT = facts.DATA_API_STATEMENT_TIMEOUT_ERROR.split(": ", 1)[1]
V2_RESUMING = ("The Aurora DB instance {instance} is resuming after being auto-paused. "
               "Please wait a few seconds and try again.")
# Aurora Serverless v2's answers (UG data-api.differences), verbatim.
V2_MULTISTATEMENT = "Multistatements aren't supported."
V2_SCHEMA = "The schema parameter isn't supported"
V2_TRANSACTION_BUSY = "Transaction is still running a query"
SITUATIONS = ("bad_request", "paused", "result_too_large", "sql", "timeout", "transaction_busy",
              "transaction_not_found", "unknown_resource", "unknown_secret", "unsupported_result")


class ApiError(Exception):
    """One error response: its code (the exception name), message and any modelled members.

    Example:
        >>> status, headers, body = ApiError("BadRequestException", "bad").wire("req-1")
        >>> status, headers["x-amzn-ErrorType"], body
        (400, 'BadRequestException:http://internal.amazon.com/coral/com.amazon.rdsdataservice/', b'{"message": "bad"}')
    """

    def __init__(self, code: str, message: str, members: dict | None = None) -> None:
        if code not in STATUS:
            msg = f"code={code!r} must be one of {tuple(sorted(STATUS))}"
            raise ValueError(msg)
        super().__init__(code, message)
        self.code, self.message, self.members = code, message, dict(members or {})

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r})"

    @property
    def status(self) -> int:
        """The HTTP status code AWS sends with this error."""
        return STATUS[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def wire(self, request_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body, as the service sends them (the body always holds at least ``message``)."""
        body = json.dumps({"message": self.message, **self.members}).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id or str(uuid.uuid4()),
            "x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/com.amazon.rdsdataservice/",
        }
        return self.status, headers, body


def _cluster_name(resource_arn: str) -> str:
    return resource_arn.rsplit(":", 1)[-1]


def error_for(situation: str, flavour: str, **details: object) -> ApiError:
    """The error a flavour sends in one situation.

    Situations: ``sql`` (message), ``bad_request`` (message: a request the service refuses before running it),
    ``transaction_not_found`` (transaction_id), ``result_too_large`` (message), ``unsupported_result`` (message),
    ``transaction_busy``, ``unknown_resource`` (resource_arn), ``unknown_secret`` (secret_arn), ``paused``
    (resource_arn), ``timeout`` (connection_id).

    Example:
        >>> error_for("sql", "v2", message="ERROR: boom; SQLState: 42601").code
        'DatabaseErrorException'
        >>> error_for("unknown_resource", "v1", resource_arn="arn:aws:rds:us-east-1:1:cluster:c").message
        'HttpEndpoint is not enabled for cluster c'
        >>> error_for("transaction_not_found", "v2", transaction_id="abc").code
        'TransactionNotFoundException'
    """
    if flavour not in FLAVOURS:
        msg = f"flavour={flavour!r} must be one of {FLAVOURS}"
        raise ValueError(msg)
    if situation not in SITUATIONS:
        msg = f"situation={situation!r} must be one of {SITUATIONS}"
        raise ValueError(msg)
    if situation == "timeout":
        members = {"dbConnectionId": int(details["connection_id"])}
        return ApiError("StatementTimeoutException", REQUEST_TIMED_OUT, members)
    if flavour == "v1":
        return _v1_error(situation, details)
    return _v2_error(situation, details)


def _v1_error(situation: str, details: dict) -> ApiError:
    """Aurora Serverless v1: a BadRequestException for all but a timeout (and the front door's errors)."""
    if situation == "unknown_resource":
        return ApiError("BadRequestException",
                        f"HttpEndpoint is not enabled for cluster {_cluster_name(str(details['resource_arn']))}")
    if situation == "unknown_secret":
        return ApiError("BadRequestException", f"Error fetching secret {details['secret_arn']} : Secrets Manager "
                        "can't find the specified secret.")
    if situation == "paused":
        return ApiError("BadRequestException", COMMUNICATIONS_LINK_FAILURE)
    if situation == "transaction_not_found":
        return ApiError("BadRequestException", f"Transaction {details['transaction_id']} is not found")
    return ApiError("BadRequestException", str(details["message"]))


def _v2_error(situation: str, details: dict) -> ApiError:
    """Aurora Serverless v2: the model's specific exceptions, and ValidationException for a refused request."""
    if situation == "unknown_resource":
        return ApiError("HttpEndpointNotEnabledException",
                        f"HttpEndpoint is not enabled for resource {details['resource_arn']}")
    if situation == "unknown_secret":
        return ApiError("SecretsErrorException",
                        f"Secrets Manager can't find the specified secret {details['secret_arn']}.")
    if situation == "paused":
        instance = f"{_cluster_name(str(details['resource_arn']))}-instance-1"
        return ApiError("DatabaseResumingException", V2_RESUMING.format(instance=instance))
    if situation == "transaction_not_found":
        return ApiError("TransactionNotFoundException", f"Transaction {details['transaction_id']} is not found")
    if situation == "transaction_busy":
        return ApiError("DatabaseErrorException", V2_TRANSACTION_BUSY)
    codes = {"sql": "DatabaseErrorException", "bad_request": "ValidationException",
             "result_too_large": "UnsupportedResultException", "unsupported_result": "UnsupportedResultException"}
    return ApiError(codes[situation], str(details["message"]))


def check_request(operation: str, params: dict, flavour: str) -> None:
    """Refuse what a v2 cluster's Data API refuses before running anything: a ``schema``, several statements.

    On v1 the ``schema`` parameter is ignored and several statements run, the first one's result returned.

    Raises:
        ApiError: ``ValidationException`` with AWS's message (v2 only).

    Example:
        >>> check_request("ExecuteStatement", {"sql": "SELECT 1; SELECT 2"}, "v1")  # v1: fine
        >>> check_request("ExecuteStatement", {"sql": "SELECT 1; SELECT 2"}, "v2")
        Traceback (most recent call last):
        aurora_sim.data_api.errors.ApiError: ValidationException: Multistatements aren't supported.
    """
    if flavour != "v2":
        return
    if params.get("schema") is not None:
        raise ApiError("ValidationException", V2_SCHEMA)
    if operation in ("ExecuteStatement", "BatchExecuteStatement") and len(split_statements(params["sql"])) > 1:
        raise ApiError("ValidationException", V2_MULTISTATEMENT)
