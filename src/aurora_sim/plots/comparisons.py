"""Comparing runs (cost against latency) and the modelled cold-start distribution."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import facts
from ..config import ModelAssumptions
from ..report import summarize
from ..scaling import resume_times_s
from ..simulation import Run
from ._style import (
    BLACK,
    BLUE,
    COST_COLOUR,
    FONT,
    GREEN,
    GREY,
    LEGEND_BELOW,
    SKY_BLUE,
    TEMPLATE,
    TITLE_FONT,
    VERMILLION,
)

# --- 3. Comparing runs -----------------------------------------------------------------------------------------

def _summary_row(label: str, run: Run) -> dict[str, object]:
    s = summarize(run)  # the same figures the widgets' summary line and the checkers quote
    return {"label": label, "cost_usd": s.cost_usd, "acu_hours": s.acu_hours, "billed_acu_hours": s.billed_acu_hours,
            "activations": 1 + s.resumes, "p95_ms": None if math.isnan(s.p95_latency_ms) else s.p95_latency_ms,
            "failed": s.failed, "requests": s.requests}


def cost_latency_summary(runs: Mapping[str, Run] | Sequence[tuple[str, Run]]) -> go.Figure:
    """Compare runs (e.g. pause timeouts or minimum capacities): what each costs, how fast, how many failed.

    Top panel: bars of the bill in USD (``costs.cost_usd``: billed ACU-hours × the ACU-hour price, at least
    5 minutes per activation) on the left axis, and the p95 latency of ok requests as diamonds on the right
    axis (ms, log). Bottom panel: failed requests (errors and timeouts) per run. Hover gives ACU-hours,
    activations and request counts.

    Args:
        runs: ``{label: run}`` or ``[(label, run), ...]``, in the order to show.

    Returns:
        A static ``go.Figure``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> wl = Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)])
        >>> runs = {f"min {acu} ACU": simulate(ClusterConfig(min_capacity=acu), wl, duration_s=1800, seed=1)
        ...         for acu in (1, 2)}
        >>> [trace.name for trace in cost_latency_summary(runs).data]
        ['cost (USD)', 'p95 latency, ok requests (ms)', 'failed requests']
    """
    pairs = list(runs.items()) if isinstance(runs, Mapping) else list(runs)
    table = pd.DataFrame([_summary_row(str(label), run) for label, run in pairs])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.68, 0.32],
                        specs=[[{"secondary_y": True}], [{}]])
    detail = np.column_stack([table["acu_hours"], table["billed_acu_hours"], table["activations"],
                              table["requests"], table["failed"]])
    fig.add_trace(go.Bar(
        x=table["label"], y=table["cost_usd"], name="cost (USD)", marker_color=COST_COLOUR,
        text=[f"USD {cost:.3f}" for cost in table["cost_usd"]], textposition="outside", customdata=detail,
        hovertemplate=("<b>%{x}</b><br>cost USD %{y:.4f}<br>%{customdata[0]:.3f} ACU-hours used, "
                       "%{customdata[1]:.3f} billed<br>%{customdata[2]} activation(s)<extra></extra>")),
        row=1, col=1)
    fig.add_trace(go.Scatter(
        x=table["label"], y=table["p95_ms"], name="p95 latency, ok requests (ms)", mode="markers+text",
        marker={"color": BLUE, "symbol": "diamond", "size": 14, "line": {"color": BLACK, "width": 1}},
        text=[_ms_text(v) for v in table["p95_ms"]], textposition="middle right",
        textfont={"color": BLUE}, hovertemplate="<b>%{x}</b><br>p95 %{y:,.1f} ms<extra></extra>"),
        row=1, col=1, secondary_y=True)
    fig.add_trace(go.Scatter(
        x=table["label"], y=table["failed"], name="failed requests", mode="markers+text",
        marker={"color": VERMILLION, "symbol": "x", "size": 13}, text=[f"{n:,}" for n in table["failed"]],
        textposition="middle right", textfont={"color": VERMILLION}, customdata=detail,
        hovertemplate="<b>%{x}</b><br>%{y:,} of %{customdata[3]:,} requests failed<extra></extra>"),
        row=2, col=1)
    price = facts.PRICE_PER_ACU_HOUR_USD
    fig.update_layout(
        title={"text": "Cost and latency per run", "x": 0.01, "font": TITLE_FONT,
               "subtitle": {"text": f"USD {price:g} per ACU-hour, at least "
                                    f"{facts.MIN_BILLED_S_PER_ACTIVATION // 60} min billed per activation",
                            "font": {"size": 12, "color": GREY}}},
        font=FONT, template="plotly_white", height=580, bargap=0.45,
        legend=LEGEND_BELOW, margin={"l": 70, "r": 70, "t": 80, "b": 60})
    top = float(table["cost_usd"].max()) if len(table) else 1.0
    fig.update_yaxes(title_text="cost (USD)", range=[0, 1.2 * top or 1], row=1, col=1, secondary_y=False)
    p95 = table["p95_ms"].dropna().astype(float)
    p95 = p95[p95 > 0]
    span = [np.log10(p95.min() / 3), np.log10(p95.max() * 3)] if len(p95) else None
    fig.update_yaxes(title_text="p95 latency (ms, log)", type="log", range=span, tickmode="auto", showgrid=False,
                     color=BLUE, row=1, col=1, secondary_y=True)
    fig.update_yaxes(title_text="failed requests", rangemode="tozero", color=VERMILLION, row=2, col=1)
    return fig


def _ms_text(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "no ok requests"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


# --- 4. The cold-start distribution ---------------------------------------------------------------------------

def resume_distribution(assumptions: ModelAssumptions | None = None, *, count: int = 5000,
                        seed: int = 2020) -> go.Figure:
    """A histogram of ``count`` modelled cold starts against the measured quantiles (dashed lines).

    Example:
        >>> fig = resume_distribution(count=500)
        >>> fig.data[0].type, len(fig.layout.shapes)
        ('histogram', 5)
    """
    assumptions = ModelAssumptions() if assumptions is None else assumptions
    draws = resume_times_s(assumptions, np.random.default_rng(seed), count)
    measured = facts.MEASURED_RESUME_S
    figure = go.Figure(
        data=[{"type": "histogram", "x": draws, "nbinsx": 60, "marker": {"color": SKY_BLUE},
               "name": f"model: {count:,} resumes drawn"}],
        layout={
            "title": {"text": "Resume time: model draws (bars) vs the measured quantiles (dashed)", "x": 0.01,
                      "font": TITLE_FONT},
            "xaxis": {"title": {"text": "cold start (s)"}}, "yaxis": {"title": {"text": "number of draws"}},
            "template": TEMPLATE, "height": 420, "font": FONT, "showlegend": True, "legend": {"x": 0.7, "y": 0.9},
            "margin": {"t": 80},
            "shapes": [{"type": "line", "xref": "x", "x0": value, "x1": value, "yref": "paper", "y0": 0, "y1": 1,
                        "line": {"color": VERMILLION, "dash": "dash", "width": 2}} for value in measured.values()],
            "annotations": [{"text": f"{name} {value:g} s", "xref": "x", "x": value, "yref": "paper",
                             "y": 1 - 0.06 * (i % 2), "yanchor": "bottom", "showarrow": False,
                             "font": {"color": VERMILLION}} for i, (name, value) in enumerate(measured.items())],
        })
    return figure


# --- 5. The published backoff experiment ----------------------------------------------------------------------

STRATEGY_COLOURS = {"none": GREY, "exponential": BLACK, "full_jitter": BLUE, "equal_jitter": GREEN,
                    "decorrelated_jitter": VERMILLION}


def backoff_sweep(results: pd.DataFrame) -> go.Figure:
    """Work (write calls) and completion time against the number of clients, one line per strategy, as in the
    AWS Architecture Blog's "Exponential Backoff And Jitter" (``results`` from ``aurora_sim.backoff.sweep``).

    Example:
        >>> from aurora_sim import backoff
        >>> fig = backoff_sweep(backoff.sweep([2, 4], runs=2))
        >>> len(fig.data)
        10
    """
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=("Work: write calls per run", "Completion time of the last client"))
    for strategy, rows in results.groupby("strategy", sort=False):
        colour = STRATEGY_COLOURS.get(strategy, GREY)
        for column, col, unit in (("calls", 1, "calls"), ("completion_ms", 2, "ms")):
            figure.add_trace(go.Scatter(
                x=rows["clients"], y=rows[column], name=strategy, legendgroup=strategy, showlegend=col == 1,
                mode="lines+markers", line={"color": colour, "width": 2}, marker={"size": 5},
                hovertemplate=f"{strategy}<br>%{{x}} clients: %{{y:,.0f}} {unit}<extra></extra>"), row=1, col=col)
    figure.update_xaxes(title_text="clients")
    figure.update_yaxes(title_text="write calls (mean per run)", row=1, col=1)
    figure.update_yaxes(title_text="completion time (ms, mean)", type="log", row=1, col=2)
    figure.update_layout(template=TEMPLATE, font=FONT, height=470, margin={"t": 70, "b": 60},
                         legend=LEGEND_BELOW,
                         title={"text": "Backoff strategies on one contended row (Brooker, 2015, reproduced)",
                                "x": 0.01, "font": TITLE_FONT})
    return figure
