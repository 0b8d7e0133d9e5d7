"""Several databases on one cluster (notebook 04): tags in the tables, and what the databases share — scaling
points, connections, pauses and the bill — read from the run tables, beside the same databases split apart."""

from __future__ import annotations

import re

import pytest

from aurora_sim import (
    ClusterConfig,
    LongTransaction,
    RetryPolicy,
    TemporaryTable,
    Workload,
    facts,
    scenarios,
    simulate,
)
from aurora_sim.consolidation import plan_table, run_plan, separate_clusters
from aurora_sim.costs import bill
from run_tables import rows

SHOP = Workload(segments=[(0, 600, 5.0)], query_cpu_s=0.02)
REPORTS = Workload(segments=[(0, 600, 1.0)], query_cpu_s=0.02,
                   blocking=[LongTransaction(start_s=100, duration_s=400)])
EVENING = scenarios.EVENING_S
SPIKE_START_S, SPIKE_END_S = scenarios.SHOP_SPIKE_S
RIGHT_RANGES = {"shop": ClusterConfig(min_capacity=2, max_capacity=4), "reports": ClusterConfig(max_capacity=1),
                "tool": ClusterConfig(max_capacity=1)}


@pytest.fixture(scope="module")
def shared():
    """The three databases of notebook 04 on one cluster, the report open across the shop's peak."""
    return simulate(ClusterConfig(min_capacity=2, max_capacity=8), scenarios.three_databases(), duration_s=EVENING,
                    seed=7)


@pytest.fixture(scope="module")
def split():
    return separate_clusters(RIGHT_RANGES, scenarios.three_databases(), duration_s=EVENING, seed=7)


def test_requests_carry_their_database():
    run = simulate(ClusterConfig(), {"shop": SHOP, "reports": REPORTS}, duration_s=600, seed=1)
    counts = {r["database"]: r["n"] for r in rows(run, "SELECT database, count(*) AS n FROM requests GROUP BY 1")}
    assert set(counts) == {"shop", "reports"}
    assert counts["shop"] > 3 * counts["reports"]  # 5 requests/s beside 1
    assert run.databases == ("shop", "reports")


def test_a_plain_workload_has_no_database():
    run = simulate(ClusterConfig(), SHOP, duration_s=600, seed=1)
    assert rows(run, "SELECT count(*) AS n FROM requests WHERE database IS NOT NULL") == [{"n": 0}]
    assert rows(run, "SELECT count(*) AS n FROM events WHERE database IS NOT NULL") == [{"n": 0}]


def test_forced_scaling_names_the_database_of_each_aborted_transaction():
    config = ClusterConfig(max_capacity=4, timeout_action="ForceApplyCapacityChange", seconds_before_timeout=60)
    busy = Workload(segments=[(0, 600, 40.0)], query_cpu_s=0.02)  # 0.8 ACU on 1 ACU: asks to scale up
    reports = Workload(segments=[(0, 600, 1.0)], blocking=[LongTransaction(start_s=0, duration_s=500)])
    tool = Workload(segments=[(0, 600, 1.0)], blocking=[TemporaryTable(start_s=0, duration_s=500)])
    run = simulate(config, {"shop": busy, "reports": reports, "tool": tool}, duration_s=600, seed=1)
    aborted = {r["database"] for r in rows(run, "SELECT DISTINCT database FROM events "
                                                "WHERE kind = 'transaction_aborted'")}
    assert "reports" in aborted  # the report's transaction, aborted by the forced change
    assert aborted <= {"shop", "reports", "tool"}  # and any query in flight, under its own database
    dropped = rows(run, "SELECT database, message FROM events WHERE kind = 'connection_closed'")
    assert [r["database"] for r in dropped] == ["tool"]
    assert "TemporaryTable" in dropped[0]["message"]
    cluster_wide = rows(run, "SELECT DISTINCT database FROM events WHERE kind IN ('scale_started', 'scale_forced')")
    assert cluster_wide == [{"database": None}]


def test_each_database_draws_from_its_own_streams():
    tool = Workload(segments=[(0, 600, 3.0)])
    alone = simulate(ClusterConfig(), {"shop": SHOP}, duration_s=600, seed=3)
    beside = simulate(ClusterConfig(), {"tool": tool, "shop": SHOP}, duration_s=600, seed=3)
    query = "SELECT submitted_s FROM requests WHERE database = 'shop' ORDER BY submitted_s"
    assert alone.sql(query).fetchall() == beside.sql(query).fetchall()
    again = simulate(ClusterConfig(), {"tool": tool, "shop": SHOP}, duration_s=600, seed=3)
    for table in ("requests", "events", "metrics"):
        assert beside.sql(f"SELECT * FROM {table}").fetchall() == again.sql(f"SELECT * FROM {table}").fetchall()


