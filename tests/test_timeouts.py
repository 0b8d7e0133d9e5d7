"""Engine timeout parameters (``ClusterConfig(parameters=...)``), PostgreSQL-only blockers and narrow transactions.

A timeout ends a blocking operation early with the engine's exact text (``transaction_aborted``), which frees the
scaling point long before ``seconds_before_timeout`` would fail or force the change. Scenarios are small and
deterministic: regular arrivals and every request costing exactly ``query_cpu_s``.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from aurora_sim import (
    AdvisoryLock,
    ClusterConfig,
    ConnectionPool,
    HoldCursor,
    IdleConnection,
    Listen,
    LongQuery,
    LongTransaction,
    ModelAssumptions,
    Notify,
    RetryPolicy,
    TableLock,
    TemporaryTable,
    Workload,
    facts,
    simulate,
)
from run_tables import events, requests, times

FIXED = ModelAssumptions(query_cost_cv=0, resume_median_s=40, resume_p95_s=40)
STATEMENT_TIMEOUT = "ERROR: canceling statement due to statement timeout"
IDLE_IN_TRANSACTION = "FATAL: terminating connection due to idle-in-transaction timeout"
MAX_EXECUTION_TIME = "ERROR 3024 (HY000): Query execution was interrupted, maximum statement execution time exceeded"
PG_ONLY = [AdvisoryLock, Listen, Notify, HoldCursor]
PG = {"engine": "aurora-postgresql", "min_capacity": 2, "max_capacity": 4}
# 80 % CPU on the minimum capacity: the controller asks for a scale-up at t = 60.
HOT = {"aurora-postgresql": ([(0, 600, 40.0)], 0.04), "aurora-mysql": ([(0, 600, 40.0)], 0.02)}
SCALE_UP_AT = 60.0


def run_of(segments, *, duration_s, query_cpu_s=0.02, blocking=(), connections=None, retry=None, metrics_period_s=60,
           assumptions=FIXED, **config):
    config.setdefault("auto_pause", False)
    workload = Workload(segments=segments, arrivals="regular", query_cpu_s=query_cpu_s, blocking=list(blocking),
                        connections=connections, retry=retry)
    return simulate(ClusterConfig(**config), workload, duration_s=duration_s, seed=1,
                    metrics_period_s=metrics_period_s, assumptions=assumptions)


def hot_run(engine, blocking, duration_s=600, **config):
    segments, query_cpu_s = HOT[engine]
    base = PG if engine == "aurora-postgresql" else {"max_capacity": 2}
    return run_of(segments, duration_s=duration_s, query_cpu_s=query_cpu_s, blocking=blocking, **(base | config))








# --- ClusterConfig(parameters=...) --------------------------------------------------------------------------------


def test_parameters_are_stored_as_sorted_pairs_and_read_in_milliseconds():
    cfg = ClusterConfig(engine="aurora-postgresql",
                        parameters={"statement_timeout": 500, "idle_in_transaction_session_timeout": 0})
    assert cfg.parameters == (("idle_in_transaction_session_timeout", 0), ("statement_timeout", 500))
    assert cfg.parameter("statement_timeout") == 500
    assert cfg.parameter("idle_in_transaction_session_timeout") == 0, "0 disables"
    assert ClusterConfig(engine="aurora-postgresql").parameter("statement_timeout") == 0, "unset: disabled"
    assert ClusterConfig(parameters={"max_execution_time": 1000}).parameter("max_execution_time") == 1000


def test_parameters_are_hashable_whatever_form_they_are_given_in():
    as_dict = ClusterConfig(engine="aurora-postgresql",
                            parameters={"statement_timeout": 5, "idle_in_transaction_session_timeout": 7})
    as_pairs = ClusterConfig(engine="aurora-postgresql",
                             parameters=[("idle_in_transaction_session_timeout", 7), ("statement_timeout", 5)])
    assert as_dict == as_pairs and hash(as_dict) == hash(as_pairs)
    assert {as_dict: "cached"}[as_pairs] == "cached"
    with pytest.raises(dataclasses.FrozenInstanceError):
        as_dict.parameters = ()


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"engine": "aurora-postgresql", "parameters": {"lock_timeout": 5}}, ValueError,
         "parameters['lock_timeout']=5: not a parameter of aurora-postgresql; allowed: "
         "('idle_in_transaction_session_timeout', 'statement_timeout')"),
        ({"engine": "aurora-mysql", "parameters": {"statement_timeout": 5}}, ValueError,
         "parameters['statement_timeout']=5: not a parameter of aurora-mysql (it is an aurora-postgresql "
         "parameter); allowed: ('max_execution_time',)"),
        ({"engine": "aurora-mysql", "parameters": {"idle_in_transaction_session_timeout": 5}}, ValueError,
         "parameters['idle_in_transaction_session_timeout']=5: not a parameter of aurora-mysql (it is an "
         "aurora-postgresql parameter)"),
        ({"engine": "aurora-postgresql", "parameters": {"max_execution_time": 5}}, ValueError,
         "parameters['max_execution_time']=5: not a parameter of aurora-postgresql (it is an aurora-mysql "
         "parameter)"),
        ({"engine": "aurora-postgresql", "parameters": {"statement_timeout": -1}}, ValueError,
         "parameters['statement_timeout']=-1 must be >= 0 (milliseconds; 0 disables)"),
        ({"engine": "aurora-mysql", "parameters": {"max_execution_time": -5}}, ValueError,
         "parameters['max_execution_time']=-5 must be >= 0 (milliseconds; 0 disables)"),
        ({"engine": "aurora-mysql", "engine_version": "5.6", "parameters": {"max_execution_time": 1000}}, ValueError,
         "parameters['max_execution_time']=1000: the parameter does not exist in aurora-mysql 5.6"),
        ({"engine": "aurora-postgresql", "parameters": {"statement_timeout": 1.5}}, TypeError,
         "parameters['statement_timeout']=1.5 must be a whole number of milliseconds, not float"),
        ({"engine": "aurora-postgresql", "parameters": {"statement_timeout": True}}, TypeError,
         "parameters['statement_timeout']=True must be a whole number of milliseconds, not a bool"),
        ({"parameters": "max_execution_time"}, TypeError,
         "parameters='max_execution_time' must be a mapping of parameter name to milliseconds, not str"),
    ],
)
def test_invalid_parameters_name_parameter_value_and_rule(config, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ClusterConfig(**config)


def test_max_execution_time_on_mysql_56_is_rejected_even_at_zero():
    with pytest.raises(ValueError, match=re.escape("does not exist in aurora-mysql 5.6")):
        ClusterConfig(engine_version="5.6", parameters={"max_execution_time": 0})
    allowed = ClusterConfig(engine_version="5.7", parameters={"max_execution_time": 0})
    assert allowed.parameter("max_execution_time") == 0


def test_replace_revalidates_parameters():
    cfg = ClusterConfig(engine="aurora-postgresql", parameters={"statement_timeout": 500})
    with pytest.raises(ValueError, match=re.escape("not a parameter of aurora-mysql")):
        dataclasses.replace(cfg, engine="aurora-mysql", min_capacity=None, engine_version=None)


def test_engine_parameters_come_from_facts():
    assert facts.ENGINE_PARAMETERS["aurora-postgresql"] == ("idle_in_transaction_session_timeout", "statement_timeout")
    assert facts.ENGINE_PARAMETERS["aurora-mysql"] == ("max_execution_time",)
    assert (facts.STATEMENT_TIMEOUT_ERROR, facts.IDLE_IN_TRANSACTION_TIMEOUT_ERROR, facts.MAX_EXECUTION_TIME_ERROR) == (
        STATEMENT_TIMEOUT, IDLE_IN_TRANSACTION, MAX_EXECUTION_TIME)


# --- statement_timeout (PostgreSQL) -------------------------------------------------------------------------------


def test_statement_timeout_cancels_a_long_query_with_the_engine_text():
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[LongQuery(start_s=10, duration_s=300)],
                 parameters={"statement_timeout": 120_000}, **PG)
    aborted = events(run, "transaction_aborted")
    assert [(e["time_s"], e["message"]) for e in aborted] == [(130.0, STATEMENT_TIMEOUT)], aborted


@pytest.mark.parametrize("internal_temp_table", [True, False])
def test_statement_timeout_cancels_a_long_query_with_or_without_an_internal_temp_table(internal_temp_table):
    op = LongQuery(start_s=10, duration_s=300, internal_temp_table=internal_temp_table)
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[op], parameters={"statement_timeout": 60_000}, **PG)
    assert times(run, "transaction_aborted") == [70.0]


@pytest.mark.parametrize("timeout_ms", [0, 300_000, 400_000])
def test_statement_timeout_zero_or_longer_than_the_query_changes_nothing(timeout_ms):
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[LongQuery(start_s=10, duration_s=300)],
                 parameters={"statement_timeout": timeout_ms}, **PG)
    assert events(run, "transaction_aborted") == [], f"statement_timeout={timeout_ms} ms must not cancel a 300-s query"


def test_statement_timeout_leaves_an_idle_transaction_alone():
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[LongTransaction(start_s=10, duration_s=300)],
                 parameters={"statement_timeout": 1_000}, **PG)
    assert events(run) == [], "a transaction idle between statements runs no statement"


def test_statement_timeout_cancels_ordinary_requests_counted_from_arrival_at_the_server():
    # 2-ACU-s queries at 2 ACU take 1 s; every 1/3 s one arrives. Each is cancelled 0.5 s after it arrived, its wait
    # behind the previous one included.
    run = run_of([(1, 2, 3.0)], duration_s=30, query_cpu_s=2.0, parameters={"statement_timeout": 500}, **PG)
    rows = requests(run)
    assert len(rows) == 3
    for row in rows:
        assert (row["outcome"], row["error"]) == ("timeout", STATEMENT_TIMEOUT), row
        assert row["latency_s"] == pytest.approx(0.5), f"cancelled 500 ms after arrival: {row}"


def test_statement_timeout_spares_requests_that_finish_in_time():
    run = run_of([(1, 11, 1.0)], duration_s=30, query_cpu_s=0.2, parameters={"statement_timeout": 500}, **PG)
    assert {(r["outcome"], r["error"]) for r in requests(run)} == {("ok", None)}


@pytest.mark.parametrize(
    "connections", [None, ConnectionPool(min_size=2)], ids=["retry-only", "pool"]
)
def test_statement_timeout_on_tracked_requests_is_a_timeout_not_retried_by_default(connections):
    run = run_of([(1, 2, 3.0)], duration_s=30, query_cpu_s=2.0, parameters={"statement_timeout": 500},
                 connections=connections, retry=RetryPolicy("fixed"), **PG)
    rows = requests(run)
    assert [(r["outcome"], r["error"], r["attempts"]) for r in rows] == [("timeout", STATEMENT_TIMEOUT, 1)] * 3, rows
    assert [r["latency_s"] for r in rows] == pytest.approx([0.5] * 3)


def test_statement_timeout_is_retried_when_the_policy_opts_in():
    run = run_of([(1, 1.5, 2.0)], duration_s=30, query_cpu_s=2.0, parameters={"statement_timeout": 500},
                 retry=RetryPolicy("fixed", base_s=0.1, max_attempts=3, retry_on=("statement_timeout",)), **PG)
    row = requests(run)[0]
    assert (row["outcome"], row["error"], row["attempts"]) == ("timeout", STATEMENT_TIMEOUT, 3), row
    assert row["latency_s"] == pytest.approx(3 * 0.5 + 2 * 0.1)


def test_statement_timeout_frees_the_scaling_point_long_before_rollback():
    op = LongQuery(start_s=10, duration_s=1000)
    blocked = hot_run("aurora-postgresql", [op])
    assert times(blocked, "scale_failed") == [SCALE_UP_AT + 300], "control: the query blocks the change 300 s"
    freed = hot_run("aurora-postgresql", [op], parameters={"statement_timeout": 120_000})
    assert times(freed, "transaction_aborted") == [130.0]
    completed = times(freed, "scale_completed")
    assert completed and completed[0] < 140, f"expected the scale-up right after the cancel at 130 s, got {completed}"
    assert times(freed, "scale_failed") == []


# --- idle_in_transaction_session_timeout (PostgreSQL) --------------------------------------------------------------


def test_idle_in_transaction_timeout_terminates_a_long_transaction_with_both_events():
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[LongTransaction(start_s=10, duration_s=300)],
                 parameters={"idle_in_transaction_session_timeout": 60_000}, **PG)
    log = [(e["time_s"], e["kind"], e["message"]) for e in events(run)]
    assert [row[:2] for row in log] == [(70.0, "transaction_aborted"), (70.0, "connection_closed")], log
    assert log[0][2] == IDLE_IN_TRANSACTION
    assert "idle_in_transaction_session_timeout" in log[1][2], log[1][2]


@pytest.mark.parametrize("op", [LongQuery(start_s=10, duration_s=300), TableLock(start_s=10, duration_s=300)],
                         ids=["LongQuery", "TableLock"])
def test_idle_in_transaction_timeout_leaves_other_operations_alone(op):
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[op],
                 parameters={"idle_in_transaction_session_timeout": 1_000}, **PG)
    assert events(run) == []


def test_idle_in_transaction_timeout_frees_the_connection_so_the_cluster_pauses_sooner():
    op = LongTransaction(start_s=10, duration_s=3000)
    run = run_of([(0, 1, 1.0)], duration_s=1000, blocking=[op], auto_pause=True,
                 parameters={"idle_in_transaction_session_timeout": 60_000}, **PG)
    assert times(run, "pause_started") == [70.0 + 300], "the idle clock starts when the session is terminated"


def test_idle_in_transaction_timeout_frees_the_scaling_point_before_a_forced_change():
    op = LongTransaction(start_s=10, duration_s=1000)
    forced = hot_run("aurora-postgresql", [op], timeout_action="ForceApplyCapacityChange")
    assert times(forced, "transaction_aborted")[:1] == [SCALE_UP_AT + 300], "control: without the parameter the " \
        "change is forced at the timeout"
    assert times(forced, "scale_forced"), "control: the forced change applies once the transaction has rolled back"
    freed = hot_run("aurora-postgresql", [op], timeout_action="ForceApplyCapacityChange",
                    parameters={"idle_in_transaction_session_timeout": 30_000})
    assert times(freed, "scale_forced") == []
    assert [e["message"] for e in events(freed, "transaction_aborted")] == [IDLE_IN_TRANSACTION], (
        "the only abort is the timeout's, not forced scaling's")
    completed = times(freed, "scale_completed")
    assert completed and completed[0] < 80, completed


# --- max_execution_time (MySQL 5.7) -------------------------------------------------------------------------------


def test_max_execution_time_interrupts_a_long_query_on_mysql_57():
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[LongQuery(start_s=10, duration_s=300)],
                 parameters={"max_execution_time": 45_000})
    assert [(e["time_s"], e["message"]) for e in events(run, "transaction_aborted")] == [(55.0, MAX_EXECUTION_TIME)]


@pytest.mark.parametrize("op", [LongTransaction, TemporaryTable, TableLock], ids=lambda kind: kind.__name__)
def test_max_execution_time_leaves_other_operations_alone(op):
    run = run_of([(0, 60, 0.0)], duration_s=400, blocking=[op(start_s=10, duration_s=300)],
                 parameters={"max_execution_time": 1_000})
    assert events(run) == []


def test_max_execution_time_frees_the_scaling_point_long_before_rollback():
    op = LongQuery(start_s=10, duration_s=1000)
    assert times(hot_run("aurora-mysql", [op]), "scale_failed") == [SCALE_UP_AT + 300]
    freed = hot_run("aurora-mysql", [op], parameters={"max_execution_time": 120_000})
    assert times(freed, "transaction_aborted") == [130.0]
    completed = times(freed, "scale_completed")
    assert completed and completed[0] < 150, completed
    assert times(freed, "scale_failed") == []


def test_mysql_56_has_no_max_execution_time_so_a_long_query_blocks_until_rollback():
    with pytest.raises(ValueError, match=re.escape("the parameter does not exist in aurora-mysql 5.6")):
        ClusterConfig(engine_version="5.6", parameters={"max_execution_time": 120_000})
    run = hot_run("aurora-mysql", [LongQuery(start_s=10, duration_s=1000)], engine_version="5.6")
    assert times(run, "scale_failed") == [SCALE_UP_AT + 300]


# --- PostgreSQL-only blockers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PG_ONLY, ids=lambda kind: kind.__name__)
def test_postgresql_only_blockers_block_scaling_like_a_table_lock(kind):
    run = hot_run("aurora-postgresql", [kind(start_s=0, duration_s=1000)], duration_s=400, seconds_before_timeout=60)
    assert times(run, "scale_failed")[:1] == [SCALE_UP_AT + 60], f"{kind.__name__} must block the scaling point"
    assert times(run, "scale_completed") == []
    control = hot_run("aurora-postgresql", [IdleConnection(start_s=0, duration_s=1000)], duration_s=400,
                      seconds_before_timeout=60)
    assert times(control, "scale_completed"), "control: an idle connection blocks nothing"


@pytest.mark.parametrize("kind", PG_ONLY, ids=lambda kind: kind.__name__)
def test_postgresql_only_blockers_are_dropped_by_a_forced_change(kind):
    run = hot_run("aurora-postgresql", [kind(start_s=0, duration_s=1000)], duration_s=400, seconds_before_timeout=60,
                  timeout_action="ForceApplyCapacityChange")
    closed = events(run, "connection_closed")
    assert len(closed) == 1 and kind.__name__ in closed[0]["message"], closed
    assert closed[0]["time_s"] == SCALE_UP_AT + 60, "dropped at the timeout"
    # A dropped connection has no transaction to roll back: the change applies at once.
    assert times(run, "scale_forced") == [pytest.approx(SCALE_UP_AT + 60 + FIXED.scale_apply_s)]


@pytest.mark.parametrize("kind", PG_ONLY, ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("version", ["5.6", "5.7"])
def test_postgresql_only_blockers_are_rejected_on_mysql(kind, version):
    op = kind(start_s=0, duration_s=10)
    message = f"blocking[1]={op!r} is PostgreSQL-only, but config.engine='aurora-mysql'"
    workload = Workload(segments=[(0, 60, 1.0)], blocking=[LongTransaction(start_s=0, duration_s=10), op])
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate(ClusterConfig(engine_version=version), workload, duration_s=60)


def test_postgresql_only_blockers_are_named_in_facts():
    assert tuple(kind.__name__ for kind in PG_ONLY) == facts.POSTGRESQL_ONLY_BLOCKERS


# --- narrow the transaction ---------------------------------------------------------------------------------------


def test_split_keeps_the_work_and_spaces_the_pieces():
    pieces = LongTransaction(start_s=100, duration_s=600).split(4, gap_s=20)
    assert [(p.start_s, p.duration_s) for p in pieces] == [(100.0, 150.0), (270.0, 150.0), (440.0, 150.0),
                                                         (610.0, 150.0)]
    assert sum(p.duration_s for p in pieces) == 600
    assert LongTransaction(start_s=0, duration_s=60).split(1, gap_s=0) == (LongTransaction(start_s=0, duration_s=60),)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 10), ValueError, "pieces=0 must be >= 1"),
        ((2.5, 10), TypeError, "pieces=2.5 must be a whole number, not float"),
        ((3, -1), ValueError, "gap_s=-1 must be >= 0"),
    ],
)
def test_split_validates_its_arguments(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        LongTransaction(start_s=0, duration_s=600).split(args[0], gap_s=args[1])


def test_narrow_transactions_leave_scaling_points_where_one_long_transaction_leaves_none():
    wide = LongTransaction(start_s=0, duration_s=600)
    blocked = hot_run("aurora-mysql", [wide], duration_s=600)
    assert times(blocked, "scale_completed") == [], "control: one 600-s transaction blocks every scaling point"
    assert times(blocked, "scale_failed") == [SCALE_UP_AT + 300]
    narrow = hot_run("aurora-mysql", list(wide.split(6, gap_s=10)), duration_s=600)
    completed = times(narrow, "scale_completed")
    assert completed and completed[0] < 120, f"the first 10-s gap (100..110 s) is a scaling point, got {completed}"
    assert times(narrow, "scale_failed") == []
    found = times(narrow, "scaling_point_found")[0]
    assert 100 <= found < 110, f"the point lies in a gap between pieces, found at {found}"


# --- notebook 05's real-PostgreSQL bonus, as tables (no server needed) --------------------------------------------

def test_caught_errors_tell_a_cancelled_statement_from_an_ended_session() -> None:
    import pandas as pd

    from aurora_sim.realdb import CaughtError, caught_errors

    table = caught_errors({
        "statement": CaughtError(error_class="QueryCanceled", sqlstate="57014", elapsed_ms=201.4,
                                 session_survived=True, message="canceling statement due to statement timeout"),
        "idle": CaughtError(error_class="IdleInTransactionSessionTimeout", sqlstate="25P03", elapsed_ms=600.0,
                            session_survived=False,
                            message="terminating connection due to idle-in-transaction timeout"),
    })
    assert table["the session"].tolist() == ["survived", "ended"]
    assert table.loc["statement", "after (ms)"] == 201 and table.loc["idle", "SQLSTATE"] == "25P03"
    with pd.option_context("display.max_colwidth", 10):
        assert "idle-in-transaction timeout" in table._repr_html_(), "messages must show whole"


def test_lock_wait_aftermath_lists_the_waiter_the_logging_and_every_log_line() -> None:
    import pandas as pd

    from aurora_sim.realdb import LockWait

    wait = LockWait(locks=pd.DataFrame(), waiter_outcome="updated the row after waiting 105 ms",
                    log_lines=("LOG:  process 7 still waiting for ShareLock", "LOG:  process 7 acquired ShareLock"),
                    log_note="log_lock_waits = on")
    assert wait.aftermath()["what"].tolist() == ["the waiter", "lock logging", "server log", "server log"]
    assert wait.aftermath()["seen"].tolist()[-1] == "LOG:  process 7 acquired ShareLock"
