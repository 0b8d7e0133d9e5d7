"""Behavioural tests of ``aurora_sim.cluster``: one test per rule of DESIGN §3, read from the run's tables.

Scenarios are small and deterministic: regular arrivals, every request costing exactly ``query_cpu_s``
(``query_cost_cv=0``) and a fixed 40 s resume (``resume_median_s == resume_p95_s``), unless a test says otherwise.
"""

from __future__ import annotations

import math

import pytest

from aurora_sim import (
    ClusterConfig,
    IdleConnection,
    LongQuery,
    LongTransaction,
    ModelAssumptions,
    TableLock,
    TemporaryTable,
    Workload,
    facts,
    simulate,
)
from run_tables import events, requests, times

FIXED = ModelAssumptions(query_cost_cv=0, resume_median_s=40, resume_p95_s=40)
RESUME_S = 40
PERIOD_S = FIXED.controller_period_s
WINDOW_S = FIXED.controller_window_s
BLOCKERS = [LongTransaction, LongQuery, TemporaryTable, TableLock]
TEXT_56 = "ERROR 1105 (HY000): The last transaction was aborted due to an unknown error. Please retry."
TEXT_57 = "ERROR 1105 (HY000): The last transaction was aborted due to Seamless Scaling. Please retry."
TEXT_PG = "FATAL: terminating connection due to administrator command"
DESIGN_KINDS = {
    "scale_started",
    "scaling_point_found",
    "scale_completed",
    "scale_failed",
    "scale_forced",
    "transaction_aborted",
    "connection_closed",
    "pause_started",
    "paused",
    "pause_cancelled",
    "resume_started",
    "resumed",
}


def run_of(
    segments, *, duration_s, query_cpu_s=0.02, blocking=(), assumptions=FIXED, metrics_period_s=60, seed=1, **config
):
    config.setdefault("auto_pause", False)
    workload = Workload(segments=segments, arrivals="regular", query_cpu_s=query_cpu_s, blocking=list(blocking))
    return simulate(
        ClusterConfig(**config),
        workload,
        duration_s=duration_s,
        seed=seed,
        metrics_period_s=metrics_period_s,
        assumptions=assumptions,
    )






def kinds(run):
    return [e["kind"] for e in events(run)]




def metrics(run):
    rel = run.sql("SELECT * FROM metrics ORDER BY time_s")
    return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]


def capacity_log(run):
    return run.sql("SELECT time_s, state, capacity_acu FROM capacity").fetchall()  # insertion order


# --- start and capacity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "min_capacity"),
    [("aurora-mysql", 1), ("aurora-mysql", 8), ("aurora-postgresql", 2), ("aurora-postgresql", 64)],
)
def test_starts_active_at_min_capacity(engine, min_capacity):
    run = run_of(
        [(0, 60, 1.0)],
        duration_s=120,
        engine=engine,
        min_capacity=min_capacity,
        max_capacity=192 if engine == "aurora-postgresql" else 256,
    )
    first = capacity_log(run)[0]
    assert first == (0.0, "active", min_capacity), f"expected (0, active, {min_capacity}) first, got {first}"
    row = metrics(run)[0]
    assert (row["time_s"], row["state"], row["capacity_acu"]) == (0, "active", min_capacity)


def _busy_run():
    """Up, down, pause, resume, a failed and a forced change: one run that visits every state."""
    return run_of(
        [(0, 100, 40.0), (100, 200, 80.0), (1800, 1801, 1.0)],
        duration_s=3000,
        max_capacity=16,
        auto_pause=True,
        metrics_period_s=10,
    )


def test_capacity_always_on_the_ladder_within_min_max_and_0_exactly_while_paused_or_resuming():
    for cfg in [dict(min_capacity=1, max_capacity=16), dict(min_capacity=2, max_capacity=4)]:
        run = run_of(
            [(0, 100, 40.0), (100, 200, 80.0), (1800, 1801, 1.0)],
            duration_s=3000,
            auto_pause=True,
            metrics_period_s=10,
            **cfg,
        )
        allowed = [c for c in facts.CAPACITY_LADDER["aurora-mysql"] if cfg["min_capacity"] <= c <= cfg["max_capacity"]]
        rows = capacity_log(run) + run.sql("SELECT time_s, state, capacity_acu FROM metrics").fetchall()
        assert {state for _, state, _ in rows} >= {"active", "scaling", "paused", "resuming"}
        for time_s, state, capacity in rows:
            if state in ("paused", "resuming"):
                assert capacity == 0, f"{state} at t={time_s} shows {capacity} ACU, expected 0"
            else:
                assert capacity in allowed, f"{state} at t={time_s}: {capacity} ACU not in {allowed}"


