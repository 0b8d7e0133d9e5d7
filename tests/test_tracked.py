"""Behavioural tests of tracked clients (``aurora_sim.tracked``): one test per rule of issue 3, read from the tables.

Scenarios are small and deterministic: regular arrivals, every request costing exactly ``query_cpu_s``
(``query_cost_cv=0``) and a fixed resume (``resume_median_s == resume_p95_s``), unless a test says otherwise.
With the defaults a connection costs ``connect_latency_s`` 0.02 s plus ``connect_cpu_acu_s`` 0.005 ACU-s of CPU,
and a pre-ping one ``round_trip_s`` 0.001 s.
"""

from __future__ import annotations

import pytest

from aurora_sim import (
    ClusterConfig,
    ConnectionPool,
    ConnectPerRequest,
    DataApi,
    IdleConnection,
    LongTransaction,
    ModelAssumptions,
    RetryPolicy,
    Workload,
    facts,
    simulate,
)
from run_tables import events, requests, times

FIXED = ModelAssumptions(query_cost_cv=0, resume_median_s=40, resume_p95_s=40)
RESUME_S = 40
CONNECT_S = FIXED.connect_latency_s
CONNECT_ACU_S = FIXED.connect_cpu_acu_s
ROUND_TRIP_S = FIXED.round_trip_s
# A day-long run stays fast when the controller evaluates once a minute (its window stays 60 s).
DAY = ModelAssumptions(query_cost_cv=0, resume_median_s=40, resume_p95_s=40, controller_period_s=60)
TEXT_57 = "ERROR 1105 (HY000): The last transaction was aborted due to Seamless Scaling. Please retry."
TOO_MANY_MYSQL = "ERROR 1040 (HY000): Too many connections"
GONE_AWAY = {
    "aurora-mysql": "ERROR 2006 (HY000): MySQL server has gone away",
    "aurora-postgresql": "server closed the connection unexpectedly",
}
DATA_API_RESUMING = (
    "BadRequestException: Communications link failure\n\nThe last packet sent successfully to the server was 0 "
    "milliseconds ago. The driver has not received any packets from the server."
)
DATA_API_TIMEOUT = "StatementTimeoutException: Request timed out"
HALF_CALL_S = facts.DATA_API_WARM_CALL_S / 2  # a Data API call's overhead, half each way: 7.25 ms
EPS = 1e-6


def run_of(segments, *, duration_s, connections=None, retry=None, query_cpu_s=0.02, blocking=(), assumptions=FIXED,
           metrics_period_s=10, seed=1, **config):
    config.setdefault("auto_pause", False)
    workload = Workload(segments=segments, arrivals="regular", query_cpu_s=query_cpu_s, blocking=list(blocking),
                        connections=connections, retry=retry)
    return simulate(ClusterConfig(**config), workload, duration_s=duration_s, seed=seed,
                    metrics_period_s=metrics_period_s, assumptions=assumptions)








def connections_at(run):
    return dict(run.sql("SELECT time_s, connections FROM metrics ORDER BY time_s").fetchall())


def pool(**settings):
    return ConnectionPool(**settings)


# --- one row per request ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connections", "retry"),
    [(ConnectPerRequest(), None), (pool(min_size=1), None), (DataApi(), None), (None, RetryPolicy("fixed"))],
    ids=["per-request", "pool", "data-api", "retry-only"],
)
def test_a_tracked_workload_has_one_row_per_request_with_attempts_and_client(connections, retry):
    run = run_of([(1, 11, 2.0)], duration_s=30, connections=connections, retry=retry)
    rows = requests(run)
    assert len(rows) == 20, f"expected 20 rows (2/s for 10 s), got {len(rows)}"
    assert [r["submitted_s"] for r in rows] == pytest.approx([1 + k / 2 for k in range(20)])
    for row in rows:
        assert (row["outcome"], row["error"], row["attempts"], row["client_id"]) == ("ok", None, 1, 0), row
        assert row["latency_s"] == pytest.approx(row["finished_s"] - row["submitted_s"])


# --- ConnectPerRequest --------------------------------------------------------------------------------------------


