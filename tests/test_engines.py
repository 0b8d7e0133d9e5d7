"""Notebook 07: the engines side by side — the differences table, the scenarios' runs, the figure, the panel, and the
PostgreSQL-only operations on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import pytest

from aurora_sim import engines, facts, names, plots, realdb, scenarios, widgets
from aurora_sim.costs import bill
from aurora_sim.realdb import postgresql_only
from aurora_sim.report import summarize
from run_tables import times

MYSQL, POSTGRESQL = facts.ENGINES


def _runs(**settings: object) -> dict[str, object]:
    return {engine: scenarios.month_end_peak(engine=engine, **settings).run() for engine in facts.ENGINES}


# --- the facts ---------------------------------------------------------------------------------------------------

def test_differences_states_each_engine_from_the_facts() -> None:
    table = engines.differences()
    mysql, postgresql = engines.ENGINE_NAMES[MYSQL], engines.ENGINE_NAMES[POSTGRESQL]
    assert table.loc["lowest capacity while running (ACU)", mysql] == str(facts.CAPACITY_LADDER[MYSQL][0])
    assert table.loc["lowest capacity while running (ACU)", postgresql] == str(facts.CAPACITY_LADDER[POSTGRESQL][0])
    assert table.loc["the step above 64 ACU"].tolist()[:2] == ["128 (× 2)", "192 (× 3)"]
    assert table.loc["a connection over the limit receives", postgresql] == facts.TOO_MANY_CONNECTIONS_ERROR[POSTGRESQL]
    assert table.loc["connections an application can open there", postgresql] == "447 (3 kept for superusers)"
    assert table.loc["max_connections at the lowest capacity"].tolist() == ["90 (DOC)", "450 (INF)", "DOC · INF"]
    for version in facts.ENGINE_VERSION_RELEASES[POSTGRESQL].values():
        assert version in table.loc["v1 engine versions", postgresql]
    blockers = table.loc["also blocks scaling", postgresql]
    assert "NOTIFY (documented)" in blockers and "the model's inference" in blockers
    assert table.loc["also blocks scaling", mysql] == "—"
    assert table.loc["logs a v1 cluster uploads to CloudWatch", mysql] == ", ".join(facts.LOG_TYPES[MYSQL])
    assert set(table["source"]) <= {"DOC", "API", "INF", "3P", "DOC · INF", "DOC · API"}


def test_the_log_types_facts_name_each_engines_logs_with_a_source() -> None:
    assert facts.CLOUDWATCH_LOGS_EXPORTS[POSTGRESQL] == ("postgresql",)
    assert set(facts.CLOUDWATCH_LOGS_EXPORTS[MYSQL]) == set(facts.LOG_TYPES[MYSQL])
    assert facts.SOURCES["CLOUDWATCH_LOGS_EXPORTS"].label == "API"


# --- the month-end peak --------------------------------------------------------------------------------------------

def test_month_end_peak_climbs_each_ladder_and_postgresql_pays_the_bigger_step() -> None:
    runs = _runs()
    paths = {engine: engines.capacity_path(run) for engine, run in runs.items()}
    assert "64 → 128 → 64" in paths[MYSQL], paths
    assert "64 → 192 → 64" in paths[POSTGRESQL], paths  # 192 steps straight back to 64: no 128 on its ladder
    mysql, postgresql = (summarize(runs[engine]) for engine in facts.ENGINES)
    for summary in (mysql, postgresql):
        assert summary.failed == 0 and summary.scale_failures == 0
        assert summary.p95_latency_ms < 1000
    assert postgresql.cost_usd > mysql.cost_usd * 1.2, (postgresql.cost_usd, mysql.cost_usd)


def test_month_end_peak_capped_at_64_acu_on_postgresql_queues_the_peak() -> None:
    capped = summarize(scenarios.month_end_peak(engine=POSTGRESQL, max_capacity=64).run())
    full = summarize(scenarios.month_end_peak(engine=POSTGRESQL).run())
    assert capped.max_capacity_acu == 64
    assert capped.cost_usd < full.cost_usd
    assert capped.p95_latency_ms > 60_000, "the peak should wait in the queue for over a minute"


def test_month_end_peak_stays_at_its_top_rung_for_the_scale_down_cooldown() -> None:
    run = scenarios.month_end_peak(engine=POSTGRESQL).run()
    up, down = run.sql("SELECT min(time_s) FILTER (WHERE capacity_to = 192), min(time_s) FILTER (WHERE "
                       "capacity_from = 192) FROM events WHERE kind = 'scale_completed'").fetchall()[0]
    assert down - up >= facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S


def test_month_end_segments_reach_the_peak_and_refuse_a_peak_below_the_quiet_load() -> None:
    segments = scenarios.month_end_segments(100.0)
    assert max(rate for *_, rate in segments) * scenarios.MONTH_END_QUERY_CPU_S == pytest.approx(100.0)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segments)), "segments must be contiguous"
    with pytest.raises(ValueError, match=re.escape("peak_acu=2.0 must be above the quiet 8 ACU and at most 1000")):
        scenarios.month_end_segments(2.0)


def test_the_runaway_query_holds_the_scaling_point_unless_a_timeout_ends_it() -> None:
    held = scenarios.month_end_peak(engine=POSTGRESQL, runaway_query=True).run()
    assert summarize(held).scale_failures > 0
    freed = scenarios.month_end_peak(engine=POSTGRESQL, runaway_query=True,
                                     parameters={"statement_timeout": scenarios.RUNAWAY_LIMIT_MS}).run()
    assert summarize(freed).scale_failures == 0
    aborted = freed.sql("SELECT time_s, message FROM events WHERE kind = 'transaction_aborted'").fetchall()
    assert aborted == [(scenarios.RUNAWAY_START_S + scenarios.RUNAWAY_LIMIT_MS / 1000, facts.STATEMENT_TIMEOUT_ERROR)]


def test_mysql_to_port_meets_the_exercise_targets_with_max_execution_time() -> None:
    run = scenarios.mysql_to_port().run()
    assert run.config.engine == MYSQL and run.config.parameter("max_execution_time") == scenarios.RUNAWAY_LIMIT_MS
    assert times(run, "transaction_aborted") == [scenarios.RUNAWAY_START_S + scenarios.RUNAWAY_LIMIT_MS / 1000]
    summary = summarize(run)
    assert (summary.failed, summary.scale_failures) == (0, 0)


# --- the idle development database and the connection rush --------------------------------------------------------

@pytest.mark.parametrize("auto_pause", [True, False])
def test_an_idle_dev_database_costs_twice_as_much_on_postgresql(auto_pause: bool) -> None:
    bills = {engine: summarize(scenarios.idle_dev_database(engine=engine, auto_pause=auto_pause).run())
             for engine in facts.ENGINES}
    ratio = bills[POSTGRESQL].billed_acu_hours / bills[MYSQL].billed_acu_hours
    assert ratio == pytest.approx(2.0, rel=0.02), ratio
    if not auto_pause:  # billed the lowest rung all day
        assert bills[MYSQL].billed_acu_hours == pytest.approx(24 * facts.CAPACITY_LADDER[MYSQL][0])
    else:
        assert bills[MYSQL].resumes == len(scenarios.DEV_SESSIONS_H)


def test_bills_table_has_one_row_per_run() -> None:
    table = engines.bills(off=scenarios.idle_dev_database(auto_pause=False).run())
    assert table.loc["off", "auto-pause"] == "off" and float(table.loc["off", "cost (USD)"]) == pytest.approx(1.44)


def test_connection_rush_is_refused_at_each_engines_application_limit_with_its_text() -> None:
    for engine in facts.ENGINES:
        run = scenarios.connection_rush(engine=engine).run()
        lowest = facts.CAPACITY_LADDER[engine][0]
        peak, = run.sql("SELECT max(connections) FROM metrics WHERE time_s < $1",
                        params=[scenarios.RUSH_END_S]).fetchall()[0]
        assert peak == facts.connection_limit(engine, lowest), (engine, peak)
        texts = engines.client_texts(rush=run)["text"].tolist()
        assert texts == [facts.TOO_MANY_CONNECTIONS_ERROR[engine]], texts


def test_client_texts_lists_forced_scaling_texts_and_runs_without_errors() -> None:
    forced = scenarios.nightly_report(engine=POSTGRESQL, timeout_action="ForceApplyCapacityChange").run()
    table = engines.client_texts(forced=forced, quiet=scenarios.idle_dev_database().run())
    assert facts.FORCED_SCALING_ERROR[(POSTGRESQL, "13")] in table.loc["forced", "text"].tolist()
    assert table.loc["quiet", "text"].tolist() == ["(no error)"]


def test_scaling_summary_and_headline_agree_with_summarize() -> None:
    run = scenarios.month_end_peak().run()
    full, line = summarize(run), engines.headline(run)
    assert (line.failed, line.scale_failures, line.max_capacity_acu) == (full.failed, full.scale_failures,
                                                                          full.max_capacity_acu)
    assert line.cost_usd == pytest.approx(full.cost_usd)
    assert line.p95_latency_ms == pytest.approx(full.p95_latency_ms)
    table = engines.scaling_summary(peak=run)
    assert table.loc["peak", "cost (USD)"] == pytest.approx(round(full.cost_usd, 2))


def test_headline_of_a_run_without_requests_has_no_latency() -> None:
    from aurora_sim import ClusterConfig, Workload, simulate

    idle = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 600, 0.0)]), duration_s=600)
    line = engines.headline(idle)
    assert math.isnan(line.p95_latency_ms) and line.failed == 0
    assert "p95 n/a" in engines.describe_pair({"idle": line})


# --- the figure and the panel --------------------------------------------------------------------------------------

def test_engine_comparison_draws_each_run_and_the_demand() -> None:
    runs = {engines.ENGINE_NAMES[engine]: run for engine, run in _runs().items()}
    figure = plots.engine_comparison(runs)
    names = [trace.name for trace in figure.data]
    assert names[0] == "CPU asked for (ACU)"
    for label in runs:
        assert f"{label}: capacity" in names and f"{label}: bill so far" in names
    capacity = next(trace for trace in figure.data if trace.name == "Aurora PostgreSQL: capacity")
    assert max(capacity.y) == 192
    bill = next(trace for trace in figure.data if trace.name == "Aurora MySQL: bill so far")
    assert bill.y[-1] == pytest.approx(summarize(runs["Aurora MySQL"]).acu_hours * facts.PRICE_PER_ACU_HOUR_USD)
    assert max(trace.y.max() for trace in figure.data if trace.name == "CPU asked for (ACU)") == pytest.approx(80)
    with pytest.raises(ValueError, match=re.escape("runs={} is empty")):
        plots.engine_comparison({})


def test_engine_comparison_marks_failed_scalings() -> None:
    held = scenarios.month_end_peak(engine=POSTGRESQL, runaway_query=True).run()
    figure = plots.engine_comparison({"held": held})
    marks = next(trace for trace in figure.data if trace.name == "held: failed scaling")
    assert len(marks.x) == summarize(held).scale_failures > 0
    assert marks.showlegend is True


def test_engine_panel_runs_both_engines_and_describes_each() -> None:
    panel = widgets.engine_panel()
    assert set(panel.run) == {"Aurora MySQL", "Aurora PostgreSQL"}
    assert "Aurora MySQL" in panel.summary.value and "Aurora PostgreSQL" in panel.summary.value
    assert panel.controls["postgresql_max_capacity"].options[-1] == facts.CAPACITY_LADDER[POSTGRESQL][-1]
    assert 128 not in panel.controls["postgresql_max_capacity"].options
    assert list(panel.controls["mysql_max_capacity"].options) == [64, 128, 256]
    assert list(panel.controls["postgresql_max_capacity"].options) == [64, 192, 384]
    before = [tuple(trace.y) for trace in panel.figure.data]
    runs = panel.update(**{**panel.values(), "postgresql_max_capacity": 64})
    assert runs["Aurora PostgreSQL"].config.max_capacity == 64
    assert [tuple(trace.y) for trace in panel.figure.data] != before
    assert "up to 64 ACU" in panel.summary.value


# --- a real PostgreSQL ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg():
    with realdb.server() as server:
        if not server.available:  # under CI server() raised instead
            pytest.skip(f"no PostgreSQL here (CI unset): {server.reason}")
        yield server


def test_postgresql_only_operations_leave_state_on_an_idle_session(pg) -> None:
    table = postgresql_only.session_state_demo(pg.dsn)
    assert list(table.index) == ["advisory lock", "LISTEN", "NOTIFY", "cursor WITH HOLD"]
    for operation in ("advisory lock", "LISTEN", "cursor WITH HOLD"):
        assert table.loc[operation, "the session now"] == "idle, no transaction open", operation
    assert "1 advisory lock granted" in table.loc["advisory lock", "what the server shows afterwards"]
    assert "pg_try_advisory_lock → false" in table.loc["advisory lock", "what the server shows afterwards"]
    notify = table.loc["NOTIFY"]
    assert "received 0 notification(s); after COMMIT 'order 42'" in notify["what the server shows afterwards"]
    assert notify["the session now"] == "before COMMIT: idle in transaction, a transaction open"
    assert "is_holdable = True" in table.loc["cursor WITH HOLD", "what the server shows afterwards"]


def test_postgresql_only_demo_leaves_nothing_behind(pg) -> None:
    import psycopg

    postgresql_only.session_state_demo(pg.dsn)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        advisory = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]
    assert advisory == 0


def test_connection_slots_show_the_reserved_superuser_slots(pg) -> None:
    slots = postgresql_only.connection_slots(pg.dsn)
    assert int(slots.loc["superuser_reserved_connections", "value"]) == facts.SUPERUSER_RESERVED_CONNECTIONS
    assert int(slots.loc["max_connections", "value"]) > facts.SUPERUSER_RESERVED_CONNECTIONS


def _headline_by_sql(run) -> engines.Headline:
    """``engines.headline``'s figures asked of the run's tables in SQL."""
    p95_s, failed = run.sql(
        "SELECT quantile_cont(latency_s, 0.95) FILTER (WHERE outcome = $1), count(*) FILTER (WHERE outcome <> $1) "
        "FROM requests WHERE submitted_s < $2", params=[names.OK, run.duration_s]).fetchall()[0]
    scale_failures, top = run.sql(
        "SELECT (SELECT count(*) FROM events WHERE kind = $1), (SELECT max(capacity_acu) FROM capacity "
        "WHERE time_s <= $2)", params=[names.SCALE_FAILED, run.duration_s]).fetchall()[0]
    return engines.Headline(p95_latency_ms=math.nan if p95_s is None else p95_s * 1000, failed=failed,
                            scale_failures=scale_failures, max_capacity_acu=int(top), cost_usd=bill(run).cost_usd)


def test_headline_from_the_frames_equals_the_same_figures_asked_in_sql() -> None:
    """The panels' headline reads the run's frames; every figure must be DuckDB's (p95 within a rounding step)."""
    from aurora_sim import scenarios
    from aurora_sim.engines import headline

    runs = [scenarios.tour().run(), scenarios.flash_sale().run(), scenarios.flash_sale(min_capacity=8).run(),
            *widgets.engine_demo(peak_acu=150.0).values(), *widgets.consolidation_demo().values()]
    for run in runs:
        fast, sql = headline(run), _headline_by_sql(run)
        assert fast.p95_latency_ms == pytest.approx(sql.p95_latency_ms, rel=1e-12, nan_ok=True), run
        assert dataclasses.replace(fast, p95_latency_ms=0.0) == dataclasses.replace(sql, p95_latency_ms=0.0), run


