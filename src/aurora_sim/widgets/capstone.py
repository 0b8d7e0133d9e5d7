"""Panel of notebook 12: one workload under a v1 cluster, a v2 instance and a provisioned class at once.

By default it shows three telling hours of the workload (the shop's sale, with an hour either side) so that it
answers within the callback budget; **whole week** runs the full week (seconds, cached).
"""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets

from .. import capstone, facts, plots
from ..config import ClusterConfig
from ..costs import bill
from ..models import INSTANCE_CLASSES, ProvisionedConfig, ServerlessV2Config
from ..simulation import Run, simulate
from ._panel import _STYLE, Panel

V1_MINIMA = (1, 2, 4, 8)
V2_MINIMA = (0.0, 0.5, 1.0, 2.0, 4.0)
V2_MAXIMA = (4.0, 8.0, 16.0, 32.0)
PREWARM_OPTIONS = {"none": 0, "2 ACU": 2, "4 ACU": 4, "8 ACU": 8}
PANEL_CLASSES = INSTANCE_CLASSES[:6]  # db.t3.small to db.r5.2xlarge: what these workloads could need
V1_MAX_ACU = 16
_NARROW = widgets.Layout(width="260px")


@lru_cache(maxsize=64)
def capstone_demo(workload: str = "shop with a flash sale", whole_week: bool = False, v1_min_capacity: int = 1,
                  v1_auto_pause: bool = False, v1_prewarm_acu: int = 4, v2_min_capacity: float = 0.5,
                  v2_max_capacity: float = 8.0, instance_class: str = "db.t3.large") -> dict[str, Run]:
    """The three plans' runs of ``workload``: three telling hours of its week (``capstone.PANEL_WINDOWS_S``), or
    the whole week; what the panel draws.

    Example:
        >>> runs = capstone_demo()
        >>> list(runs), runs["v2"].duration_s
        (['v1', 'v2', 'provisioned'], 10800)
    """
    v1 = ClusterConfig(min_capacity=v1_min_capacity, max_capacity=max(V1_MAX_ACU, v1_min_capacity),
                       auto_pause=v1_auto_pause)
    configs = {"v1": v1, "v2": ServerlessV2Config(min_capacity=v2_min_capacity, max_capacity=v2_max_capacity),
               "provisioned": ProvisionedConfig(instance_class=instance_class)}
    if whole_week:
        prewarm = capstone.prewarm_calls(workload, v1_prewarm_acu) if v1_prewarm_acu else ()
        plans = {"v1": capstone.Plan(v1, prewarm), "v2": configs["v2"], "provisioned": configs["provisioned"]}
        return capstone.week_runs(workload, **plans)
    start, end = capstone.PANEL_WINDOWS_S[workload]
    prewarm = capstone.prewarm_calls(workload, v1_prewarm_acu, start_s=start, end_s=end) if v1_prewarm_acu else ()
    window = capstone.window_workload(workload, start, end)
    return {name: simulate(config, window, duration_s=end - start, seed=7, metrics_period_s=300,
                           actions=prewarm if name == "v1" else ())
            for name, config in configs.items()}


def describe_plans(runs: dict[str, Run]) -> str:
    """One HTML line: each plan's cost, failures, p95 and resumes.

    Example:
        >>> "<b>v2</b>" in describe_plans(capstone_demo())
        True
    """
    parts = []
    for name, run in runs.items():
        # One query, not report.summarize's several: the line is redrawn at every slider move.
        failed, p95_s, resumes = run.sql(
            "SELECT count(*) FILTER (WHERE outcome <> 'ok'), quantile_cont(latency_s, 0.95) FILTER (WHERE outcome "
            "= 'ok'), (SELECT count(*) FROM events WHERE kind = 'resumed') FROM requests").fetchall()[0]
        p95 = "n/a" if p95_s is None else f"{p95_s:.2f} s"
        parts.append(f"<b>{name}</b> USD {bill(run).cost_usd:.2f} · failed {failed:,} · p95 {p95} · "
                     f"resumes {resumes}")
    return " &nbsp;|&nbsp; ".join(parts)


def _draw(runs: dict[str, Run]):
    first = next(iter(runs.values()))
    span = "the week" if first.duration_s > capstone.DAY_S else "three hours"
    return plots.capstone_week(runs, title=f"Three plans, {span}")


def capstone_panel() -> Panel:
    """Workload, horizon and each model's settings → the three plans' capacities and bills on one figure."""
    v1_ladder = [rung for rung in facts.CAPACITY_LADDER["aurora-mysql"] if rung in V1_MINIMA]
    controls = {
        "workload": widgets.Dropdown(options=list(capstone.WORKLOADS), value="shop with a flash sale",
                                     description="workload", style=_STYLE, layout=_NARROW),
        "whole_week": widgets.Checkbox(value=False, description="whole week (slower)", style=_STYLE),
        "v1_min_capacity": widgets.SelectionSlider(options=v1_ladder, value=1, description="v1 min ACU",
                                                   continuous_update=False, style=_STYLE, layout=_NARROW),
        "v1_auto_pause": widgets.Checkbox(value=False, description="v1 auto-pause", style=_STYLE),
        "v1_prewarm_acu": widgets.Dropdown(options=PREWARM_OPTIONS, value=4, description="v1 pre-warm",
                                           style=_STYLE, layout=_NARROW),
        "v2_min_capacity": widgets.SelectionSlider(options=list(V2_MINIMA), value=0.5, description="v2 min ACU",
                                                   continuous_update=False, style=_STYLE, layout=_NARROW),
        "v2_max_capacity": widgets.SelectionSlider(options=list(V2_MAXIMA), value=8.0, description="v2 max ACU",
                                                   continuous_update=False, style=_STYLE, layout=_NARROW),
        "instance_class": widgets.Dropdown(options=list(PANEL_CLASSES), value="db.t3.large",
                                           description="provisioned", style=_STYLE, layout=_NARROW),
    }
    return Panel(controls, capstone_demo, _draw, title="One workload, three ways to run it",
                 describe=describe_plans, summarize=lambda runs: runs)