def test_connect_per_request_pays_connect_latency_and_cpu_on_every_request():
    query_cpu_s = 0.02
    per_request = requests(run_of([(1, 11, 1.0)], duration_s=30, connections=ConnectPerRequest()))
    expected = CONNECT_S + CONNECT_ACU_S / 1 + query_cpu_s / 1  # 1 ACU: latency, handshake CPU, query
    for row in per_request:
        assert row["latency_s"] == pytest.approx(expected), f"expected {expected} s, got {row['latency_s']}"
    pooled = requests(run_of([(1, 11, 1.0)], duration_s=30, connections=pool(min_size=1)))
    assert [r["latency_s"] for r in pooled] == pytest.approx([query_cpu_s] * 10), "a warm pool pays nothing"


def test_connect_per_request_cpu_counts_each_handshake():
    def cpu_first_10_s(connections):
        run = run_of([(0, 5, 20.0)], duration_s=20, connections=connections)  # all done before t = 10
        return run.sql("SELECT cpu_pct FROM metrics WHERE time_s = 0").fetchall()[0][0]

    per_request, baseline = cpu_first_10_s(ConnectPerRequest()), cpu_first_10_s(DataApi())
    # 100 requests x 0.02 ACU-s over 10 s at 1 ACU = 20 %; each handshake adds 0.005 ACU-s: 5 % more.
    assert baseline == pytest.approx(20.0), baseline
    assert per_request == pytest.approx(25.0), f"expected 25 % CPU with 100 handshakes, got {per_request}"


def test_connect_per_request_closes_its_connection_so_the_cluster_pauses():
    run = run_of([(0, 1, 1.0), (500, 501, 1.0)], duration_s=700, connections=ConnectPerRequest(), auto_pause=True)
    first_end = CONNECT_S + CONNECT_ACU_S + 0.02
    assert times(run, "pause_started") == pytest.approx([first_end + 300])
    assert times(run, "resume_started") == [500.0], "a new connection to the paused cluster starts the resume"
    late = requests(run, "submitted_s = 500")[0]
    assert late["latency_s"] == pytest.approx(RESUME_S + first_end), late


# --- ConnectionPool -----------------------------------------------------------------------------------------------


def test_pool_opens_min_size_connections_at_the_start_and_keeps_them():
    run = run_of([(0, 60, 0.0)], duration_s=120, connections=pool(min_size=3, idle_timeout_s=30))
    seen = connections_at(run)
    assert all(seen[t] == 3 for t in seen if t > 0), f"expected 3 idle pooled connections throughout, got {seen}"


@pytest.mark.parametrize("min_size", [1, 2])
def test_pool_with_min_size_keeps_the_cluster_from_pausing(min_size):
    run = run_of([(0, 1, 1.0)], duration_s=1500, connections=pool(min_size=min_size, idle_timeout_s=60),
                 auto_pause=True, metrics_period_s=60)
    assert times(run, "pause_started") == [], "idle pooled connections count: the cluster must stay awake"
    assert min(connections_at(run)[t] for t in (300, 900, 1440)) >= min_size


def test_pool_with_min_size_0_lets_the_cluster_pause_and_reopens_through_a_resume():
    # acquire_timeout_s above the 40-s cold start: the request waits the resume out (see the test below for less).
    run = run_of([(0, 1, 1.0), (600, 601, 1.0)], duration_s=800, auto_pause=True,
                 connections=pool(min_size=0, idle_timeout_s=60, acquire_timeout_s=60))
    first_end = CONNECT_S + CONNECT_ACU_S + 0.02
    assert times(run, "pause_started") == pytest.approx([first_end + 60 + 300]), (
        "the idle connection closes after idle_timeout_s; the cluster pauses 300 s later")
    assert times(run, "resume_started") == [600.0], "opening a connection to a paused cluster resumes it"
    late = requests(run, "submitted_s = 600")[0]
    assert (late["outcome"], late["latency_s"]) == ("ok", pytest.approx(RESUME_S + first_end)), late


def test_pool_refills_to_min_size_after_idle_timeout_closes_only_the_extra_connections():
    # 10 queries of 0.2 s at 10/s: the pool grows above min_size, then idle_timeout_s trims it back to min_size.
    run = run_of([(1, 2, 10.0)], duration_s=100, query_cpu_s=0.2,
                 connections=pool(min_size=2, max_size=10, idle_timeout_s=30))
    seen = connections_at(run)
    assert seen[10] > 2, f"the burst should open more than min_size connections, saw {seen[10]}"
    assert seen[40] == 2 and seen[90] == 2, f"expected min_size=2 after idle_timeout_s=30, got {seen}"


