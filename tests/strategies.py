"""Hypothesis strategies for the property tests: random but fast clusters, workloads and scenarios.

The draws lean towards what makes rules fire in a short run: low minimum capacities (so 0-50 requests/s can
push CPU past 70 %), short pause and scaling timeouts, and quiet stretches (so the cluster scales down and
pauses). Every legal value stays reachable.
"""

from __future__ import annotations

from hypothesis import strategies as st

from aurora_sim import (
    ClusterConfig,
    IdleConnection,
    LongQuery,
    LongTransaction,
    ModelAssumptions,
    TableLock,
    TemporaryTable,
    Workload,
    facts,
)

BLOCKING_KINDS = (LongTransaction, LongQuery, TemporaryTable, TableLock, IdleConnection)
MAX_DURATION_S = 2000  # long enough for a pause, a resume and a 900 s cooldown; short enough to stay fast


@st.composite
def cluster_configs(draw) -> ClusterConfig:
    """Both engines and versions, any ladder min <= max, pause on/off with any legal timeout, both actions."""
    engine = draw(st.sampled_from(facts.ENGINES))
    ladder = facts.CAPACITY_LADDER[engine]
    low = draw(st.integers(0, 1) | st.integers(0, len(ladder) - 1))
    high = draw(st.integers(low, min(low + 3, len(ladder) - 1)) | st.integers(low, len(ladder) - 1))
    lo_pause, hi_pause = facts.SECONDS_UNTIL_AUTO_PAUSE_RANGE_S
    lo_timeout, hi_timeout = facts.SECONDS_BEFORE_TIMEOUT_RANGE_S
    return ClusterConfig(
        engine=engine,
        engine_version=draw(st.sampled_from(facts.ENGINE_VERSIONS[engine])),
        min_capacity=ladder[low],
        max_capacity=ladder[high],
        auto_pause=draw(st.booleans()),
        seconds_until_auto_pause=draw(st.sampled_from([lo_pause, hi_pause]) | st.integers(lo_pause, 900)),
        timeout_action=draw(st.sampled_from(facts.TIMEOUT_ACTIONS)),
        seconds_before_timeout=draw(st.integers(lo_timeout, 120) | st.integers(lo_timeout, hi_timeout)),
    )


@st.composite
def segment_lists(draw, duration_s: int, min_capacity: int, query_cpu_s: float) -> list[tuple[float, float, float]]:
    """1-4 ordered, non-overlapping segments from t=0 on, rates 0-50 requests per second.

    A rate is mostly drawn as a load on the minimum capacity (idle, light, over 70 %, saturated), capped at 50/s.
    """
    segments = []
    start = draw(st.sampled_from([0, 0, 60, 400]) | st.integers(0, duration_s))
    for _ in range(draw(st.integers(1, 4))):
        length = draw(st.sampled_from([60, 300, 900]) | st.integers(1, duration_s))
        load = draw(st.sampled_from([0.0, 0.2, 0.8, 1.5, 3.0]) | st.floats(0, 3))
        rate = draw(st.just(min(50.0, load * min_capacity / query_cpu_s)) | st.floats(0, 50))
        segments.append((float(start), float(start + length), rate))
        start += length + draw(st.sampled_from([0, 400, 1000]) | st.integers(0, duration_s))
    return segments


@st.composite
def blocking_operations(draw, duration_s: float) -> list:
    """0-3 blocking operations of any kind, starting inside the run."""
    ops = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(BLOCKING_KINDS))
        start = draw(st.floats(0, duration_s, allow_nan=False))
        ops.append(kind(start_s=start, duration_s=draw(st.floats(1, 1500, allow_nan=False))))
    return ops


@st.composite
def workloads(draw, duration_s: int, min_capacity: int) -> Workload:
    query_cpu_s = draw(st.sampled_from([0.005, 0.02, 0.05, 0.2]) | st.floats(0.001, 0.2))
    return Workload(
        segments=draw(segment_lists(duration_s, min_capacity, query_cpu_s)),
        arrivals=draw(st.sampled_from(["poisson", "regular"])),
        query_cpu_s=query_cpu_s,
        blocking=draw(blocking_operations(duration_s)),
    )


@st.composite
def scenarios(draw) -> dict:
    """Keyword arguments for ``simulate``: config, workload, duration, seed, metrics period."""
    duration_s = draw(st.sampled_from([600, 1200, MAX_DURATION_S]) | st.integers(60, MAX_DURATION_S))
    config = draw(cluster_configs())
    return {
        "config": config,
        "workload": draw(workloads(duration_s, config.min_capacity)),
        "duration_s": duration_s,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "metrics_period_s": draw(st.sampled_from([10, 30, 60, 7.5])),
    }


def resume_assumptions() -> st.SearchStrategy[ModelAssumptions]:
    """Resume-time assumptions other than the default (a different cold-start distribution)."""
    return st.builds(lambda median, spread: ModelAssumptions(resume_median_s=median, resume_p95_s=median + spread,
                                                             resume_min_s=5, resume_max_s=200),
                     st.floats(10, 80), st.floats(0, 60))
