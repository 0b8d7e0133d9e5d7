"""Panel of notebook 12: one workload under a v1 cluster, a v2 instance and a provisioned class at once.

By default it shows three telling hours of the workload (the shop's sale, with an hour either side) so that it
answers within the callback budget; **whole week** runs the full week. Each plan's run is cached on its own
(``_window_run``, ``capstone.week_run``), so a slider of one model re-runs that model only.
"""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets
import numpy as np

from .. import capstone, facts, plots
from ..actions import ClusterAction
from ..config import ClusterConfig
from ..costs import bill
from ..models import INSTANCE_CLASSES, AnyConfig, ProvisionedConfig, ServerlessV2Config
from ..names import OK, RESUMED
from ..simulation import Run, simulate
from ._panel import _STYLE, Panel

V1_MINIMA = (1, 2, 4, 8)
V2_MINIMA = (0.0, 0.5, 1.0, 2.0, 4.0)
V2_MAXIMA = (4.0, 8.0, 16.0, 32.0)
PREWARM_OPTIONS = {"none": 0, "2 ACU": 2, "4 ACU": 4, "8 ACU": 8}
PANEL_CLASSES = INSTANCE_CLASSES[:6]  # db.t3.small to db.r5.2xlarge: what these workloads could need
V1_MAX_ACU = 16
_NARROW = widgets.Layout(width="260px")


class PlanRuns(dict):
    """The three plans' runs by name, and where in the week they start (what the figure's time axis needs)."""

    def __init__(self, runs: dict[str, Run], *, start_s: float) -> None:
        super().__init__(runs)
        self.start_s = start_s


@lru_cache(maxsize=16)  # cheap to rebuild from the runs' own caches: it only bundles them
def capstone_demo(workload: str = "shop with a flash sale", whole_week: bool = False, v1_min_capacity: int = 1,
                  v1_auto_pause: bool = False, v1_prewarm_acu: int = 4, v2_min_capacity: float = 0.5,
                  v2_max_capacity: float = 8.0, instance_class: str = "db.t3.large") -> PlanRuns:
    """The three plans' runs of ``workload``: three telling hours of its week (``capstone.PANEL_WINDOWS_S``), or
    the whole week; what the panel draws.

    Example:
        >>> runs = capstone_demo()
        >>> list(runs), runs["v2"].duration_s, runs.start_s / 3600
        (['v1', 'v2', 'provisioned'], 10800, 113.0)
    """
    v1 = ClusterConfig(min_capacity=v1_min_capacity, max_capacity=max(V1_MAX_ACU, v1_min_capacity),
                       auto_pause=v1_auto_pause)
    configs = {"v1": v1, "v2": ServerlessV2Config(min_capacity=v2_min_capacity, max_capacity=v2_max_capacity),
               "provisioned": ProvisionedConfig(instance_class=instance_class)}
    if whole_week:
        prewarm = capstone.prewarm_calls(workload, v1_prewarm_acu) if v1_prewarm_acu else ()
        plans = {"v1": capstone.Plan(v1, prewarm), "v2": configs["v2"], "provisioned": configs["provisioned"]}
        return PlanRuns(capstone.week_runs(workload, **plans), start_s=0.0)
    start, end = capstone.PANEL_WINDOWS_S[workload]
    prewarm = capstone.prewarm_calls(workload, v1_prewarm_acu, start_s=start, end_s=end) if v1_prewarm_acu else ()
    return PlanRuns({name: _window_run(workload, config, prewarm if name == "v1" else ())
                     for name, config in configs.items()}, start_s=start)


@lru_cache(maxsize=48)  # about 4 MB a run (90 k requests): a few dozen settings of each model
def _window_run(workload: str, config: AnyConfig, actions: tuple[ClusterAction, ...]) -> Run:
    """One plan's run of the workload's panel window (cached by the plan alone: the other models' sliders do not
    re-run it)."""
    start, end = capstone.PANEL_WINDOWS_S[workload]
    return simulate(config, capstone.window_workload(workload, start, end), duration_s=end - start, seed=7,
                    metrics_period_s=300, actions=actions)


def clear_caches() -> None:
    """Forget every run the panel keeps (a benchmark's fresh start)."""
    capstone_demo.cache_clear()
    _window_run.cache_clear()
    capstone.week_run.cache_clear()


def describe_plans(runs: dict[str, Run]) -> str:
    """One HTML line: each plan's cost, failures, p95 and resumes.

    Example:
        >>> "<b>v2</b>" in describe_plans(capstone_demo())
        True
    """
    parts = []
    for name, run in runs.items():
        failed, p95_s, resumes = _figures(run)
        p95 = "n/a" if p95_s is None else f"{p95_s:.2f} s"
        parts.append(f"<b>{name}</b> USD {bill(run).cost_usd:.2f} · failed {failed:,} · p95 {p95} · "
                     f"resumes {resumes}")
    return " &nbsp;|&nbsp; ".join(parts)


def _figures(run: Run) -> tuple[int, float | None, int]:
    """(failed requests, p95 latency of the served ones in s, resumes), read from the run's frames: the line is
    redrawn at every slider move, and a query opens the run's DuckDB views (7 ms a run)."""
    requests, events = run.frame("requests"), run.frame("events")
    outcome = requests["outcome"]
    if hasattr(outcome, "cat"):  # compare the codes, not 90 k strings
        categories = outcome.cat.categories
        ok = outcome.cat.codes.to_numpy() == (categories.get_loc(OK) if OK in categories else -2)
    else:
        ok = outcome.to_numpy() == OK
    latency = requests["latency_s"].to_numpy()[ok]
    p95_s = float(np.quantile(latency, 0.95)) if len(latency) else None  # linear: DuckDB's quantile_cont
    return int(len(ok) - ok.sum()), p95_s, int((events["kind"].to_numpy() == RESUMED).sum())


def _draw(runs: PlanRuns) -> dict:
    start_s = getattr(runs, "start_s", 0.0)
    if start_s == 0 and next(iter(runs.values())).duration_s > capstone.DAY_S:
        return plots.capstone_week_dict(runs, title="Three plans, the week")
    day = capstone.DAY_NAMES[int(start_s // capstone.DAY_S) % 7]
    return plots.capstone_week_dict(runs, title=f"Three plans, three hours of {day}", start_s=start_s)


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
