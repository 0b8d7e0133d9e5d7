"""Tests of ``aurora_sim.plots`` (figure factories) and ``aurora_sim.costs`` (ACU-hours and the bill)."""

from __future__ import annotations

import math
import re

import plotly.graph_objects as go
import pytest

from aurora_sim import ClusterConfig, LongTransaction, Workload, facts, scenarios, simulate, widgets
from aurora_sim.costs import active_periods, acu_hours, billed_acu_hours, cost_usd
from aurora_sim.names import SCALE_FAILED
from aurora_sim.plots import cold_starts, cost_latency_summary, latency, timeline
from aurora_sim.plots._style import EVENT_STYLE, VERMILLION

# --- Runs (module scope: each simulates once) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stuck_run():
    """A flash sale that saturates 1 ACU: scale_started / scale_failed again and again."""
    return simulate(
        ClusterConfig(min_capacity=1, max_capacity=16),
        Workload(segments=[(0, 600, 5.0), (600, 1800, 120.0)]),
        duration_s=3600,
        seed=7,
    )


@pytest.fixture(scope="module")
def cold_run():
    """Pauses at ~600 s and resumes at 1200 s: one cold start."""
    return simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]), duration_s=1800, seed=1)


@pytest.fixture(scope="module")
def forced_run():
    """ForceApplyCapacityChange under load with a long transaction: hundreds of aborts at two instants."""
    return simulate(
        ClusterConfig(
            min_capacity=1, max_capacity=16, timeout_action="ForceApplyCapacityChange", seconds_before_timeout=60
        ),
        Workload(segments=[(0, 600, 5.0), (600, 1800, 120.0)], blocking=[LongTransaction(start_s=700, duration_s=900)]),
        duration_s=3600,
        seed=7,
    )


def _names(fig: go.Figure) -> list[str]:
    return [trace.name for trace in fig.data]


def _trace(fig: go.Figure, name: str):
    found = [trace for trace in fig.data if trace.name == name]
    assert len(found) == 1, f"expected one trace named {name!r}, got {len(found)} among {_names(fig)}"
    return found[0]


# --- timeline -----------------------------------------------------------------------------------------------------


def test_timeline_returns_a_figure_with_every_panel_named(stuck_run):
    fig = timeline(stuck_run)
    assert isinstance(fig, go.Figure)
    expected = {
        "offered load (req/s)",
        "served (req/s)",
        "failed (req/s)",
        "CPU (%)",
        "capacity (ACU)",
        "connections open",
        "max_connections",
        "scale-up at 90 % of max",
        "scale started",
        "scale failed (rolled back)",
        "scale completed",
        "pause started",
        "paused",
    }
    assert expected <= set(_names(fig)), f"missing traces: {expected - set(_names(fig))}"
    assert fig.layout.xaxis3.title.text == "time since start (min)"
    for axis, unit in (
        ("yaxis", "CPU (%)"),
        ("yaxis2", "requests/s"),
        ("yaxis3", "capacity (ACU)"),
        ("yaxis4", "connections"),
    ):
        assert fig.layout[axis].title.text == unit


def test_timeline_marks_every_scale_failed_in_vermillion(stuck_run):
    failed = stuck_run.sql("SELECT time_s FROM events WHERE kind = 'scale_failed' ORDER BY time_s").fetchall()
    assert len(failed) >= 3, f"the stuck scenario should fail to scale repeatedly, got {len(failed)}"
    trace = _trace(timeline(stuck_run), EVENT_STYLE[SCALE_FAILED][2])
    assert [x * 60 for x in trace.x] == pytest.approx([t for (t,) in failed])
    assert trace.marker.color == VERMILLION
    assert all("failed to scale" in text for text in trace.customdata), "hover should carry the event message"


