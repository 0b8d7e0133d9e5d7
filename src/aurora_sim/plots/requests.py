"""Request latencies: every request (sampled), the errors, and the cold start standing out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..names import (
    FAILING_OVER,
    PAUSED,
    RESUME_STARTED,
    RESUMED,
    RESUMING,
)
from ..simulation import Run
from ._style import (
    BLACK,
    COLD_START_COLOUR,
    ERROR_STYLES,
    FONT,
    LEGEND_BELOW,
    OK_COLOUR,
    P50_COLOUR,
    P95_COLOUR,
    TITLE_FONT,
    TimeAxis,
    _capacity_steps,
    _state_bands,
    time_axis,
)

# --- 2. Request latencies --------------------------------------------------------------------------------------

def _sample_requests(run: Run, max_points: int) -> tuple[pd.DataFrame, int]:
    """About ``max_points`` requests at most: the slowest ok ones, then an even share of each outcome/error.

    Within a share the sample is 1-in-N by request id (ids follow submit order, so it is spread in time).
    """
    total, = run.sql("SELECT count(*) FROM requests").fetchall()[0]
    columns = "request_id, submitted_s, latency_s, outcome, error"
    if total <= max_points:
        return run.sql(f"SELECT {columns} FROM requests").df(), total
    slowest = max_points // 10
    kinds = run.sql("SELECT outcome, error, count(*) FROM requests GROUP BY ALL").fetchall()
    per_kind = max(1, (max_points - slowest) // len(kinds))
    parts = [run.sql(f"SELECT {columns} FROM requests WHERE outcome = 'ok' ORDER BY latency_s DESC "
                     f"LIMIT {slowest}").df()]
    for outcome, error, count in kinds:
        stride = -(-count // per_kind)  # ceil: at most per_kind rows of this kind
        match = "error IS NULL" if error is None else "error = $error"
        params = {"outcome": outcome} | ({} if error is None else {"error": error})
        parts.append(run.sql(f"SELECT {columns} FROM requests WHERE outcome = $outcome AND {match} "
                             f"AND request_id % {stride} = 0", params=params).df())
    return pd.concat(parts, ignore_index=True).drop_duplicates("request_id"), total


def cold_starts(run: Run) -> pd.DataFrame:
    """One row per resume: when it started and ended, and the slowest request submitted during it.

    The cold-start request is the slowest of those submitted in ``[resume_started, resumed]`` (the cluster
    resumes because of them); when none was (a blocking operation woke it), the first submitted after, and
    ``waited`` is False: that request found the cluster awake and did not wait for the resume.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]),
        ...                duration_s=1800, seed=1)
        >>> row = cold_starts(run).iloc[0]
        >>> round(float(row.resume_s), 1), round(float(row.latency_s), 1), bool(row.waited)
        (37.7, 37.8, True)
    """
    return run.sql(f"""
        WITH starts AS (
            SELECT time_s AS resume_started_s,
                   (SELECT min(time_s) FROM events e2 WHERE e2.kind = '{RESUMED}' AND e2.time_s >= e.time_s)
                       AS resumed_s
            FROM events e WHERE kind = '{RESUME_STARTED}'),
        during AS (
            SELECT s.resume_started_s, s.resumed_s,
                   arg_max(r.request_id, r.latency_s) AS request_id
            FROM starts s LEFT JOIN requests r
              ON r.submitted_s >= s.resume_started_s AND r.submitted_s <= coalesce(s.resumed_s, 'infinity')
            GROUP BY ALL),
        chosen AS (
            SELECT resume_started_s, resumed_s,
                   coalesce(request_id, (SELECT arg_min(request_id, submitted_s) FROM requests
                                         WHERE submitted_s >= resume_started_s)) AS request_id
            FROM during)
        SELECT c.resume_started_s, c.resumed_s, c.resumed_s - c.resume_started_s AS resume_s,
               r.request_id, r.submitted_s, r.latency_s, r.outcome, r.error,
               r.submitted_s <= coalesce(c.resumed_s, 'infinity') AS waited
        FROM chosen c LEFT JOIN requests r USING (request_id)
        ORDER BY c.resume_started_s""").df()


def latency(run: Run, *, highlight_cold_start: bool = True, max_points: int = 5000,
            day_start_h: float | None = None) -> go.Figure:
    """Each request's latency against the time it was submitted, with p50/p95 lines and the cold starts.

    A log y axis (ms) spans 10 ms queries and 40 s cold starts. Above ``max_points`` requests the figure
    shows a sample: the slowest tenth of the budget, then an even share of each outcome and error text
    (1-in-N by request id); the title says how many are shown. Errors get their own colour and symbol and
    show the engine's error text on hover; refused requests (0 ms) sit on the bottom edge. The p50/p95
    lines are per metrics period, over ok requests that *finished* in it. The cold-start request of each
    resume (see ``cold_starts``) that waited for it gets a large marker and an annotation.

    Args:
        run: A finished simulation.
        highlight_cold_start: Mark and annotate the cold-start request of each resume.
        max_points: Upper bound (about) on the request markers drawn.
        day_start_h: The hour of the day at which the run starts (e.g. ``scenarios.DAY_START_H``): the x
            axis then shows clock time ("09:00") instead of time since the start.

    Returns:
        A static ``go.Figure``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0), (1200, 1500, 2.0)]),
        ...                duration_s=1800, seed=1)
        >>> fig = latency(run)
        >>> [trace.name for trace in fig.data if trace.name.startswith("cold")]
        ['cold start']
    """
    axis = time_axis(run.duration_s, day_start_h=day_start_h)
    sample, total = _sample_requests(run, max_points)
    fig = go.Figure()
    positive = sample["latency_s"][sample["latency_s"] > 0]
    # Refused requests last 0 ms, which a log axis cannot show: they sit on a floor a decade below the rest.
    floor_ms = 10 ** (np.floor(np.log10(1000 * float(positive.min()))) - 1) if len(positive) else 1.0
    # Iterated, not get_group: pandas 2.x (the newest on Python 3.10) cannot look up a group whose key holds NaN.
    groups = dict(iter(sample.groupby(["outcome", "error"], dropna=False, sort=False, observed=True)))
    order = sorted(groups, key=lambda key: (key[0] != "ok", str(key[1])))
    errors_seen = 0
    for key in order:
        rows = groups[key]
        outcome, error = key
        latency_ms = rows["latency_s"].to_numpy() * 1000
        if outcome == "ok":
            name, colour, symbol, size, why = "ok", OK_COLOUR, "circle", 4, ""
        else:
            colour, symbol = ERROR_STYLES[errors_seen % len(ERROR_STYLES)]
            errors_seen += 1
            short = str(error) if isinstance(error, str) else outcome
            name, size, why = f"{outcome}: {short[:48]}{'…' if len(short) > 48 else ''}", 7, short
            if (latency_ms == 0).all():
                name += " (0 ms: drawn at the bottom)"
        fig.add_trace(go.Scatter(
            x=axis.x(rows["submitted_s"].to_numpy()), y=np.maximum(latency_ms, floor_ms), name=name, mode="markers",
            marker={"color": colour, "symbol": symbol, "size": size, "opacity": 0.6 if outcome == "ok" else 0.85},
            customdata=np.column_stack([latency_ms, rows["request_id"]]),
            hovertemplate=(f"submitted {axis.hover(2)}<br>latency %{{customdata[0]:,.1f}} ms"
                           f"<br>request %{{customdata[1]}}<br>{why}<extra>{outcome}</extra>")))
    _percentile_lines(fig, run, axis)
    if highlight_cold_start:
        _mark_cold_starts(fig, run, axis)
    shown = f"all {total:,} requests" if len(sample) >= total else f"{len(sample):,} of {total:,} requests (sampled)"
    fig.update_layout(
        title={"text": f"Request latency by submit time · {shown}", "x": 0.01, "font": TITLE_FONT}, font=FONT,
        template="plotly_white", height=600, legend=LEGEND_BELOW,
        shapes=_state_bands(_capacity_steps(run), axis, states=(PAUSED, RESUMING, FAILING_OVER)),  # the only shapes
        margin={"l": 70, "r": 30, "t": 60, "b": 60})
    fig.update_xaxes(title_text=f"submitted at ({axis.title})", **axis.layout(0, run.duration_s))
    fig.update_yaxes(title_text="latency (ms, log scale)", type="log")
    return fig


def _percentile_lines(fig: go.Figure, run: Run, axis: TimeAxis) -> None:
    metrics = run.sql("SELECT time_s, p50_latency_ms, p95_latency_ms FROM metrics ORDER BY time_s").df()
    x = axis.x(np.append(metrics["time_s"].to_numpy(), run.duration_s))
    period = run.metrics_period_s
    for column, name, colour in (("p50_latency_ms", "p50", P50_COLOUR), ("p95_latency_ms", "p95", P95_COLOUR)):
        values = metrics[column].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(
            mode="lines",
            x=x, y=np.append(values, values[-1:]), name=f"{name} per {period:g} s (ok, by finish time)",
            line={"color": colour, "shape": "hv", "width": 2}, connectgaps=False,
            hovertemplate=f"{axis.hover()}<br>{name} %{{y:,.1f}} ms<extra></extra>"))


def _mark_cold_starts(fig: go.Figure, run: Run, axis: TimeAxis) -> None:
    """A star and a label on each request that waited for a resume (one that found the cluster awake, after a
    warm-up job woke it, is not a cold start: a "cold start: 0 s" star misled a learner in notebook 03)."""
    starts = cold_starts(run).dropna(subset=["request_id"])
    starts = starts[starts["waited"].astype(bool)]
    if starts.empty:
        return
    latency_ms = starts["latency_s"].to_numpy() * 1000
    resume = starts["resume_s"].fillna(float("nan")).to_numpy(dtype=float)
    fig.add_trace(go.Scatter(
        x=axis.x(starts["submitted_s"].to_numpy()), y=latency_ms, name="cold start", mode="markers",
        marker={"color": COLD_START_COLOUR, "symbol": "star", "size": 20, "line": {"color": BLACK, "width": 1.5}},
        customdata=np.column_stack([latency_ms / 1000, resume]),
        hovertemplate=(f"cold start at {axis.hover(2)}<br>latency %{{customdata[0]:.1f}} s"
                       f"<br>resume took %{{customdata[1]:.1f}} s<extra></extra>")))
    for x, y in zip(axis.x(starts["submitted_s"].to_numpy()), latency_ms, strict=True):
        fig.add_annotation(x=x, y=np.log10(y), text=f"<b>cold start: {y / 1000:.0f} s</b>", showarrow=True,
                           arrowhead=2, ax=40, ay=-30, font={"color": BLACK}, bgcolor="rgba(255,255,255,0.8)",
                           bordercolor=COLD_START_COLOUR)
