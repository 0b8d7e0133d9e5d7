"""Unit tests of ``aurora_sim.scaling``: the controller's pure decisions and the resume-time draw."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from aurora_sim import ClusterConfig, ModelAssumptions
from aurora_sim.scaling import Decision, cooldown_over, decide, resume_time_s, wants_scale_down, wants_scale_up


@pytest.mark.parametrize(("cpu_pct", "expected"), [(70.0, False), (70.001, True), (69.9, False), (100.0, True)])
def test_scale_up_when_cpu_above_70_pct(cpu_pct, expected):
    assert wants_scale_up(cpu_pct, connections=0, max_connections=90) is expected


@pytest.mark.parametrize(("connections", "expected"), [(81, False), (81.01, True), (82, True), (80, False)])
def test_scale_up_when_connections_above_90_pct(connections, expected):
    # 90 % of 90 is 81: exactly 81 is not "more than 90 %".
    assert wants_scale_up(0.0, connections=connections, max_connections=90) is expected


def test_scale_up_if_any_threshold_holds():
    assert wants_scale_up(95.0, connections=1, max_connections=1000)
    assert wants_scale_up(1.0, connections=950, max_connections=1000)
    assert not wants_scale_up(50.0, connections=500, max_connections=1000)


@pytest.mark.parametrize(
    ("cpu_pct", "connections", "expected"),
    [(29.9, 35, True), (30.0, 0, False), (0.0, 36, False), (0.0, 35.99, True), (29.99, 35.99, True), (50.0, 0, False)],
)
def test_scale_down_only_when_cpu_below_30_and_connections_below_40_pct(cpu_pct, connections, expected):
    # 40 % of 90 is 36.
    assert wants_scale_down(cpu_pct, connections=connections, max_connections=90) is expected


def test_cooldown_over_without_history():
    assert cooldown_over(now_s=0, last_scale_up_s=None, last_scale_down_s=None)


@pytest.mark.parametrize(("now_s", "expected"), [(1000 + 899.99, False), (1000 + 900, True), (5000, True)])
def test_no_scale_down_within_900_s_of_a_scale_up(now_s, expected):
    assert cooldown_over(now_s, last_scale_up_s=1000, last_scale_down_s=None) is expected


@pytest.mark.parametrize(("now_s", "expected"), [(1000 + 309.99, False), (1000 + 310, True)])
def test_no_scale_down_within_310_s_of_a_scale_down(now_s, expected):
    assert cooldown_over(now_s, last_scale_up_s=None, last_scale_down_s=1000) is expected


def test_both_cooldowns_must_be_over():
    assert not cooldown_over(2000, last_scale_up_s=1500, last_scale_down_s=100)
    assert not cooldown_over(2000, last_scale_up_s=100, last_scale_down_s=1800)
    assert cooldown_over(2000, last_scale_up_s=1100, last_scale_down_s=1690)


MYSQL = ClusterConfig(min_capacity=1, max_capacity=16)


def _decide(config, capacity, cpu_pct, connections=0, now_s=10_000, up=None, down=None):
    return decide(config, capacity, cpu_pct, connections, now_s, up, down)


def test_decide_scales_up_one_rung_on_cpu():
    decision = _decide(MYSQL, 4, 95.0)
    assert decision == Decision(8, "Autoscaling: CPU 95 % > 70 %")


def test_decide_scales_up_on_connections_with_idle_cpu():
    decision = _decide(MYSQL, 1, 0.0, connections=85)
    assert decision is not None and decision.target_acu == 2
    assert "85 connections > 90 % of max_connections 90" in decision.reason


def test_decide_scales_up_immediately_after_a_change():
    assert _decide(MYSQL, 2, 95.0, now_s=100, up=99.0, down=None).target_acu == 4
    assert _decide(MYSQL, 2, 95.0, now_s=100, up=None, down=99.0).target_acu == 4


def test_decide_stays_at_max_capacity():
    assert _decide(MYSQL, 16, 100.0) is None
    assert _decide(MYSQL, 16, 0.0, connections=1999) is None


def test_decide_stays_at_min_capacity():
    assert _decide(ClusterConfig(min_capacity=4, max_capacity=16), 4, 0.0) is None
    assert _decide(MYSQL, 1, 0.0) is None


def test_decide_scales_down_one_rung_when_idle_and_cooled_down():
    decision = _decide(MYSQL, 8, 10.0, connections=5)
    assert decision is not None and decision.target_acu == 4
    assert decision.reason.startswith("Autoscaling: CPU 10 % < 30 %")


def test_decide_respects_the_cooldowns():
    assert _decide(MYSQL, 8, 10.0, now_s=1000, up=200) is None
    assert _decide(MYSQL, 8, 10.0, now_s=1100, up=200).target_acu == 4
    assert _decide(MYSQL, 8, 10.0, now_s=1000, down=800) is None
    assert _decide(MYSQL, 8, 10.0, now_s=1110, down=800).target_acu == 4


def test_decide_holds_between_the_thresholds():
    assert _decide(MYSQL, 4, 50.0) is None
    assert _decide(MYSQL, 4, 10.0, connections=200) is None  # 200 of 270 is above 40 %


def test_decide_postgresql_steps_64_to_192_and_back():
    pg = ClusterConfig(engine="aurora-postgresql", min_capacity=2, max_capacity=384)
    assert _decide(pg, 64, 90.0).target_acu == 192
    assert _decide(pg, 192, 5.0).target_acu == 64


def test_decide_never_goes_above_max_between_rungs():
    pg = ClusterConfig(engine="aurora-postgresql", min_capacity=2, max_capacity=64)
    assert _decide(pg, 64, 100.0) is None


def test_resume_time_is_fixed_when_median_equals_p95():
    a = ModelAssumptions(resume_median_s=40, resume_p95_s=40)
    rng = np.random.default_rng(0)
    assert {resume_time_s(a, rng) for _ in range(100)} == {40}


def test_resume_time_bounded_and_centred_on_the_measured_median():
    a = ModelAssumptions()
    rng = np.random.default_rng(12345)
    draws = [resume_time_s(a, rng) for _ in range(10_000)]
    low, high = min(draws), max(draws)
    assert a.resume_min_s <= low and high <= a.resume_max_s, f"draws span {low:.1f}..{high:.1f} s"
    median = statistics.median(draws)
    assert abs(median - 43.2) / 43.2 < 0.03, f"median resume {median:.2f} s, expected about 43.2 s"
    p95 = float(np.quantile(draws, 0.95))
    assert abs(p95 - 58.6) / 58.6 < 0.05, f"p95 resume {p95:.2f} s, expected about 58.6 s"


def test_resume_time_takes_one_draw_per_resume():
    a = ModelAssumptions()
    rng, reference = np.random.default_rng(7), np.random.default_rng(7)
    resume_time_s(a, rng)
    reference.random()
    assert rng.random() == reference.random()