def test_timeline_capacity_is_the_exact_step_function(stuck_run):
    steps = stuck_run.sql("SELECT time_s, capacity_acu FROM capacity ORDER BY time_s").fetchall()
    trace = _trace(timeline(stuck_run), "capacity (ACU)")
    assert trace.line.shape == "hv"
    assert [x * 60 for x in trace.x[:-1]] == pytest.approx([t for t, _ in steps])
    assert list(trace.y[:-1]) == [c for _, c in steps]
    assert trace.x[-1] * 60 == pytest.approx(stuck_run.duration_s)


def test_timeline_shades_scaling_paused_and_resuming_periods(stuck_run, cold_run):
    scaling = [s for s in timeline(stuck_run).layout.shapes if s.name and s.name.startswith("scaling")]
    periods = stuck_run.sql("SELECT count(*) FROM capacity WHERE state = 'scaling'").fetchall()[0][0]
    assert len(scaling) == periods, f"expected {periods} scaling bands, got {len(scaling)}"
    assert sum(bool(s.showlegend) for s in scaling) == 1, "one legend entry per state"
    names = {s.name for s in timeline(cold_run).layout.shapes if s.name}
    assert {"paused (0 ACU, not billed)", "resuming (cold start)"} <= names


def test_timeline_counts_aborted_transactions_in_one_marker_per_instant(forced_run):
    aborted = forced_run.sql(
        "SELECT time_s, count(*) FROM events WHERE kind = 'transaction_aborted' GROUP BY time_s ORDER BY time_s"
    ).fetchall()
    assert sum(n for _, n in aborted) > 50, "the forced scenario should abort many transactions"
    trace = _trace(timeline(forced_run), "transactions aborted")
    assert len(trace.x) == len(aborted)
    assert list(trace.text) == [f"×{n}" for _, n in aborted]
    assert "scale forced (not seamless)" in _names(timeline(forced_run))


def test_timeline_without_events_has_no_event_markers(stuck_run):
    names = _names(timeline(stuck_run, show_events=False, title="no events"))
    assert not set(names) & {text for _, _, text in EVENT_STYLE.values()}


def test_timeline_uses_hours_for_runs_longer_than_three_hours():
    run = simulate(ClusterConfig(), Workload(segments=[(0, 600, 1.0)]), duration_s=4 * 3600, seed=1)
    fig = timeline(run)
    assert fig.layout.xaxis3.title.text == "time since start (h)"
    assert tuple(fig.layout.xaxis.range) == (0, 4)


def test_a_long_timeline_is_thinned_to_what_a_plot_can_show_and_keeps_its_peaks():
    """A day at 10-s metrics is 8,640 points per line; a plot ~1,000 px wide shows a few thousand at most."""
    from aurora_sim.plots._style import MAX_POINTS

    run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 86_400, 0.2)]), duration_s=86_400,
                   seed=3, metrics_period_s=10)
    ((peak_cpu, peak_connections),) = run.sql("SELECT max(cpu_pct), max(connections) FROM metrics").fetchall()
    fig = timeline(run)
    for name in ("CPU (%)", "served (req/s)", "connections open"):
        assert len(_trace(fig, name).x) <= MAX_POINTS, f"{name}: {len(_trace(fig, name).x)} points sent"
    assert max(_trace(fig, "CPU (%)").y) == pytest.approx(peak_cpu)
    assert max(_trace(fig, "connections open").y) == peak_connections
    assert _trace(fig, "CPU (%)").x[-1] == pytest.approx(24.0), "the line still reaches the end of the run"


def test_the_figure_dicts_are_the_figures_before_validation(stuck_run):
    """Panels redraw from the plain dicts (no plotly validation); the static figures are the same dicts, validated."""
    from aurora_sim.plots import engine_comparison, engine_comparison_dict, timeline_dict

    assert go.Figure(timeline_dict(stuck_run)).to_json() == timeline(stuck_run).to_json()
    runs = {"a": stuck_run}
    assert go.Figure(engine_comparison_dict(runs)).to_json() == engine_comparison(runs).to_json()


# --- latency ------------------------------------------------------------------------------------------------------


