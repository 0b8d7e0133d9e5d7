"""Notebook 04's figure: the same databases on one shared cluster or on one cluster each."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from ..simulation import Run
from .engines import engine_comparison_dict


def consolidation(runs: Mapping[str, Run], *, title: str | None = None) -> go.Figure:
    """Each cluster of a plan: its capacity (failed scalings marked), p95 latency and running bill, on one time axis.

    The dashed line is the CPU that the first cluster's databases ask for (all of them, on a shared cluster).

    Example:
        >>> from aurora_sim import scenarios, simulate
        >>> run = simulate(scenarios.SHARED_CLUSTER, scenarios.three_databases(), duration_s=scenarios.EVENING_S)
        >>> consolidation({"shared": run}).data[0].name
        'CPU asked for on shared (ACU)'
    """
    return go.Figure(consolidation_dict(runs, title=title))


def consolidation_dict(runs: Mapping[str, Run], *, title: str | None = None) -> dict:
    """``consolidation`` as a plain figure dict, not validated by plotly (what a panel's redraw sends from).

    Example:
        >>> from aurora_sim import scenarios, simulate
        >>> run = simulate(scenarios.SHARED_CLUSTER, scenarios.three_databases(), duration_s=scenarios.EVENING_S)
        >>> consolidation_dict({"shared": run})["data"][0]["name"]
        'CPU asked for on shared (ACU)'
    """
    figure = engine_comparison_dict(runs, title=title or "The three databases, cluster by cluster")
    figure["data"][0]["name"] = f"CPU asked for on {next(iter(runs))} (ACU)"
    return figure
