"""Serverless v2, provisioned and the manual capacity change (models.py, manual_capacity.py, costs.py)."""

import re

import pytest

from aurora_sim import (
    ClusterConfig,
    LongTransaction,
    ModelAssumptions,
    ModifyCurrentDBClusterCapacity,
    ProvisionedConfig,
    ServerlessV2Config,
    Workload,
    facts,
    simulate,
)
from aurora_sim.costs import bill
from aurora_sim.models import PROVISIONED_HOURLY_PRICE_USD, next_v2_capacity, tariff

# A quiet minute, then 2.4 ACUs of work for 20 minutes, with a transaction open from before the surge to after it.
SURGE = Workload(segments=[(0, 600, 2.0), (600, 1800, 48.0), (1800, 2400, 2.0)], query_cpu_s=0.05,
                 blocking=[LongTransaction(start_s=300, duration_s=1800)])


def _scale_ups(run):
    return run.sql("SELECT count(*) FROM events WHERE kind = 'scale_completed' AND capacity_to > capacity_from "
                   "AND time_s BETWEEN 600 AND 2100").fetchall()[0][0]


def _failed(run):
    return run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall()[0][0]


def test_v2_scales_during_an_open_transaction_while_v1_is_blocked():
    v1 = simulate(ClusterConfig(min_capacity=1, max_capacity=16), SURGE, duration_s=2400, seed=3)
    v2 = simulate(ServerlessV2Config(min_capacity=0.5, max_capacity=16), SURGE, duration_s=2400, seed=3)
    v1_failed_scalings = v1.sql("SELECT count(*) FROM events WHERE kind = 'scale_failed'").fetchall()[0][0]
    assert _scale_ups(v1) == 0 and v1_failed_scalings > 0, "v1 should find no scaling point while it is open"
    assert _scale_ups(v2) > 0, "v2 should scale in place with the transaction open"
    top = v2.sql("SELECT max(capacity_acu) FROM capacity WHERE time_s BETWEEN 600 AND 1800").fetchall()[0][0]
    assert top >= 2.5, f"v2 reached only {top} ACU for 2.4 ACUs of work"
    assert _failed(v2) == 0 and _failed(v1) > 0


def test_v2_capacity_moves_in_half_steps_within_its_range():
    run = simulate(ServerlessV2Config(min_capacity=1, max_capacity=4), SURGE, duration_s=2400, seed=1)
    capacities = [row[0] for row in run.sql("SELECT capacity_acu FROM capacity").fetchall()]
    assert all(1 <= c <= 4 and (2 * c).is_integer() for c in capacities), capacities
    assert run.sql("SELECT count(*) FROM events WHERE rds_event_id IS NOT NULL").fetchall()[0][0] == 0


def test_v2_with_minimum_zero_pauses_and_resumes_in_its_resume_time():
    wl = Workload(segments=[(0, 60, 1.0), (1200, 1260, 1.0)], query_cpu_s=0.01)
    run = simulate(ServerlessV2Config(min_capacity=0, max_capacity=4), wl, duration_s=1800, seed=2)
    kinds = [row[0] for row in run.sql("SELECT kind FROM events ORDER BY seq").fetchall()]
    assert "paused" in kinds and "resumed" in kinds, kinds
    (took,) = run.sql("SELECT max(r.time_s - s.time_s) FROM events s, events r WHERE s.kind = 'resume_started' "
                      "AND r.kind = 'resumed' AND r.time_s >= s.time_s").fetchall()[0]
    assert took == pytest.approx(ModelAssumptions().v2_resume_s) == facts.V2_RESUME_UP_TO_S


def test_v2_without_minimum_zero_never_pauses():
    wl = Workload(segments=[(0, 60, 1.0)], query_cpu_s=0.01)
    run = simulate(ServerlessV2Config(min_capacity=0.5, max_capacity=4), wl, duration_s=3600, seed=2)
    assert run.sql("SELECT count(*) FROM events WHERE kind LIKE 'pause%'").fetchall()[0][0] == 0


