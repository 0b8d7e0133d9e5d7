"""Client-side helpers for notebook 08: a retry around ``ExecuteStatement`` and a response as a table.

``execute_with_retry`` retries only the Data API's transient resume failure — v1's ``BadRequestException``
"Communications link failure…" and v2's ``DatabaseResumingException`` — with a ``RetryPolicy``'s sleeps, and
returns a log of every attempt so a notebook can show what happened. ``records_frame`` turns a response into a
``pandas.DataFrame``.

Example:
    >>> records_frame({"records": [[{"longValue": 1}, {"isNull": True}]],
    ...                "columnMetadata": [{"name": "id"}, {"name": "email"}]}).to_dict("records")
    [{'id': 1, 'email': None}]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

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
    response without records (an INSERT, say) gives an empty frame.
    """
    if response.get("formattedRecords") is not None:
        return pd.DataFrame(json.loads(response["formattedRecords"]))
    records = response.get("records") or []
    metadata = response.get("columnMetadata") or []
    names = [column.get("name") or str(i) for i, column in enumerate(metadata)]
    rows = [[_field_value(field) for field in record] for record in records]
    if not names:
        return pd.DataFrame(rows)
    return pd.DataFrame(rows, columns=names)
