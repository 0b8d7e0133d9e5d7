"""Property tests over random clusters and workloads: the invariants of DESIGN §3/§4 hold for every run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st

from aurora_sim import facts, simulate
from aurora_sim.names import TABLES
from strategies import extreme_scenarios, resume_assumptions, scenarios

EPS = 1e-6


def _run(scenario, **overrides):
    arguments = scenario | overrides
    return simulate(arguments.pop("config"), arguments.pop("workload"), **arguments)


def check_every_request_ends_exactly_once(run):
    total, distinct, unfinished, bad_outcome, bad_error, bad_latency = run.sql("""
        SELECT count(*), count(DISTINCT request_id),
               count(*) FILTER (finished_s IS NULL OR isnan(finished_s)),
               count(*) FILTER (outcome NOT IN ('ok', 'error') OR outcome IS NULL),
               count(*) FILTER ((error IS NULL) <> (outcome = 'ok')),
               count(*) FILTER (finished_s < submitted_s OR abs(latency_s - (finished_s - submitted_s)) > 1e-6)
        FROM requests""").fetchall()[0]
    assert total == distinct, f"{total} rows for {distinct} request ids"
    assert unfinished == 0, f"{unfinished} requests never finished"
    assert bad_outcome == 0 and bad_error == 0, f"{bad_outcome} bad outcomes, {bad_error} error/outcome mismatches"
    assert bad_latency == 0, f"{bad_latency} requests with inconsistent times"


def check_capacity_always_legal_and_no_connections_while_paused(run):
    config = run.config
    allowed = {c for c in facts.CAPACITY_LADDER[config.engine] if config.min_capacity <= c <= config.max_capacity}
    rows = run.sql("SELECT 'capacity', time_s, state, capacity_acu, 0 FROM capacity "
                   "UNION ALL SELECT 'metrics', time_s, state, capacity_acu, connections FROM metrics").fetchall()
    for table, time_s, state, capacity, connections in rows:
        assert state in ("active", "scaling", "paused", "resuming"), f"{table} t={time_s}: state {state!r}"
        if state in ("paused", "resuming"):
            assert capacity == 0, f"{table} t={time_s}: {state} with {capacity} ACU"
        else:
            assert capacity in allowed, f"{table} t={time_s}: {state} at {capacity} ACU, allowed {sorted(allowed)}"
        if state == "paused":
            assert connections == 0, f"{table} t={time_s}: {connections} connections open while paused"
    start = ("active", config.min_capacity)
    for table in ("capacity", "metrics"):
        at_zero = [row[2:4] for row in rows if row[0] == table and row[1] == 0]
        assert at_zero and at_zero[0] == start, f"{table} starts {at_zero}, expected {start}"


def _blocking_intervals(run, forced):
    """(start, end) of each blocking operation, cut short where a forced change ended it (at its timeout)."""
    intervals = []
    for op in run.workload.blocking:
        end = op.end_s
        if op.on_force != "keep":
            if any(f == op.start_s for f in forced):
                continue  # opened at the very instant of a force: which came first is a tie
            end = min([f for f in forced if op.start_s < f < end], default=end)
        intervals.append((op.start_s, end))
    return intervals


def check_events(run):
    """One rung per change, cooldowns never violated, chronological log, pauses only at zero connections."""
    engine = run.config.engine
    log = run.sql("""
        SELECT e.seq, e.time_s, e.kind, e.capacity_from, e.capacity_to,
               CASE WHEN e.kind IN ('pause_started', 'paused') THEN
                   (SELECT count(*) FROM requests r WHERE r.submitted_s < e.time_s AND e.time_s < r.finished_s)
               END
        FROM events e ORDER BY e.seq""").fetchall()
    forced = _force_instants(run)
    for kind in sorted({row[2] for row in log}):
        event(f"emits {kind}")  # --hypothesis-show-statistics shows how often each rule was exercised
    for (message,) in run.sql("SELECT message FROM events WHERE kind = 'scale_forced'").fetchall():
        event("a forced change waited for a rollback" if "s to roll back" in message else "a forced change")
    last_up = last_down = None
    previous_time = 0.0
    for seq, time_s, kind, capacity_from, capacity_to, busy in log:
        assert time_s >= previous_time - EPS, f"event {seq} at {time_s} after one at {previous_time}"
        previous_time = time_s
        if kind == "scale_started":
            down = capacity_to < capacity_from
            assert capacity_to == facts.next_rung(engine, capacity_from, -1 if down else +1), (
                f"{capacity_from} -> {capacity_to} is not one rung")
            if down:
                assert last_up is None or time_s >= last_up + 900 - EPS, (
                    f"scale-down started at {time_s}, {time_s - last_up:.1f} s after a scale-up completed")
                assert last_down is None or time_s >= last_down + 310 - EPS, (
                    f"scale-down started at {time_s}, {time_s - last_down:.1f} s after a scale-down completed")
        elif kind == "scale_completed":
            if capacity_to > capacity_from:
                last_up = time_s
            else:
                last_down = time_s
        elif kind in ("pause_started", "paused"):
            assert run.config.auto_pause, f"{kind} at t={time_s} with auto_pause=False"
            assert busy == 0, f"{kind} at t={time_s} with {busy} requests in flight"
            open_ops = [(s, e) for s, e in _blocking_intervals(run, forced) if s < time_s < e]
            assert not open_ops, f"{kind} at t={time_s} with blocking operations open {open_ops}"


def _force_instants(run):
    """When ForceApplyCapacityChange aborted or dropped something: at the timeout, and again after a rollback if
    new work held the scaling point then."""
    text = facts.FORCED_SCALING_ERROR[(run.config.engine, run.config.engine_version)]
    return [time_s for (time_s,) in run.sql(
        "SELECT time_s FROM events WHERE (kind = 'transaction_aborted' AND message = $text) OR "
        "(kind = 'connection_closed' AND message LIKE 'Connection dropped by ForceApplyCapacityChange%') "
        "ORDER BY seq", params={"text": text}).fetchall()]


# Each row holds its key (time_s, seq, request_id), so an order-free sum of row hashes fingerprints a table.
_FINGERPRINT = "SELECT " + ", ".join(
    f"(SELECT [count(*)::VARCHAR, sum(hash(t)::HUGEINT)::VARCHAR] FROM {name} AS t)"
    for name in ("metrics", "events", "requests", "capacity"))


def check_same_tables(run, again):
    """Same seed, same tables: compare a fingerprint of all four, and show the difference if they disagree."""
    assert set(TABLES) == {"metrics", "events", "requests", "capacity"}
    if run.sql(_FINGERPRINT).fetchall() != again.sql(_FINGERPRINT).fetchall():
        for name in TABLES:
            pd.testing.assert_frame_equal(
                run.sql(f"SELECT * FROM {name}").df(),
                again.sql(f"SELECT * FROM {name}").df(),
                obj=f"table {name} (same seed)",
            )
        raise AssertionError("same seed, different table fingerprints")


@settings(max_examples=500, deadline=None)
@given(scenarios())
def test_invariants_hold_for_random_clusters_and_workloads(scenario):
    run = _run(scenario)
    check_every_request_ends_exactly_once(run)
    check_capacity_always_legal_and_no_connections_while_paused(run)
    check_events(run)
    check_same_tables(run, _run(scenario))


def _arrivals(run):
    return run.sql("SELECT submitted_s FROM requests ORDER BY request_id").df()["submitted_s"].to_numpy()


@settings(max_examples=30, deadline=None)
@given(scenarios(), resume_assumptions())
def test_changing_the_resume_time_leaves_arrivals_unchanged(scenario, assumptions):
    base, changed = _run(scenario), _run(scenario, assumptions=assumptions)
    np.testing.assert_array_equal(_arrivals(base), _arrivals(changed))


@settings(max_examples=30, deadline=None)
@given(scenarios(), st.floats(0.001, 0.2))
def test_changing_query_cpu_s_leaves_arrivals_unchanged(scenario, query_cpu_s):
    changed_workload = dataclasses.replace(scenario["workload"], query_cpu_s=query_cpu_s)
    base, changed = _run(scenario), _run(scenario, workload=changed_workload)
    np.testing.assert_array_equal(_arrivals(base), _arrivals(changed))


@settings(max_examples=60, deadline=None)
@given(extreme_scenarios())
def test_invariants_hold_at_the_edges_of_accepted_values(scenario):
    """Issue 12: every value simulate() accepts runs to the end, with the same invariants as ordinary runs."""
    event(f"query_cost_cv={scenario['assumptions'].query_cost_cv:g}")
    run = _run(scenario)
    check_every_request_ends_exactly_once(run)
    check_capacity_always_legal_and_no_connections_while_paused(run)
    check_events(run)
    check_same_tables(run, _run(scenario))