def test_pool_with_no_idle_timeout_nor_lifetime_keeps_every_connection():
    run = run_of([(1, 2, 10.0)], duration_s=100, query_cpu_s=0.2,
                 connections=pool(min_size=2, max_size=10, idle_timeout_s=None, max_lifetime_s=None))
    seen = connections_at(run)
    assert seen[10] > 2 and seen[90] == seen[10], f"idle_timeout_s=None: nothing is ever closed, got {seen}"


def test_pool_max_lifetime_retires_connections_and_refills():
    run = run_of([(1, 2, 1.0)], duration_s=200, metrics_period_s=5,
                 connections=pool(min_size=1, max_size=1, idle_timeout_s=None, max_lifetime_s=50))
    seen = connections_at(run)
    assert all(seen[t] == 1 for t in seen if t > 0), f"a retired connection is replaced at once: {seen}"
    assert times(run, "connection_closed") == [], "the client retires it: the cluster closes nothing"


def test_pool_acquire_timeout_ends_the_request_as_timeout_with_the_pool_error():
    # One connection, 1-s queries: the second request waits for the first and gives up after 0.5 s.
    run = run_of([(1, 1.2, 10.0)], duration_s=30, query_cpu_s=1.0,
                 connections=pool(min_size=1, max_size=1, acquire_timeout_s=0.5))
    first, second = requests(run)
    assert (first["outcome"], first["latency_s"]) == ("ok", pytest.approx(1.0))
    assert second["outcome"] == "timeout"
    assert second["error"] == "PoolTimeout: couldn't get a connection after 0.50 sec"
    assert second["latency_s"] == pytest.approx(0.5), f"it gives up after acquire_timeout_s: {second['latency_s']}"
    assert second["attempts"] == 1


def test_pool_acquire_timeout_also_bounds_opening_a_connection_through_a_resume():
    # psycopg_pool and HikariCP: getconn()/getConnection() wait at most the timeout, a new connection's set-up
    # included. A min_size=0 pool finds the cluster paused: the request opens a connection, which starts the resume,
    # and gives up after acquire_timeout_s=5 s instead of waiting out the 40-s cold start.
    run = run_of([(0, 1, 1.0), (600, 601, 1.0)], duration_s=800, auto_pause=True,
                 connections=pool(min_size=0, idle_timeout_s=60, acquire_timeout_s=5))
    assert times(run, "resume_started") == [600.0], "the connection attempt still wakes the cluster"
    late = requests(run, "submitted_s = 600")[0]
    assert (late["outcome"], late["error"]) == ("timeout", "PoolTimeout: couldn't get a connection after 5.00 sec"), (
        f"expected a pool timeout after 5 s, got {late}")
    assert late["latency_s"] == pytest.approx(5.0), late


def test_pool_timeout_is_not_retried_by_default():
    run = run_of([(1, 1.2, 10.0)], duration_s=30, query_cpu_s=1.0, retry=RetryPolicy("fixed", max_attempts=5),
                 connections=pool(min_size=1, max_size=1, acquire_timeout_s=0.5))
    second = requests(run)[1]
    assert (second["outcome"], second["attempts"]) == ("timeout", 1), second


def test_pool_waiter_gets_the_connection_its_predecessor_returns():
    run = run_of([(1, 1.2, 10.0)], duration_s=30, query_cpu_s=0.2,
                 connections=pool(min_size=1, max_size=1, acquire_timeout_s=5))
    first, second = requests(run)
    assert first["finished_s"] == pytest.approx(1.2) and second["finished_s"] == pytest.approx(1.4), (first, second)


def test_pre_ping_costs_one_round_trip_per_request():
    plain = requests(run_of([(1, 11, 1.0)], duration_s=30, connections=pool(min_size=1)))
    pinged = requests(run_of([(1, 11, 1.0)], duration_s=30, connections=pool(min_size=1, pre_ping=True)))
    for a, b in zip(plain, pinged, strict=True):
        assert b["latency_s"] - a["latency_s"] == pytest.approx(ROUND_TRIP_S), (a, b)