def test_latency_marks_the_cold_start_with_the_slowest_request_of_the_resume(cold_run):
    ((resume_started,),) = cold_run.sql("SELECT time_s FROM events WHERE kind = 'resume_started'").fetchall()
    ((resumed,),) = cold_run.sql("SELECT time_s FROM events WHERE kind = 'resumed'").fetchall()
    ((slowest_s,),) = cold_run.sql(
        "SELECT max(latency_s) FROM requests WHERE submitted_s BETWEEN ? AND ?", params=[resume_started, resumed]
    ).fetchall()
    fig = latency(cold_run)
    marker = _trace(fig, "cold start")
    assert len(marker.y) == 1
    assert marker.y[0] == pytest.approx(slowest_s * 1000), f"cold start at {marker.y[0]} ms, slowest {slowest_s} s"
    assert [a.text for a in fig.layout.annotations] == [f"<b>cold start: {slowest_s:.0f} s</b>"]
    assert fig.layout.yaxis.type == "log"
    assert {"ok", "p50 per 60 s (ok, by finish time)", "p95 per 60 s (ok, by finish time)"} <= set(_names(fig))


def test_cold_starts_falls_back_to_nothing_without_a_resume(stuck_run):
    assert cold_starts(stuck_run).empty
    assert "cold start" not in _names(latency(stuck_run))


def test_latency_can_leave_the_cold_start_plain(cold_run):
    fig = latency(cold_run, highlight_cold_start=False)
    assert "cold start" not in _names(fig)
    assert not fig.layout.annotations


def test_latency_samples_a_large_run_and_keeps_errors_and_the_slowest(stuck_run):
    fig = latency(stuck_run, max_points=2000)
    markers = [t for t in fig.data if t.mode == "markers"]
    shown = sum(len(t.x) for t in markers)
    assert shown <= 2000, f"{shown} markers drawn for max_points=2000"
    ((slowest_s,),) = stuck_run.sql("SELECT max(latency_s) FROM requests WHERE outcome = 'ok'").fetchall()
    assert max(_trace(fig, "ok").customdata[:, 0]) == pytest.approx(slowest_s * 1000)
    errors = [t for t in markers if t.name.startswith("error")]
    text = facts.TOO_MANY_CONNECTIONS_ERROR["aurora-mysql"]
    assert len(errors) == 1 and text in errors[0].name and text in errors[0].hovertemplate
    assert errors[0].marker.symbol != _trace(fig, "ok").marker.symbol
    assert "sampled" in fig.layout.title.text


def test_latency_shows_every_request_of_a_small_run(cold_run):
    fig = latency(cold_run)
    ((total,),) = cold_run.sql("SELECT count(*) FROM requests").fetchall()
    assert sum(len(t.x) for t in fig.data if t.name == "ok") == total
    assert f"all {total:,} requests" in fig.layout.title.text


# --- cost_latency_summary -----------------------------------------------------------------------------------------


def test_cost_latency_summary_accepts_a_mapping_or_pairs(cold_run, stuck_run):
    runs = {"pausing": cold_run, "stuck": stuck_run}
    for fig in (cost_latency_summary(runs), cost_latency_summary(list(runs.items()))):
        assert _names(fig) == ["cost (USD)", "p95 latency, ok requests (ms)", "failed requests"]
        bars = _trace(fig, "cost (USD)")
        assert list(bars.x) == ["pausing", "stuck"]
        assert list(bars.y) == pytest.approx([cost_usd(cold_run), cost_usd(stuck_run)])
        ((failed,),) = stuck_run.sql("SELECT count(*) FROM requests WHERE outcome <> 'ok'").fetchall()
        assert list(_trace(fig, "failed requests").y) == [0, failed]
        assert fig.layout.yaxis2.type == "log"


# --- costs --------------------------------------------------------------------------------------------------------


