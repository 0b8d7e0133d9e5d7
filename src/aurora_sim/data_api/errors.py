"""The Data API's errors as AWS sends them, per flavour: status, headers and a JSON body that is never empty.

``v1`` answers as the 2019–21 service did (nearly everything a ``BadRequestException``); ``v2`` answers with the
specific exceptions botocore's current ``rds-data`` model lists. Each error is an ``ApiError``; ``error_for``
turns a situation into the right one for a flavour, and ``ApiError.wire`` gives what goes on the wire.
"""

from __future__ import annotations

import json
import uuid

from aurora_sim import facts

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
    """The error a flavour sends in one situation (the issue's §2 table).

    Situations: ``sql`` (message), ``unknown_resource`` (resource_arn), ``unknown_secret`` (secret_arn),
    ``paused`` (resource_arn), ``timeout`` (connection_id), ``bad_request`` (message).

    Example:
        >>> error_for("sql", "v2", message="ERROR: boom; SQLState: 42601").code
        'DatabaseErrorException'
        >>> error_for("unknown_resource", "v1", resource_arn="arn:aws:rds:us-east-1:1:cluster:c").message
        'HttpEndpoint is not enabled for cluster c'
    """
    if flavour not in FLAVOURS:
        msg = f"flavour={flavour!r} must be one of {FLAVOURS}"
        raise ValueError(msg)
    v1 = flavour == "v1"
    if situation == "sql":
        return ApiError("BadRequestException" if v1 else "DatabaseErrorException", str(details["message"]))
    if situation == "unknown_resource":
        arn = str(details["resource_arn"])
        if v1:
            return ApiError("BadRequestException", f"HttpEndpoint is not enabled for cluster {_cluster_name(arn)}")
        return ApiError("HttpEndpointNotEnabledException", f"HttpEndpoint is not enabled for resource {arn}")
    if situation == "unknown_secret":
        arn = str(details["secret_arn"])
        if v1:
            return ApiError("BadRequestException",
                            f"Error fetching secret {arn} : Secrets Manager can't find the specified secret.")
        return ApiError("SecretsErrorException", f"Secrets Manager can't find the specified secret {arn}.")
    if situation == "paused":
        if v1:
            return ApiError("BadRequestException", COMMUNICATIONS_LINK_FAILURE)
        instance = f"{_cluster_name(str(details['resource_arn']))}-instance-1"
        return ApiError("DatabaseResumingException", V2_RESUMING.format(instance=instance))
    if situation == "timeout":
        members = {"dbConnectionId": int(details["connection_id"])}
        return ApiError("StatementTimeoutException", REQUEST_TIMED_OUT, members)
    if situation == "bad_request":
        return ApiError("BadRequestException", str(details["message"]))
    msg = f"situation={situation!r} must be one of ('bad_request', 'paused', 'sql', 'timeout', 'unknown_resource', " \
          "'unknown_secret')"
    raise ValueError(msg)
