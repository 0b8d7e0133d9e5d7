"""Who gets in: an AWS Signature Version 4 check, recomputed with botocore's own signer.

The server rebuilds the request from what arrived: the method, the raw path, the raw body and exactly the headers
the client listed in ``SignedHeaders``, signs it with ``botocore.auth.SigV4Auth`` for the configured key pair and
region at the client's ``X-Amz-Date``, and compares signatures. A request more than five minutes off the server's
clock is refused as AWS refuses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aurora_sim.data_api.errors import ApiError

SERVICE = "rds-data"
CLOCK_SKEW_S = 300  # SigV4: a signature is valid within 5 minutes of the server's clock
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documentation example key pair
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True, kw_only=True)
class KeyPair:
    """The one access key the endpoint accepts, and its region.

    Example:
        >>> KeyPair().access_key_id
        'AKIAIOSFODNN7EXAMPLE'
    """

    access_key_id: str = EXAMPLE_ACCESS_KEY_ID
    secret_access_key: str = EXAMPLE_SECRET_ACCESS_KEY
    region: str = "us-east-1"

    def __repr__(self) -> str:
        return f"KeyPair(access_key_id={self.access_key_id!r}, region={self.region!r})"


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidSignatureException", message)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify(method: str, path: str, headers: Mapping[str, str], body: bytes, keys: KeyPair,
           now: dt.datetime | None = None) -> None:
    """Accept the request or raise the 403 ``ApiError`` AWS would send.

    Args:
        path: The raw request target, query string included, as it arrived.
        headers: The request's headers; a repeated header's values joined with commas, as SigV4's canonical
            request joins them (``server.signing_headers``), so a second value is not covered by a signature over
            the first. The HTTP layer refuses a second Authorization header before this is called.
        now: The server's clock (UTC); ``None`` reads it.

    Raises:
        ApiError: MissingAuthenticationTokenException without an Authorization header,
            UnrecognizedClientException for another access key, InvalidSignatureException otherwise.
    """
    authorization = _header(headers, "authorization")
    if authorization is None:
        raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise ApiError("InvalidSignatureException",
                       "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                       "in the AWS4-HMAC-SHA256 form")
    access_key, _, scope = match["credential"].partition("/")
    if access_key != keys.access_key_id:
        raise ApiError("UnrecognizedClientException", "The security token included in the request is invalid.")
    _check_scope(scope, keys.region)
    amz_date = _check_date(headers, now)
    if scope.split("/")[0] != amz_date[:8]:
        raise _invalid(f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                       f"'{scope.split('/')[0]}' != '{amz_date[:8]}', from '{amz_date}'.")
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise _invalid("'Host' and 'X-Amz-Date' must be signed headers.")
    _check_content_hash(headers, body)
    expected = _signature(method, path, headers, signed, body, keys, amz_date)
    if not hmac.compare_digest(expected, match["signature"]):
        raise _invalid("The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                       "for details.")


def _check_scope(scope: str, region: str) -> None:
    parts = scope.split("/")
    if len(parts) != 4 or parts[3] != "aws4_request":
        raise _invalid(f"Credential should be scoped to a valid region, not '{scope}'. ")
    if parts[1] != region:
        raise _invalid(f"Credential should be scoped to a valid region. (expected {region!r}, got {parts[1]!r})")
    if parts[2] != SERVICE:
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'. ")


def _check_date(headers: Mapping[str, str], now: dt.datetime | None) -> str:
    amz_date = _header(headers, "x-amz-date")
    if amz_date is None:
        raise ApiError("InvalidSignatureException", "Authorization header requires existence of either a "
                       "'X-Amz-Date' or a 'Date' header.")
    try:
        signed_at = dt.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise _invalid(f"X-Amz-Date={amz_date!r} is not in the form YYYYMMDD'T'HHMMSS'Z'") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if abs((now - signed_at).total_seconds()) > CLOCK_SKEW_S:
        stamp = now.strftime(SIGV4_TIMESTAMP)
        if signed_at < now:
            earliest = (now - dt.timedelta(seconds=CLOCK_SKEW_S)).strftime(SIGV4_TIMESTAMP)
            message = f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 5 min.)"
        else:
            latest = (now + dt.timedelta(seconds=CLOCK_SKEW_S)).strftime(SIGV4_TIMESTAMP)
            message = f"Signature not yet current: {amz_date} is still later than {latest} ({stamp} + 5 min.)"
        raise _invalid(message)
    return amz_date


def _check_content_hash(headers: Mapping[str, str], body: bytes) -> None:
    # botocore's canonical request trusts an X-Amz-Content-SHA256 header instead of hashing the body: check it.
    declared = _header(headers, "x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise _invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")


def _signature(method: str, path: str, headers: Mapping[str, str], signed: list[str], body: bytes,
               keys: KeyPair, amz_date: str) -> str:
    chosen = {}
    for name in signed:
        value = _header(headers, name)
        if value is None:
            raise _invalid(f"The request lists '{name}' in SignedHeaders but does not carry it.")
        chosen[name] = value
    request = AWSRequest(method=method, url=f"http://{chosen['host']}{path}", data=body, headers=chosen)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), SERVICE, keys.region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)
