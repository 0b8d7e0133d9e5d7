"""The widget callbacks, called directly — at the defaults and at every slider's extremes."""

from __future__ import annotations

import json

import ipywidgets as ipw
import plotly.graph_objects as go
import pytest
from plotly.serializers import _py_to_js

from aurora_sim import facts, widgets


def _extremes(slider: ipw.ValueWidget) -> list[object]:
    if isinstance(slider, ipw.SelectionSlider):
        return [slider.options[0], slider.options[-1]]
    if isinstance(slider, (ipw.FloatSlider, ipw.IntSlider)):
        return [slider.min, slider.max]
    if isinstance(slider, (ipw.Dropdown, ipw.ToggleButtons)):  # options: labels, (label, value) pairs or a dict
        options = slider.options
        if isinstance(options, dict):
            return list(options.values())
        return [option[1] if isinstance(option, tuple) else option for option in options]
    if isinstance(slider, ipw.Checkbox):
        return [False, True]
    raise AssertionError(f"no extremes known for {type(slider).__name__}")


PANELS = {"minimum_capacity": widgets.minimum_capacity_panel, "pause_resume": widgets.pause_resume_panel,
          "explore": widgets.explore_panel, "connections": widgets.connection_panel,
          "blocking": widgets.blocking_panel, "retry": widgets.retry_panel, "engines": widgets.engine_panel,
          "consolidation": widgets.consolidation_panel, "failover": widgets.failover_panel,
          "capstone": widgets.capstone_panel}


@pytest.fixture(scope="module", params=sorted(PANELS))
def panel(request: pytest.FixtureRequest) -> widgets.Panel:
    return PANELS[request.param]()


def test_panel_shows_one_figure_widget_and_its_controls(panel: widgets.Panel) -> None:
    assert isinstance(panel.figure, go.FigureWidget)
    assert len(panel.figure.data) > 0
    for control in panel.controls.values():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False, f"{control.description} updates while dragging"
    assert panel.summary.value, "the summary line is empty"


def _sent(figure: go.FigureWidget) -> str:
    """What a FigureWidget sends the browser at first, through its own serializer, as JSON: its traces (without
    their random uids) and its layout."""
    data = [{key: value for key, value in trace.items() if key != "uid"} for trace in figure._widget_data]
    sent = _py_to_js({"data": data, "layout": figure._widget_layout}, None)
    return json.dumps(sent, sort_keys=True, default=lambda value: value.tolist())  # a numeric array's buffer


@pytest.mark.parametrize("make", [*PANELS.values(), widgets.alarm_panel])
def test_a_panel_figure_is_valid_and_sent_as_a_validated_one_would_be(make) -> None:
    """``figure_widget`` skips plotly's validation of figure dicts (0.1 s of a notebook's first panel): every
    panel's figure must pass it (``go.Figure`` raises on an unknown or invalid property) and reach the browser
    exactly as a validated FigureWidget of the same dict sends it, its template expanded."""
    panel = make()
    drawn = panel.figure._drawn
    go.Figure(drawn)
    assert _sent(panel.figure) == _sent(go.FigureWidget(drawn))
    assert isinstance(panel.figure._widget_layout["template"], dict)


def test_every_slider_extreme_runs_and_redraws(panel: widgets.Panel) -> None:
    for name, control in panel.controls.items():
        for value in _extremes(control):
            values = {**panel.values(), name: value}
            run = panel.update(**values)
            assert panel.error.value == "", f"{name}={value!r}: {panel.error.value}"
            assert run is panel.run
            xs = [trace.x for trace in panel.figure.data if trace.x is not None]
            assert xs, f"{name}={value!r} left the figure without data"


def test_moving_a_slider_changes_the_figure_data() -> None:
    panel = widgets.minimum_capacity_panel()
    before = [tuple(t.y) for t in panel.figure.data if t.y is not None]
    panel.update(**{**panel.values(), "min_capacity": 4})
    after = [tuple(t.y) for t in panel.figure.data if t.y is not None]
    assert before != after


def _sent_updates(figure: go.FigureWidget) -> list[tuple[dict, dict, list[int]]]:
    """Every update message the figure sends to the browser from now on: (restyle, relayout, trace indexes)."""
    sent: list[tuple[dict, dict, list[int]]] = []
    send = figure._send_update_msg

    def spy(restyle_data: dict, relayout_data: dict, trace_indexes: object = None, source_view_id: object = None):
        sent.append((restyle_data, relayout_data, list(trace_indexes or [])))
        return send(restyle_data, relayout_data, trace_indexes, source_view_id)

    figure._send_update_msg = spy
    return sent


