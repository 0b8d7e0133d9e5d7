"""Named scenarios and run summaries: the runs the notebooks tell stories about."""

from __future__ import annotations

import math

from aurora_sim import report, scenarios


def test_flash_sale_at_one_acu_is_too_busy_to_scale_but_four_acu_carries_it() -> None:
    stuck = report.summarize(scenarios.flash_sale().run(), start_s=scenarios.SPIKE_START_S,
                             end_s=scenarios.SPIKE_END_S)
    fine = report.summarize(scenarios.flash_sale(min_capacity=4).run(), start_s=scenarios.SPIKE_START_S,
                            end_s=scenarios.SPIKE_END_S)
    assert stuck.scale_failures >= 2, f"expected repeated scale_failed at 1 ACU, got {stuck.scale_failures}"
    assert stuck.p95_latency_ms > 1000 and stuck.failed > 0
    assert fine.scale_failures == 0 and fine.failed == 0 and fine.p95_latency_ms < 1000


def test_a_gradual_ramp_scales_from_one_acu_without_failing() -> None:
    ramp = report.summarize(scenarios.flash_sale(ramp_s=600).run())
    assert ramp.scale_failures == 0 and ramp.scale_ups >= 2 and ramp.failed == 0


def test_office_day_pauses_and_the_monitoring_agent_prevents_it() -> None:
    plain = report.summarize(scenarios.office_day().run())
    agent = report.summarize(scenarios.office_day(monitoring_agent=True).run())
    assert plain.pauses >= 2 and plain.resumes >= 1 and plain.cold_start_s > 10
    assert agent.pauses == 0 and agent.paused_s == 0
    assert agent.cost_usd > plain.cost_usd


def test_tour_shows_each_state_change_once() -> None:
    s = report.summarize(scenarios.tour().run())
    assert (s.scale_ups, s.scale_downs, s.pauses, s.resumes) == (1, 1, 1, 1)


def test_scenario_runs_are_cached_and_replace_validates() -> None:
    sale = scenarios.flash_sale()
    assert sale.run() is sale.run()
    assert sale.replace(seed=8).run() is not sale.run()


def test_summary_of_an_idle_window_has_no_latency() -> None:
    s = report.summarize(scenarios.office_day().run(), start_s=0, end_s=3600)
    assert s.requests == 0 and math.isnan(s.p95_latency_ms)
    assert "n/a" in s.describe()