def test_idle_pooled_connections_count_toward_connections_and_the_90_pct_threshold():
    # 85 idle connections > 90 % of 90 at 1 ACU: the controller scales up with almost no CPU.
    run = run_of([(0, 300, 0.1)], duration_s=300, max_capacity=4, connections=pool(min_size=85, max_size=85))
    assert connections_at(run)[30] == 85
    started = events(run, "scale_started")
    assert [(e["time_s"], e["capacity_from"], e["capacity_to"]) for e in started] == [(60.0, 1, 2)], started
    assert "connections > 90 % of max_connections 90" in started[0]["message"], started[0]["message"]
    cpu = run.sql("SELECT max(cpu_pct) FROM metrics WHERE time_s BETWEEN 10 AND 50").fetchall()[0][0]
    assert cpu < 5, f"CPU stays low ({cpu} %): connections alone scale the cluster up"


def test_an_oversized_pool_keeps_the_cluster_from_scaling_down():
    # A minute at 80 % CPU scales 1 -> 2 ACU; then the load stops. 85 idle pooled connections are over 40 % of 180
    # (72) at 2 ACU, so the cluster never scales down; a pool of 5 lets it scale down once the 900 s cooldown ends.
    def changes(min_size):
        run = run_of([(0, 60, 40.0)], duration_s=1500, metrics_period_s=60, max_capacity=4,
                     connections=pool(min_size=min_size, max_size=max(min_size, 10)))
        return [(e["capacity_from"], e["capacity_to"]) for e in events(run, "scale_completed")]

    assert changes(85) == [(1, 2)], f"expected one scale-up and no scale-down, got {changes(85)}"
    assert changes(5) == [(1, 2), (2, 1)], "control: a small pool lets the idle cluster scale down"


# --- max_connections ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("connections", [ConnectPerRequest(), None], ids=["per-request", "retry-only"])
def test_connections_beyond_max_connections_are_refused_at_once_with_the_engine_text(connections):
    # 100 one-second queries within 1 s at 1 ACU (90 connections): the last ones find no room.
    retry = None if connections is not None else RetryPolicy("none")
    run = run_of([(1, 2, 100.0)], duration_s=200, query_cpu_s=1.0, max_capacity=1, connections=connections,
                 retry=retry)
    refused = requests(run, "outcome = 'error'")
    assert len(refused) == 10, f"expected 10 refusals above 90 connections, got {len(refused)}"
    for row in refused:
        assert (row["error"], row["latency_s"], row["attempts"]) == (TOO_MANY_MYSQL, 0.0, 1), row
    assert len(requests(run, "outcome = 'ok'")) == 90


def test_postgresql_refusal_uses_its_own_text():
    limit = facts.max_connections("aurora-postgresql", 2)
    rate = limit + 10
    run = run_of([(1, 2, float(rate))], duration_s=400, query_cpu_s=1.0, engine="aurora-postgresql", max_capacity=2,
                 connections=ConnectPerRequest())
    errors = {row["error"] for row in requests(run, "outcome = 'error'")}
    assert errors == {"FATAL: remaining connection slots are reserved for non-replication superuser connections"}


@pytest.mark.parametrize("connections", [ConnectPerRequest(), DataApi(), pool(min_size=0, max_size=500)],
                         ids=["per-request", "data-api", "pool"])
def test_postgresql_refuses_an_application_three_slots_before_max_connections(connections):
    # 450 requests of 100 ACU-s each arrive within a second on 2 ACU: every one that gets in stays connected.
    run = run_of([(1, 2, 450.0)], duration_s=30, query_cpu_s=100.0, engine="aurora-postgresql", max_capacity=2,
                 connections=connections, metrics_period_s=5)
    refused = requests(run, "outcome = 'error'")
    assert len(refused) == 3, f"450 - 3 = 447 connections for the application, got {450 - len(refused)}"
    peak, shown = run.sql("SELECT max(connections), max(max_connections) FROM metrics").fetchall()[0]
    assert (peak, shown) == (447, 450)


def test_refused_connections_succeed_on_a_later_attempt_with_a_retry_policy():
    run = run_of([(1, 2, 100.0)], duration_s=200, query_cpu_s=1.0, max_capacity=1,
                 retry=RetryPolicy("fixed", base_s=5, max_attempts=3))
    rows = requests(run)
    assert all(r["outcome"] == "ok" for r in rows), [r for r in rows if r["outcome"] != "ok"][:3]
    assert max(r["attempts"] for r in rows) > 1, "some requests must have needed a second attempt"


