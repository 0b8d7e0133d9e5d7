"""Week- and month-long runs (issue 11): what they show, that they repeat exactly, and that the controller's
fast-forward (many controller steps read from one server projection) gives the tables of stepping one by one.

The wall-clock budgets are `make bench`'s job (benchmarks/run.py); nothing here asserts a time.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from aurora_sim import (
    ClusterConfig,
    LongTransaction,
    ModifyCurrentDBClusterCapacity,
    ProvisionedConfig,
    ServerlessV2Config,
    Workload,
    capstone,
    cluster,
    scenarios,
    simulate,
)
from aurora_sim.actions import ClusterAction
from aurora_sim.faults import InstanceFailure
from aurora_sim.simulation import MAX_REQUEST_ROWS

TABLES = ("metrics", "events", "requests", "capacity")


def _tables(run) -> dict[str, pd.DataFrame]:
    return {name: run.sql(f"SELECT * FROM {name}").df() for name in TABLES}


def _simulate(scenario: scenarios.Scenario, actions: tuple = ()):
    return simulate(scenario.config, scenario.workload, duration_s=scenario.duration_s, seed=scenario.seed,
                    metrics_period_s=scenario.metrics_period_s, assumptions=scenario.assumptions, actions=actions)


@pytest.fixture(scope="module")
def office_week_run():
    return scenarios.office_week().run()


def test_office_week_asks_for_about_3_6_million_requests(office_week_run):
    completed, failed = office_week_run.sql(
        "SELECT sum(requests_completed), sum(requests_failed) FROM metrics").fetchall()[0]
    assert 3_550_000 < completed + failed < 3_650_000
    assert office_week_run.sql("SELECT count(*) FROM requests").fetchall()[0][0] == completed + failed


def test_office_week_pauses_every_night_and_over_the_weekend(office_week_run):
    kinds = dict(office_week_run.sql("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    # Idle from midnight on day 0 too, then once after each of the five working days; one resume each morning.
    assert kinds["paused"] == 6
    assert kinds["resumed"] == 5
    weekend = office_week_run.sql("SELECT DISTINCT state FROM metrics WHERE time_s >= 5 * 86400").fetchall()
    assert weekend == [("paused",)]


def test_office_week_serves_at_the_lowest_rung_between_mornings(office_week_run):
    # 20 requests/s × 0.02 ACU-s is 0.4 ACU: 1 ACU serves it at about 40 % CPU once the morning queue has drained.
    cpu = office_week_run.sql("SELECT median(cpu_pct) FROM metrics WHERE state = 'active' AND capacity_acu = 1 "
                              "AND requests_completed > 1000").fetchall()[0][0]
    assert 35 < cpu < 45


def test_office_month_keeps_failed_requests_only_and_every_request_counted():
    run = scenarios.office_month().run()
    completed, failed = run.sql("SELECT sum(requests_completed), sum(requests_failed) FROM metrics").fetchall()[0]
    assert completed + failed > MAX_REQUEST_ROWS  # so the requests table keeps only the failed ones
    rows, ok_rows = run.sql("SELECT count(*), count(*) FILTER (outcome = 'ok') FROM requests").fetchall()[0]
    assert (rows, ok_rows) == (failed, 0)
    assert run.sql("SELECT count(*) FROM metrics").fetchall()[0][0] == 30 * 24 * 60
    assert run.sql("SELECT count(*) FROM events WHERE kind = 'resumed'").fetchall()[0][0] == 22  # working days


def test_a_long_run_repeats_exactly():
    three_days = scenarios.office_week(days=3, rps=10.0)
    first, second = _tables(_simulate(three_days)), _tables(_simulate(three_days))
    for name in TABLES:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)


STEPPED_SCENARIOS = {
    "flash sale": scenarios.flash_sale(),
    "flash sale, force": scenarios.flash_sale(timeout_action="ForceApplyCapacityChange"),
    "office day": scenarios.office_day(),
    "office day, agent": scenarios.office_day(monitoring_agent=True),
    "tour": scenarios.tour(),
    "two office days": scenarios.office_week(days=2, rps=5.0),
    "night report": scenarios.nightly_report(),
    "postgresql, regular arrivals": scenarios.Scenario(
        name="regular", description="", duration_s=3600,
        config=ClusterConfig(engine="aurora-postgresql", max_capacity=8),
        workload=Workload(segments=[(0, 600, 2.0), (900, 2000, 40.0)], arrivals="regular", query_cpu_s=0.05,
                          blocking=[LongTransaction(start_s=1500, duration_s=200)])),
}


# Actions change the cluster in the middle of a fast-forward: it must end there, as if the steps had been taken.
ACTIONS = {
    "manual capacity change": (scenarios.office_week(days=1, rps=5.0), (ModifyCurrentDBClusterCapacity(
        at_s=10 * 3600 + 17.3, capacity=4),)),
    "instance failure": (scenarios.office_week(days=1, rps=5.0), (InstanceFailure(at_s=11 * 3600 + 2.1),)),
}


@pytest.mark.parametrize("name", list(STEPPED_SCENARIOS) + list(ACTIONS))
def test_fast_forward_gives_the_tables_of_stepping_one_by_one(name, monkeypatch):
    scenario, actions = ACTIONS.get(name) or (STEPPED_SCENARIOS[name], ())
    fast = _tables(_simulate(scenario, actions))
    monkeypatch.setattr(cluster.Cluster, "_can_fast_forward", lambda self: False)
    _assert_same_tables(fast, _tables(_simulate(scenario, actions)))


def _assert_same_tables(fast: dict[str, pd.DataFrame], stepped: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        a, b = fast[table], stepped[table]
        assert list(a.columns) == list(b.columns) and len(a) == len(b), table
        for column in a.columns:
            if a[column].dtype.kind == "f":
                # The same numbers, summed in other groupings: equal to the last few bits of a time of day
                # (a latency two finish times apart differs by about 1e-11 s).
                np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-9,
                                           atol=1e-6, equal_nan=True, err_msg=f"{table}.{column}")
            else:
                pd.testing.assert_series_equal(a[column], b[column], obj=f"{table}.{column}")


@dataclass(frozen=True, kw_only=True)
class _Knock(ClusterAction):
    """Asks for a connection and opens none (as a manual capacity change does): the idle clock does not restart."""

    def start(self, cluster_):
        cluster_.env.process(self._at_time(cluster_, cluster_.request_connection))


@pytest.fixture
def _fails_after_20_s():
    """A hang becomes a failure (no pytest-timeout here): SIGALRM raises in the simulation's loop."""
    def _raise(*_):
        raise TimeoutError("the run took over 20 s: the fast-forward looped")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_countdown_waking_at_its_own_step_ends_the_fast_forward_search(monkeypatch, _fails_after_20_s):
    """Regression: a connection request after the last close made every later countdown wake at the step that
    armed it (idle for long already) and fail; the fast-forward searched that step again forever."""
    workload = Workload(segments=[(0, 600, 5.0), (1800, 2400, 5.0)], query_cpu_s=0.02)
    scenario = scenarios.Scenario(name="knock", description="", duration_s=3600, config=ClusterConfig(),
                                  workload=workload, seed=1)
    fast = _tables(_simulate(scenario, (_Knock(at_s=700),)))
    assert fast["events"]["kind"].tolist() == ["pause_started", "paused"]  # only after the second burst
    monkeypatch.setattr(cluster.Cluster, "_can_fast_forward", lambda self: False)
    _assert_same_tables(fast, _tables(_simulate(scenario, (_Knock(at_s=700),))))