def _values(figure_part: object) -> object:
    """A figure's JSON with typed arrays (``{"dtype", "bdata"}``) as lists of floats and without widget uids."""
    import base64

    import numpy as np

    if isinstance(figure_part, dict) and "bdata" in figure_part:
        figure_part = np.frombuffer(base64.b64decode(figure_part["bdata"]), dtype=figure_part["dtype"])
    if isinstance(figure_part, np.ndarray):
        return [_values(value) for value in figure_part.tolist()]
    if isinstance(figure_part, int | float) and not isinstance(figure_part, bool):
        return "NaN" if figure_part != figure_part else float(figure_part)  # a gap equals a gap
    if isinstance(figure_part, dict):
        return {key: _values(value) for key, value in figure_part.items() if key != "uid"}
    if isinstance(figure_part, (list, tuple)):
        return [_values(value) for value in figure_part]
    return figure_part


def test_a_redraw_sends_the_figure_only_what_changed_in_one_message() -> None:
    """Issue 11: one update per move, with the traces and settings that differ, not the whole figure again."""
    panel = widgets.minimum_capacity_panel()
    sent = _sent_updates(panel.figure)
    panel.update(**{**panel.values(), "min_capacity": 4})
    assert len(sent) == 1, f"{len(sent)} messages for one move"
    restyle, relayout, traces = sent[0]
    assert {"y"} <= set(restyle) and not {"name", "hovertemplate", "type"} & set(restyle)
    assert 0 not in traces, "the offered load did not change: its trace is not sent again"
    assert not {"template", "height", "font", "legend", "xaxis", "xaxis.range"} & set(relayout)
    panel.update(**{**panel.values(), "min_capacity": 1})
    panel.update(**{**panel.values(), "min_capacity": 1})  # the same run again: nothing to send
    assert len(sent) == 2


@pytest.mark.parametrize("make", [widgets.minimum_capacity_panel, widgets.pause_resume_panel,
                                  widgets.engine_panel, widgets.consolidation_panel, widgets.alarm_panel])
def test_after_redraws_the_widget_holds_exactly_the_figure_of_its_run(make) -> None:
    """Sending only the changes leaves the widget (traces, shapes, annotations) as a fresh figure of the run."""
    panel = make()
    first = panel.values()
    for name, control in panel.controls.items():
        panel.update(**{**first, name: _extremes(control)[-1]})
    fresh = go.Figure(panel._draw(panel.run if isinstance(panel, widgets.Panel) else panel.result))
    shown = panel.figure
    assert _values(shown.to_dict()["data"]) == _values(fresh.to_dict()["data"])
    assert len(shown.layout.shapes) == len(fresh.layout.shapes)
    assert [a.text for a in shown.layout.annotations] == [a.text for a in fresh.layout.annotations]
    assert shown.layout.title.text == fresh.layout.title.text


def test_moving_the_report_on_separate_clusters_simulates_only_the_reports_cluster() -> None:
    """Notebook 04: the shop's and the tool's clusters do not see the report; their runs are reused."""
    before = widgets.consolidation_demo("separate", 50)
    after = widgets.consolidation_demo("separate", 65)
    assert after["shop"] is before["shop"] and after["tool"] is before["tool"]
    assert after["reports"] is not before["reports"]
    shared = widgets.consolidation_demo("shared", 50)["shared"]
    assert shared.databases == ("shop", "reports", "tool")


def test_capacity_sliders_offer_only_ladder_rungs_and_keep_min_below_max() -> None:
    panel = widgets.minimum_capacity_panel()
    low, high = panel.controls["min_capacity"], panel.controls["max_capacity"]
    assert tuple(low.options) == facts.CAPACITY_LADDER["aurora-mysql"]
    high.value = 2
    low.value = 8
    assert high.value == 8, "raising the minimum above the maximum must raise the maximum"
    high.value = 4
    assert low.value == 4, "lowering the maximum below the minimum must lower the minimum"


def test_pause_options_lie_within_the_documented_range() -> None:
    low, high = facts.SECONDS_UNTIL_AUTO_PAUSE_RANGE_S
    assert all(low <= option <= high for option in widgets.PAUSE_OPTIONS_S)
    assert facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S in widgets.PAUSE_OPTIONS_S


def test_demo_functions_return_the_run_of_their_settings() -> None:
    run = widgets.minimum_capacity_demo(min_capacity=8, max_capacity=2)
    assert (run.config.min_capacity, run.config.max_capacity) == (8, 8)
    run = widgets.pause_resume_demo(seconds_until_auto_pause=3600, monitoring_agent=True)
    assert run.config.seconds_until_auto_pause == 3600
    assert run.sql("SELECT count(*) FROM events WHERE kind = 'paused'").fetchall() == [(0,)]