# --- forced scaling -----------------------------------------------------------------------------------------------

# 85 idle connections push the 1-ACU cluster to scale up at t = 60 (connections > 90 %); an open transaction blocks
# every scaling point, so ForceApplyCapacityChange forces the change at t = 120.
FORCE_BLOCKERS = [IdleConnection(start_s=0, duration_s=300)] * 85 + [LongTransaction(start_s=0, duration_s=300)]
FORCE_CONFIG = {"timeout_action": "ForceApplyCapacityChange", "seconds_before_timeout": 60}
FORCE_AT = 120.0


def _forced_run(connections, retry=None):
    # Two 2-s queries at 119.0 and 119.25: both at the server (one running, one queued) when the change is forced.
    return run_of([(119, 119.5, 4.0)], duration_s=300, query_cpu_s=2.0, blocking=FORCE_BLOCKERS,
                  connections=connections, retry=retry, **FORCE_CONFIG)


@pytest.mark.parametrize(
    "connections",
    [ConnectPerRequest(), DataApi(), pool(min_size=2, max_size=2)],
    ids=["per-request", "data-api", "pool"],
)
def test_forced_scaling_aborts_every_request_at_the_server_once_with_the_engine_text(connections):
    run = _forced_run(connections)
    # The open transaction is 120 s old at the timeout: it rolls back for 60 s before the change applies.
    rollback_s = FIXED.rollback_s_per_transaction_s * FORCE_AT
    assert times(run, "scale_forced") == [pytest.approx(FORCE_AT + rollback_s + FIXED.scale_apply_s)]
    rows = requests(run)
    # A Data API call's error answer still travels back: half the call's overhead after the abort.
    answer_s = HALF_CALL_S if isinstance(connections, DataApi) else 0.0
    assert [(r["outcome"], r["error"], r["finished_s"], r["attempts"]) for r in rows] == [
        ("error", TEXT_57, FORCE_AT + answer_s, 1)] * 2, rows
    aborted = events(run, "transaction_aborted")
    assert [e["message"] for e in aborted] == [TEXT_57] * 3, "one per request plus one for the open transaction"
    assert {e["time_s"] for e in aborted} == {FORCE_AT}


def test_forced_scaling_spares_a_request_still_waiting_for_a_pool_connection():
    run = _forced_run(pool(min_size=1, max_size=1))
    first, second = requests(run)
    assert (first["outcome"], first["error"]) == ("error", TEXT_57), first
    assert (second["outcome"], second["error"], second["attempts"]) == ("ok", None, 1), (
        f"the request waiting in the pool was not at the server: {second}")
    assert len(events(run, "transaction_aborted")) == 2, "the first request and the open transaction"


@pytest.mark.parametrize(
    ("connections", "retry"),
    [(None, RetryPolicy("exponential")), (pool(min_size=2, max_size=2), RetryPolicy("fixed", base_s=1.0)),
     (ConnectPerRequest(), RetryPolicy("full_jitter")), (DataApi(), RetryPolicy("equal_jitter"))],
    ids=["retry-only", "pool", "per-request", "data-api"],
)
def test_forced_scaling_aborts_succeed_on_a_later_attempt_with_a_retry_policy(connections, retry):
    run = _forced_run(connections, retry)
    rows = requests(run)
    assert [(r["outcome"], r["error"], r["attempts"]) for r in rows] == [("ok", None, 2)] * 2, rows
    assert all(r["finished_s"] > FORCE_AT for r in rows)


def test_forced_scaling_aborts_stay_failed_when_the_policy_does_not_retry_them():
    run = _forced_run(None, RetryPolicy("fixed", retry_on=("refused",)))
    assert [(r["outcome"], r["attempts"]) for r in requests(run)] == [("error", 1)] * 2


# --- the 24-hour cap ----------------------------------------------------------------------------------------------


def _day_run(settings, engine="aurora-mysql", segments=((10, 11, 1.0), (86500, 86501, 1.0)), query_cpu_s=0.02):
    return run_of(list(segments), duration_s=86600, metrics_period_s=3600, assumptions=DAY, engine=engine,
                  query_cpu_s=query_cpu_s, connections=pool(min_size=1, max_size=1, **settings))


