"""Notebook 09's panel: a fault, a connection strategy and a retry policy → what the shop's clients got."""

from __future__ import annotations

from functools import lru_cache, partial

import ipywidgets as widgets

from .. import plots, scenarios
from ..clients import RETRY_STRATEGIES, ConnectionPool, RetryPolicy
from ..report import Summary, summarize
from ..simulation import Run
from ._panel import _STYLE, _WIDE, Panel

FAILOVER_ATTEMPTS_RANGE = (1, 60)  # each attempt is simulated: 60 attempts ride out the AZ outage
FAILOVER_CAP_OPTIONS_S = (2, 5, 10, 20, 30, 60)


def failover_demo(fault: str = "AZ outage", connections: str = "pool", pre_ping: bool = False,
                  strategy: str = "none", max_attempts: int = 3, cap_s: float = 10) -> Run:
    """The shop through a fault with one client set-up (the work behind notebook 09's panel). The pool is
    ``scenarios.SHOP_POOL``, with ``pre_ping`` as chosen; retries start at ``base_s`` = 1 s (0.1 s would spend
    a dozen attempts in the first seconds of a minutes-long outage).

    Example:
        >>> failover_demo().sql("SELECT count(*) > 0 FROM requests WHERE outcome <> 'ok'").fetchall()
        [(True,)]
    """
    pool = ConnectionPool(min_size=scenarios.SHOP_POOL.min_size, max_size=scenarios.SHOP_POOL.max_size,
                          acquire_timeout_s=scenarios.SHOP_POOL.acquire_timeout_s, max_lifetime_s=None,
                          pre_ping=pre_ping)
    # Settings that cannot change the run give the same scenario, so the run cache (scenarios.Scenario.run)
    # answers them: without retries, max_attempts and cap_s do nothing.
    retry = (RetryPolicy("none") if strategy == "none" or max_attempts == 1 else
             RetryPolicy(strategy, base_s=min(1.0, cap_s), cap_s=cap_s, max_attempts=max_attempts))
    return scenarios.shop_failover(fault=fault, connections=connections, pool=pool, retry=retry).run()


@lru_cache(maxsize=16)
def _figure(run: Run) -> dict:
    """The panel's figure for a run (runs are cached, so a setting visited again is drawn once)."""
    return plots.failover_requests_dict(run)


@lru_cache(maxsize=16)
def _summary(run: Run) -> Summary:
    return summarize(run)


def failover_panel() -> Panel:
    """Fault, connections (with or without pre-ping) and retry policy → the orders and how they ended."""
    controls = {
        "fault": widgets.Dropdown(options=list(scenarios.FAULT_CHOICES), value="AZ outage", description="fault",
                                  style=_STYLE),
        "connections": widgets.Dropdown(options=["pool", "per request", "Data API"], value="pool",
                                        description="connections", style=_STYLE),
        "pre_ping": widgets.Checkbox(value=False, description="pool pre_ping", style=_STYLE),
        "strategy": widgets.Dropdown(options=list(RETRY_STRATEGIES), value="none", description="retry",
                                     style=_STYLE),
        "max_attempts": widgets.IntSlider(value=3, min=FAILOVER_ATTEMPTS_RANGE[0], max=FAILOVER_ATTEMPTS_RANGE[1],
                                          description="max_attempts", continuous_update=False, style=_STYLE,
                                          layout=_WIDE),
        "cap_s": widgets.SelectionSlider(options=list(FAILOVER_CAP_OPTIONS_S), value=10, description="cap_s",
                                         continuous_update=False, style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, failover_demo, _figure, describe=partial(Summary.describe, retries=True), summarize=_summary,
                 title=f"The shop's DB instance is lost at minute {scenarios.SHOP_FAULT_S // 60}")