def test_setup_check_moves_the_line() -> None:
    box = widgets.setup_check_panel()
    slider, figure = box.children[0], box.children[1]
    before = tuple(figure.data[0].y)
    slider.value = 1.0
    assert tuple(figure.data[0].y) != before


def test_explorer_scales_the_preset_and_applies_the_cluster_settings() -> None:
    quiet = widgets.explore_demo(preset="flash sale", intensity=0.5, min_capacity=2, max_capacity=4)
    busy = widgets.explore_demo(preset="flash sale", intensity=2.0, min_capacity=2, max_capacity=4)
    assert (quiet.config.min_capacity, quiet.config.max_capacity) == (2, 4)
    count = "SELECT count(*) FROM requests"
    assert busy.sql(count).fetchall()[0][0] > 3 * quiet.sql(count).fetchall()[0][0]


def test_first_figure_widget_skips_the_unused_iri_grammar_and_the_opt_out_keeps_it() -> None:
    import os
    import subprocess
    import sys

    probe = ("import sys, time; t = time.perf_counter(); from aurora_sim import widgets; widgets.setup_check_panel(); "
             "import nbformat, jsonschema; print(sys.modules.get('rfc3987_syntax') is not None, "
             "round(time.perf_counter() - t, 2))")
    # Outside a kernel, ipywidgets prints terminal escapes when it clears an output: read the last line only.
    fast = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    env = {**os.environ, "AURORA_SIM_KEEP_IRI_CHECKS": "1"}
    kept = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert fast.stdout.split()[-2] == "False", f"rfc3987_syntax was imported: {fast.stdout!r}"
    assert kept.stdout.split()[-2] == "True", f"the opt-out did not keep rfc3987_syntax: {kept.stdout!r}"


# --- notebook 08: the query box owns its endpoint --------------------------------------------------------------

def test_query_box_keeps_answering_after_another_endpoint_stops() -> None:
    """Run All once closed the endpoint the box used (EndpointConnectionError); the box now owns its own."""
    import pandas as pd

    from aurora_sim.data_api import serve

    box = widgets.query_box()
    try:
        with serve(auto_pause_s=None):  # a later cell starts and stops an endpoint of its own
            pass
        answer = box.run("SELECT id, name FROM Customer ORDER BY id")
        assert isinstance(answer, pd.DataFrame), f"the box answered {answer!r}"
        assert answer["id"].tolist()[:3] == [1, 2, 3]
    finally:
        box.close()
    stopped = box.run()
    assert isinstance(stopped, str) and stopped.startswith("EndpointConnectionError"), stopped


def test_query_box_shows_sql_null_as_none_not_nan() -> None:
    box = widgets.query_box()
    try:
        answer = box.run("SELECT id, email FROM Customer WHERE email IS NULL ORDER BY id")
        number = box.run("SELECT CAST(NULL AS INTEGER) AS n UNION ALL SELECT 1")
    finally:
        box.close()
    assert len(answer) > 0 and answer["email"].tolist() == [None] * len(answer)
    assert "NaN" not in answer.to_string()
    assert None in number["n"].tolist() and "NaN" not in number.to_string()


def test_query_box_reports_errors_and_updates_as_text() -> None:
    box = widgets.query_box()
    try:
        typo = box.run("SELEC 1")
        update = box.run("UPDATE Customer SET balance = balance + 1 WHERE id = 1")
    finally:
        box.close()
    assert typo.startswith("BadRequestException: ") and "SQLState" in typo, typo
    assert update == "OK: 1 row(s) updated"


# --- what a learner hit in the browser (issue 7 §4); tests/test_browser.py checks the same on the page -----------


def _children(widget: ipw.Widget) -> list[ipw.Widget]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _children(child)
    return found


def test_panel_figure_fits_the_output_area(panel: widgets.Panel) -> None:
    """A FigureWidget lays itself out before it is on the page (at 700 px); a strip under it makes it fit."""
    assert panel.figure._config.get("responsive") is True
    assert panel.figure.layout.width is None, "a fixed width cannot follow the output area"
    assert any(type(child).__name__ == "_FitWidth" for child in _children(panel.widget))
    assert panel.figure.layout.legend.orientation == "h", "a legend beside the plot narrows it"