def test_provisioned_never_scales_or_pauses():
    wl = Workload(segments=[(0, 600, 0.0), (600, 1200, 60.0), (1200, 7200, 0.0)], query_cpu_s=0.05,
                  blocking=[LongTransaction(start_s=100, duration_s=300)])
    run = simulate(ProvisionedConfig(instance_class="db.t3.medium"), wl, duration_s=7200, seed=4)
    assert run.sql("SELECT count(*) FROM events").fetchall()[0][0] == 0
    assert run.sql("SELECT DISTINCT capacity_acu FROM capacity").fetchall() == [(2,)]
    assert run.sql("SELECT DISTINCT state FROM metrics").fetchall() == [("active",)]


def test_next_v2_capacity_doubles_at_most_and_sheds_gradually():
    a = ModelAssumptions()
    assert next_v2_capacity(0.5, 10.0, 10.0, lowest=0.5, highest=64, assumptions=a) == 1.0
    assert next_v2_capacity(4.0, 3.0, 3.0, lowest=0.5, highest=64, assumptions=a) == 4.5  # 3 / 0.7 = 4.3 → 4.5
    assert next_v2_capacity(4.0, 0.0, 2.9, lowest=0.5, highest=64, assumptions=a) == 4.0  # the window's peak fits
    assert next_v2_capacity(16.0, 0.0, 0.0, lowest=0.5, highest=64, assumptions=a) == 14.0
    assert next_v2_capacity(1.0, 0.0, 0.0, lowest=1.0, highest=64, assumptions=a) == 1.0


# --- the manual capacity change ------------------------------------------------------------------------------

HELD = Workload(segments=[(0, 1800, 2.0)], query_cpu_s=0.05, blocking=[LongTransaction(start_s=60, duration_s=1200)])


def _scaling_events(run):
    return run.sql("SELECT kind, rds_event_id, time_s, capacity_to FROM events WHERE kind LIKE 'scal%' "
                   "ORDER BY seq").fetchall()


def test_manual_change_rolls_back_at_its_own_timeout():
    change = ModifyCurrentDBClusterCapacity(at_s=120, capacity=8, seconds_before_timeout=30,
                                            timeout_action="RollbackCapacityChange")
    run = simulate(ClusterConfig(max_capacity=8), HELD, duration_s=1800, seed=5, actions=[change])
    events = _scaling_events(run)
    assert events[:2] == [("scale_started", "RDS-EVENT-0141", 120.0, 8), ("scale_failed", "RDS-EVENT-0143", 150.0, 8)]
    assert "within 30 s (RollbackCapacityChange)" in run.sql(
        "SELECT message FROM events WHERE kind = 'scale_failed'").fetchall()[0][0]
    assert run.sql("SELECT max(capacity_acu) FROM capacity WHERE time_s < 1260").fetchall()[0][0] == 1


def test_manual_change_forces_by_default_and_aborts_the_transaction():
    change = ModifyCurrentDBClusterCapacity(at_s=120, capacity=8, seconds_before_timeout=10)
    run = simulate(ClusterConfig(max_capacity=8), HELD, duration_s=1800, seed=5, actions=[change])
    kinds = [kind for kind, *_ in _scaling_events(run)]
    assert kinds[:3] == ["scale_started", "scale_forced", "scale_completed"], kinds
    forced = run.sql("SELECT rds_event_id, time_s FROM events WHERE kind = 'scale_forced'").fetchall()[0]
    assert forced[0] == "RDS-EVENT-0149" and forced[1] >= 130.0
    aborted = run.sql("SELECT message FROM events WHERE kind = 'transaction_aborted'").fetchall()
    assert (facts.FORCED_SCALING_ERROR[("aurora-mysql", "5.7")],) in aborted