@pytest.mark.parametrize("engine", ["aurora-mysql", "aurora-postgresql"])
def test_cluster_closes_a_connection_at_24_hours_and_the_pool_hands_it_out_dead(engine):
    run = _day_run({"idle_timeout_s": None, "max_lifetime_s": None}, engine)
    closed = events(run, "connection_closed")
    assert [e["time_s"] for e in closed] == pytest.approx([86400.0], abs=0.1), closed
    assert "24 hours" in closed[0]["message"], closed[0]["message"]
    late = requests(run, "submitted_s = 86500")[0]
    assert (late["outcome"], late["error"], late["attempts"]) == ("error", GONE_AWAY[engine], 1), late


def test_idle_timeout_alone_does_not_protect_a_min_size_connection_from_the_24_hour_cap():
    run = _day_run({"idle_timeout_s": 600, "max_lifetime_s": None})
    late = requests(run, "submitted_s = 86500")[0]
    assert late["error"] == GONE_AWAY["aurora-mysql"], "idle_timeout_s never closes connections at min_size"


@pytest.mark.parametrize(
    "settings",
    [{"max_lifetime_s": 86000, "idle_timeout_s": None}, {"max_lifetime_s": 3600, "idle_timeout_s": 600},
     {"max_lifetime_s": None, "idle_timeout_s": None, "pre_ping": True}],
    ids=["lifetime-below-24h", "default-lifetime", "pre-ping"],
)
def test_max_lifetime_below_24_hours_or_pre_ping_alone_prevents_gone_away(settings):
    run = _day_run(settings)
    late = requests(run, "submitted_s = 86500")[0]
    assert (late["outcome"], late["error"]) == ("ok", None), f"{settings}: {late}"


def test_pre_ping_replaces_the_dead_connection_at_the_cost_of_a_round_trip_and_a_new_connection():
    late = requests(_day_run({"max_lifetime_s": None, "idle_timeout_s": None, "pre_ping": True}),
                    "submitted_s = 86500")[0]
    expected = ROUND_TRIP_S + CONNECT_S + CONNECT_ACU_S + 0.02
    assert late["latency_s"] == pytest.approx(expected, abs=1e-6), late


def test_a_busy_connection_is_closed_when_its_statement_ends():
    run = _day_run({"max_lifetime_s": None, "idle_timeout_s": None},
                   segments=((10, 11, 1.0), (86399, 86400, 1.0), (86500, 86501, 1.0)), query_cpu_s=5.0)
    closed = times(run, "connection_closed")
    assert closed == pytest.approx([86404.0], abs=0.1), f"closed when the 5-s statement ends, not at 86400: {closed}"
    rows = requests(run)
    assert [r["outcome"] for r in rows] == ["ok", "ok", "ok"], "the busy statement completes; the pool reconnects"


@pytest.mark.parametrize("kind", [IdleConnection, LongTransaction], ids=lambda kind: kind.__name__)
def test_cluster_closes_a_blocking_operations_connection_at_24_hours_too(kind):
    # "When a connection reaches 86,400 s the cluster closes it": a monitoring agent's connection (or a forgotten
    # transaction) held longer than a day is closed too, and the cluster can then pause.
    run = run_of([(0, 1, 1.0)], duration_s=87_500, metrics_period_s=3600, assumptions=DAY, auto_pause=True,
                 retry=RetryPolicy("fixed"), blocking=[kind(start_s=0, duration_s=100_000)])
    closed = events(run, "connection_closed")
    assert [e["time_s"] for e in closed] == pytest.approx([86_400.0], abs=0.1), closed
    assert "24 hours" in closed[0]["message"], closed[0]["message"]
    assert times(run, "pause_started") == pytest.approx([86_400.0 + 300], abs=60)


def test_a_retry_policy_recovers_from_gone_away():
    run = run_of([(10, 11, 1.0), (86500, 86501, 1.0)], duration_s=86600, metrics_period_s=3600, assumptions=DAY,
                 retry=RetryPolicy("fixed"),
                 connections=pool(min_size=1, max_size=1, idle_timeout_s=None, max_lifetime_s=None))
    late = requests(run, "submitted_s = 86500")[0]
    assert (late["outcome"], late["attempts"]) == ("ok", 2), late