def test_acu_hours_of_a_constant_cluster_is_capacity_times_hours():
    run = simulate(
        ClusterConfig(min_capacity=2, max_capacity=2, auto_pause=False),
        Workload(segments=[(0, 3 * 3600, 0.0)]),
        duration_s=3 * 3600,
        seed=0,
    )
    assert acu_hours(run) == 6.0
    assert billed_acu_hours(run) == 6.0
    assert cost_usd(run) == pytest.approx(6.0 * facts.PRICE_PER_ACU_HOUR_USD)


def test_acu_hours_follows_capacity_steps(stuck_run):
    steps = stuck_run.sql("SELECT time_s, capacity_acu FROM capacity ORDER BY time_s").fetchall()
    # By hand from the table: 1 ACU until the scale-up completes, 2 ACU until paused, then 0.
    (up_s, _), (paused_s, _) = [(t, c) for t, c in steps if c != 1][:2]
    assert [c for _, c in steps if c != 1][:2] == [2, 0]
    expected = (up_s * 1 + (paused_s - up_s) * 2) / 3600
    assert acu_hours(stuck_run) == pytest.approx(expected, rel=1e-12)


def test_billing_excludes_paused_time_and_bills_five_minutes_per_activation():
    # Pauses at ~660 s, resumes at ~1238 s; a 1400 s run leaves a second activation shorter than 5 minutes.
    run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]), duration_s=1400, seed=1)
    events = dict(run.sql("SELECT kind, time_s FROM events WHERE kind IN ('paused', 'resumed')").fetchall())
    paused_s, resumed_s = events["paused"], events["resumed"]
    second = run.duration_s - resumed_s
    assert second < facts.MIN_BILLED_S_PER_ACTIVATION, f"second activation lasts {second} s"
    assert acu_hours(run) == pytest.approx((paused_s + second) / 3600, rel=1e-12)
    assert billed_acu_hours(run) == pytest.approx((paused_s + facts.MIN_BILLED_S_PER_ACTIVATION) / 3600, rel=1e-12)
    assert cost_usd(run) == pytest.approx(billed_acu_hours(run) * facts.PRICE_PER_ACU_HOUR_USD)
    ((resumes,),) = run.sql("SELECT count(*) FROM events WHERE kind = 'resumed'").fetchall()
    assert len(active_periods(run)) == 1 + resumes


def test_costs_ignore_what_happens_after_duration_s():
    run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 60, 50.0)]), duration_s=60, seed=1)
    ((finished,),) = run.sql("SELECT max(finished_s) FROM requests").fetchall()
    assert acu_hours(run) == pytest.approx(60 / 3600)
    assert billed_acu_hours(run) == pytest.approx(facts.MIN_BILLED_S_PER_ACTIVATION / 3600)
    assert math.isfinite(finished)


# --- what a learner hit in the browser (issue 7 §4) ---------------------------------------------------------------


def _title_lines(title) -> list[str]:
    lines = [title.text or ""]
    if title.subtitle and title.subtitle.text:
        lines.append(title.subtitle.text)
    return lines


def test_events_at_the_same_moment_stack_up_and_name_each_other():
    """Notebook 00: `scaling point found` sat on `scale started`, so the first one could not be hovered."""
    run = scenarios.tour().run()
    ((first_s,),) = run.sql("SELECT min(time_s) FROM events WHERE kind = 'scale_started'").fetchall()
    fig = timeline(run)
    started, found = _trace(fig, "scale started"), _trace(fig, "scaling point found")
    assert started.x[0] == pytest.approx(first_s / 60) and found.x[0] == pytest.approx(first_s / 60)
    assert found.y[0] - started.y[0] >= 0.05 * fig.layout.yaxis3.range[1], "the two markers still overlap"
    assert "scaling point found" in started.customdata[0] and "scale started" in found.customdata[0]
    assert fig.layout.hovermode == "closest"
    assert _trace(fig, "capacity (ACU)").hoverinfo == "skip", "the step line took the hover from the marker on it"


