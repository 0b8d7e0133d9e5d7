"""Hypothesis strategies for the property tests: random but fast clusters, workloads and scenarios.

The draws lean towards what makes rules fire in a short run: low minimum capacities (so 0-50 requests/s can
push CPU past 70 %), short pause and scaling timeouts, and quiet stretches (so the cluster scales down and
pauses). Every legal value stays reachable.
"""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from aurora_sim import (
    AdvisoryLock,
    ClusterConfig,
    ConnectionPool,
    ConnectPerRequest,
    DataApi,
    HoldCursor,
    IdleConnection,
    Listen,
    LongQuery,
    LongTransaction,
    ModelAssumptions,
    Notify,
    RetryPolicy,
    TableLock,
    TemporaryTable,
    Workload,
    facts,
)
from aurora_sim.clients import ERROR_CLASSES, RETRY_STRATEGIES, TRANSIENT
from aurora_sim.config import ALLOWED, MAX_QUERY_COST_CV, MAX_ROLLBACK_RATIO

BLOCKING_KINDS = (LongTransaction, LongQuery, TemporaryTable, TableLock, IdleConnection)
POSTGRESQL_ONLY_KINDS = (AdvisoryLock, Listen, Notify, HoldCursor)
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


def model_assumptions() -> st.SearchStrategy[ModelAssumptions | None]:
    """The defaults (None) half the time, else any legal rollback ratio (0, PostgreSQL-like, to the bound) and any
    legal request-cost variation, up to the largest accepted: at 3 and above a request's cost can round to nothing
    next to the server's service level, which once crashed the batch path while the cluster was paused."""
    ratios = st.sampled_from([0.0, 0.5, 2.0]) | st.floats(0, MAX_ROLLBACK_RATIO)
    cost_cvs = st.sampled_from([1.0, 0.0, 3.0, MAX_QUERY_COST_CV]) | st.floats(0, MAX_QUERY_COST_CV)
    return st.none() | st.builds(
        lambda ratio, cv: ModelAssumptions(rollback_s_per_transaction_s=ratio, query_cost_cv=cv), ratios, cost_cvs)


def _extreme_assumptions(draw) -> ModelAssumptions:
    """Every assumption at an edge of its accepted range (or the default), the cheap edges only: a 1-s controller
    period and poll, the longest apply, pause and resume, the most variable costs."""
    def edge(name: str, *extra: float) -> float:
        low, high, _ = ALLOWED[name]
        default = getattr(ModelAssumptions(), name)
        return draw(st.sampled_from([default, high, max(low, 1e-3 if name in _POSITIVE else low), *extra]))

    resume = sorted(edge(name) for name in ("resume_min_s", "resume_median_s", "resume_p95_s", "resume_max_s"))
    window = draw(st.sampled_from([60.0, 1.0, 3600.0]))
    return ModelAssumptions(
        controller_window_s=window, controller_period_s=draw(st.sampled_from([1.0, min(5.0, window), window])),
        scaling_point_poll_s=edge("scaling_point_poll_s"), scaling_point_drain_s=edge("scaling_point_drain_s"),
        scale_apply_s=edge("scale_apply_s"), rollback_s_per_transaction_s=edge("rollback_s_per_transaction_s"),
        pause_transition_s=edge("pause_transition_s"), resume_min_s=resume[0], resume_median_s=resume[1],
        resume_p95_s=resume[2], resume_max_s=resume[3], query_cost_cv=edge("query_cost_cv", 3.0),
        long_query_acu=edge("long_query_acu"), connect_latency_s=edge("connect_latency_s"),
        connect_cpu_acu_s=edge("connect_cpu_acu_s"), round_trip_s=edge("round_trip_s"))


_POSITIVE = {"resume_min_s", "resume_median_s", "resume_p95_s", "resume_max_s", "connect_latency_s",
             "connect_cpu_acu_s", "round_trip_s", "scaling_point_poll_s", "controller_period_s",
             "controller_window_s"}


