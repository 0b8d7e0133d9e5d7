"""Faults (notebook 09) on the run tables: what an instance failure and an AZ outage do, and what they never do."""

from __future__ import annotations

import pandas as pd
import pytest

from aurora_sim import ClusterConfig, ConnectionPool, LongTransaction, RetryPolicy, Workload, facts, simulate
from aurora_sim.faults import AzOutage, FaultAssumptions, InstanceFailure, connect_assumptions, losses
from aurora_sim.names import ENDPOINT_MOVED, FAILING_OVER, FAILOVER_COMPLETED, FAILOVER_STARTED, INSTANCE_FAILED

AT_S = 300.0
CONFIG = ClusterConfig(min_capacity=2, max_capacity=8, auto_pause=False)
REPORT = LongTransaction(start_s=AT_S - 60, duration_s=600)
RIDE_OUT = RetryPolicy("full_jitter", base_s=1, cap_s=10, max_attempts=60)
POOL = ConnectionPool(min_size=2, max_size=10)


def _run(fault=None, *, config=CONFIG, connections=POOL, retry=None,
         rate=3.0, query_cpu_s=0.05, blocking=(REPORT,), duration_s=900.0, seed=3):
    workload = Workload(segments=[(0, duration_s, rate)], query_cpu_s=query_cpu_s, blocking=blocking,
                        connections=connections, retry=retry)
    actions = [InstanceFailure(at_s=AT_S) if fault is None else fault] if fault != "none" else []
    return simulate(config, workload, duration_s=duration_s, seed=seed, metrics_period_s=5, actions=actions)


def _window(run) -> tuple[float, float]:
    return tuple(run.sql("SELECT min(time_s) FILTER (WHERE kind = $1), min(time_s) FILTER (WHERE kind = $2) "
                         "FROM events", params=[INSTANCE_FAILED, FAILOVER_COMPLETED]).fetchall()[0])


def test_a_failover_loses_no_committed_row() -> None:
    """Everything committed before the failure is committed in the run without a fault too, at the same moment;
    nothing is acknowledged while no instance exists; the losses table says 0 committed rows lost."""
    faulty, clean = _run(), _run("none")
    failed_s, back_s = _window(faulty)
    query = "SELECT request_id, finished_s FROM requests WHERE outcome = 'ok' AND finished_s < $1 ORDER BY 1"
    before = faulty.sql(query, params=[failed_s]).df()
    pd.testing.assert_frame_equal(before, clean.sql(query, params=[failed_s]).df())
    assert len(before) > 0
    during = faulty.sql("SELECT count(*) FROM requests WHERE outcome = 'ok' AND finished_s > $1 AND finished_s < $2",
                        params=[failed_s, back_s]).fetchall()[0][0]
    assert during == 0
    row = losses(faulty).loc[0]
    assert (row["committed lost"], row["committed during outage"], row["committed before"]) == (0, 0, len(before))


def test_in_flight_work_is_lost_and_counted() -> None:
    """The report's open transaction and the statements in flight end with the client's lost-connection error,
    one transaction_aborted each at the failure, and the losses table counts them."""
    run = _run(query_cpu_s=1.0, rate=3.0, config=ClusterConfig(min_capacity=2, max_capacity=2, auto_pause=False))
    text = facts.LOST_CONNECTION_ERROR["aurora-mysql"]
    aborted = run.sql("SELECT count(*) FROM events WHERE kind = 'transaction_aborted' AND message = $1 "
                      "AND time_s = $2", params=[text, AT_S]).fetchall()[0][0]
    lost_requests = run.sql("SELECT count(*) FROM requests WHERE error = $1", params=[text]).fetchall()[0][0]
    assert lost_requests >= 1  # statements in flight, never committed: their clients got the error
    assert aborted == lost_requests + 1  # … and the report
    assert losses(run).loc[0, "transactions lost"] == aborted


@pytest.mark.parametrize("engine", facts.ENGINES)
def test_connections_are_refused_during_the_outage_with_the_engine_error(engine: str) -> None:
    config = ClusterConfig(engine=engine, min_capacity=facts.CAPACITY_LADDER[engine][1], auto_pause=False)
    run = _run(config=config, connections=ConnectionPool(min_size=0, max_size=10, pre_ping=True), blocking=())
    failed_s, back_s = _window(run)
    errors = run.sql("SELECT DISTINCT error FROM requests WHERE submitted_s > $1 AND submitted_s < $2",
                     params=[failed_s, back_s]).fetchall()
    assert errors == [(facts.CANNOT_CONNECT_ERROR[engine],)]
    outside = run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok' AND (submitted_s < $1 OR submitted_s > "
                      "$2 + $3)", params=[failed_s, back_s, FaultAssumptions().dns_ttl_s]).fetchall()[0][0]
    assert outside == 0


