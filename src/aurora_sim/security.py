"""Notebook 10: TLS modes through a TLS-terminating router, the local Data API's access rules, and v1's at-rest facts.

- ``tls_matrix(router)`` connects through a ``realdb.tls.tls_router()`` (TLS ends at the router, as on v1, in front
  of the workbook's embedded PostgreSQL) with every libpq ``sslmode`` in four situations (the right certificate, one
  from a CA the client does not trust, one for another host name, and no TLS offered at all) and returns what
  happened, with libpq's exact reason for each refusal; ``tls_outcomes`` pivots it.
- ``negotiated_tls`` shows the protocol version and cipher a connection got (client, router and database side);
  ``tls13_only_client`` that a client insisting on TLS 1.3 cannot reach a router capped at v1's TLS 1.2;
  ``tls_required`` that a server which insists on TLS refuses plain text.
- ``data_api_access(...)`` sends real boto3 requests that the local Data API must refuse, and says what each rule
  protects.
- ``tls_modes()`` and ``at_rest_and_sharing()`` are facts only (``facts``), labelled with their source.

Example:
    >>> tls_modes().loc["verify-full", "MySQL --ssl-mode"]
    'VERIFY_IDENTITY'
    >>> refusal_kind('server certificate for "localhost" does not match host name "db.example.com"')
    'host name mismatch'
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from unittest import mock

import boto3
import botocore.auth
import pandas as pd
import psycopg
from botocore.config import Config
from botocore.exceptions import ClientError

from . import facts
from ._tables import WholeTable
from .realdb.tls import OTHER_NAME, SERVER_NAME, TlsRouter, client_tls

RIGHT, WRONG_CA, WRONG_HOST, NO_TLS = ("right certificate", "certificate from an untrusted CA",
                                       "certificate for another host name", "server offers no TLS")
SITUATIONS = (RIGHT, WRONG_CA, WRONG_HOST, NO_TLS)
MODES = tuple(facts.TLS_MODES)
_VERIFYING = ("verify-ca", "verify-full")
# libpq's reason for a refusal → what it means (tests pin these kinds, not the wording of one OpenSSL version)
_REFUSALS = (("certificate verify failed", "untrusted certificate"),
             ("does not match host name", "host name mismatch"),
             ("server does not support SSL", "no TLS offered"),
             ("protocol version", "no common TLS version"),
             ("connection without TLS refused", "plain text refused"),
             ("unsupported protocol", "no common TLS version"))


def refusal_kind(message: str) -> str:
    """What a libpq connection error means, in a few words ("other" when none of the known kinds).

    Example:
        >>> refusal_kind("SSL error: certificate verify failed")
        'untrusted certificate'
    """
    return next((kind for needle, kind in _REFUSALS if needle in message), "other")


def libpq_reason(error: BaseException) -> str:
    """libpq's own words for a failed connection, without the address and port in front (they change each run).

    Example:
        >>> libpq_reason(psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", '
        ...                                       'port 5432 failed: SSL error: certificate verify failed'))
        'SSL error: certificate verify failed'
    """
    text = " ".join(str(error).split())
    marker = text.rfind(" failed: ")
    return text[marker + len(" failed: "):] if marker >= 0 else text


# ---------------------------------------------------------------- the TLS modes, as the User Guide pairs them


def tls_modes() -> pd.DataFrame:
    """Each libpq ``sslmode`` beside the MySQL client's ``--ssl-mode`` (``facts.TLS_MODES``), what it checks, and
    whether it stops someone who only listens on the network path, or one who sits in the middle.

    Example:
        >>> tls_modes()["stops a man in the middle"].tolist()
        ['no', 'no', 'no', 'only one without a certificate from a CA you trust', 'yes']
    """
    checks = {  # (encrypts, checks the CA, checks the host name, stops a listener, stops a man in the middle)
        "disable": ("no", "no", "no", "no", "no"),
        "prefer": ("if the server offers it", "no", "no", "only if TLS was not stripped", "no"),
        "require": ("yes", "no", "no", "yes", "no"),
        "verify-ca": ("yes", "yes", "no", "yes", "only one without a certificate from a CA you trust"),
        "verify-full": ("yes", "yes", "yes", "yes", "yes"),
    }
    rows = {mode: (facts.TLS_MODES[mode], *checks[mode]) for mode in MODES}
    columns = ["MySQL --ssl-mode", "encrypts", "checks the CA", "checks the host name",
               "stops a listener on the path", "stops a man in the middle"]
    return WholeTable.from_dict(rows, orient="index", columns=columns).rename_axis("libpq sslmode")


# ---------------------------------------------------------------- the matrix, through a TLS-terminating router


def _client_options(router: TlsRouter, mode: str, situation: str) -> dict:
    """What the client passes: the CA it trusts (only the verifying modes read it) and the host name it asks for.

    The other modes get a root certificate file that does not exist: libpq turns ``require`` into ``verify-ca``
    when a root certificate file exists (its ``~/.postgresql/root.crt`` too), which would hide what ``require`` does.
    """
    files = router.files
    trusted = files.other_ca_cert if situation == WRONG_CA else files.ca_cert
    root = trusted if mode in _VERIFYING else files.ca_cert.with_name("no-root-certificate.pem")
    host = OTHER_NAME if situation == WRONG_HOST else SERVER_NAME
    return router.connect_kwargs(host, sslmode=mode, sslrootcert=str(root))


def _try(options: dict) -> dict:
    """Connect once: whether it worked, with or without TLS and at which version (the client's side: libpq), or
    libpq's reason for refusing."""
    try:
        with psycopg.connect(**options) as conn:
            conn.execute("SELECT 1")
            tls = client_tls(conn)
            in_use = conn.pgconn.ssl_in_use
    except psycopg.Error as error:
        reason = libpq_reason(error)
        return {"outcome": "refused", "kind": refusal_kind(reason), "detail": reason}
    if not in_use:
        return {"outcome": "connected", "kind": "no TLS", "detail": "connected in plain text: no encryption"}
    return {"outcome": "connected", "kind": tls["protocol"] or "TLS", "detail": f"{tls['protocol']}, {tls['cipher']}"}


def tls_matrix(router: TlsRouter) -> pd.DataFrame:
    """Every ``sslmode`` in every situation (``SITUATIONS``) through ``router``: one row per attempt.

    Columns: ``sslmode``, ``MySQL --ssl-mode``, ``situation``, ``outcome`` (connected · refused), ``kind`` (the TLS
    version, "no TLS", or what the refusal means: ``refusal_kind``) and ``detail`` (the cipher, or libpq's reason).
    For the last situation the router offers no TLS (``mode = "no-tls"``); its mode is restored afterwards.
    """
    if not router.available:
        return pd.DataFrame({"reason": [router.reason]}, index=pd.Index(["no TLS demo"], name="sslmode"))
    rows, mode = [], router.mode
    try:
        for situation in SITUATIONS:
            router.mode = "no-tls" if situation == NO_TLS else mode
            for sslmode in MODES:
                rows.append({"sslmode": sslmode, "MySQL --ssl-mode": facts.TLS_MODES[sslmode], "situation": situation,
                             **_try(_client_options(router, sslmode, situation))})
    finally:
        router.mode = mode
    return WholeTable(rows)


def tls_outcomes(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix as a grid: one row per ``sslmode``, one column per situation, "✅ TLSv1.2", "⚠️ no TLS" or
    "❌ <why>" in each cell.

    Example:
        >>> grid = tls_outcomes(pd.DataFrame([{"sslmode": "require", "MySQL --ssl-mode": "REQUIRED",
        ...     "situation": NO_TLS, "outcome": "refused", "kind": "no TLS offered", "detail": "…"}]))
        >>> grid.loc[("require", "REQUIRED"), NO_TLS]
        '❌ no TLS offered'
    """
    if "situation" not in matrix:
        return matrix
    marks = matrix.apply(lambda row: ("❌ " if row["outcome"] == "refused" else
                                      "⚠️ " if row["kind"] == "no TLS" else "✅ ") + row["kind"], axis=1)
    grid = matrix.assign(cell=marks).pivot(index=["sslmode", "MySQL --ssl-mode"], columns="situation",
                                           values="cell")
    order = [mode for mode in MODES if mode in grid.index.get_level_values(0)]
    return WholeTable(grid.reindex(order, level=0)[[s for s in SITUATIONS if s in grid.columns]]).rename_axis(
        columns=None)


def negotiated_tls(router: TlsRouter) -> pd.DataFrame:
    """What a ``verify-full`` connection got: as the client sees it (libpq), as the router does, and as the database
    does (``pg_stat_ssl``).

    The router ends the TLS, as v1's router fleet does (``facts.TLS_TERMINATION_QUOTE``), so the database sees a
    plain connection from the router: only the client's side tells you what your connection negotiated.
    """
    if not router.available:
        return pd.DataFrame({"reason": [router.reason]})
    options = router.connect_kwargs(SERVER_NAME, sslmode="verify-full", sslrootcert=str(router.files.ca_cert))
    with psycopg.connect(**options) as conn:
        database_ssl = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
        client = client_tls(conn)
    seen = router.sessions()[-1]  # nothing else connects meanwhile
    return WholeTable({"client: protocol": [client["protocol"]], "client: cipher": [client["cipher"]],
                       "router: protocol": [seen.tls_version], "router: cipher": [seen.cipher],
                       "router's ceiling": [router.max_tls], "database: pg_stat_ssl.ssl": [bool(database_ssl)]})


def tls13_only_client(router: TlsRouter) -> pd.DataFrame:
    """A client that accepts nothing below TLS 1.3 (libpq ``ssl_min_protocol_version=TLSv1.3``) against the router
    capped at TLS 1.2: refused, with libpq's reason (one row).
    """
    if not router.available:
        return pd.DataFrame({"reason": [router.reason]})
    options = router.connect_kwargs(SERVER_NAME, sslmode="verify-full", sslrootcert=str(router.files.ca_cert),
                                    ssl_min_protocol_version="TLSv1.3")
    return WholeTable([{"client": "ssl_min_protocol_version=TLSv1.3", "router": f"at most {router.max_tls}",
                        **_try(options)}])


def tls_required(router: TlsRouter) -> pd.DataFrame:
    """The server insists: the router refuses plain text (``mode = "tls-required"``, as ``force_ssl`` or
    ``require_secure_transport`` do). ``disable`` is refused with FATAL 28000; ``prefer`` and ``require`` connect
    with TLS. The router's mode is restored afterwards.
    """
    if not router.available:
        return pd.DataFrame({"reason": [router.reason]})
    mode = router.mode
    router.mode = "tls-required"
    try:
        rows = {sslmode: _try(_client_options(router, sslmode, RIGHT)) for sslmode in ("disable", "prefer", "require")}
    finally:
        router.mode = mode
    return WholeTable.from_dict(rows, orient="index").rename_axis("sslmode")


# ---------------------------------------------------------------- the local Data API's access rules


@contextlib.contextmanager
def client_clock_offset(seconds: float) -> Iterator[None]:
    """Within the block, botocore signs with a clock ``seconds`` off (negative: behind), as a laptop with a wrong
    clock would; boto3 itself is unchanged.

    Example:
        >>> with client_clock_offset(-600):
        ...     behind = botocore.auth.get_current_datetime()
        >>> round((botocore.auth.get_current_datetime() - behind).total_seconds() / 60)
        10
    """
    real = botocore.auth.get_current_datetime

    def skewed(*args: object, **kwargs: object) -> dt.datetime:
        return real(*args, **kwargs) + dt.timedelta(seconds=seconds)

    with mock.patch.object(botocore.auth, "get_current_datetime", skewed):
        yield


_NO_RETRIES = Config(retries={"max_attempts": 1})
_PROTECTS = {
    "the right key, the right clock": "(the control: a request as boto3 sends it with your credentials)",
    "signed with a wrong secret key": "only a holder of the secret access key can sign: the key ID alone is no "
                                      "credential, and a request changed in transit no longer matches its signature",
    "signed 10 minutes ago (a stale clock)": "a captured request cannot be replayed later: the signature covers its "
                                             "time stamp, and the service accepts it for a few minutes only",
    "an unknown access key": "a key the service does not know (deleted, or never issued) opens nothing: revoking a "
                             "leaked key ends its use",
    "plain HTTP beyond loopback": "a signature does not encrypt: over plain HTTP the SQL, its results and the "
                                  "secret's ARN would cross the network readable; AWS's endpoint is HTTPS only",
}


def _call(endpoint: object, **credentials: str) -> tuple[str, str]:
    kwargs = {**endpoint.client_kwargs(), **credentials}
    client = boto3.client("rds-data", config=_NO_RETRIES, **kwargs)
    try:
        client.execute_statement(resourceArn=endpoint.resource_arn, secretArn=endpoint.secret_arn,
                                 database=endpoint.database, sql="SELECT 1")
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    return "OK", "one row"


def data_api_access() -> pd.DataFrame:
    """Real boto3 requests against a local Data API endpoint (``data_api.serve``) that its rules must refuse, beside
    one that passes, and what each rule protects. The last row tries to start an endpoint on ``0.0.0.0``.
    """
    from .data_api import serve  # the endpoint pulls in the SQL layer; only this demo needs it

    answers = {}
    with serve(flavour="v1", auto_pause_s=None) as endpoint:
        secret = endpoint.keys.secret_access_key
        answers["the right key, the right clock"] = _call(endpoint)
        answers["signed with a wrong secret key"] = _call(endpoint, aws_secret_access_key=secret[::-1])
        with client_clock_offset(-600):
            answers["signed 10 minutes ago (a stale clock)"] = _call(endpoint)
        answers["an unknown access key"] = _call(endpoint, aws_access_key_id="AKIAI44QH8DHBEXAMPLE")
    try:
        with serve(host="0.0.0.0", auto_pause_s=None):
            answers["plain HTTP beyond loopback"] = ("started", "(the endpoint should have refused)")
    except ValueError as error:
        answers["plain HTTP beyond loopback"] = ("ValueError", str(error))
    rows = {request: (*answer, _PROTECTS[request]) for request, answer in answers.items()}
    return WholeTable.from_dict(rows, orient="index", columns=["answer", "message", "what the rule protects"]
                                ).rename_axis("request")


# ---------------------------------------------------------------- at rest and snapshots: facts only


def at_rest_and_sharing() -> pd.DataFrame:
    """Encryption at rest, snapshots and network exposure of a v1 cluster: the question, v1's answer, what you
    decide, and the source label (DOC: AWS documentation; INF: inferred from it).

    Example:
        >>> at_rest_and_sharing().loc["Can I turn storage encryption off?", "label"]
        'DOC'
    """
    rows = {
        "Is the cluster volume encrypted?": (
            "always", "nothing: it cannot be turned off", "DOC", facts.STORAGE_ENCRYPTION_QUOTE),
        "Can I turn storage encryption off?": (
            "no", "which KMS key encrypts it: the AWS managed key or your own", "DOC", facts.STORAGE_ENCRYPTION_QUOTE),
        "Can I copy or share a snapshot?": (
            "yes, encrypted with your own KMS key", "to create your own KMS key and encrypt the copy with it", "DOC",
            facts.SNAPSHOT_SHARING_QUOTE),
        "Who can read a shared snapshot?": (
            "an account you share it with, and only if it may also use your key", "who may use the key (its key "
            "policy): revoking the key's grant locks the snapshot again", "INF",
            "a snapshot is encrypted with the key; restoring it needs that key"),
        "Can the cluster have a public IP address?": (
            "no: VPC only", "which security groups and subnets reach it", "DOC", facts.NO_PUBLIC_IP_QUOTE),
        "Can I log in with IAM or Kerberos instead of a password?": (
            "no", "the database password lives in a Secrets Manager secret; IAM policies say who may read it or call "
            "the Data API with it", "DOC", "v1 does not support " + " or ".join(facts.V1_UNSUPPORTED_AUTHENTICATION)),
    }
    return WholeTable.from_dict(rows, orient="index", columns=["Aurora Serverless v1", "what you decide", "label",
                                                               "source says"]).rename_axis("question")


# ---------------------------------------------------------------- the exercise: a threat, and the setting that stops it

SETTINGS = {
    "prefer": "sslmode=prefer / --ssl-mode=PREFERRED (the clients' default)",
    "require": "sslmode=require / --ssl-mode=REQUIRED",
    "verify-ca": "sslmode=verify-ca / --ssl-mode=VERIFY_CA, with the CA's certificate",
    "verify-full": "sslmode=verify-full / --ssl-mode=VERIFY_IDENTITY, with the CA's certificate",
    "aws-managed-key": "keep the default AWS managed KMS key for the cluster and its snapshots",
    "own-kms-key": "encrypt with your own KMS key, whose key policy lets only the accounts you choose use it",
    "rotate-password": "rotate the database password stored in the secret",
    "secret-policy": "an IAM policy: only the application's role may read the secret and call the Data API with it",
}
THREATS = {
    "network path": "Someone on the network path between your application and the cluster can intercept the "
                    "connection and answer in the cluster's place.",
    "snapshot": "A snapshot must go to your analytics account, and nobody else may read it, even if its identifier "
                "leaks.",
    "secret ARN": "The ARN of the secret holding the database password was printed in a public log.",
}
_STOPS = {"network path": "verify-full", "snapshot": "own-kms-key", "secret ARN": "secret-policy"}
_TRANSIT = ("prefer", "require", "verify-ca", "verify-full")
_MISSES = {  # (threat, setting) → why that setting does not stop it; any other miss gets the threat's general reason
    ("network path", "prefer"): "prefer falls back to plain text when the server offers no TLS, so whoever sits in "
                                "the middle simply offers none (the 'server offers no TLS' column above).",
    ("network path", "require"): "require encrypts but accepts any certificate: the attacker presents their own and "
                                 "reads everything they pass on.",
    ("network path", "verify-ca"): "verify-ca checks who signed the certificate, not whose it is: a certificate the "
                                   "same CA issued for another name passes (the 'another host name' column above).",
    ("snapshot", "aws-managed-key"): "a v1 snapshot encrypted with the AWS managed key cannot be copied or shared at "
                                     "all: the User Guide asks for your own KMS key.",
    ("secret ARN", "rotate-password"): "rotation changes the password inside the secret; anyone allowed to read the "
                                       "secret reads the new one too. What decides is who may read it.",
}
_GENERAL = {
    "network path": "that setting does not act on the connection between the application and the cluster.",
    "snapshot": "a snapshot is data at rest: what protects it is the key that encrypts it and who may use that key.",
    "secret ARN": "an ARN is only a name; what matters is who is allowed to use it (IAM), not how the connection is "
                  "encrypted or which key encrypts the storage.",
}


def settings_menu() -> pd.DataFrame:
    """The settings the exercise offers, by the name the answer uses.

    Example:
        >>> "verify-full" in settings_menu().index
        True
    """
    return WholeTable({"setting": list(SETTINGS.values())}, index=pd.Index(list(SETTINGS), name="answer"))


def threats_table() -> pd.DataFrame:
    """The exercise's threats, by the name the answer uses."""
    return WholeTable({"threat": list(THREATS.values())}, index=pd.Index(list(THREATS), name="threat"))


def threat_misses(answers: dict[str, str]) -> dict[str, str]:
    """For each threat whose chosen setting does not stop it, why not (empty when every choice is right).

    Raises:
        ValueError: For a threat missing from ``answers`` or a setting not in ``SETTINGS``.

    Example:
        >>> list(threat_misses({"network path": "require", "snapshot": "own-kms-key", "secret ARN": "secret-policy"}))
        ['network path']
    """
    for threat in THREATS:
        setting = answers.get(threat)
        if setting not in SETTINGS:
            msg = f"the answer for {threat!r} is {setting!r}; allowed: {', '.join(SETTINGS)}"
            raise ValueError(msg)
    return {threat: _MISSES.get((threat, answers[threat]), _GENERAL[threat])
            for threat in THREATS if answers[threat] != _STOPS[threat]}
