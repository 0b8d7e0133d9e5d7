"""Static plotly figures of a ``Run``: the timeline, request latencies, and a cost/latency comparison.

Every factory takes finished runs and returns a ``plotly.graph_objects.Figure``; none of them simulates.
They read the run's DuckDB tables and aggregate or sample there, so a 1-hour run at 100 requests/s
(~360 k requests) still gives a figure of a few thousand points. Colours come from the Okabe-Ito
palette (colour-blind safe) and are defined once below.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0)]), duration_s=900, seed=1)
    >>> [trace.name for trace in timeline(run).data][:2]
    ['offered load (req/s)', 'served (req/s)']
"""

from .. import _quick_start  # noqa: F401  (before plotly's widget module imports nbformat)
from ..names import EVENT_KINDS
from .comparisons import backoff_sweep, cost_latency_summary, resume_distribution
from .consolidation import consolidation
from .engines import engine_comparison
from .monitoring import alarm
from .requests import cold_starts, latency
from .timeline import timeline

__all__ = ["EVENT_KINDS", "alarm", "backoff_sweep", "cold_starts", "consolidation", "cost_latency_summary",
           "engine_comparison", "latency", "resume_distribution", "timeline"]