def _v2_scenario(name: str, config, workload: Workload, duration_s: float, metrics_period_s: float = 300):
    return scenarios.Scenario(name=name, description="", config=config, workload=workload, duration_s=duration_s,
                              metrics_period_s=metrics_period_s)


# Serverless v2 and provisioned (models.py) fast-forward through the same span machinery with a controller of their
# own: ramps, an oscillating sale, auto-pause and resume, a transaction open, a failover in the middle of a span.
OTHER_MODELS = {
    "v2, the shop's sale": (_v2_scenario("sale", ServerlessV2Config(min_capacity=0.5, max_capacity=8),
                                         capstone.window_workload("shop with a flash sale",
                                                                  *capstone.PANEL_WINDOWS_S["shop with a flash sale"]),
                                         3 * 3600), ()),
    "v2 with auto-pause, two dev days": (_v2_scenario("dev", ServerlessV2Config(min_capacity=0, max_capacity=4),
                                                      capstone.window_workload("dev/test database", 0, 2 * 86_400),
                                                      2 * 86_400, 3600), ()),
    "v2 with auto-pause, the new app's first day": (_v2_scenario(
        "new app", ServerlessV2Config(min_capacity=0, max_capacity=8, seconds_until_auto_pause=600),
        capstone.window_workload("new app", 0, 86_400), 86_400, 600), ()),
    "v2, a transaction open through a surge": (_v2_scenario(
        "surge", ServerlessV2Config(min_capacity=0.5, max_capacity=16), capstone._with_report(capstone.SURGE),
        3600, 60), ()),
    "v2, a failover mid-span": (_v2_scenario("failover", ServerlessV2Config(min_capacity=0.5, max_capacity=8),
                                             Workload(segments=[(0, 7200, 5.0)], query_cpu_s=0.05), 7200, 60),
                                (InstanceFailure(at_s=3000 + 2.1),)),
    "provisioned, the shop's sale": (_v2_scenario(
        "provisioned", ProvisionedConfig(instance_class="db.t3.medium"),
        capstone.window_workload("shop with a flash sale", *capstone.PANEL_WINDOWS_S["shop with a flash sale"]),
        3 * 3600), ()),
}


@pytest.mark.parametrize("name", list(OTHER_MODELS))
def test_v2_and_provisioned_fast_forward_give_the_tables_of_stepping_one_by_one(name, monkeypatch):
    scenario, actions = OTHER_MODELS[name]
    fast = _tables(_simulate(scenario, actions))
    monkeypatch.setattr(cluster.Cluster, "_can_fast_forward", lambda self: False)
    _assert_same_tables(fast, _tables(_simulate(scenario, actions)))


def test_v2_fast_forward_skips_the_quiet_hours():
    """A quiet v2 week takes a few hundred controller wake-ups, not one every 5 s (120,960)."""
    wakes = []
    original = cluster.Cluster._plan_span

    def counting(self, history, first_decision=None):
        wakes.append(self.env.now)
        return original(self, history, first_decision)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cluster.Cluster, "_plan_span", counting)
        run = simulate(ServerlessV2Config(min_capacity=0.5, max_capacity=8), capstone.shop_week(),
                       duration_s=capstone.WEEK_S, seed=7, metrics_period_s=3600)
    assert run.sql("SELECT count(*) FROM metrics").fetchall()[0][0] == 7 * 24
    assert len(wakes) < 1000
