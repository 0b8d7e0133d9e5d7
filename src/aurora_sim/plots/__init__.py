"""Static plotly figures of a ``Run``: the timeline, request latencies, and a cost/latency comparison.

Every factory takes finished runs and returns a ``plotly.graph_objects.Figure``; none of them simulates.
They read the run's tables (the frames behind them where a panel redraws, DuckDB where they aggregate or
sample), so a 1-hour run at 100 requests/s (~360 k requests) still gives a figure of a few thousand points,
and a line longer than a plot can show is thinned to what it can. The factories behind panels have a ``*_dict``
form (``timeline_dict``, ...): the same figure as plain dicts, which a panel's redraw compares with what it
shows and sends only the change. Colours come from the Okabe-Ito palette (colour-blind safe) and are defined
once below.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 300, 2.0)]), duration_s=900, seed=1)
    >>> [trace.name for trace in timeline(run).data][:2]
    ['offered load (req/s)', 'served (req/s)']
"""

from .. import _quick_start  # noqa: F401  (before plotly's widget module imports nbformat)
from ..names import EVENT_KINDS
from .capstone import capstone_week, capstone_week_dict
from .comparisons import backoff_sweep, cost_latency_summary, resume_distribution
from .consolidation import consolidation, consolidation_dict
from .engines import engine_comparison, engine_comparison_dict
from .monitoring import alarm, alarm_dict
from .requests import cold_starts, latency
from .resilience import failover_requests, failover_requests_dict
from .timeline import timeline, timeline_dict

__all__ = ["EVENT_KINDS", "alarm", "alarm_dict", "backoff_sweep", "capstone_week", "capstone_week_dict",
           "cold_starts", "consolidation", "consolidation_dict", "cost_latency_summary", "engine_comparison",
           "engine_comparison_dict", "failover_requests", "failover_requests_dict", "latency", "resume_distribution",
           "timeline", "timeline_dict"]