def test_connection_panel_shows_the_burst_and_keeps_the_learners_zoom() -> None:
    panel = widgets.connection_panel()
    start, end = (value / 60 for value in widgets.BURST_VIEW_S)
    assert tuple(panel.figure.layout.xaxis3.range) == (start, end)
    assert start * 60 < 600 and end * 60 > 630, "the 30-second burst must be inside the first view"
    # What the "whole run" button does in the browser (plotly.js sends the relayout back to Python):
    with panel.figure.batch_update():
        for axis in ("xaxis", "xaxis2", "xaxis3"):
            panel.figure.layout[axis].range = (0, 60)
        panel.figure.layout.updatemenus[0].active = 1
    panel.update(**{**panel.values(), "strategy": "pool"})
    assert tuple(panel.figure.layout.xaxis3.range) == (0, 60), "moving a control threw the learner's zoom away"
    assert panel.figure.layout.updatemenus[0].active == 1


def test_a_new_first_view_replaces_the_old_one() -> None:
    panel = widgets.explore_panel()
    assert tuple(panel.figure.layout.xaxis3.range) == (0, 60)
    panel.update(**{**panel.values(), "preset": "office day"})
    assert tuple(panel.figure.layout.xaxis3.range) == (0, 16), "the office day is drawn in hours"


def test_pause_resume_panel_reads_the_clock_and_says_when_nobody_waited() -> None:
    panel = widgets.pause_resume_panel()
    assert panel.figure.layout.xaxis3.type == "date"
    assert [value[11:16] for value in panel.figure.layout.xaxis3.range] == ["06:00", "22:00"]
    assert "<b>longest cold-start wait</b>" in panel.summary.value
    panel.update(**{**panel.values(), "seconds_until_auto_pause": 2700, "prewarm_s": 120})
    assert "<b>longest cold-start wait</b> nobody waited" in panel.summary.value
    assert "nan" not in panel.summary.value
    assert "06:00" in panel.widget.children[0].value


def test_retry_panel_summary_shows_extra_attempts_and_an_honest_resume() -> None:
    """Notebook 06: "extra attempts" is one of the exercise's criteria; "longest cold start 1 s" hid a 46-s resume."""
    panel = widgets.retry_panel()
    run = panel.run
    ((started_s, resumed_s),) = run.sql(
        "SELECT min(time_s) FILTER (WHERE kind = 'resume_started'), min(time_s) FILTER (WHERE kind = 'resumed') "
        "FROM events").fetchall()
    assert f"<b>longest resume</b> {resumed_s - started_s:.0f} s" in panel.summary.value
    assert "<b>extra attempts</b> 0" in panel.summary.value, "no retries: no extra attempts, and the line says so"
    ((held,),) = run.sql("SELECT max(latency_s) FROM requests WHERE outcome = 'ok' AND submitted_s <= ? "
                         "AND finished_s >= ?", params=[resumed_s, started_s]).fetchall()
    assert held > 0.5 * (resumed_s - started_s), "requests held through the resume waited for most of it"
    assert f"<b>longest cold-start wait</b> {held:.0f} s" in panel.summary.value
    panel.update(**{**panel.values(), "strategy": "full_jitter"})
    ((extra,),) = panel.run.sql("SELECT sum(attempts) - count(*) FROM requests").fetchall()
    assert extra > 0 and f"<b>extra attempts</b> {extra:,}" in panel.summary.value


def test_summary_rows_label_the_resume_and_the_wait_apart() -> None:
    from aurora_sim import report, scenarios

    warm = report.summarize(scenarios.office_day(prewarm_s=120, seconds_until_auto_pause=2700).run())
    rows = dict(warm.rows())
    assert rows["longest cold-start wait"] == "nobody waited" and rows["longest resume"].endswith(" s")
    assert "extra attempts" not in rows, "a zero count is left out of the short table"
    complete = dict(warm.rows(complete=True))
    assert complete["extra attempts"] == "0"
    awake = dict(report.summarize(scenarios.flash_sale(min_capacity=4).run()).rows(complete=True))
    assert awake["longest resume"] == awake["longest cold-start wait"] == "—"


def test_failover_panel_reuses_the_run_for_settings_that_cannot_change_it() -> None:
    panel = widgets.failover_panel()
    shown = panel.run
    assert panel.update(**{**panel.values(), "max_attempts": 40, "cap_s": 60}) is shown  # no retry: both do nothing
    retried = panel.update(**{**panel.values(), "strategy": "full_jitter", "max_attempts": 40})
    assert retried is not shown and retried.sql("SELECT max(attempts) FROM requests").fetchall()[0][0] > 3
    served = next(trace for trace in panel.figure.data if trace.name == "served")
    assert sum(served.y) == retried.sql("SELECT count(*) FROM requests WHERE outcome = 'ok'").fetchall()[0][0]
    assert len(panel.figure.layout.shapes) == 1  # the outage, shaded