# --- the Data API -------------------------------------------------------------------------------------------------


def test_data_api_call_pays_its_overhead_and_holds_no_connection_between_calls():
    run = run_of([(1, 11, 1.0)], duration_s=30, connections=DataApi(overhead_s=0.5))
    assert [r["latency_s"] for r in requests(run)] == pytest.approx([0.5 + 0.02] * 10)
    assert set(connections_at(run).values()) == {0}, "no client connection: the count is 0 between calls"


def test_data_api_lets_the_cluster_pause():
    run = run_of([(0, 1, 1.0)], duration_s=500, connections=DataApi(), auto_pause=True)
    assert times(run, "pause_started") == pytest.approx([HALF_CALL_S + 0.02 + 300]), (
        "only the running statement counts: the idle clock starts when it ends")


def test_data_api_call_to_a_paused_cluster_fails_after_the_overhead_and_starts_the_resume():
    run = run_of([(0, 1, 1.0), (500, 501, 1.0)], duration_s=700, connections=DataApi(), auto_pause=True)
    failed = requests(run, "submitted_s = 500")[0]
    assert (failed["outcome"], failed["error"], failed["attempts"]) == ("error", DATA_API_RESUMING, 1), failed
    assert failed["latency_s"] == pytest.approx(2 * HALF_CALL_S), "the call fails after its own overhead"
    assert times(run, "resume_started") == pytest.approx([500 + HALF_CALL_S]), "the failed call starts the resume"
    assert times(run, "resumed") == pytest.approx([500 + HALF_CALL_S + RESUME_S])


def test_data_api_calls_during_the_resume_wait_for_it():
    run = run_of([(0, 1, 1.0), (500, 501, 2.0)], duration_s=700, connections=DataApi(), auto_pause=True)
    waiting = requests(run, "submitted_s = 500.5")[0]
    assert waiting["outcome"] == "ok", waiting
    assert waiting["finished_s"] == pytest.approx(500 + HALF_CALL_S + RESUME_S + 0.02 + HALF_CALL_S), waiting


def test_data_api_call_still_waiting_for_the_resume_at_45_s_is_cut_with_the_resume_text():
    slow = ModelAssumptions(query_cost_cv=0, resume_median_s=60, resume_p95_s=60)
    run = run_of([(0, 1, 1.0), (500, 501, 2.0)], duration_s=700, connections=DataApi(), auto_pause=True,
                 assumptions=slow)
    waiting = requests(run, "submitted_s = 500.5")[0]
    assert (waiting["error"], waiting["latency_s"]) == (DATA_API_RESUMING, pytest.approx(45.0)), waiting


def test_data_api_call_that_waited_for_the_resume_and_then_queued_past_45_s_gets_the_resume_text_too():
    # A 40-s resume releases 20 held calls of 1 ACU-s each onto 1 ACU at once: the last ones pass 45 s in the queue.
    run = run_of([(0, 1, 1.0), (500, 505, 4.0)], duration_s=700, query_cpu_s=1.0, connections=DataApi(),
                 auto_pause=True)
    resumed = times(run, "resumed")[0]
    cut = requests(run, f"submitted_s > 500 AND submitted_s < {resumed} AND latency_s >= 45 - 1e-6")
    assert cut and all((r["error"], r["latency_s"]) == (DATA_API_RESUMING, pytest.approx(45.0)) for r in cut), cut
    assert all(r["submitted_s"] + 45 > resumed for r in cut), "these were no longer waiting for the resume"


def test_data_api_call_running_45_s_on_an_active_cluster_is_cut_with_the_statement_timeout():
    run = run_of([(0, 1, 1.0)], duration_s=100, query_cpu_s=50.0, connections=DataApi())
    row = requests(run)[0]
    assert (row["outcome"], row["error"], row["latency_s"]) == ("timeout", DATA_API_TIMEOUT, pytest.approx(45.0))
    cpu = dict(run.sql("SELECT time_s, cpu_pct FROM metrics").fetchall())
    assert cpu[60] == 0 and cpu[50] == 0, f"the cut statement stops using the server: {cpu}"


