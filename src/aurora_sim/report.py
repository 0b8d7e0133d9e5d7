"""A run's key numbers in one object, so notebook prose, widgets and checkers quote the same computed values.

Example:
    >>> from aurora_sim.scenarios import flash_sale
    >>> s = summarize(flash_sale(min_capacity=4).run(), start_s=600, end_s=1800)
    >>> s.failed, s.scale_failures
    (0, 0)
    >>> s.p95_latency_ms < 1000
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from . import names
from .costs import bill
from .simulation import Run


@dataclass(frozen=True)
class Summary:
    """What happened in a run: request figures for requests submitted within ``[start_s, end_s)``; event counts,
    cold start, paused time and cost over the whole run."""

    requests: int
    failed: int
    p50_latency_ms: float
    p95_latency_ms: float
    max_latency_s: float
    scale_ups: int
    scale_downs: int
    scale_failures: int
    forced_scalings: int
    aborted: int
    pauses: int
    resumes: int
    cold_start_s: float
    paused_s: float
    max_capacity_acu: int
    acu_hours: float
    billed_acu_hours: float
    cost_usd: float

    def describe(self) -> str:
        """One short HTML line for a widget panel."""
        parts = [f"<b>p95 latency</b> {_ms(self.p95_latency_ms)}", f"<b>failed</b> {self.failed:,} of "
                 f"{self.requests:,}", f"<b>scale-ups</b> {self.scale_ups}",
                 f"<b>failed scalings</b> {self.scale_failures}", f"<b>pauses</b> {self.pauses}"]
        if self.resumes and not math.isnan(self.cold_start_s):
            parts.append(f"<b>longest cold start</b> {self.cold_start_s:.0f} s")
        parts.append(f"<b>cost</b> USD {self.cost_usd:.2f} ({self.billed_acu_hours:.2f} ACU-h)")
        return " · ".join(parts)

    def rows(self, *, complete: bool = False) -> list[tuple[str, str]]:
        """The figures as (label, formatted value) pairs; zero counts are left out unless ``complete``."""
        rows = [("requests", f"{self.requests:,}"), ("failed", f"{self.failed:,}"),
                ("p50 latency", _ms(self.p50_latency_ms)), ("p95 latency", _ms(self.p95_latency_ms))]
        counts = [("scale-ups", self.scale_ups), ("scale-downs", self.scale_downs),
                  ("failed scalings", self.scale_failures), ("forced scalings", self.forced_scalings),
                  ("transactions aborted", self.aborted), ("pauses", self.pauses), ("resumes", self.resumes)]
        rows += [(label, f"{count:,}") for label, count in counts if count or complete]
        if complete or (self.resumes and not math.isnan(self.cold_start_s)):
            rows.append(("longest cold start", "—" if math.isnan(self.cold_start_s) else f"{self.cold_start_s:.0f} s"))
        if self.paused_s or complete:
            rows.append(("time paused", f"{self.paused_s / 60:,.0f} min"))
        rows += [("highest capacity", f"{self.max_capacity_acu} ACU"),
                 ("billed", f"{self.billed_acu_hours:.2f} ACU-hours"), ("cost", f"USD {self.cost_usd:.2f}")]
        return rows

    def _repr_markdown_(self) -> str:
        return "| figure | value |\n|---|---:|\n" + "\n".join(f"| {label} | {value} |" for label, value in self.rows())

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows())


def compare(**summaries: Summary) -> pd.DataFrame:
    """Several summaries side by side, one column each, for a notebook to show as a table.

    Example:
        >>> from aurora_sim.scenarios import flash_sale
        >>> table = compare(small=summarize(flash_sale(min_capacity=1).run(), start_s=600, end_s=1800),
        ...                 large=summarize(flash_sale(min_capacity=4).run(), start_s=600, end_s=1800))
        >>> list(table.columns), table.loc["failed", "large"]
        (['small', 'large'], '0')
    """
    columns = {name: dict(summary.rows(complete=True)) for name, summary in summaries.items()}
    labels = next(iter(columns.values()), {}).keys()
    return pd.DataFrame({name: [rows[label] for label in labels] for name, rows in columns.items()},
                        index=pd.Index(list(labels), name="figure"))


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def summarize(run: Run, *, start_s: float = 0.0, end_s: float | None = None) -> Summary:
    """Count, latency, scaling, pause and cost figures of ``run``; requests limited to ``[start_s, end_s)``."""
    end_s = run.duration_s if end_s is None else end_s
    requests, failed, p50, p95, longest = run.sql(
        "SELECT count(*), count(*) FILTER (WHERE outcome <> 'ok'), "
        "quantile_cont(latency_s, 0.5) FILTER (WHERE outcome = 'ok'), "
        "quantile_cont(latency_s, 0.95) FILTER (WHERE outcome = 'ok'), max(latency_s) "
        "FROM requests WHERE submitted_s >= $1 AND submitted_s < $2", params=[start_s, end_s]).fetchall()[0]
    kinds = dict(run.sql("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    ups, downs = run.sql(
        "SELECT count(*) FILTER (WHERE capacity_to > capacity_from), count(*) FILTER (WHERE capacity_to < "
        "capacity_from) FROM events WHERE kind = 'scale_completed'").fetchall()[0]
    cold = run.sql(
        "SELECT max(r.latency_s) FROM requests r JOIN events e ON e.kind = 'resume_started' "
        "AND r.submitted_s <= e.time_s + 1e-9 AND r.finished_s >= e.time_s").fetchall()[0][0]
    paused_s, max_capacity = run.sql(
        "SELECT sum(CASE WHEN state = 'paused' THEN least(coalesce(next_s, $1), $1) - time_s ELSE 0 END), "
        "max(capacity_acu) FROM (SELECT time_s, state, capacity_acu, lead(time_s) OVER (ORDER BY seq) "
        "AS next_s FROM capacity WHERE time_s <= $1)", params=[run.duration_s]).fetchall()[0]
    money = bill(run)
    return Summary(
        requests=requests, failed=failed, p50_latency_ms=_nan(p50) * 1000, p95_latency_ms=_nan(p95) * 1000,
        max_latency_s=_nan(longest), scale_ups=ups, scale_downs=downs,
        scale_failures=kinds.get(names.SCALE_FAILED, 0), forced_scalings=kinds.get(names.SCALE_FORCED, 0),
        aborted=kinds.get(names.TRANSACTION_ABORTED, 0), pauses=kinds.get(names.PAUSED_EVENT, 0),
        resumes=kinds.get(names.RESUMED, 0), cold_start_s=_nan(cold), paused_s=float(paused_s or 0.0),
        max_capacity_acu=int(max_capacity), acu_hours=money.acu_hours, billed_acu_hours=money.billed_acu_hours,
        cost_usd=money.cost_usd)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
