"""Property tests over random tracked workloads (connection strategies, retry policies, engine timeouts).

Every run: each request ends exactly once, with 1 <= attempts <= max_attempts, an error exactly when it failed and
an outcome of ok/error/timeout; capacity stays on the ladder; the cluster pauses only with zero connections; the same
seed gives the same tables.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import event, given, settings

from aurora_sim import ConnectionPool, ConnectPerRequest, DataApi, simulate
from strategies import tracked_scenarios
from test_properties import check_capacity_always_legal_and_no_connections_while_paused, check_same_tables

EPS = 1e-6


def _run(scenario):
    arguments = dict(scenario)
    return simulate(arguments.pop("config"), arguments.pop("workload"), **arguments)


def _label(workload):
    connections = workload.connections
    kind = "none" if connections is None else type(connections).__name__
    return f"{kind} / retry {'none' if workload.retry is None else workload.retry.strategy}"


def check_every_tracked_request_ends_exactly_once(run):
    workload = run.workload
    policy = workload.retry
    most = policy.max_attempts if policy is not None and policy.strategy != "none" else 1
    total, distinct, unfinished, bad_outcome, bad_error, bad_latency, low, high = run.sql("""
        SELECT count(*), count(DISTINCT request_id),
               count(*) FILTER (finished_s IS NULL OR isnan(finished_s)),
               count(*) FILTER (outcome NOT IN ('ok', 'error', 'timeout') OR outcome IS NULL),
               count(*) FILTER ((error IS NULL) <> (outcome = 'ok')),
               count(*) FILTER (finished_s < submitted_s - 1e-9 OR abs(latency_s - (finished_s - submitted_s)) > 1e-6),
               coalesce(min(attempts), 1), coalesce(max(attempts), 1)
        FROM requests""").fetchall()[0]
    assert total == distinct, f"{total} rows for {distinct} request ids"
    assert unfinished == 0, f"{unfinished} requests never finished"
    assert bad_outcome == 0, f"{bad_outcome} requests with an outcome outside ok/error/timeout"
    assert bad_error == 0, f"{bad_error} requests whose error is NULL when failed or set when ok"
    assert bad_latency == 0, f"{bad_latency} requests with inconsistent times"
    assert low >= 1 and high <= most, f"attempts {low}..{high}, allowed 1..{most} ({_label(workload)})"
    for outcome, error in run.sql("SELECT DISTINCT outcome, error FROM requests WHERE outcome <> 'ok'").fetchall():
        event(f"{outcome}: {error.splitlines()[0]}")


def check_pauses_only_with_zero_connections(run):
    """A pool holding min_size >= 1 never lets the cluster pause; a per-request client is never in flight then."""
    workload, config = run.workload, run.config
    pauses = run.sql("SELECT time_s FROM events WHERE kind IN ('pause_started', 'paused') ORDER BY seq").fetchall()
    if pauses:
        event("pauses")
        assert config.auto_pause, f"paused at {pauses[0][0]} with auto_pause=False"
    connections = workload.connections
    if isinstance(connections, ConnectionPool) and connections.min_size >= 1:
        assert not pauses, f"paused at {pauses[0][0]} although {connections} keeps min_size connections open"
    if isinstance(connections, ConnectPerRequest) and workload.retry is None:
        busy = run.sql("""
            SELECT e.time_s, count(r.request_id) FROM events e JOIN requests r
              ON r.submitted_s < e.time_s - 1e-9 AND e.time_s + 1e-9 < r.finished_s
            WHERE e.kind IN ('pause_started', 'paused') GROUP BY e.time_s""").fetchall()
        assert not busy, f"paused while requests held their connections: {busy}"
    if isinstance(connections, DataApi):
        event("Data API")


def check_events_chronological(run):
    times = [row[0] for row in run.sql("SELECT time_s FROM events ORDER BY seq").fetchall()]
    assert all(b >= a - EPS for a, b in pairwise(times)), "events out of time order"


@settings(max_examples=200, deadline=None)
@given(tracked_scenarios())
def test_invariants_hold_for_random_tracked_workloads(scenario):
    event(_label(scenario["workload"]))
    run = _run(scenario)
    check_every_tracked_request_ends_exactly_once(run)
    check_capacity_always_legal_and_no_connections_while_paused(run)
    check_pauses_only_with_zero_connections(run)
    check_events_chronological(run)
    for (kind,) in run.sql("SELECT DISTINCT kind FROM events").fetchall():
        event(f"emits {kind}")
    check_same_tables(run, _run(scenario))