def test_data_api_resume_failure_is_retried_by_default():
    run = run_of([(0, 1, 1.0), (500, 501, 1.0)], duration_s=700, connections=DataApi(), auto_pause=True,
                 retry=RetryPolicy("fixed", base_s=1.0))
    late = requests(run, "submitted_s = 500")[0]
    assert (late["outcome"], late["attempts"]) == ("ok", 2), late
    assert late["finished_s"] == pytest.approx(500 + HALF_CALL_S + RESUME_S + 0.02 + HALF_CALL_S)


# --- retries: attempts, budgets, errors ---------------------------------------------------------------------------


def test_max_attempts_counts_the_first_attempt():
    # Every attempt is refused: 90 connections are held by idle blockers on a 1-ACU cluster.
    blockers = [IdleConnection(start_s=0, duration_s=100)] * 90
    for max_attempts in (1, 2, 4):
        run = run_of([(10, 11, 1.0)], duration_s=100, max_capacity=1, blocking=blockers,
                     retry=RetryPolicy("fixed", base_s=1.0, max_attempts=max_attempts))
        row = requests(run)[0]
        assert (row["outcome"], row["error"], row["attempts"]) == ("error", TOO_MANY_MYSQL, max_attempts), row
        assert row["latency_s"] == pytest.approx(1.0 * (max_attempts - 1)), "fixed: base_s between attempts"


def test_exponential_retries_sleep_base_times_two_to_the_n():
    blockers = [IdleConnection(start_s=0, duration_s=100)] * 90
    run = run_of([(10, 11, 1.0)], duration_s=100, max_capacity=1, blocking=blockers,
                 retry=RetryPolicy("exponential", base_s=0.5, cap_s=20, max_attempts=4))
    row = requests(run)[0]
    assert row["latency_s"] == pytest.approx(1.0 + 2.0 + 4.0), f"sleeps 0.5·2¹, 0.5·2², 0.5·2³: {row}"


def test_a_retry_budget_refuses_retries_once_spent():
    # 6 requests all refused; a bucket of 2 tokens pays for two retries in all, then requests end after one attempt.
    blockers = [IdleConnection(start_s=0, duration_s=100)] * 90
    run = run_of([(10, 16, 1.0)], duration_s=100, max_capacity=1, blocking=blockers,
                 retry=RetryPolicy("fixed", base_s=0.1, max_attempts=2, budget_tokens=2))
    attempts = [r["attempts"] for r in requests(run)]
    assert attempts == [2, 2, 1, 1, 1, 1], attempts
    assert {r["error"] for r in requests(run)} == {TOO_MANY_MYSQL}, "a refused retry keeps its last error"


def test_successes_refill_the_retry_budget():
    # The blockers end at t=20: later successes deposit 0.5 tokens each; two of them pay for one retry again.
    blockers = [IdleConnection(start_s=0, duration_s=20)] * 90
    run = run_of([(10, 12, 1.0), (30, 32, 1.0), (40, 41, 1.0)], duration_s=100, max_capacity=1,
                 blocking=blockers + [IdleConnection(start_s=40, duration_s=5)] * 90,
                 retry=RetryPolicy("fixed", base_s=0.1, max_attempts=2, budget_tokens=1, budget_deposit=0.5))
    rows = requests(run)
    assert [(r["submitted_s"], r["attempts"], r["outcome"]) for r in rows] == [
        (10.0, 2, "error"), (11.0, 1, "error"), (30.0, 1, "ok"), (31.0, 1, "ok"), (40.0, 2, "error")], rows


def test_no_retry_policy_means_one_attempt_each():
    run = run_of([(1, 2, 100.0)], duration_s=200, query_cpu_s=1.0, max_capacity=1, connections=ConnectPerRequest())
    assert {r["attempts"] for r in requests(run)} == {1}


def test_every_request_ends_exactly_once_with_error_null_exactly_when_ok():
    run = _forced_run(pool(min_size=1, max_size=1, acquire_timeout_s=0.5))
    total, distinct, unfinished, mismatch = run.sql("""
        SELECT count(*), count(DISTINCT request_id), count(*) FILTER (finished_s IS NULL OR isnan(finished_s)),
               count(*) FILTER ((error IS NULL) <> (outcome = 'ok'))
        FROM requests""").fetchall()[0]
    assert (total, distinct, unfinished, mismatch) == (2, 2, 0, 0)