def test_manual_change_jumps_rungs_and_then_keeps_the_cooldown():
    idle = Workload(segments=[(0, 3600, 1.0)], query_cpu_s=0.01)
    run = simulate(ClusterConfig(max_capacity=16, auto_pause=False), idle, duration_s=3600, seed=1,
                   actions=[ModifyCurrentDBClusterCapacity(at_s=60, capacity=16)])
    first = _scaling_events(run)[:3]
    assert [row[0] for row in first] == ["scale_started", "scaling_point_found", "scale_completed"]
    assert first[-1][3] == 16
    down = run.sql("SELECT min(time_s) FROM events WHERE kind = 'scale_started' AND capacity_to < capacity_from"
                   ).fetchall()[0][0]
    assert down >= first[-1][2] + facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S


def test_manual_change_resumes_a_paused_cluster():
    wl = Workload(segments=[(0, 60, 1.0)], query_cpu_s=0.01)
    run = simulate(ClusterConfig(max_capacity=8), wl, duration_s=1800, seed=1,
                   actions=[ModifyCurrentDBClusterCapacity(at_s=900, capacity=4)])
    kinds = [row[0] for row in run.sql("SELECT kind FROM events WHERE time_s >= 900 ORDER BY seq").fetchall()]
    assert kinds[:2] == ["resume_started", "resumed"] and "scale_completed" in kinds, kinds


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"capacity": 8, "seconds_before_timeout": 5}, "seconds_before_timeout=5 is outside 10..600"),
    ({"capacity": 8, "seconds_before_timeout": 601}, "seconds_before_timeout=601 is outside 10..600"),
    ({"capacity": 8, "timeout_action": "Force"}, "timeout_action='Force' must be one of ('RollbackCapacityChange', "
                                                 "'ForceApplyCapacityChange')"),
])
def test_manual_change_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ModifyCurrentDBClusterCapacity(at_s=0, **kwargs)


def test_manual_change_only_on_the_ladder_and_only_on_v1():
    wl = Workload(segments=[(0, 60, 1.0)])
    with pytest.raises(ValueError, match=re.escape("actions[0]: capacity=3 is not on the aurora-mysql ladder")):
        simulate(ClusterConfig(), wl, duration_s=60, actions=[ModifyCurrentDBClusterCapacity(at_s=0, capacity=3)])
    with pytest.raises(ValueError, match=re.escape("applies only to Aurora Serverless v1 clusters")):
        simulate(ServerlessV2Config(), wl, duration_s=60, actions=[ModifyCurrentDBClusterCapacity(at_s=0, capacity=4)])


# --- validation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (ServerlessV2Config, {"min_capacity": 0.7}, "min_capacity=0.7 must be a multiple of 0.5 ACU between 0 and 256"),
    (ServerlessV2Config, {"max_capacity": 257}, "max_capacity=257 must be a multiple of 0.5 ACU between 0.5 and 256"),
    (ServerlessV2Config, {"min_capacity": 8, "max_capacity": 4}, "min_capacity=8 must be <= max_capacity=4"),
    (ServerlessV2Config, {"seconds_until_auto_pause": 60}, "seconds_until_auto_pause=60 is outside 300..86400"),
    (ServerlessV2Config, {"engine": "postgres"}, "engine='postgres' must be one of"),
    (ProvisionedConfig, {"instance_class": "db.m5.large"}, "instance_class='db.m5.large' must be one of"),
    (ProvisionedConfig, {"hourly_price_usd": -1}, "hourly_price_usd=-1 is outside 0..1000"),
])
def test_configs_reject_bad_input(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**kwargs)


def test_configs_are_frozen_and_hashable():
    configs = {ServerlessV2Config(), ServerlessV2Config(), ProvisionedConfig()}
    assert len(configs) == 2
    with pytest.raises(AttributeError):
        ServerlessV2Config().max_capacity = 8


def test_simulate_names_the_configs_it_takes():
    with pytest.raises(TypeError, match="ClusterConfig, ServerlessV2Config or ProvisionedConfig"):
        simulate("v2", Workload(segments=[(0, 60, 1.0)]), duration_s=60)


