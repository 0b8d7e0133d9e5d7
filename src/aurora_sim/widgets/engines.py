"""Panel of notebook 07: the same month-end peak on Aurora MySQL and Aurora PostgreSQL, side by side."""

from __future__ import annotations

import ipywidgets as widgets

from .. import engines, facts, plots, scenarios
from ..simulation import Run
from ._panel import _STYLE, _WIDE, Panel

ENGINE_LABELS = {engine: engines.ENGINE_NAMES[engine] for engine in facts.ENGINES}


def engine_demo(peak_acu: float = 80.0, mysql_max_capacity: int = 128,
                postgresql_max_capacity: int = 192) -> dict[str, Run]:
    """The month-end peak on both engines, each with its own maximum (the work behind notebook 07's panel).

    Example:
        >>> runs = engine_demo(postgresql_max_capacity=64)
        >>> [run.config.max_capacity for run in runs.values()]
        [128, 64]
    """
    maxima = {"aurora-mysql": mysql_max_capacity, "aurora-postgresql": postgresql_max_capacity}
    return {ENGINE_LABELS[engine]: scenarios.month_end_peak(engine=engine, peak_acu=peak_acu,
                                                            max_capacity=top).run()
            for engine, top in maxima.items()}


MAXIMUM_FROM_ACU = 64  # the rungs where the ladders part; lower maxima only make the peak queue longer (and slower)


def _maximum_slider(engine: str, value: int) -> widgets.SelectionSlider:
    """The rungs of ``engine``'s ladder from 64 ACU up: where the two ladders differ (64, 128, 256 on MySQL; 64,
    192, 384 on PostgreSQL), all above the scenario's minimum."""
    rungs = [rung for rung in facts.CAPACITY_LADDER[engine] if rung >= MAXIMUM_FROM_ACU]
    return widgets.SelectionSlider(options=rungs, value=value, description=f"{ENGINE_LABELS[engine]} max ACU",
                                   continuous_update=False, style=_STYLE, layout=_WIDE)


def engine_panel() -> Panel:
    """Peak demand and each engine's maximum capacity → both runs on one figure, and a line per engine."""
    controls = {
        "peak_acu": widgets.SelectionSlider(options=list(scenarios.PEAK_ACU_OPTIONS), value=80.0,
                                            description="peak CPU asked for (ACU)", continuous_update=False,
                                            style=_STYLE, layout=_WIDE),
        "mysql_max_capacity": _maximum_slider("aurora-mysql", 128),
        "postgresql_max_capacity": _maximum_slider("aurora-postgresql", 192),
    }
    return Panel(controls, engine_demo, plots.engine_comparison_dict, title="A month-end peak on either engine",
                 describe=engines.describe_pair, summarize=engines.headlines)