@pytest.mark.parametrize(("start_s", "end_s"), [(0.0, None), (600.0, 1800.0), (5000.0, 5001.0)])
def test_summary_request_figures_from_the_frames_equal_the_same_figures_in_sql(start_s, end_s) -> None:
    """``report.summarize`` reads the frames (a panel's summary line); SQL over the tables must agree (quantiles
    within a rounding step), in a window and in an empty one."""
    from aurora_sim.report import _request_figures

    for run in (scenarios.flash_sale().run(), scenarios.tour().run(), *widgets.consolidation_demo().values()):
        end = run.duration_s if end_s is None else end_s
        fast = _request_figures(run, start_s, end)
        sql = run.sql("SELECT count(*), count(*) FILTER (WHERE outcome <> 'ok'), "
                      "quantile_cont(latency_s, 0.5) FILTER (WHERE outcome = 'ok'), "
                      "quantile_cont(latency_s, 0.95) FILTER (WHERE outcome = 'ok'), max(latency_s), "
                      "sum(attempts - 1) FROM requests WHERE submitted_s >= $1 AND submitted_s < $2",
                      params=[start_s, end]).fetchall()[0]
        assert fast[:2] == sql[:2] and fast[5] == sql[5], run
        for ours, theirs in zip(fast[2:5], sql[2:5], strict=True):
            assert ours == theirs if theirs is None else ours == pytest.approx(theirs, rel=1e-12), run
