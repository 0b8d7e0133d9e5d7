"""Client-side helpers for notebook 08: a retry around ``ExecuteStatement`` and a response as a table.

``execute_with_retry`` retries only the Data API's transient resume failure — v1's ``BadRequestException``
"Communications link failure…" and v2's ``DatabaseResumingException`` — with a ``RetryPolicy``'s sleeps, and
returns a log of every attempt so a notebook can show what happened. ``records_frame`` turns a response into a
``pandas.DataFrame``.

Example:
    >>> records_frame({"records": [[{"longValue": 1}, {"isNull": True}], [{"longValue": 2}, {"stringValue": "b@x"}]],
    ...                "columnMetadata": [{"name": "id"}, {"name": "email"}]}).to_dict("records")
    [{'id': 1, 'email': None}, {'id': 2, 'email': 'b@x'}]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from aurora_sim.clients import RetryPolicy
from aurora_sim.data_api.errors import COMMUNICATIONS_LINK_FAILURE

RESUMING_CODES = ("DatabaseResumingException",)
V1_RESUMING_PREFIX = COMMUNICATIONS_LINK_FAILURE.split("\n", 1)[0]  # "Communications link failure"


def is_resuming(error: ClientError) -> bool:
    """Whether a ``ClientError`` is the Data API's transient failure while a paused cluster resumes."""
    details = error.response.get("Error", {})
    code, message = details.get("Code", ""), details.get("Message", "")
    return code in RESUMING_CODES or (code == "BadRequestException" and message.startswith(V1_RESUMING_PREFIX))


def _describe(error: ClientError) -> str:
    details = error.response.get("Error", {})
    first_line = str(details.get("Message", "")).split("\n", 1)[0]
    return f"{details.get('Code', 'ClientError')}: {first_line}"


def execute_with_retry(client: object, policy: RetryPolicy, *, rng: np.random.Generator | None = None,
                       sleep: Callable[[float], object] = time.sleep,
                       **execute_kwargs: object) -> tuple[dict, list[str]]:
    """Call ``client.execute_statement(**execute_kwargs)``, retrying the resume failure as ``policy`` says.

    Sleeps ``policy.delay_s(n, previous, rng)`` before retry ``n``, for at most ``policy.max_attempts`` attempts
    (the first included; strategy ``none`` never retries). Any other error is raised at once.

    Returns:
        The response and one log line per attempt (and per sleep), e.g.
        ``"attempt 1: BadRequestException: Communications link failure"``.

    Raises:
        botocore.exceptions.ClientError: The last error, when it is not transient or the attempts ran out; its
            ``attempt_log`` attribute holds the log.
    """
    rng = np.random.default_rng() if rng is None else rng
    log: list[str] = []
    previous_s = 0.0
    attempt = 1
    while True:
        started = time.monotonic()
        try:
            response = client.execute_statement(**execute_kwargs)
        except ClientError as error:
            took = time.monotonic() - started
            log.append(f"attempt {attempt}: {_describe(error)} ({took:.2f} s)")
            transient = is_resuming(error)
            if not transient or policy.strategy == "none" or attempt >= policy.max_attempts:
                reason = ("not a resume failure: not retried" if not transient
                          else f"gave up after {attempt} attempt(s)")
                log.append(reason)
                error.attempt_log = log
                raise
            previous_s = policy.delay_s(attempt, previous_s, rng)
            log.append(f"sleep {previous_s:.2f} s ({policy.strategy})")
            sleep(previous_s)
            attempt += 1
            continue
        took = time.monotonic() - started
        log.append(f"attempt {attempt}: ok ({took:.2f} s)")
        return response, log


def _field_value(field: dict) -> object:
    if not field or field.get("isNull"):
        return None
    if "arrayValue" in field:
        return json.dumps(field["arrayValue"])
    return next(iter(field.values()))


def records_frame(response: dict) -> pd.DataFrame:
    """An ExecuteStatement response as a table: ``formattedRecords`` (JSON) or ``records`` + ``columnMetadata``.

    Without ``columnMetadata`` (``includeResultMetadata`` not set) the columns are numbered ``0, 1, …``. A
    response without records (an INSERT, say) gives an empty frame. SQL NULL is ``None``, never NaN.
    """
    if response.get("formattedRecords") is not None:
        return _nulls_as_none(pd.DataFrame(json.loads(response["formattedRecords"])))
    records = response.get("records") or []
    metadata = response.get("columnMetadata") or []
    names = [column.get("name") or str(i) for i, column in enumerate(metadata)]
    rows = [[_field_value(field) for field in record] for record in records]
    if not names:
        return _nulls_as_none(pd.DataFrame(rows))
    return _nulls_as_none(pd.DataFrame(rows, columns=names))


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """SQL NULL stays ``None`` in every column that has one (pandas would turn it into NaN, which reads as a
    number that is not one)."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if column.isna().any():
            frame.isetitem(position, column.astype(object).where(column.notna(), None))
    return frame


def aws_cli() -> str | None:
    """The ``aws`` command beside this Python (the project's environment), else the one on ``PATH``, else None."""
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


def run_aws_cli(endpoint: object, sql_text: str = "SELECT * FROM Customer", *, timeout_s: float = 60) -> dict:
    """Run the User Guide's ``aws rds-data execute-statement`` against ``endpoint`` and return its JSON answer.

    The CLI runs as a subprocess with empty AWS config and credentials files and only the endpoint's key pair and
    region in its environment, so no profile of yours gets in the way. When the CLI is not installed, or fails,
    the answer is ``{"error": "<why>"}`` instead.

    Example:
        >>> from aurora_sim.data_api import serve
        >>> with serve(auto_pause_s=None) as endpoint:
        ...     answer = run_aws_cli(endpoint, "SELECT 1 AS one")
        >>> answer.get("records", [[{"longValue": 1}]])  # the same without the CLI: its error names why
        [[{'longValue': 1}]]
    """
    command = aws_cli()
    if command is None:
        return {"error": "the AWS CLI is not installed here (pip install awscli): run the command above in a shell"}
    with tempfile.TemporaryDirectory() as home:
        config, credentials = Path(home, "config"), Path(home, "credentials")
        config.write_text("")
        credentials.write_text("")
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": home, "AWS_CONFIG_FILE": str(config),
                       "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
                       "AWS_ACCESS_KEY_ID": endpoint.keys.access_key_id,
                       "AWS_SECRET_ACCESS_KEY": endpoint.keys.secret_access_key,
                       "AWS_DEFAULT_REGION": endpoint.keys.region}
        arguments = [command, "rds-data", "execute-statement", "--resource-arn", endpoint.resource_arn,
                     "--secret-arn", endpoint.secret_arn, "--database", endpoint.database, "--sql", sql_text,
                     "--endpoint-url", endpoint.url]
        done = subprocess.run(arguments, env=environment, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()}
