"""Notebook 08's helpers: execute_with_retry, records_frame, the query box and the Data API retry exercise."""

from __future__ import annotations

import time

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from aurora_sim import RetryPolicy, checks, widgets
from aurora_sim.data_api import serve
from aurora_sim.data_api.client import aws_cli, execute_with_retry, is_resuming, records_frame, run_aws_cli
from aurora_sim.widgets.query_box import DEFAULT_SQL, run_query

FAST = {"auto_pause_s": 30, "resume_s": 20, "time_scale": 100.0}  # pause after 0.3 s idle, resume in 0.2 s


def _client(endpoint):
    return boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())


def _arns(endpoint) -> dict[str, str]:
    return {"resourceArn": endpoint.resource_arn, "secretArn": endpoint.secret_arn, "database": endpoint.database}


@pytest.fixture(scope="module")
def v1():
    with serve(flavour="v1", auto_pause_s=None) as endpoint:
        yield endpoint


@pytest.mark.parametrize("flavour", ["v1", "v2"])
def test_retry_rides_out_the_resume(flavour):
    sleeps: list[float] = []
    with serve(flavour=flavour, **FAST) as endpoint:
        endpoint.gate.pause()
        policy = RetryPolicy("fixed", base_s=0.1, max_attempts=5)
        response, log = execute_with_retry(_client(endpoint), policy, rng=np.random.default_rng(0),
                                           sleep=lambda s: (sleeps.append(s), time.sleep(s)),
                                           sql="SELECT 1 AS one", **_arns(endpoint))
    assert response["records"] == [[{"longValue": 1}]]
    first = "BadRequestException: Communications link failure" if flavour == "v1" else "DatabaseResumingException"
    assert log[0].startswith(f"attempt 1: {first}")
    assert log[-1].startswith("attempt ") and "ok" in log[-1]
    assert sleeps and all(s == pytest.approx(0.1) for s in sleeps)


def test_no_retry_policy_raises_with_the_log():
    with serve(flavour="v1", **FAST) as endpoint:
        endpoint.gate.pause()
        with pytest.raises(ClientError) as excinfo:
            execute_with_retry(_client(endpoint), RetryPolicy("none"), sql="SELECT 1", **_arns(endpoint))
    assert is_resuming(excinfo.value)
    assert excinfo.value.attempt_log[-1] == "gave up after 1 attempt(s)"


def test_other_errors_are_not_retried(v1):
    calls: list[float] = []
    with pytest.raises(ClientError) as excinfo:
        execute_with_retry(_client(v1), RetryPolicy("fixed", max_attempts=5), sleep=calls.append,
                           sql="SELEC nonsense", **_arns(v1))
    assert not calls
    assert not is_resuming(excinfo.value)
    assert excinfo.value.attempt_log[-1] == "not a resume failure: not retried"


def test_records_frame_from_records_and_from_json(v1):
    client = _client(v1)
    typed = client.execute_statement(sql="SELECT * FROM Customer ORDER BY id", includeResultMetadata=True,
                                     **_arns(v1))
    frame = records_frame(typed)
    assert list(frame.columns) == ["id", "name", "email", "balance", "signup_date"]
    assert len(frame) == len(typed["records"]) >= 15
    assert frame["email"].isna().any()
    formatted = client.execute_statement(sql="SELECT * FROM Customer ORDER BY id", formatRecordsAs="JSON",
                                         **_arns(v1))
    assert records_frame(formatted)["id"].tolist() == frame["id"].tolist()
    assert records_frame({"records": [[{"longValue": 7}]]}).iloc[0, 0] == 7
    assert records_frame({"numberOfRecordsUpdated": 1}).empty


def test_records_frame_keeps_sql_null_as_none_in_text_and_number_columns():
    frame = records_frame({"records": [[{"isNull": True}, {"isNull": True}], [{"longValue": 2}, {"stringValue": "x"}]],
                           "columnMetadata": [{"name": "n"}, {"name": "s"}]})
    assert frame["n"].tolist() == [None, 2] and frame["s"].tolist() == [None, "x"]
    assert "NaN" not in frame.to_string()
    same_name = records_frame({"records": [[{"isNull": True}, {"longValue": 1}]],
                               "columnMetadata": [{"name": "a"}, {"name": "a"}]})
    assert same_name.iloc[0].tolist() == [None, 1]


def test_run_aws_cli_answers_like_the_cli_or_says_why(v1):
    answer = run_aws_cli(v1, "SELECT * FROM Customer")
    if aws_cli() is None:
        assert "not installed" in answer["error"]
        return
    assert len(answer["records"]) >= 15
    failed = run_aws_cli(v1, "SELEC 1")
    assert "BadRequestException" in failed["error"], failed


def test_run_query_table_error_and_update(v1):
    client = _client(v1)
    table = run_query(client, v1, DEFAULT_SQL)
    assert isinstance(table, pd.DataFrame) and "name" in table.columns
    error = run_query(client, v1, "SELECT * FROM Nowhere")
    assert isinstance(error, str) and error.startswith("BadRequestException: ERROR:")
    assert run_query(client, v1, "UPDATE Customer SET name = name WHERE id = -1") == "OK: 0 row(s) updated"


def test_query_box_widget():
    box = widgets.query_box()  # starts an endpoint of its own
    try:
        assert box.editor.value == DEFAULT_SQL
        assert isinstance(box.run(), pd.DataFrame)  # as if Run were pressed: renders into the Output, no raise
        assert len(box.children) == 4
    finally:
        box.close()


def test_exercise_verdicts():
    assert checks.data_api_retry_exercise.check(None, None, None).status == checks.NOT_ATTEMPTED
    assert checks.data_api_retry_exercise.check("fixed", 2, 20.0).status == checks.CORRECT
    too_short = checks.data_api_retry_exercise.check("fixed", 3, 1.0)  # gets through on the third attempt
    assert too_short.status == checks.NOT_YET
    assert "waited out the whole 45 s call limit" in too_short.message, too_short.message
    one_retry = checks.data_api_retry_exercise.check("fixed", 2, 1.0)  # the retry waits out the limit: resume error
    assert one_retry.status == checks.NOT_YET
    assert "BadRequestException: Communications link failure" in one_retry.message, one_retry.message
    assert "StatementTimeoutException" not in too_short.message + one_retry.message
    assert checks.data_api_retry_exercise.check("fixed", 9, 20.0).status == checks.NOT_YET
    assert checks.data_api_retry_exercise.check("fixed", 2, -1).status == checks.NOT_YET  # invalid: a ValueError


def test_exercise_rejects_lucky_jitter(monkeypatch):
    # Pretend the call succeeded at once: only the draw test can say "not yet" now.
    monkeypatch.setattr("aurora_sim.data_api.client.execute_with_retry",
                        lambda *args, **kwargs: ({}, ["attempt 1: ok (0.00 s)"]))
    verdict = checks.data_api_retry_exercise.check("full_jitter", 3, 20.0)
    assert verdict.status == checks.NOT_YET
    assert "draws" in verdict.message