def test_every_figure_puts_its_legend_under_the_plot_and_keeps_titles_short(cold_run, stuck_run):
    """A legend beside the plot took ~300 px of a panel, and long titles were cut off in a 700-px one."""
    from aurora_sim import backoff
    from aurora_sim.plots import backoff_sweep

    figures = {"timeline": timeline(stuck_run), "latency": latency(cold_run),
               "cost": cost_latency_summary({"a": cold_run, "b": stuck_run}),
               "backoff": backoff_sweep(backoff.sweep([2, 4], runs=1))}
    for name, fig in figures.items():
        legend = fig.layout.legend
        assert (legend.orientation, legend.yref, legend.y, legend.yanchor) == ("h", "container", 0, "bottom"), (
            f"{name}: the legend is not in rows at the foot of the figure")
        assert fig.layout.width is None, f"{name}: a fixed width cannot fill the output area"
        for line in _title_lines(fig.layout.title):
            assert len(line) <= 70, f"{name}: title line of {len(line)} characters may be cut: {line!r}"


def test_a_max_capacity_above_the_range_is_named_in_the_panel_title():
    """Notebook 01: the corner label `max_capacity = 8 ACU (above this range)` overlapped a subplot title."""
    fig = timeline(widgets.connection_demo())
    texts = [note.text for note in fig.layout.annotations]
    heading = [text for text in texts if text.startswith("Capacity and scaling events")]
    assert len(heading) == 1 and "max_capacity = 8 ACU, above this range" in heading[0]
    assert not any(text.startswith("max_capacity") for text in texts)


def test_a_window_is_shown_first_and_a_button_shows_the_whole_run():
    run = widgets.connection_demo()
    fig = timeline(run, window_s=(480, 840))
    for axis in ("xaxis", "xaxis2", "xaxis3"):
        assert tuple(fig.layout[axis].range) == (8, 14)
    (menu,) = fig.layout.updatemenus
    assert [button.label for button in menu.buttons] == ["zoom: 8–14 min", "whole run"]
    assert menu.buttons[1].args[0]["xaxis3.range"] == [0, 60]
    assert menu.active == 0
    assert not timeline(run).layout.updatemenus
    for window in ((840, 480), (-1, 60), (0, 4000)):
        with pytest.raises(ValueError, match=re.escape(f"window_s={window!r} must be (start_s, end_s)")):
            timeline(run, window_s=window)


def test_an_office_day_can_be_drawn_on_the_clock():
    """Notebook 03: the x axis read "hours since 06:00"; with day_start_h it reads 06:00 … 22:00."""
    run = scenarios.office_day().run()
    fig = timeline(run, day_start_h=scenarios.DAY_START_H)
    axis = fig.layout.xaxis3
    assert (axis.type, axis.tickformat, axis.title.text) == ("date", "%H:%M", "time of day")
    assert [value[11:16] for value in axis.range] == ["06:00", "22:00"]
    assert _trace(fig, "capacity (ACU)").x[0][11:19] == "06:00:00"
    assert "%{x|%H:%M:%S}" in _trace(fig, "connections open").hovertemplate
    ((resumed_s,),) = run.sql("SELECT min(time_s) FROM events WHERE kind = 'resumed'").fetchall()
    assert _trace(fig, "resumed").x[0][11:16] == scenarios.office_clock(resumed_s)
    lat = latency(run, day_start_h=scenarios.DAY_START_H)
    assert lat.layout.xaxis.type == "date" and lat.layout.xaxis.title.text == "submitted at (time of day)"
    with pytest.raises(ValueError, match=re.escape("day_start_h=24 must be an hour of the day")):
        timeline(run, day_start_h=24)


def test_no_cold_start_star_on_a_request_that_did_not_wait():
    """Notebook 03: a warm-up job woke the cluster, and the first request after it got a "cold start: 0 s" star."""
    run = scenarios.office_day(prewarm_s=120, seconds_until_auto_pause=2700).run()
    starts = cold_starts(run)
    assert len(starts) >= 1 and not starts["waited"].any(), "the warm-up job should pay every resume"
    fig = latency(run)
    assert "cold start" not in _names(fig)
    assert not [note for note in fig.layout.annotations if "cold start" in note.text]
