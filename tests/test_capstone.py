"""Notebook 12's capstone: the workloads, the plans, the checker and its kept "best found" costs, the panel."""

import pytest

from aurora_sim import ClusterConfig, ProvisionedConfig, ServerlessV2Config, capstone, checks, plots, widgets

REFERENCE = (ServerlessV2Config(min_capacity=0, max_capacity=4),
             (ClusterConfig(min_capacity=1, max_capacity=8, auto_pause=False), capstone.prewarm(4)),
             ServerlessV2Config(min_capacity=0, max_capacity=8))


def test_the_checker_says_not_attempted_for_the_placeholders():
    assert checks.capstone_exercise.check(None, None, None).status == "not attempted"
    assert checks.capstone_exercise.check(REFERENCE[0], None, None).status == "not attempted"


def test_the_checker_accepts_the_reference_plans():
    verdict = checks.capstone_exercise.check(*REFERENCE)
    assert verdict.status == "correct", verdict.message


def test_the_checker_names_the_missed_goal_and_the_cheaper_plan():
    verdict = checks.capstone_exercise.check(REFERENCE[0], ClusterConfig(min_capacity=1, max_capacity=8),
                                             ProvisionedConfig(instance_class="db.r5.large"))
    assert verdict.status == "not yet"
    assert "shop with a flash sale: " in verdict.message and "requests failed" in verdict.message
    assert f"USD {capstone.best_found_cost_usd('new app'):.2f}" in verdict.message


def test_the_checker_refuses_what_is_not_a_plan():
    verdict = checks.capstone_exercise.check(*REFERENCE[:2], "v2")
    assert verdict.status == "not yet" and "is not a plan" in verdict.message


def test_the_kept_best_costs_are_what_the_grid_search_finds():
    """The checker compares with kept costs; searching the grid again (about 30 s) catches any drift."""
    for name in capstone.WORKLOADS:
        best = capstone.best_found(name)
        assert best.cost_usd == pytest.approx(capstone.BEST_FOUND_COST_USD[name], abs=0.005), (
            f"{name}: the grid's best is now {best.plan.label()} at USD {best.cost_usd:.2f}; update "
            "capstone.BEST_FOUND_COST_USD")


def test_each_workload_is_a_week_and_the_sale_falls_on_friday_evening():
    shop = capstone.shop_week()
    assert shop.rate_at(capstone.SALE_START_S + 60) == capstone.SALE_RPS
    assert shop.rate_at(capstone.SALE_START_S - 60) == capstone.SHOP_RPS
    for make in capstone.WORKLOADS.values():
        assert max(end for _, end, _ in make().segments) <= capstone.WEEK_S


def test_a_prewarm_falls_ten_minutes_before_each_known_peak():
    assert [call.at_s for call in capstone.prewarm(4)] == [capstone.SALE_START_S - 600]
    assert capstone.prewarm_calls("new app", 4) == ()
    assert len(capstone.prewarm_calls("dev/test database", 2)) == 10  # two sessions on each weekday


def test_compare_plans_shows_cost_and_goal_for_each_plan():
    table = capstone.compare_plans("dev/test database", v2=ServerlessV2Config(min_capacity=0, max_capacity=4),
                                   provisioned=ProvisionedConfig(instance_class="db.t3.small"))
    assert list(table.columns) == ["v2", "provisioned"]
    assert table.loc["meets the goal", "v2"] == "yes"
    assert table.loc["cost (week)", "provisioned"].startswith("USD ")


def test_the_panel_answers_at_its_defaults_and_extremes():
    panel = widgets.capstone_panel()
    assert set(panel.run) == {"v1", "v2", "provisioned"}
    for values in ({"workload": "new app", "v1_min_capacity": 8, "v2_min_capacity": 0.0, "v2_max_capacity": 32.0},
                   {"workload": "dev/test database", "v1_auto_pause": True, "v1_prewarm_acu": 0,
                    "instance_class": "db.t3.small"}):
        runs = panel.update(**{**panel.values(), **values})
        assert "<b>provisioned</b>" in panel.summary.value and len(runs) == 3


def test_the_static_twin_draws_each_plan():
    runs = widgets.capstone_demo()
    figure = plots.capstone_week(runs)
    assert [trace.name for trace in figure.data][:3] == ["v1", "v2", "provisioned"]
    assert all(len(trace.x) > 1 for trace in figure.data)


def test_a_v2_slider_reruns_v2_only_and_sends_only_its_traces():
    panel = widgets.capstone_panel()
    before = dict(panel.run)
    sent = []
    send = panel.figure._send_update_msg

    def spy(restyle_data, relayout_data, trace_indexes=None, source_view_id=None):
        sent.append((restyle_data, relayout_data, list(trace_indexes or [])))
        return send(restyle_data, relayout_data, trace_indexes, source_view_id)

    panel.figure._send_update_msg = spy
    runs = panel.update(**{**panel.values(), "v2_max_capacity": 4.0})
    assert runs["v1"] is before["v1"] and runs["provisioned"] is before["provisioned"]
    assert runs["v2"] is not before["v2"]
    assert len(sent) == 1, "one update message per redraw"
    restyle, relayout, indexes = sent[0]
    assert set(indexes) <= {1, 4}, "only v2's capacity and cost lines change"  # v1, v2, provisioned; then costs
    assert set(restyle) <= {"x", "y"} and relayout == {}


def test_the_panel_window_is_on_the_clock_and_the_week_in_days():
    window = plots.capstone_week_dict(widgets.capstone_demo(), start_s=capstone.SALE_START_S - 3600)
    assert window["layout"]["xaxis2"]["type"] == "date" and window["data"][0]["x"][0].endswith("17:00:00.000")
    week = plots.capstone_week_dict(widgets.capstone_demo(whole_week=True))
    assert week["layout"]["xaxis2"]["title"]["text"] == "days since Monday 00:00"
    assert week["data"][0]["x"][-1] == 7.0