@st.composite
def extreme_scenarios(draw) -> dict:
    """Keyword arguments for ``simulate`` at the edges of what is accepted: the extreme assumptions, requests that
    cost almost nothing or a minute of an ACU, one-second metrics, seeds up to 2**63 - 1, blocking operations of a
    millisecond to far beyond the 24-hour connection cap. The load stays light (at most half the minimum capacity on
    average), so each example runs in about a second and its last request ends well within the 7 days simulate()
    gives requests in flight."""
    duration_s = draw(st.sampled_from([60, 600, 7200]))
    config = draw(cluster_configs())
    query_cpu_s = draw(st.sampled_from([0.02, 1e-9, 1.0, 60.0]))
    rate = draw(st.sampled_from([0.0, 0.01, 0.5])) * min(1.0, config.min_capacity / query_cpu_s)
    blocking = [draw(st.sampled_from(BLOCKING_KINDS))(start_s=draw(st.sampled_from([0.0, duration_s / 2])),
                                                      duration_s=draw(st.sampled_from([1e-3, 86_400.0, 1e9])))
                for _ in range(draw(st.integers(0, 2)))]
    workload = Workload(segments=[(0.0, float(duration_s), rate)], query_cpu_s=query_cpu_s, blocking=blocking,
                        arrivals=draw(st.sampled_from(["poisson", "regular"])))
    return {"config": config, "workload": workload, "duration_s": duration_s,
            "seed": draw(st.sampled_from([0, 2**63 - 1]) | st.integers(0, 2**32 - 1)),
            "metrics_period_s": draw(st.sampled_from([1, 60, duration_s])),
            "assumptions": _extreme_assumptions(draw)}


@st.composite
def scenarios(draw) -> dict:
    """Keyword arguments for ``simulate``: config, workload, duration, seed, metrics period, assumptions."""
    duration_s = draw(st.sampled_from([600, 1200, MAX_DURATION_S]) | st.integers(60, MAX_DURATION_S))
    config = draw(cluster_configs())
    return {
        "config": config,
        "workload": draw(workloads(duration_s, config.min_capacity)),
        "duration_s": duration_s,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "metrics_period_s": draw(st.sampled_from([10, 30, 60, 7.5])),
        "assumptions": draw(model_assumptions()),
    }


def resume_assumptions() -> st.SearchStrategy[ModelAssumptions]:
    """Resume-time assumptions other than the default (a different cold-start distribution)."""
    return st.builds(lambda median, spread: ModelAssumptions(resume_median_s=median, resume_p95_s=median + spread,
                                                             resume_min_s=5, resume_max_s=200),
                     st.floats(10, 80), st.floats(0, 60))


# --- tracked clients (issue 3): connection strategies, retry policies, engine parameters -------------------------

MAX_TRACKED_ARRIVALS = 300  # tracked requests are simpy processes: keep each example well under a second
MAX_TRACKED_DURATION_S = 1500


def connection_strategies() -> st.SearchStrategy:
    """None (the foundation's free connection), a connection per request, any legal pool, or the Data API."""
    pools = st.builds(
        lambda min_size, extra, acquire, idle, lifetime, pre_ping: ConnectionPool(
            min_size=min_size, max_size=max(1, min_size + extra), acquire_timeout_s=acquire, idle_timeout_s=idle,
            max_lifetime_s=lifetime, pre_ping=pre_ping),
        st.sampled_from([0, 1, 2]) | st.integers(0, 20),
        st.sampled_from([0, 1, 5]) | st.integers(0, 100),
        st.sampled_from([0.1, 1.0, 30.0]) | st.floats(0.01, 60),
        st.none() | st.sampled_from([10.0, 60.0, 600.0]) | st.floats(0.1, 2000),
        st.none() | st.sampled_from([30.0, 300.0, 3600.0]) | st.floats(0.1, 5000),
        st.booleans(),
    )
    data_api = st.builds(lambda overhead: DataApi(overhead_s=overhead),
                         st.sampled_from([facts.DATA_API_WARM_CALL_S, facts.DATA_API_FIRST_CALL_S, 0.05])
                         | st.floats(0.01, 5))
    return st.sampled_from(["none", "per_request", "pool", "pool", "data_api"]).flatmap(
        lambda kind: {"none": st.none(), "per_request": st.just(ConnectPerRequest()), "pool": pools,
                      "data_api": data_api}[kind])