def test_bulk_traffic_is_refused_with_the_can_t_connect_error_too() -> None:
    run = _run(connections=None, rate=20.0, query_cpu_s=0.01)
    failed_s, back_s = _window(run)
    refused = run.sql("SELECT count(*), count(DISTINCT error) FROM requests WHERE submitted_s > $1 AND "
                      "submitted_s < $2", params=[failed_s, back_s]).fetchall()[0]
    errors = run.sql("SELECT DISTINCT error FROM requests WHERE submitted_s > $1 AND submitted_s < $2",
                     params=[failed_s, back_s]).fetchall()
    assert refused[0] > 1000 and errors == [(facts.CANNOT_CONNECT_ERROR["aurora-mysql"],)]
    assert run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok' AND submitted_s >= $1",
                   params=[back_s]).fetchall()[0][0] == 0  # a new instance, and no DNS cache in bulk traffic


@pytest.mark.parametrize(("fault", "outage_s"), [(InstanceFailure(at_s=AT_S), 60.0),
                                                 (AzOutage(at_s=AT_S), 180.0),
                                                 (AzOutage(at_s=AT_S, capacity_wait_s=0), 60.0)])
def test_events_tell_the_failover_in_order(fault, outage_s: float) -> None:
    run = _run(fault)
    assumed = FaultAssumptions()
    log = run.sql("SELECT kind, time_s FROM events WHERE kind IN ($1, $2, $3, $4) ORDER BY seq",
                  params=[INSTANCE_FAILED, FAILOVER_STARTED, ENDPOINT_MOVED, FAILOVER_COMPLETED]).fetchall()
    assert log == [(INSTANCE_FAILED, AT_S), (FAILOVER_STARTED, AT_S + assumed.detect_s),
                   (ENDPOINT_MOVED, AT_S + outage_s), (FAILOVER_COMPLETED, AT_S + outage_s)]
    assert fault.outage_s == outage_s
    assert run.sql("SELECT rds_event_id FROM events WHERE kind = $1", params=[INSTANCE_FAILED]).fetchall() == [(None,)]
    states = run.sql("SELECT time_s, state FROM capacity WHERE time_s >= $1 ORDER BY seq", params=[AT_S]).fetchall()
    assert states[:2] == [(AT_S, FAILING_OVER), (AT_S + outage_s, "active")]
    if isinstance(fault, AzOutage):
        message = run.sql("SELECT message FROM events WHERE kind = $1", params=[FAILOVER_STARTED]).fetchall()[0][0]
        assert facts.FAILOVER_BEST_EFFORT_QUOTE in message


def test_metrics_show_no_connection_and_no_work_while_failing_over() -> None:
    run = _run(AzOutage(at_s=AT_S))
    rows = run.sql("SELECT DISTINCT connections, requests_completed FROM metrics WHERE state = $1",
                   params=[FAILING_OVER]).fetchall()
    assert rows == [(0, 0)]


def test_a_pool_without_pre_ping_hands_out_dead_connections_and_with_it_does_not() -> None:
    gone = facts.GONE_AWAY_ERROR["aurora-mysql"]
    count = "SELECT count(*) FROM requests WHERE error = $1"
    plain = _run(connections=ConnectionPool(min_size=4, max_size=10, max_lifetime_s=None), blocking=())
    pinged = _run(connections=ConnectionPool(min_size=4, max_size=10, max_lifetime_s=None, pre_ping=True),
                  blocking=())
    assert plain.sql(count, params=[gone]).fetchall()[0][0] >= 4
    assert pinged.sql(count, params=[gone]).fetchall()[0][0] == 0


def test_jittered_retries_ride_out_the_failover() -> None:
    assert _run(retry=RetryPolicy("none")).sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall()[0][0]
    ridden = _run(AzOutage(at_s=AT_S), retry=RIDE_OUT)
    assert ridden.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall()[0][0] == 0
    assert ridden.sql("SELECT max(attempts) FROM requests").fetchall()[0][0] > 1


