"""Panels of notebooks 01, 05 and 06: connection strategies, scale-blocking operations, retry policies."""

from __future__ import annotations

from functools import partial

import ipywidgets as widgets

from .. import plots, scenarios
from ..clients import RETRY_STRATEGIES, RetryPolicy
from ..report import Summary
from ..simulation import Run
from ._panel import _STYLE, _WIDE, Panel, _timeout_action_buttons

# --- notebook 01 -------------------------------------------------------------------------------------------

BURST_RPS_RANGE = (10.0, 150.0)
POOL_SIZE_RANGE = (1, 100)
# What the connection panel shows first: the 30-s burst with two minutes before it and three and a half after
# (on the hour's axis it was a one-pixel needle); a button above the plot shows the whole run.
BURST_VIEW_S = (scenarios.BURST_START_S - 120, scenarios.BURST_END_S + 210)


def connection_demo(strategy: str = "per request", burst_rps: float = 80.0, pool_max_size: int = 20,
                    pool_min_size: int = 2) -> Run:
    """The serverless burst through one connection strategy (the work behind notebook 01's panel)."""
    return scenarios.serverless_burst(connections=strategy, burst_rps=burst_rps, pool_max_size=pool_max_size,
                                      pool_min_size=min(pool_min_size, pool_max_size)).run()


def connection_panel() -> Panel:
    """Connection strategy, burst size and pool sizes → the burst's timeline."""
    controls = {
        "strategy": widgets.Dropdown(options=list(scenarios.CONNECTION_CHOICES), value="per request",
                                     description="connections", style=_STYLE),
        "burst_rps": widgets.FloatSlider(value=80.0, min=BURST_RPS_RANGE[0], max=BURST_RPS_RANGE[1], step=10,
                                         description="burst requests/s", continuous_update=False, style=_STYLE,
                                         layout=_WIDE),
        "pool_max_size": widgets.IntSlider(value=20, min=POOL_SIZE_RANGE[0], max=POOL_SIZE_RANGE[1],
                                           description="pool max_size", continuous_update=False, style=_STYLE,
                                           layout=_WIDE),
        "pool_min_size": widgets.IntSlider(value=2, min=0, max=20, description="pool min_size",
                                           continuous_update=False, style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, connection_demo, partial(plots.timeline_dict, window_s=BURST_VIEW_S),
                 title="A burst of serverless invocations at minute 10")


# --- notebook 05 -------------------------------------------------------------------------------------------

PIECES_OPTIONS = (1, 2, 3, 4, 6, 12)
STATEMENT_LIMIT_OPTIONS_S = (0, 60, 300, 600, 1800)


def blocking_demo(blocker: str = "long transaction", timeout_action: str = "RollbackCapacityChange",
                  pieces: int = 1, max_execution_time_s: int = 0) -> Run:
    """The nightly report against the morning ramp (the work behind notebook 05's panel)."""
    parameters = {"max_execution_time": max_execution_time_s * 1000} if max_execution_time_s else {}
    return scenarios.nightly_report(blocker=blocker, timeout_action=timeout_action, pieces=pieces,
                                    parameters=parameters).run()


def blocking_panel() -> Panel:
    """Blocking operation, timeout action, narrowing the transaction and max_execution_time → the timeline."""
    controls = {
        "blocker": widgets.Dropdown(options=list(scenarios.BLOCKERS), value="long transaction",
                                    description="the report holds", style=_STYLE),
        "timeout_action": _timeout_action_buttons(),
        "pieces": widgets.SelectionSlider(options=list(PIECES_OPTIONS), value=1, description="transactions",
                                          continuous_update=False, style=_STYLE, layout=_WIDE),
        "max_execution_time_s": widgets.SelectionSlider(options=list(STATEMENT_LIMIT_OPTIONS_S), value=0,
                                                        description="max_execution_time (s)",
                                                        continuous_update=False, style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, blocking_demo, plots.timeline_dict,
                 title="A one-hour report while the morning traffic climbs")


# --- notebook 06 -------------------------------------------------------------------------------------------

ATTEMPTS_RANGE = (1, 10)
BUDGET_OPTIONS = (0, 5, 20, 100)


def retry_demo(strategy: str = "none", max_attempts: int = 3, budget_tokens: int = 0) -> Run:
    """Data API clients through a cold start and a forced scaling (the work behind notebook 06's panel)."""
    policy = RetryPolicy(strategy, max_attempts=max_attempts, budget_tokens=budget_tokens or None)
    return scenarios.retry_storm(retry=policy).run()


def retry_panel() -> Panel:
    """Retry strategy, attempts and a retry budget → the storm's timeline."""
    controls = {
        "strategy": widgets.Dropdown(options=list(RETRY_STRATEGIES), value="none", description="retry",
                                     style=_STYLE),
        "max_attempts": widgets.IntSlider(value=3, min=ATTEMPTS_RANGE[0], max=ATTEMPTS_RANGE[1],
                                          description="max_attempts", continuous_update=False, style=_STYLE,
                                          layout=_WIDE),
        "budget_tokens": widgets.SelectionSlider(options=list(BUDGET_OPTIONS), value=0,
                                                 description="retry budget (0 = none)", continuous_update=False,
                                                 style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, retry_demo, plots.timeline_dict, describe=partial(Summary.describe, retries=True),
                 title=f"A cold start at minute {scenarios.STORM_START_S // 60}, a forced scaling after minute "
                       f"{scenarios.STORM_BUSY_S // 60}")
