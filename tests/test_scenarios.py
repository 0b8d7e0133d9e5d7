"""Named scenarios and run summaries: the runs the notebooks tell stories about."""

from __future__ import annotations

import math
import re

import pytest

from aurora_sim import ModelAssumptions, facts, plots, report, scenarios


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


# --- notebook 05 -------------------------------------------------------------------------------------------------

FORCE = "ForceApplyCapacityChange"


def _capacity_rises_s(run) -> float:
    return float(report.scaling_outcomes(run=run).loc["run", "capacity rises at (minute)"]) * 60


def test_under_rollback_a_temporary_table_holds_the_cluster_exactly_like_a_transaction() -> None:
    table = report.scaling_outcomes(transaction=scenarios.nightly_report().run(),
                                    temporary=scenarios.nightly_report(blocker="temporary table").run())
    assert table.loc["transaction"].tolist() == table.loc["temporary"].tolist(), table.to_string()
    assert table.loc["transaction", "failed scalings"] >= 2


def test_under_force_a_transaction_rolls_back_first_and_a_temporary_table_is_dropped() -> None:
    """Notebook 05's story: the forced change waits for the report's rollback (age × ratio), not for a dropped
    temporary table's session; the RDS-EVENT-0149 message says how long the rollback took."""
    transaction = scenarios.nightly_report(timeout_action=FORCE).run()
    temporary = scenarios.nightly_report(blocker="temporary table", timeout_action=FORCE).run()
    started_s = transaction.sql("SELECT min(time_s) FROM events WHERE kind = 'scale_started'").fetchall()[0][0]
    timeout_s = started_s + scenarios.nightly_report().config.seconds_before_timeout
    rollback_s = ModelAssumptions().rollback_s_per_transaction_s * (timeout_s - scenarios.REPORT_START_S)
    rises_s = _capacity_rises_s(transaction)
    assert abs(rises_s - (timeout_s + rollback_s)) <= 10, f"expected ≈{timeout_s + rollback_s:.0f} s, got {rises_s}"
    assert abs(_capacity_rises_s(temporary) - timeout_s) <= 10, f"expected ≈{timeout_s:.0f} s"
    outcomes = report.scaling_outcomes(transaction=transaction, temporary=temporary)
    assert outcomes.loc["temporary", "connections dropped"] == 1
    assert outcomes.loc["transaction", "connections dropped"] == 0
    message = transaction.sql("SELECT message FROM events WHERE kind = 'scale_forced'").fetchall()[0][0]
    assert f"took {rollback_s:.0f} s to roll back" in message, message


def test_nightly_report_runs_the_postgresql_only_blockers_and_mysql_refuses_them() -> None:
    for name in scenarios.POSTGRESQL_BLOCKERS:
        run = scenarios.nightly_report(engine="aurora-postgresql", blocker=name).run()
        assert report.summarize(run).scale_failures >= 2, f"{name} should hold the scaling point"
        with pytest.raises(ValueError, match=re.escape("is PostgreSQL-only, but config.engine='aurora-mysql'")):
            scenarios.nightly_report(blocker=name).run()
    with pytest.raises(ValueError, match=re.escape("blocker='lock' must be one of ('long transaction'")):
        scenarios.nightly_report(blocker="lock")


def test_a_max_execution_time_inside_the_search_frees_the_scaling_point_with_nothing_forced() -> None:
    table = report.scaling_outcomes(
        free=scenarios.nightly_report(blocker="long query", parameters={"max_execution_time": 22 * 60 * 1000}).run())
    assert table.loc["free"].tolist()[1:] == [0, 0, 1, 0, 0], table.to_string()
    assert 22 <= table.loc["free", "capacity rises at (minute)"] < 26


def test_try_settings_answers_accepted_or_the_refusal_beside_the_setting() -> None:
    table = report.try_settings("ClusterConfig(engine_version='5.7', parameters={'max_execution_time': 1})",
                                "ClusterConfig(engine_version='5.6', parameters={'max_execution_time': 1})")
    assert table["what aurora_sim says"].tolist() == [
        "accepted", "refused: parameters['max_execution_time']=1: the parameter does not exist in aurora-mysql 5.6"]
    assert table.index.name == "setting"
    with pytest.raises(TypeError):  # not a refusal of a value: a mistake in the expression itself
        report.try_settings("ClusterConfig(min_acu=2)")


# --- notebook 01: what its prose says about the default burst -------------------------------------------------

def _burst(name: str, **changes: object) -> report.Summary:
    return report.summarize(scenarios.serverless_burst(connections=name, **changes).run())


