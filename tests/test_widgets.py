"""The widget callbacks, called directly — at the defaults and at every slider's extremes."""

from __future__ import annotations

import ipywidgets as ipw
import plotly.graph_objects as go
import pytest

from aurora_sim import facts, widgets


def _extremes(slider: ipw.ValueWidget) -> list[object]:
    if isinstance(slider, ipw.SelectionSlider):
        return [slider.options[0], slider.options[-1]]
    if isinstance(slider, (ipw.FloatSlider, ipw.IntSlider)):
        return [slider.min, slider.max]
    if isinstance(slider, ipw.Dropdown):
        return list(slider.options)
    if isinstance(slider, ipw.ToggleButtons):
        return [option[1] if isinstance(option, tuple) else option for option in slider.options]
    if isinstance(slider, ipw.Checkbox):
        return [False, True]
    raise AssertionError(f"no extremes known for {type(slider).__name__}")


PANELS = {"minimum_capacity": widgets.minimum_capacity_panel, "pause_resume": widgets.pause_resume_panel,
          "explore": widgets.explore_panel, "connections": widgets.connection_panel,
          "blocking": widgets.blocking_panel, "retry": widgets.retry_panel}


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