def retry_policies() -> st.SearchStrategy:
    """None, or any strategy with any legal base/cap, 1-6 attempts, an optional budget and any retry_on subset."""
    def build(strategy, base, cap_factor, attempts, budget, deposit, retry_on):
        return RetryPolicy(strategy, base_s=base, cap_s=base * cap_factor, max_attempts=attempts,
                           budget_tokens=budget, budget_deposit=deposit, retry_on=retry_on)

    policies = st.builds(
        build,
        st.sampled_from(RETRY_STRATEGIES),
        st.sampled_from([0.1, 1.0]) | st.floats(0.01, 5),
        st.sampled_from([1, 10, 200]) | st.floats(1, 500),
        st.sampled_from([1, 3, 5]) | st.integers(1, 6),
        st.none() | st.sampled_from([1.0, 5.0]) | st.floats(0.5, 20),
        st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0, 2),
        st.just(TRANSIENT) | st.lists(st.sampled_from(ERROR_CLASSES), unique=True),
    )
    return st.none() | policies | policies  # a policy two times in three


@st.composite
def engine_parameters(draw, engine: str, version: str) -> dict[str, int]:
    """Timeout parameters the engine and version accept (often none, sometimes short enough to fire)."""
    names = [n for n in facts.ENGINE_PARAMETERS[engine] if facts.PARAMETER_MISSING_IN.get(n) != (engine, version)]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))) if names else []
    return {name: draw(st.sampled_from([0, 200, 5_000, 120_000]) | st.integers(0, 600_000)) for name in chosen}


@st.composite
def tracked_workloads(draw, duration_s: int, config: ClusterConfig) -> Workload:
    """A workload with a connection strategy or a retry policy (at least one), at most ~300 expected arrivals."""
    query_cpu_s = draw(st.sampled_from([0.005, 0.02, 0.2, 2.0]) | st.floats(0.001, 5))
    if draw(st.integers(0, 2)) == 0:  # busy, quiet long enough to pause, busy again: pause, resume, cold calls
        rate, gap = draw(st.floats(0.05, 5)), draw(st.sampled_from([400, 600, 900]) | st.integers(300, 1200))
        segments = [(0.0, 30.0, rate), (30.0 + gap, 90.0 + gap, rate)]
    else:
        segments = draw(segment_lists(duration_s, config.min_capacity, query_cpu_s))
    expected = sum((end - start) * rate for start, end, rate in segments)
    if expected > MAX_TRACKED_ARRIVALS:
        scale = MAX_TRACKED_ARRIVALS / expected
        segments = [(start, end, rate * scale) for start, end, rate in segments]
    connections = draw(connection_strategies())
    retry = draw(retry_policies())
    if connections is None and retry is None:
        retry = RetryPolicy(draw(st.sampled_from(RETRY_STRATEGIES)))
    kinds = BLOCKING_KINDS + (POSTGRESQL_ONLY_KINDS if config.engine == "aurora-postgresql" else ())
    blocking = [draw(st.sampled_from(kinds))(start_s=draw(st.floats(0, duration_s, allow_nan=False)),
                                             duration_s=draw(st.floats(1, 1500, allow_nan=False)))
                for _ in range(draw(st.integers(0, 3)))]
    return Workload(segments=segments, arrivals=draw(st.sampled_from(["poisson", "regular"])), query_cpu_s=query_cpu_s,
                    blocking=blocking, connections=connections, retry=retry)


@st.composite
def tracked_scenarios(draw) -> dict:
    """Keyword arguments for ``simulate`` with a tracked workload and, sometimes, engine timeout parameters."""
    duration_s = draw(st.sampled_from([300, 900, MAX_TRACKED_DURATION_S]) | st.integers(60, MAX_TRACKED_DURATION_S))
    config = draw(cluster_configs())
    parameters = draw(engine_parameters(config.engine, config.engine_version))
    config = dataclasses.replace(config, parameters=parameters, auto_pause=draw(st.sampled_from([True, True, False])))
    return {
        "config": config,
        "workload": draw(tracked_workloads(duration_s, config)),
        "duration_s": duration_s,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "metrics_period_s": draw(st.sampled_from([5, 10, 30, 7.5])),
        "assumptions": draw(model_assumptions()),
    }