def test_burst_per_request_fills_max_connections_and_is_refused_without_scaling_up() -> None:
    run = scenarios.serverless_burst().replace(metrics_period_s=1).run()
    table = report.window_table({"per request": run}, start_s=scenarios.BURST_START_S, end_s=scenarios.BURST_END_S)
    row = table.loc["per request"]
    assert row["peak connections"] == row["max_connections"] == facts.max_connections("aurora-mysql", 1)
    assert row["mean CPU %"] > 95, f"the handshakes should pin the CPU, got {row['mean CPU %']} %"
    errors = run.sql("SELECT DISTINCT error FROM requests WHERE outcome <> 'ok'").fetchall()
    assert errors == [(facts.TOO_MANY_CONNECTIONS_ERROR["aurora-mysql"],)]
    summary = report.summarize(run)
    assert summary.failed >= 100 and summary.scale_ups == 0, "hundreds refused, and no scale-up for a 30-s burst"


def test_burst_pool_never_pauses_and_the_data_api_pauses_at_no_extra_cost() -> None:
    per_request, pool, data_api = _burst("per request"), _burst("pool"), _burst("Data API")
    assert pool.failed == 0 and pool.pauses == 0 and pool.cost_usd > per_request.cost_usd
    assert data_api.failed == 0 and data_api.pauses >= 1 and data_api.cost_usd <= per_request.cost_usd
    extra_ms = data_api.p50_latency_ms - pool.p50_latency_ms
    warm_ms = facts.DATA_API_WARM_CALL_S * 1000
    assert 0.5 * warm_ms < extra_ms < 2 * warm_ms, f"a warm call adds about {warm_ms} ms, got {extra_ms:.1f} ms"


def test_burst_data_api_at_the_first_call_price_is_slow_but_refuses_nothing() -> None:
    slow = _burst("Data API", data_api_call_s=facts.DATA_API_FIRST_CALL_S)
    assert scenarios.connection_strategy("Data API").overhead_s == facts.DATA_API_WARM_CALL_S
    assert slow.failed == 0 and slow.p50_latency_ms > 0.5 * facts.DATA_API_FIRST_CALL_S * 1000


def test_oversized_pool_holds_the_cluster_a_rung_up_with_idle_cpu() -> None:
    big, small = scenarios.oversized_pool(), scenarios.oversized_pool(min_size=10)
    s_big, s_small = report.summarize(big.run()), report.summarize(small.run())
    assert (s_big.scale_ups, s_big.scale_downs, s_big.max_capacity_acu, s_big.failed) == (1, 0, 2, 0)
    assert s_small.max_capacity_acu == 1 and s_small.cost_usd < s_big.cost_usd
    assert big.run().sql("SELECT max(cpu_pct) FROM metrics").fetchall()[0][0] < 5


def test_long_lived_pool_fails_once_at_24_hours_unless_retired_or_pinged() -> None:
    def closed_and_failed(**changes: object) -> tuple[int, int]:
        run = scenarios.long_lived_pool(**changes).run()
        closed = run.sql("SELECT count(*) FROM events WHERE kind = 'connection_closed'").fetchall()[0][0]
        return closed, report.summarize(run).failed

    assert closed_and_failed() == (2, 1)
    assert closed_and_failed(max_lifetime_s=3600) == (0, 0)
    assert closed_and_failed(pre_ping=True) == (2, 0)


# --- notebook 03: what its prose says about the default office day --------------------------------------------

def _paid_at(run) -> list[str]:
    return [scenarios.office_clock(t) for t in plots.cold_starts(run).submitted_s]


def test_office_day_default_pauses_three_times_and_two_users_pay_the_cold_starts() -> None:
    run = scenarios.office_day().run()
    summary = report.summarize(run)
    assert (summary.pauses, summary.resumes) == (3, 2)
    assert _paid_at(run) == ["09:00", "12:45"], "the first user of the morning and the first after lunch"
    assert all(latency > 10 for latency in plots.cold_starts(run).latency_s)


def test_office_day_warm_up_job_pays_the_morning_resume_but_not_lunch() -> None:
    resumes = plots.cold_starts(scenarios.office_day(prewarm_s=120).run())
    assert list(resumes.latency_s < 1) == [True, False]


def test_office_day_with_a_monitoring_agent_costs_as_much_as_always_on() -> None:
    agent = report.summarize(scenarios.office_day(monitoring_agent=True).run())
    always_on = report.summarize(scenarios.office_day(auto_pause=False).run())
    assert agent.pauses == 0 and agent.cost_usd == always_on.cost_usd


def test_resume_table_sets_the_model_beside_the_measurement() -> None:
    table = report.resume_table(count=2000)
    assert list(table.index) == list(facts.MEASURED_RESUME_S)
    assert table["measured (s)"].tolist() == list(facts.MEASURED_RESUME_S.values())
    assert abs(table.loc["p95", "model draws (s)"] - facts.MEASURED_RESUME_S["p95"]) < 3