def test_the_reports_transaction_holds_the_shops_scaling_point(shared, split):
    report_start = scenarios.EVENING_REPORT_START_S
    report_end = report_start + scenarios.EVENING_REPORT_DURATION_S
    failed = rows(shared, "SELECT time_s FROM events WHERE kind = 'scale_failed' ORDER BY seq")
    assert failed and all(report_start < f["time_s"] <= report_end + 1 for f in failed)
    assert not rows(shared, "SELECT * FROM events WHERE kind = 'scale_completed' AND capacity_to > capacity_from "
                            f"AND time_s BETWEEN {report_start} AND {report_end}")
    shop = split["shop"]
    assert not rows(shop, "SELECT * FROM events WHERE kind = 'scale_failed'")
    grew = shop.sql("SELECT max(capacity_acu) FROM capacity WHERE time_s BETWEEN $1 AND $2",
                    params=[SPIKE_START_S, SPIKE_END_S]).fetchall()[0][0]
    assert grew > RIGHT_RANGES["shop"].min_capacity


def test_the_shops_burst_takes_the_other_databases_connections(shared, split):
    refused = facts.TOO_MANY_CONNECTIONS_ERROR["aurora-mysql"]
    during = shared.sql("SELECT database, count(*) FROM requests WHERE error = $1 AND submitted_s BETWEEN $2 AND $3 "
                        "GROUP BY 1", params=[refused, SPIKE_START_S, SPIKE_END_S]).fetchall()
    assert {database for database, _ in during} >= {"shop", "tool", "reports"}
    for run in split.values():
        assert run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall() == [(0,)]


def test_a_shared_cluster_never_pauses_while_one_database_is_busy(shared, split):
    assert not rows(shared, "SELECT * FROM events WHERE kind = 'paused'")
    tool_pauses = split["tool"].sql("SELECT min(time_s) FROM events WHERE kind = 'paused' AND time_s > $1",
                                    params=[scenarios.TOOL_END_S]).fetchall()[0][0]
    assert tool_pauses is not None  # alone, the tool's cluster pauses once its users go home


def _steady(rate: float) -> Workload:
    return Workload(segments=[(0, 3600, rate)], query_cpu_s=0.02)


def test_the_bill_is_the_same_when_each_split_clusters_range_is_right():
    workloads = {"shop": _steady(40.0), "reports": _steady(40.0)}  # 0.8 ACU each
    shared = run_plan({"one": (("shop", "reports"), ClusterConfig(min_capacity=2, max_capacity=2))}, workloads,
                      duration_s=3600)
    right = separate_clusters({name: ClusterConfig(min_capacity=1, max_capacity=1) for name in workloads},
                              workloads, duration_s=3600)
    oversized = separate_clusters({name: ClusterConfig(min_capacity=4, max_capacity=8) for name in workloads},
                                  workloads, duration_s=3600)
    shared_bill = plan_table(shared).loc["total", "ACU-hours billed"]
    assert plan_table(right).loc["total", "ACU-hours billed"] == pytest.approx(shared_bill)
    assert plan_table(oversized).loc["total", "ACU-hours billed"] == pytest.approx(4 * shared_bill)
    for runs in (shared, right):
        assert all(run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall() == [(0,)]
                   for run in runs.values())


def test_a_split_lets_the_quiet_database_pause_and_bill_less(shared, split):
    tool = split["tool"]
    paused_s = tool.sql("SELECT min(time_s) FROM events WHERE kind = 'paused'").fetchall()[0][0]
    assert paused_s is not None
    assert bill(tool).billed_acu_hours < EVENING / 3600 * RIGHT_RANGES["tool"].min_capacity
    assert not rows(shared, "SELECT * FROM events WHERE kind = 'paused'")


@pytest.mark.parametrize(("workload", "message"), [
    ({}, "must be a Workload or a non-empty dict"),
    ({"": SHOP}, "database name '' must be a non-empty string"),
    ({"shop": 3}, "workload['shop']=3 must be a Workload"),
    ({"shop": Workload(segments=[(0, 60, 1.0)], retry=RetryPolicy())}, "bulk traffic only"),
])
def test_simulate_rejects_bad_database_mappings(workload, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate(ClusterConfig(), workload, duration_s=60)


def test_a_plan_puts_every_database_on_exactly_one_cluster():
    workloads = {"shop": SHOP, "reports": REPORTS}
    with pytest.raises(ValueError, match=re.escape("databases ('reports',) are on no cluster")):
        run_plan({"a": (("shop",), ClusterConfig())}, workloads, duration_s=60)
    with pytest.raises(ValueError, match=re.escape("database 'shop' is on 2 clusters")):
        run_plan({"a": (("shop",), ClusterConfig()), "b": (("shop", "reports"), ClusterConfig())}, workloads,
                 duration_s=60)