def test_dns_clients_reach_the_new_instance_one_ttl_after_the_endpoint_moves() -> None:
    ttl = FaultAssumptions().dns_ttl_s
    run = _run(connections=ConnectionPool(min_size=0, max_size=10, pre_ping=True), blocking=(), rate=10.0)
    _, back_s = _window(run)
    refused, served = run.sql(
        "SELECT count(*) FILTER (WHERE outcome <> 'ok' AND submitted_s >= $1 AND submitted_s < $1 + $2), "
        "count(*) FILTER (WHERE outcome = 'ok' AND submitted_s >= $1 + $2 AND submitted_s < $1 + 2 * $2) "
        "FROM requests", params=[back_s, ttl]).fetchall()[0]
    assert refused > 0 and served > 0


def test_same_inputs_give_identical_tables() -> None:
    first, second = _run(AzOutage(at_s=AT_S), retry=RIDE_OUT), _run(AzOutage(at_s=AT_S), retry=RIDE_OUT)
    for table in ("events", "requests", "metrics", "capacity"):
        query = f"SELECT * FROM {table}"
        pd.testing.assert_frame_equal(first.sql(query).df(), second.sql(query).df())


def test_a_fault_during_a_pause_waits_for_the_cluster_to_be_back() -> None:
    config = ClusterConfig()  # auto-pause after 300 s idle
    workload = Workload(segments=[(0, 60, 1.0), (1500, 1800, 1.0)])
    run = simulate(config, workload, duration_s=2400, seed=1, actions=[InstanceFailure(at_s=900)])
    failed = run.sql("SELECT time_s FROM events WHERE kind = $1", params=[INSTANCE_FAILED]).fetchall()[0][0]
    resumed = run.sql("SELECT time_s FROM events WHERE kind = 'resumed'").fetchall()[0][0]
    assert failed == resumed


def test_a_discovery_by_dns_scan_pays_on_every_new_connection() -> None:
    scan, prefix = connect_assumptions("dns scan"), connect_assumptions("aurora prefix")
    assert scan.connect_latency_s - prefix.connect_latency_s == pytest.approx(FaultAssumptions().dns_scan_s)
    with pytest.raises(ValueError, match="discovery='ldap'"):
        connect_assumptions("ldap")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: FaultAssumptions(detect_s=-1), "detect_s=-1"),
    (lambda: FaultAssumptions(replace_s=10**6), "replace_s=1000000"),
    (lambda: AzOutage(at_s=10, capacity_wait_s=-5), "capacity_wait_s=-5"),
    (lambda: InstanceFailure(at_s=-1), "at_s=-1"),
    (lambda: simulate(CONFIG, Workload(segments=[(0, 60, 1.0)]), duration_s=60, actions=[InstanceFailure(at_s=60)]),
     "must happen before the run ends"),
])
def test_bad_input_is_a_value_error_naming_the_parameter(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_fault_assumptions_table_lists_every_assumption() -> None:
    table = FaultAssumptions.table()
    assert list(table.index) == ["detect_s", "replace_s", "capacity_wait_s", "dns_ttl_s", "dns_scan_s"]
    assert all(table["why"].str.len() > 40)


def test_every_fault_assumption_has_a_line_in_the_docs() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "model-assumptions.md").read_text()
    missing = [name for name in FaultAssumptions.table().index if f"| `{name}` |" not in page]
    assert not missing, f"docs/model-assumptions.md does not explain {missing}"


def test_the_shop_keeps_two_minutes_after_the_outage_however_long_it_lasts() -> None:
    from aurora_sim import scenarios

    assert scenarios.shop_failover().duration_s == scenarios.SHOP_END_S
    long_wait = scenarios.shop_failover(capacity_wait_s=900)
    assert long_wait.duration_s == scenarios.SHOP_FAULT_S + long_wait.actions[0].outage_s + scenarios.SHOP_AFTER_S


def test_the_figure_counts_every_request_and_retry_once() -> None:
    from aurora_sim import plots, scenarios

    run = scenarios.shop_failover(retry=RIDE_OUT).run()
    figure = plots.failover_requests_dict(run)
    requests, retries = run.sql("SELECT count(*), sum(attempts - 1) FROM requests WHERE submitted_s < $1",
                                params=[run.duration_s]).fetchall()[0]
    assert sum(int(sum(trace["y"])) for trace in figure["data"]) == requests
    assert sum(int(sum(trace["customdata"])) for trace in figure["data"]) == retries > 0
    failed_s, back_s = _window(run)
    band = figure["layout"]["shapes"][0]
    assert (band["x0"], band["x1"]) == (failed_s / 60, back_s / 60)