# --- the bill ------------------------------------------------------------------------------------------------

WEEK_S = 7 * 86_400


def test_a_weeks_provisioned_bill_is_hours_times_the_hourly_price():
    run = simulate(ProvisionedConfig(instance_class="db.r5.large"), Workload(segments=[(0, WEEK_S, 0.0)]),
                   duration_s=WEEK_S, metrics_period_s=3600)
    assert bill(run).cost_usd == pytest.approx(168 * PROVISIONED_HOURLY_PRICE_USD["db.r5.large"])


def test_a_weeks_v2_bill_matches_a_hand_computation():
    """Idle all week at 0.5 ACU: 84 ACU-hours at USD 0.12."""
    run = simulate(ServerlessV2Config(min_capacity=0.5, max_capacity=4), Workload(segments=[(0, WEEK_S, 0.0)]),
                   duration_s=WEEK_S, metrics_period_s=3600)
    assert bill(run).acu_hours == pytest.approx(168 * 0.5)
    assert bill(run).cost_usd == pytest.approx(168 * 0.5 * facts.PRICE_PER_ACU_HOUR_V2_USD)


def test_a_weeks_v1_bill_with_pauses_matches_a_hand_computation():
    """One request a day at 09:00 on a 2-ACU cluster: billed from t = 0 and from each resume until the next pause,
    nothing while paused (each activation lasts the idle timeout and more, so the 5-minute minimum never binds)."""
    jobs = [(day * 86_400 + 9 * 3600, day * 86_400 + 9 * 3600 + 1, 1.0) for day in range(7)]
    run = simulate(ClusterConfig(min_capacity=2, max_capacity=2), Workload(segments=jobs, arrivals="regular"),
                   duration_s=WEEK_S, metrics_period_s=3600)
    starts = [0.0] + [t for (t,) in run.sql("SELECT time_s FROM events WHERE kind = 'resumed' ORDER BY seq").fetchall()]
    ends = [t for (t,) in run.sql("SELECT time_s FROM events WHERE kind = 'paused' ORDER BY seq").fetchall()]
    assert len(starts) == len(ends) == 8, (starts, ends)  # t = 0 and one resume a day, each ending in a pause
    seconds = [end - start for start, end in zip(starts, ends, strict=True)]
    assert min(seconds) >= facts.MIN_BILLED_S_PER_ACTIVATION
    acu_hours = sum(seconds) * 2 / 3600
    assert bill(run).acu_hours == pytest.approx(acu_hours)
    assert bill(run).cost_usd == pytest.approx(acu_hours * 0.06)


def test_a_short_v1_activation_is_billed_five_minutes():
    run = simulate(ClusterConfig(min_capacity=4, max_capacity=4, auto_pause=False), Workload(segments=[(0, 60, 0.0)]),
                   duration_s=60)
    assert bill(run).billed_acu_hours == pytest.approx(4 * 300 / 3600)
    assert bill(run).cost_usd == pytest.approx(4 * 300 / 3600 * 0.06)


def test_a_short_provisioned_run_is_billed_ten_minutes():
    run = simulate(ProvisionedConfig(instance_class="db.r5.large"), Workload(segments=[(0, 60, 0.0)]), duration_s=60)
    assert bill(run).cost_usd == pytest.approx(600 / 3600 * PROVISIONED_HOURLY_PRICE_USD["db.r5.large"])


def test_tariffs_follow_the_facts():
    assert tariff(ClusterConfig()).min_billed_s_per_activation == facts.MIN_BILLED_S_PER_ACTIVATION
    assert tariff(ServerlessV2Config()).price_per_acu_hour_usd == facts.PRICE_PER_ACU_HOUR_V2_USD
    assert tariff(ProvisionedConfig(hourly_price_usd=0.8)).price_per_acu_hour_usd == pytest.approx(0.1)
    assert tariff(ProvisionedConfig()).min_billed_s_per_activation == facts.PROVISIONED_MIN_BILLED_S
