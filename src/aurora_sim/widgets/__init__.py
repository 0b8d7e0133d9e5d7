"""Control panels: explicit sliders wired with ``interactive_output`` to one ``FigureWidget`` updated in place.

Each demo is a plain function of slider values that returns a ``Run`` (tests call it directly, at the
slider extremes too); a ``Panel`` wires controls to it, redraws with a ``plots`` factory (its ``*_dict`` form,
plain dicts plotly does not validate again) and sends the figure only what changed, in one update message, and
shows a one-line summary. Runs are cached on the frozen scenario, so moving a slider back is instant. Slider
ranges come from ``facts``: no position makes an invalid config.

Example:
    >>> run = minimum_capacity_demo(min_capacity=4)
    >>> run.config.min_capacity
    4
    >>> setup_check_figure(0.5).data[0].name
    'sin(x - shift)'
"""

from ._panel import PAUSE_OPTIONS_S, Panel, figure_widget, full_width, redraw
from .capstone import capstone_demo, capstone_panel
from .clients import (
    ATTEMPTS_RANGE,
    BUDGET_OPTIONS,
    BURST_RPS_RANGE,
    BURST_VIEW_S,
    PIECES_OPTIONS,
    POOL_SIZE_RANGE,
    STATEMENT_LIMIT_OPTIONS_S,
    blocking_demo,
    blocking_panel,
    connection_demo,
    connection_panel,
    retry_demo,
    retry_panel,
)
from .consolidation import REPORT_START_OPTIONS_MIN, consolidation_demo, consolidation_panel
from .engines import engine_demo, engine_panel
from .foundation import (
    INTENSITY_RANGE,
    PREWARM_OPTIONS_S,
    SPIKE_RPS_RANGE,
    explore_demo,
    explore_panel,
    minimum_capacity_demo,
    minimum_capacity_panel,
    pause_resume_demo,
    pause_resume_panel,
    setup_check_figure,
    setup_check_panel,
    setup_versions,
)
from .monitoring import (
    ALARM_PERIOD_OPTIONS_S,
    EVALUATION_PERIODS_RANGE,
    THRESHOLD_RANGE_PCT,
    ResultPanel,
    alarm_demo,
    alarm_panel,
    describe_alarm,
)
from .query_box import query_box
from .resilience import FAILOVER_ATTEMPTS_RANGE, FAILOVER_CAP_OPTIONS_S, failover_demo, failover_panel

__all__ = [
    "ALARM_PERIOD_OPTIONS_S",
    "ATTEMPTS_RANGE",
    "BUDGET_OPTIONS",
    "BURST_RPS_RANGE",
    "BURST_VIEW_S",
    "EVALUATION_PERIODS_RANGE",
    "FAILOVER_ATTEMPTS_RANGE",
    "FAILOVER_CAP_OPTIONS_S",
    "INTENSITY_RANGE",
    "PAUSE_OPTIONS_S",
    "PIECES_OPTIONS",
    "POOL_SIZE_RANGE",
    "PREWARM_OPTIONS_S",
    "REPORT_START_OPTIONS_MIN",
    "SPIKE_RPS_RANGE",
    "STATEMENT_LIMIT_OPTIONS_S",
    "THRESHOLD_RANGE_PCT",
    "Panel",
    "ResultPanel",
    "alarm_demo",
    "alarm_panel",
    "blocking_demo",
    "blocking_panel",
    "capstone_demo",
    "capstone_panel",
    "connection_demo",
    "connection_panel",
    "consolidation_demo",
    "consolidation_panel",
    "describe_alarm",
    "engine_demo",
    "engine_panel",
    "explore_demo",
    "explore_panel",
    "failover_demo",
    "failover_panel",
    "figure_widget",
    "full_width",
    "minimum_capacity_demo",
    "minimum_capacity_panel",
    "pause_resume_demo",
    "pause_resume_panel",
    "query_box",
    "redraw",
    "retry_demo",
    "retry_panel",
    "setup_check_figure",
    "setup_check_panel",
    "setup_versions",
]
