"""Panel of notebook 04: three databases on one shared cluster or on one cluster each, and the report's timing."""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets

from .. import consolidation, engines, plots, scenarios
from ..config import ClusterConfig
from ..simulation import Run
from ..workload import Workload
from ._panel import _STYLE, _WIDE, Panel

PLANS = {"shared": "one shared cluster", "separate": "one cluster each"}
REPORT_START_OPTIONS_MIN = tuple(range(0, 91, 5))  # the half-hour report ends within the two-hour evening
SEED = 7


@lru_cache(maxsize=64)
def consolidation_demo(plan: str = "shared",
                       report_start_min: int = scenarios.EVENING_REPORT_START_S // 60) -> dict[str, Run]:
    """The evening's three databases under ``plan`` ("shared" or "separate"), the report starting at
    ``report_start_min`` (the work behind notebook 04's panel).

    Example:
        >>> list(consolidation_demo("separate"))
        ['shop', 'reports', 'tool']
    """
    if plan not in PLANS:
        raise ValueError(f"plan={plan!r} must be one of {tuple(PLANS)}")
    workloads = scenarios.three_databases(report_start_s=report_start_min * 60)
    if plan == "shared":
        return {"shared": cluster_run(tuple(workloads.items()), scenarios.SHARED_CLUSTER)}
    # What consolidation.separate_clusters runs, cluster by cluster: moving the report leaves the shop's run as it was.
    return {name: cluster_run(((name, workload),), scenarios.SEPARATE_CLUSTERS[name])
            for name, workload in workloads.items()}


@lru_cache(maxsize=64)
def cluster_run(databases: tuple[tuple[str, Workload], ...], config: ClusterConfig) -> Run:
    """One cluster of the evening hosting ``databases`` (name, workload), as ``consolidation.run_plan`` simulates it.

    Example:
        >>> shop = scenarios.three_databases()["shop"]
        >>> cluster_run((("shop", shop),), scenarios.SEPARATE_CLUSTERS["shop"]).databases
        ('shop',)
    """
    plan = {"cluster": (tuple(name for name, _ in databases), config)}
    return consolidation.run_plan(plan, dict(databases), duration_s=scenarios.EVENING_S, seed=SEED)["cluster"]


def consolidation_panel() -> Panel:
    """Shared or separate clusters, and when the report starts → every cluster's capacity, p95 and bill."""
    controls = {
        "plan": widgets.ToggleButtons(options=[(label, key) for key, label in PLANS.items()], value="shared",
                                      description="databases on", style=_STYLE),
        "report_start_min": widgets.SelectionSlider(options=list(REPORT_START_OPTIONS_MIN),
                                                    value=scenarios.EVENING_REPORT_START_S // 60,
                                                    description="report starts (min)", continuous_update=False,
                                                    style=_STYLE, layout=_WIDE),
    }
    return Panel(controls, consolidation_demo, plots.consolidation_dict, title="Three databases: one cluster or three",
                 describe=engines.describe_pair, summarize=engines.headlines)