def test_one_rung_of_the_ladder_at_a_time():
    run = _busy_run()
    changes = [(e["capacity_from"], e["capacity_to"]) for e in events(run) if e["kind"].startswith("scale_")]
    assert changes, "expected capacity changes in the busy scenario"
    for capacity_from, capacity_to in changes:
        assert capacity_to in (capacity_from * 2, capacity_from // 2), f"{capacity_from} -> {capacity_to}"


def test_postgresql_steps_from_64_to_192():
    # 50 requests/s of 1 ACU-second each: 50 ACU of demand is 78 % of 64 ACU.
    run = run_of(
        [(0, 120, 50.0)], duration_s=120, query_cpu_s=1.0, engine="aurora-postgresql", min_capacity=64, max_capacity=384
    )
    started = events(run, "scale_started")
    assert [(e["capacity_from"], e["capacity_to"]) for e in started] == [(64, 192)]
    assert [(e["capacity_from"], e["capacity_to"]) for e in events(run, "scale_completed")] == [(64, 192)]


# --- load ---------------------------------------------------------------------------------------------------------


def test_cpu_pct_is_work_done_over_capacity():
    # 25 requests/s x 0.02 ACU-s = 0.5 ACU of work on 1 ACU: 50 %.
    run = run_of([(0, 600, 25.0)], duration_s=300)
    for row in metrics(run):
        assert row["cpu_pct"] == pytest.approx(50, abs=0.5), f"t={row['time_s']}: cpu {row['cpu_pct']:.2f} %"


def test_capacity_c_does_c_acu_seconds_of_work_per_second():
    # One request a second, 0.5 ACU-s each: alone on the server it takes 0.5 s at 1 ACU, 0.25 s at 2 ACU.
    for capacity, latency in [(1, 0.5), (2, 0.25), (8, 0.0625)]:
        run = run_of([(0, 30, 1.0)], duration_s=30, query_cpu_s=0.5, min_capacity=capacity)
        got = run.sql("SELECT min(latency_s), max(latency_s) FROM requests").fetchall()[0]
        assert got == pytest.approx((latency, latency)), f"{capacity} ACU: latency {got}, expected {latency}"


def test_request_cost_is_random_with_mean_query_cpu_s():
    # Sparse requests on 1 ACU never queue, so each latency is its cost.
    assumptions = ModelAssumptions(query_cost_cv=1.0)
    run = run_of([(0, 4000, 1.0)], duration_s=4000, query_cpu_s=0.05, assumptions=assumptions)
    mean, spread = run.sql("SELECT avg(latency_s), stddev(latency_s) FROM requests").fetchall()[0]
    assert mean == pytest.approx(0.05, rel=0.1), f"mean cost {mean:.4f} ACU-s, expected 0.05"
    assert spread == pytest.approx(0.05, rel=0.15), f"cost stddev {spread:.4f}, expected ~0.05 with cv 1"


def test_demand_above_capacity_queues_and_latency_grows():
    # 60 requests/s x 0.02 = 1.2 ACU of demand on a 1-ACU cluster that may not grow.
    run = run_of([(0, 60, 60.0)], duration_s=60, max_capacity=1, metrics_period_s=10)
    # The backlog grows by 0.2 ACU-s a second until the 90 connections of 1 ACU cap the queue (90 x 0.02 = 1.8 s).
    early = run.sql("SELECT max(latency_s) FROM requests WHERE submitted_s < 1").fetchall()[0][0]
    late = run.sql("SELECT min(latency_s) FROM requests WHERE submitted_s >= 50 AND outcome = 'ok'").fetchall()[0][0]
    assert early <= 0.25 and late > 1.5, f"latency should grow from {early:.3f} s to over 1.5 s, got {late:.3f} s"


def test_long_query_uses_cpu_and_other_blockers_do_not():
    for kind, cpu in [
        (LongQuery, 25.0),
        (LongTransaction, 0.0),
        (TemporaryTable, 0.0),
        (TableLock, 0.0),
        (IdleConnection, 0.0),
    ]:
        run = run_of([(0, 120, 0.0)], duration_s=120, blocking=[kind(start_s=0, duration_s=200)])
        got = [row["cpu_pct"] for row in metrics(run)]
        assert got == pytest.approx([cpu, cpu]), f"{kind.__name__}: cpu {got}, expected {cpu} % on 1 ACU"


# --- scaling up and down ------------------------------------------------------------------------------------------


def test_scale_up_when_cpu_above_70_pct():
    # 40 requests/s x 0.02 = 0.8 ACU: 80 % of 1 ACU.
    run = run_of([(0, 300, 40.0)], duration_s=300)
    started = events(run, "scale_started")
    assert started and started[0]["time_s"] == WINDOW_S, f"expected a scale-up after one window, got {started}"
    assert (started[0]["capacity_from"], started[0]["capacity_to"]) == (1, 2)
    assert "CPU 80 % > 70 %" in started[0]["message"]


def test_no_scale_up_at_cpu_below_70_pct():
    run = run_of([(0, 300, 30.0)], duration_s=300)  # 60 %
    assert events(run, "scale_started") == []


def test_scale_up_settles_where_the_load_fits():
    run = run_of([(0, 900, 40.0)], duration_s=900, max_capacity=256)
    changes = [(e["capacity_from"], e["capacity_to"]) for e in events(run, "scale_completed")]
    assert changes == [(1, 2)], f"0.8 ACU of demand should settle at 2 ACU, got {changes}"


def test_no_cooldown_before_scaling_up_two_scale_ups_back_to_back():
    # 0.8 ACU until t=100 (80 % of 1 ACU), then 1.6 ACU (80 % of 2 ACU).
    run = run_of([(0, 100, 40.0), (100, 400, 80.0)], duration_s=400)
    completed = events(run, "scale_completed")
    assert [(e["capacity_from"], e["capacity_to"]) for e in completed] == [(1, 2), (2, 4)]
    second_start = events(run, "scale_started")[1]["time_s"]
    gap = second_start - completed[0]["time_s"]
    # The second scale-up waits only for the window to fill with the new load, not for any cooldown
    # (the 2018 text had a 3-minute scale-up cooldown).
    assert gap < 180, f"second scale-up started {gap:.0f} s after the first completed"
    assert second_start - 100 <= WINDOW_S, f"second scale-up at {second_start}, load rose at 100"


def test_scale_up_when_connections_above_90_pct_even_with_idle_cpu():
    # 82 idle connections on 1 ACU (max_connections 90): 91 % in use, CPU 0 %.
    run = run_of([(0, 300, 0.0)], duration_s=300, blocking=[IdleConnection(start_s=0, duration_s=300)] * 82)
    started = events(run, "scale_started")
    assert [(e["capacity_from"], e["capacity_to"]) for e in started] == [(1, 2)]
    assert "82 connections > 90 % of max_connections 90" in started[0]["message"]
    assert max(row["cpu_pct"] for row in metrics(run)) == 0


def test_no_scale_up_at_90_pct_connections_or_fewer():
    run = run_of([(0, 300, 0.0)], duration_s=300, blocking=[IdleConnection(start_s=0, duration_s=300)] * 81)
    assert events(run, "scale_started") == []


def _scaled_up_then_quiet(**kwargs):
    """Scale 1 -> 2 at t=60..63 (0.8 ACU of load until t=100), then quiet until t=2000."""
    segments = kwargs.pop("segments", [(0, 100, 40.0), (100, 2000, 0.0)])
    return run_of(segments, duration_s=2000, **kwargs)


def test_scale_down_when_cpu_below_30_and_connections_below_40_pct():
    run = _scaled_up_then_quiet()
    down = [e for e in events(run, "scale_started") if e["capacity_to"] < e["capacity_from"]]
    assert [(e["capacity_from"], e["capacity_to"]) for e in down] == [(2, 1)]
    assert "< 30 %" in down[0]["message"] and "< 40 %" in down[0]["message"]


def test_no_scale_down_while_connections_at_40_pct_or_more():
    # 82 idle connections push 1 -> 2 ACU and then hold 46 % of 180: CPU is 0 % but no scale-down.
    run = _scaled_up_then_quiet(segments=[(0, 2000, 0.0)], blocking=[IdleConnection(start_s=0, duration_s=2000)] * 82)
    assert [(e["capacity_from"], e["capacity_to"]) for e in events(run, "scale_started")] == [(1, 2)]


def test_no_scale_down_while_cpu_at_30_pct_or_more():
    # 0.8 ACU of demand on 2 ACU is 40 % CPU for 2000 s.
    run = run_of([(0, 2000, 40.0)], duration_s=2000)
    assert [(e["capacity_from"], e["capacity_to"]) for e in events(run, "scale_started")] == [(1, 2)]


def test_no_scale_down_within_900_s_after_a_scale_up():
    run = _scaled_up_then_quiet()
    up_done = events(run, "scale_completed")[0]["time_s"]
    down = [e["time_s"] for e in events(run, "scale_started") if e["capacity_to"] < e["capacity_from"]]
    assert down, "expected a scale-down once the cooldown is over"
    gap = down[0] - up_done
    assert 900 <= gap < 900 + PERIOD_S + 1e-9, f"scale-down started {gap:.1f} s after scale-up completed"


def test_no_scale_down_within_310_s_after_a_scale_down():
    # 1 -> 2 -> 4, then quiet: 4 -> 2 after 900 s, 2 -> 1 after 310 more.
    run = run_of([(0, 100, 40.0), (100, 200, 80.0), (200, 2000, 0.0)], duration_s=2000)
    completed = events(run, "scale_completed")
    assert [(e["capacity_from"], e["capacity_to"]) for e in completed] == [(1, 2), (2, 4), (4, 2), (2, 1)]
    starts = [e["time_s"] for e in events(run, "scale_started")]
    gap = starts[3] - completed[2]["time_s"]
    assert 310 <= gap < 310 + PERIOD_S + 1e-9, f"second scale-down started {gap:.1f} s after the first completed"


def test_forced_scale_up_starts_the_900_s_cooldown():
    run = run_of(
        [(0, 200, 36.0), (200, 2000, 0.0)],
        duration_s=2000,
        timeout_action="ForceApplyCapacityChange",
        seconds_before_timeout=60,
        blocking=[LongTransaction(start_s=0, duration_s=1000)],
    )
    log = kinds(run)
    assert log[:2] == ["scale_started", "transaction_aborted"], "the transaction is aborted at the timeout"
    first_completed = log.index("scale_completed")
    assert log[first_completed - 1] == "scale_forced", "RDS-EVENT-0149 comes when the forced change applies"
    up_done = events(run, "scale_completed")[0]["time_s"]
    down = [e["time_s"] for e in events(run, "scale_started") if e["capacity_to"] < e["capacity_from"]]
    assert down and 900 <= down[0] - up_done < 900 + PERIOD_S + 1e-9, f"up done {up_done}, down at {down}"


def test_a_resume_does_not_restart_the_scale_down_cooldown():
    # 1 -> 2 at t=63; paused at 460 with 2 ACU; an idle connection from t=600 resumes it (resumed at 640)
    # and keeps it awake. The scale-down comes 900 s after t=63, not 900 s after the resume.
    run = _scaled_up_then_quiet(auto_pause=True, blocking=[IdleConnection(start_s=600, duration_s=1400)])
    assert times(run, "resumed") == [600 + RESUME_S]
    up_done = events(run, "scale_completed")[0]["time_s"]
    down = [e["time_s"] for e in events(run, "scale_started") if e["capacity_to"] < e["capacity_from"]]
    assert down and down[0] < 640 + 900, f"scale-down at {down}: the resume at 640 must not restart the cooldown"
    assert down[0] - up_done >= 900


# --- scaling points ----------------------------------------------------------------------------------------------


def test_scaling_state_spans_scale_started_to_scale_completed_or_failed():
    run = run_of(
        [(0, 400, 36.0)],
        duration_s=400,
        seconds_before_timeout=60,
        metrics_period_s=5,
        blocking=[LongTransaction(start_s=0, duration_s=150)],
    )
    log = capacity_log(run)
    spans = []
    for start in events(run, "scale_started"):
        end = next(
            e for e in events(run) if e["seq"] > start["seq"] and e["kind"] in ("scale_completed", "scale_failed")
        )
        spans.append((start["time_s"], end["time_s"], end["kind"]))
        assert (start["time_s"], "scaling", start["capacity_from"]) in log
        shown = end["capacity_to"] if end["kind"] == "scale_completed" else end["capacity_from"]
        assert (end["time_s"], "active", shown) in log
    assert [kind for _, _, kind in spans] == ["scale_failed", "scale_completed"], spans
    for row in metrics(run):
        if any(row["time_s"] in (t0, t1) for t0, t1, _ in spans):
            continue  # an event at the sampling instant: either side is "the value at that instant"
        inside = any(t0 < row["time_s"] < t1 for t0, t1, _ in spans)
        assert (row["state"] == "scaling") == inside, f"t={row['time_s']}: state {row['state']}, spans {spans}"


@pytest.mark.parametrize("kind", BLOCKERS, ids=[k.__name__ for k in BLOCKERS])
def test_blocking_operation_blocks_scaling_points_rollback_after_seconds_before_timeout(kind):
    # 36 requests/s x 0.02 = 72 % of 1 ACU (97 % with a LongQuery's 0.25 ACU).
    run = run_of(
        [(0, 300, 36.0)], duration_s=300, seconds_before_timeout=90, blocking=[kind(start_s=0, duration_s=1000)]
    )
    started, failed = events(run, "scale_started"), events(run, "scale_failed")
    assert failed, f"{kind.__name__} should block the scale-up: {kinds(run)}"
    assert failed[0]["time_s"] - started[0]["time_s"] == 90, "scale_failed comes exactly seconds_before_timeout later"
    assert "scale_completed" not in kinds(run) and "scaling_point_found" not in kinds(run)
    assert {row[2] for row in capacity_log(run)} == {1}, "capacity kept at 1 ACU under RollbackCapacityChange"
    assert failed[0]["rds_event_id"] == "RDS-EVENT-0143"


def test_scaling_resumes_once_the_blocking_operation_ends():
    run = run_of(
        [(0, 400, 36.0)],
        duration_s=400,
        seconds_before_timeout=60,
        blocking=[LongTransaction(start_s=0, duration_s=150)],
    )
    assert kinds(run) == ["scale_started", "scale_failed", "scale_started", "scaling_point_found", "scale_completed"]
    assert times(run, "scaling_point_found")[0] >= 150


def test_idle_connection_does_not_block_scaling_points():
    run = run_of(
        [(0, 300, 36.0)],
        duration_s=300,
        seconds_before_timeout=60,
        blocking=[IdleConnection(start_s=0, duration_s=1000)],
    )
    assert kinds(run)[:3] == ["scale_started", "scaling_point_found", "scale_completed"]
    assert times(run, "scale_started")[0] == times(run, "scaling_point_found")[0]


def test_too_busy_to_find_a_scaling_point_on_a_saturated_1_acu_cluster():
    # 120 requests/s x 0.02 ACU-s = 2.4 ACU of demand.
    spike = [(0, 60, 1.0), (60, 600, 120.0)]
    small = run_of(spike, duration_s=600, min_capacity=1, max_capacity=8)
    assert "scale_failed" in kinds(small), f"a saturated 1-ACU cluster should fail to scale: {kinds(small)}"
    assert all(e["capacity_from"] == 1 for e in events(small, "scale_failed"))
    big = run_of(spike, duration_s=600, min_capacity=4, max_capacity=8)
    assert "scale_failed" not in kinds(big)
    ok, p95 = big.sql("SELECT avg((outcome = 'ok')::INT), quantile_cont(latency_s, 0.95) FROM requests").fetchall()[0]
    assert ok == 1 and p95 < 0.1, f"4 ACU should handle 2.4 ACU of demand: ok share {ok}, p95 {p95:.3f} s"
    small_p95 = small.sql("SELECT quantile_cont(latency_s, 0.95) FROM requests WHERE outcome = 'ok'").fetchall()[0][0]
    assert small_p95 > 10 * p95


def test_after_scale_failed_a_new_scale_started_follows_while_the_trigger_holds():
    run = run_of([(0, 600, 120.0)], duration_s=600, max_capacity=8, seconds_before_timeout=60)
    log = kinds(run)
    assert log[:2] == ["scale_started", "scale_failed"], log
    failed = times(run, "scale_failed")[0]
    next_start = [t for t in times(run, "scale_started") if t > failed]
    # The controller restarts its window after scale_failed, then asks again as soon as a full window says so.
    gap = next_start[0] - failed if next_start else None
    assert gap is not None and WINDOW_S <= gap <= WINDOW_S + PERIOD_S, f"failed at {failed}, restarts {next_start}"


def test_no_scale_up_beyond_max_capacity():
    run = run_of([(0, 300, 120.0)], duration_s=300, max_capacity=1)
    assert kinds(run) == [], "a saturated cluster already at max_capacity has nothing to scale to"


# --- forced scaling ------------------------------------------------------------------------------------------------

ENGINE_TEXTS = [
    ("aurora-mysql", "5.6", 1, TEXT_56),
    ("aurora-mysql", "5.7", 1, TEXT_57),
    ("aurora-postgresql", "10", 2, TEXT_PG),
    ("aurora-postgresql", "11", 2, TEXT_PG),
    ("aurora-postgresql", "13", 2, TEXT_PG),
]
ROLLBACK = FIXED.rollback_s_per_transaction_s


def _forced_run(engine, version, min_capacity):
    # 2.4 ACU of demand per min_capacity ACU saturates the cluster; every kind of blocker is open.
    blocking = [kind(start_s=0, duration_s=1000) for kind in [*BLOCKERS, IdleConnection]]
    return run_of(
        [(0, 300, 120.0)],
        duration_s=300,
        query_cpu_s=0.02 * min_capacity,
        engine=engine,
        engine_version=version,
        min_capacity=min_capacity,
        max_capacity=min_capacity * 2,
        timeout_action="ForceApplyCapacityChange",
        seconds_before_timeout=60,
        blocking=blocking,
    )


@pytest.mark.parametrize(
    ("engine", "version", "min_capacity", "text"), ENGINE_TEXTS, ids=[f"{e}-{v}" for e, v, _, _ in ENGINE_TEXTS]
)
def test_force_apply_aborts_in_process_work_with_the_engine_text_and_drops_locks(engine, version, min_capacity, text):
    run = _forced_run(engine, version, min_capacity)
    forced = events(run, "scale_forced")
    assert forced, kinds(run)
    assert forced[0]["rds_event_id"] == "RDS-EVENT-0149"
    t = times(run, "scale_started")[0] + 60  # the timeout: seconds_before_timeout after scale_started
    at_force = [e for e in events(run) if e["time_s"] == t]
    aborted = [e for e in at_force if e["kind"] == "transaction_aborted"]
    closed = [e for e in at_force if e["kind"] == "connection_closed"]
    assert {e["message"] for e in aborted} == {text}
    killed = requests(run, f"finished_s = {t} AND outcome = 'error'")
    assert killed, "requests were in flight when the change was forced"
    assert {r["error"] for r in killed} == {text}
    # One per in-flight request, plus the LongTransaction and the LongQuery.
    assert len(aborted) == len(killed) + 2, f"{len(aborted)} aborted events for {len(killed)} requests + 2 blockers"
    # One per TemporaryTable and TableLock holder; the idle connection is kept.
    assert len(closed) == 2, [e["message"] for e in closed]
    assert any("temporary table" in e["message"] for e in closed) and any("table lock" in e["message"] for e in closed)
    # The LongTransaction open since t = 0 rolls back for ROLLBACK x its age; the change applies after that.
    assert forced[0]["time_s"] >= t + ROLLBACK * t, (forced[0]["time_s"], t)
    completed = [e for e in events(run, "scale_completed") if e["seq"] > forced[0]["seq"]]
    assert completed and completed[0]["seq"] == forced[0]["seq"] + 1 and completed[0]["time_s"] == forced[0]["time_s"]
    assert (completed[0]["capacity_from"], completed[0]["capacity_to"]) == (min_capacity, 2 * min_capacity)
    between = [e["kind"] for e in events(run) if e["time_s"] >= t and e["seq"] < forced[0]["seq"]]
    assert set(between) <= {"transaction_aborted", "connection_closed"}, between


def test_force_apply_killed_requests_were_in_flight():
    run = _forced_run("aurora-mysql", "5.7", 1)
    forced_at = set(times(run, "transaction_aborted"))
    killed = requests(run, f"error = '{TEXT_57}'")
    assert killed
    for r in killed:
        assert r["finished_s"] in forced_at and r["submitted_s"] <= r["finished_s"], r
        assert r["latency_s"] == r["finished_s"] - r["submitted_s"]


def test_force_apply_ends_the_blocking_operations():
    # After the force nothing blocks: the next change finds a scaling point as soon as the load allows.
    run = run_of(
        [(0, 300, 36.0)],
        duration_s=300,
        timeout_action="ForceApplyCapacityChange",
        seconds_before_timeout=60,
        max_capacity=2,
        blocking=[TemporaryTable(start_s=0, duration_s=1000), IdleConnection(start_s=0, duration_s=1000)],
    )
    assert kinds(run) == ["scale_started", "connection_closed", "scale_forced", "scale_completed"]
    assert run.sql("SELECT max(connections) FROM metrics WHERE time_s > 130").fetchall()[0][0] <= 2


# A transaction open since t = 0 when traffic climbs to 80 % of 1 ACU at t = 1205: the controller asks for 2 ACU at
# t = 1260 and, after the 300-s search, forces the change at t = 1560, when the transaction is 26 minutes old.
ROLLBACK_SEGMENTS = [(0, 1205, 1.0), (1205, 4000, 40.0)]
TWENTY_SIX_MINUTES_S = 26 * 60


def _rolled_back_run(ratio):
    assumptions = FIXED if ratio is None else ModelAssumptions(
        query_cost_cv=0, resume_median_s=40, resume_p95_s=40, rollback_s_per_transaction_s=ratio)
    return run_of(ROLLBACK_SEGMENTS, duration_s=4000, max_capacity=2, timeout_action="ForceApplyCapacityChange",
                  blocking=[LongTransaction(start_s=0, duration_s=3600)], assumptions=assumptions)


def test_a_forced_change_waits_while_a_26_minute_transaction_rolls_back():
    run = _rolled_back_run(None)  # the default ratio, 0.5
    timeout = times(run, "scale_started")[0] + 300
    assert timeout == TWENTY_SIX_MINUTES_S
    aborted = events(run, "transaction_aborted")
    assert [(e["time_s"], e["message"]) for e in aborted][:1] == [(timeout, TEXT_57)], "aborted at the timeout"
    applied = times(run, "scale_forced")
    assert applied == times(run, "scale_completed")[:1]
    expected = timeout + 0.5 * TWENTY_SIX_MINUTES_S  # 13 minutes of rollback
    assert expected + FIXED.scale_apply_s <= applied[0] <= expected + FIXED.scale_apply_s + 1, applied
    # Meanwhile the cluster stays scaling at 1 ACU and serves the queries that arrive, as usual.
    steps = [row for row in capacity_log(run) if timeout <= row[0] < expected]
    assert steps == [], f"no change of state or capacity during the rollback: {steps}"
    during = requests(run, f"submitted_s > {timeout} AND submitted_s < {expected}")
    assert during and {r["outcome"] for r in during} == {"ok"}
    assert max(r["latency_s"] for r in during) < 1


def test_the_forced_event_says_how_long_the_rollback_took():
    message = events(_rolled_back_run(None), "scale_forced")[0]["message"]
    assert message == ("The DB cluster has scaled from 1 capacity units to 2 capacity units, but scaling wasn't "
                       "seamless for this reason: no scaling point found within 300 s (ForceApplyCapacityChange); "
                       "the aborted transactions took 780 s to roll back.")


def test_with_no_rollback_time_the_forced_change_applies_at_the_timeout():
    run = _rolled_back_run(0)
    timeout = times(run, "scale_started")[0] + 300
    assert times(run, "transaction_aborted")[:1] == [timeout]
    applied = times(run, "scale_forced")[0]
    assert timeout + FIXED.scale_apply_s <= applied <= timeout + FIXED.scale_apply_s + 1, applied
    assert events(run, "scale_forced")[0]["message"].endswith("(ForceApplyCapacityChange); nothing to roll back.")


def test_the_cooldown_after_a_rolled_back_change_counts_from_scale_completed():
    run = run_of([(0, 1200, 1.0), (1200, 1800, 40.0), (1800, 5000, 1.0)], duration_s=5000, max_capacity=2,
                 timeout_action="ForceApplyCapacityChange", blocking=[LongTransaction(start_s=0, duration_s=3600)])
    up_done = times(run, "scale_completed")[0]
    down = [e["time_s"] for e in events(run, "scale_started") if e["capacity_to"] < e["capacity_from"]]
    assert down and 900 <= down[0] - up_done < 900 + PERIOD_S + 1e-9, (up_done, down)


def test_a_read_only_long_query_has_nothing_to_roll_back():
    run = run_of(ROLLBACK_SEGMENTS, duration_s=4000, max_capacity=2, timeout_action="ForceApplyCapacityChange",
                 blocking=[LongQuery(start_s=0, duration_s=3600)])
    timeout = times(run, "scale_started")[0] + 300
    assert times(run, "scale_forced")[0] <= timeout + FIXED.scale_apply_s + 1


# --- auto-pause and resume ----------------------------------------------------------------------------------------


def test_auto_pause_exactly_seconds_until_auto_pause_after_the_last_connection_closes():
    for pause_s in (300, 450):
        run = run_of([(0, 60, 1.0)], duration_s=1000, auto_pause=True, seconds_until_auto_pause=pause_s)
        last = run.sql("SELECT max(finished_s) FROM requests").fetchall()[0][0]
        started = times(run, "pause_started")
        assert started and started[0] - last == pytest.approx(pause_s, abs=1e-9), (
            f"pause_started at {started}, last request finished at {last:.2f}, expected {pause_s} s later"
        )


def test_paused_after_the_transition():
    run = run_of([(0, 60, 1.0)], duration_s=1000, auto_pause=True)
    started, paused = times(run, "pause_started"), times(run, "paused")
    assert paused and paused[0] - started[0] == pytest.approx(FIXED.pause_transition_s)
    assert (paused[0], "paused", 0) in capacity_log(run)
    assert events(run, "paused")[0]["capacity_from"] == 1


def test_a_pausing_cluster_is_still_active():
    run = run_of([(0, 1, 1.0)], duration_s=400, auto_pause=True, metrics_period_s=10)
    started = times(run, "pause_started")[0]
    for row in metrics(run):
        if started < row["time_s"] < started + FIXED.pause_transition_s:
            assert row["state"] == "active" and row["capacity_acu"] == 1, row


def test_auto_pause_only_at_zero_connections_one_idle_connection_keeps_it_awake():
    run = run_of([(0, 1, 0.0)], duration_s=2000, auto_pause=True, blocking=[IdleConnection(start_s=0, duration_s=1000)])
    assert times(run, "pause_started") == [1000 + 300], "the idle clock starts when the idle connection closes"


@pytest.mark.parametrize("kind", [*BLOCKERS, IdleConnection], ids=lambda k: k.__name__)
def test_every_blocking_operation_prevents_pause(kind):
    run = run_of([(0, 1, 0.0)], duration_s=1300, auto_pause=True, blocking=[kind(start_s=0, duration_s=900)])
    assert times(run, "pause_started") == [900 + 300]


def test_a_request_during_the_pause_transition_cancels_the_pause_and_resets_the_clock():
    # One request at t=0 (done at 0.02): pause_started at 300.02; a request at 332.5 cancels it.
    run = run_of([(0, 1, 1.0), (332.5, 333, 2.0)], duration_s=1200, auto_pause=True)
    assert kinds(run)[:4] == ["pause_started", "pause_cancelled", "pause_started", "paused"], kinds(run)
    first, second = times(run, "pause_started")
    assert first == pytest.approx(300.02)
    assert times(run, "pause_cancelled") == [332.5]
    assert second == pytest.approx(332.52 + 300), "the idle clock restarts when the cancelling request ends"
    cancelled = events(run, "pause_cancelled")[0]
    assert cancelled["rds_event_id"] == "RDS-EVENT-0146"
    late = requests(run, "submitted_s = 332.5")[0]
    assert late["outcome"] == "ok" and late["latency_s"] < 1, "a pausing cluster still serves the request"


def test_a_request_on_a_controller_tick_cancels_the_pause_once_and_resets_the_clock():
    # The same rule when the cancelling request arrives at t=330, a multiple of controller_period_s.
    run = run_of([(0, 1, 1.0), (330, 331, 1.0)], duration_s=1200, auto_pause=True)
    log = [(e["time_s"], e["kind"]) for e in events(run)]
    assert [kind for _, kind in log[:4]] == ["pause_started", "pause_cancelled", "pause_started", "paused"], (
        f"expected one cancel and the next pause 300 s after the request at 330 ends, got {log}"
    )
    assert times(run, "pause_started")[1] == pytest.approx(330.02 + 300)


def test_resume_on_the_next_request_with_a_cold_start():
    # Paused at 360.02 + ... ; the next request comes at t=600.
    run = run_of([(0, 1, 1.0), (600, 601, 1.0)], duration_s=1200, auto_pause=True)
    assert kinds(run)[:4] == ["pause_started", "paused", "resume_started", "resumed"], kinds(run)
    assert times(run, "resume_started") == [600]
    assert times(run, "resumed") == [600 + RESUME_S]
    cold = requests(run, "submitted_s = 600")[0]
    assert cold["outcome"] == "ok"
    assert cold["latency_s"] >= RESUME_S, f"cold-start latency {cold['latency_s']:.2f} s < resume {RESUME_S} s"
    assert (600, "resuming", 0) in capacity_log(run)


def test_resume_comes_back_at_the_capacity_it_had_when_paused():
    # Scale 1 -> 2 at t=63; load ends at t=100; paused at ~460 (before the 900 s scale-down cooldown ends).
    run = run_of([(0, 100, 40.0), (600, 601, 1.0)], duration_s=1000, auto_pause=True, metrics_period_s=10)
    paused, resumed = events(run, "paused")[0], events(run, "resumed")[0]
    assert paused["capacity_from"] == 2 and resumed["capacity_to"] == 2, (paused, resumed)
    assert (resumed["time_s"], "active", 2) in capacity_log(run)
    after = [row["capacity_acu"] for row in metrics(run) if row["time_s"] >= resumed["time_s"]]
    assert after and after[0] == 2, f"capacity after resume {after[:3]}, expected 2"


def test_blocking_operation_starting_while_paused_resumes_the_cluster():
    run = run_of(
        [(0, 1, 1.0)], duration_s=1200, auto_pause=True, blocking=[LongTransaction(start_s=600, duration_s=10)]
    )
    assert times(run, "resume_started") == [600]


def test_resume_time_follows_the_assumed_distribution():
    for median in (20, 60):
        assumptions = ModelAssumptions(query_cost_cv=0, resume_median_s=median, resume_p95_s=median)
        run = run_of([(0, 1, 1.0), (600, 601, 1.0)], duration_s=1200, auto_pause=True, assumptions=assumptions)
        assert times(run, "resumed")[0] - times(run, "resume_started")[0] == median


def test_auto_pause_false_never_pauses():
    run = run_of([(0, 1, 1.0)], duration_s=3 * 3600, auto_pause=False)
    assert not {"pause_started", "paused"} & set(kinds(run))
    assert run.sql("SELECT count(*) FROM metrics WHERE state <> 'active'").fetchall() == [(0,)]


# --- connections --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["aurora-mysql", "aurora-postgresql"])
def test_max_connections_by_capacity_and_lowest_rung_while_paused(engine):
    low = facts.CAPACITY_LADDER[engine][0]
    run = run_of(
        [(0, 100, 40.0 * low), (100, 1500, 0.0)], duration_s=1500, engine=engine, auto_pause=True, metrics_period_s=10
    )
    rows = metrics(run)
    assert {row["state"] for row in rows} >= {"active", "paused"}
    for row in rows:
        shown = row["capacity_acu"] if row["state"] in ("active", "scaling") else low
        expected = facts.max_connections(engine, shown)
        assert row["max_connections"] == expected, f"t={row['time_s']} {row['state']} {row['capacity_acu']} ACU"
    assert {row["capacity_acu"] for row in rows} >= {low, 2 * low}


REFUSALS = [
    # MySQL refuses the connection after max_connections (90 at 1 ACU); PostgreSQL refuses an application (not a
    # superuser) once max_connections - superuser_reserved_connections are in use (450 - 3 at 2 ACU).
    ("aurora-mysql", 90, "ERROR 1040 (HY000): Too many connections"),
    ("aurora-postgresql", 447, "FATAL: remaining connection slots are reserved for non-replication superuser "
     "connections"),
]


@pytest.mark.parametrize(("engine", "limit", "text"), REFUSALS, ids=[engine for engine, _, _ in REFUSALS])
def test_over_the_connection_limit_a_request_fails_at_once_with_the_engine_error(engine, limit, text):
    held = [IdleConnection(start_s=0, duration_s=100)] * limit
    run = run_of([(10, 11, 1.0)], duration_s=100, engine=engine, blocking=held)
    refused = requests(run)
    assert len(refused) == 1
    r = refused[0]
    assert (r["outcome"], r["error"], r["latency_s"], r["finished_s"]) == ("error", text, 0, 10), r


@pytest.mark.parametrize(("engine", "limit", "text"), REFUSALS, ids=[engine for engine, _, _ in REFUSALS])
def test_one_below_the_connection_limit_a_request_is_served(engine, limit, text):
    run = run_of([(10, 11, 1.0)], duration_s=100, engine=engine,
                 blocking=[IdleConnection(start_s=0, duration_s=100)] * (limit - 1))
    assert [r["outcome"] for r in requests(run)] == ["ok"]


def test_a_saturated_postgresql_cluster_stops_three_short_of_max_connections():
    # The superuser-reserved slots stay free; max_connections (the server's setting) still shows 450.
    run = run_of([(0, 60, 240.0)], duration_s=60, engine="aurora-postgresql", max_capacity=2, query_cpu_s=0.04,
                 metrics_period_s=10, blocking=[IdleConnection(start_s=0, duration_s=100)] * 440)
    peak, shown = run.sql("SELECT max(connections), max(max_connections) FROM metrics").fetchall()[0]
    assert (peak, shown) == (447, 450)
    refused = requests(run, "outcome = 'error'")
    assert refused and {r["error"] for r in refused} == {facts.TOO_MANY_CONNECTIONS_ERROR["aurora-postgresql"]}


def test_connections_count_requests_in_flight_and_held_operations():
    # Queued requests hold connections: a saturated 1-ACU cluster reaches its limit and refuses the rest.
    run = run_of(
        [(0, 60, 120.0)],
        duration_s=60,
        max_capacity=1,
        metrics_period_s=10,
        blocking=[LongTransaction(start_s=0, duration_s=100)] * 3,
    )
    peak = run.sql("SELECT max(connections) FROM metrics").fetchall()[0][0]
    assert peak == 90, f"connections should reach max_connections 90, peaked at {peak}"
    refused = run.sql("SELECT count(*) FROM requests WHERE error = 'ERROR 1040 (HY000): Too many connections'")
    assert refused.fetchall()[0][0] > 0


# --- the run's tables ---------------------------------------------------------------------------------------------


def test_requests_in_flight_at_duration_s_are_run_to_completion():
    run = run_of([(0, 60, 120.0)], duration_s=60, max_capacity=1)
    nulls, late, total = run.sql(
        "SELECT count(*) FILTER (finished_s IS NULL), count(*) FILTER (finished_s > 60), count(*) FROM requests"
    ).fetchall()[0]
    assert nulls == 0 and late > 0, f"{nulls} unfinished, {late} finished after duration_s"
    outcomes = run.sql("SELECT DISTINCT outcome FROM requests").fetchall()
    assert {o for (o,) in outcomes} <= {"ok", "error"}
    assert total == 60 * 120
    bad = run.sql("SELECT count(*) FROM requests WHERE (outcome = 'ok') = (error IS NOT NULL)").fetchall()[0][0]
    assert bad == 0, "error is NULL exactly when outcome is ok"


@pytest.mark.parametrize(("duration_s", "period_s"), [(600, 60), (600, 7), (90, 60), (60, 60)])
def test_metrics_rows_at_k_times_period(duration_s, period_s):
    run = run_of([(0, 60, 1.0)], duration_s=duration_s, metrics_period_s=period_s)
    got = [t for (t,) in run.sql("SELECT time_s FROM metrics ORDER BY time_s").fetchall()]
    expected = [k * period_s for k in range(math.ceil(duration_s / period_s))]
    assert got == pytest.approx(expected), f"metrics times {got[:5]}..., expected {expected[:5]}..."


def test_metrics_count_completed_and_failed_requests_per_period():
    run = run_of([(0, 60, 120.0)], duration_s=120, max_capacity=1, metrics_period_s=10)
    per_row = run.sql("SELECT sum(requests_completed), sum(requests_failed) FROM metrics").fetchall()[0]
    in_table = run.sql(
        "SELECT count(*) FILTER (outcome = 'ok' AND finished_s < 120), "
        "count(*) FILTER (outcome = 'error' AND finished_s < 120) FROM requests"
    ).fetchall()[0]
    assert per_row == in_table


def test_event_rds_event_id_per_kind():
    runs = [
        _busy_run(),
        _forced_run("aurora-mysql", "5.7", 1),
        run_of([(0, 1, 1.0), (330, 331, 1.0)], duration_s=1200, auto_pause=True),
        run_of([(0, 600, 120.0)], duration_s=600, max_capacity=8, seconds_before_timeout=60),
    ]
    seen = set()
    for run in runs:
        for e in events(run):
            seen.add(e["kind"])
            assert e["kind"] in DESIGN_KINDS, f"unknown event kind {e['kind']!r}"
            assert e["rds_event_id"] == facts.RDS_EVENT_IDS.get(e["kind"]), e
    assert seen == DESIGN_KINDS, f"scenarios should emit every kind; missing {DESIGN_KINDS - seen}"


def test_order_by_seq_is_chronological():
    for run in (_busy_run(), _forced_run("aurora-mysql", "5.6", 1)):
        log = events(run)
        assert [e["seq"] for e in log] == list(range(len(log)))
        stamps = [e["time_s"] for e in log]
        assert stamps == sorted(stamps), "events out of time order when read by seq"


def test_scale_started_message_gives_the_reason():
    run = run_of([(0, 300, 40.0)], duration_s=300)
    assert events(run, "scale_started")[0]["message"] == (
        "Scaling DB cluster from 1 capacity units to 2 capacity units for this reason: Autoscaling: CPU 80 % > 70 %"
    )


def test_latency_percentiles_are_null_when_nothing_finished():
    run = run_of([(0, 60, 1.0)], duration_s=300)
    rows = run.sql("SELECT time_s, requests_completed, p50_latency_ms, p95_latency_ms FROM metrics ORDER BY time_s")
    for time_s, completed, p50, p95 in rows.fetchall():
        if completed == 0:
            assert p50 is None and p95 is None, f"t={time_s}: nothing finished but p50={p50}, p95={p95}"
        else:
            assert p50 == pytest.approx(20) and p95 == pytest.approx(20), f"t={time_s}: 0.02 ACU-s on 1 ACU is 20 ms"


def test_requests_arriving_while_resuming_wait_for_the_resume():
    run = run_of([(0, 1, 1.0), (600, 620, 1.0)], duration_s=1200, auto_pause=True)
    resumed = times(run, "resumed")[0]
    waiting = requests(run, f"submitted_s >= 600 AND submitted_s < {resumed}")
    assert len(waiting) == 20
    for r in waiting:
        assert r["outcome"] == "ok" and r["finished_s"] >= resumed, f"request at {r['submitted_s']} ended before resume"


def test_one_row_per_request():
    run = run_of([(0, 100, 3.0), (200, 300, 0.5)], duration_s=400)
    assert run.sql("SELECT count(*), count(DISTINCT request_id) FROM requests").fetchall() == [(350, 350)]
