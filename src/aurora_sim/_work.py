"""How much a run will compute, estimated before it starts, so that no accepted input runs for minutes or fills memory.

``check_run_size`` counts what a run asks for — controller steps, metrics rows, requests (and each tracked request's
attempts), a pool's background checks — and refuses with a ``ValueError`` naming the parameters and the limit when
the tables would not fit (``MAX_REQUESTS``, ``MAX_METRICS_ROWS``) or the run would compute for more than about a
minute (``WORK_LIMIT_S``). The cost of each unit was measured on the DESIGN §8 machine (2 cores, issue 12); a faster
machine finishes sooner, and the estimate errs high (every tracked request is counted at its full ``max_attempts``).

Example:
    >>> from aurora_sim import ClusterConfig, ModelAssumptions, Workload
    >>> check_run_size(ClusterConfig(), Workload(segments=[(0, 60, 2.0)]), ModelAssumptions(), duration_s=60,
    ...                metrics_period_s=60)
    >>> check_run_size(ClusterConfig(), Workload(segments=[(0, 60, 1e9)]), ModelAssumptions(), duration_s=60,
    ...                metrics_period_s=60)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: segments ask for about 6e+10 requests ... simulate() keeps at most 20,000,000 requests ...
"""

from __future__ import annotations

import math
from typing import NamedTuple

from . import facts
from .clients import ConnectionPool
from .config import ClusterConfig, ModelAssumptions
from .workload import Workload

WORK_LIMIT_S = 60.0  # no accepted run computes for longer than about a minute
MAX_DURATION_S = 366 * 86_400  # a year, leap day included
MAX_REQUESTS = 20_000_000  # about 30 bytes a request while it runs (simulation.MAX_REQUEST_ROWS keep rows)
MAX_METRICS_ROWS = 2_000_000  # about 450 bytes a row: 0.9 GB

# Seconds of computing per unit on the DESIGN §8 machine (issue 12 measured each):
CONTROLLER_STEP_S = 6e-6  # an idle year with auto_pause=False: 6.3 M controller steps in 39 s
BLOCKER_STEP_S = 0.15e-6  # each open blocking operation adds this to every controller step (1,000 for a day: 1.9 s)
METRICS_ROW_S = 8e-6  # a million one-second rows: 8.7 s
REQUEST_S = 0.5e-6  # bulk traffic: 4 M requests in 1.9 s
ATTEMPT_S = 50e-6  # one tracked attempt: a Data API call 47 µs, a connection per request 35 µs, a pooled one 28 µs
POOL_CHECK_S = 50e-6  # one background refill or idle check of a pool's connection
QUEUED_STEP_S = 0.25e-6  # each request queued at the server adds this to a step (6,000 at 256 ACU: 1.4 ms a step)


class _Part(NamedTuple):
    seconds: float  # estimated computing time
    what: str  # what is counted, with the parameters it comes from
    remedy: str  # which parameters to change


def check_run_size(config: ClusterConfig, workload: Workload, assumptions: ModelAssumptions, *, duration_s: float,
                   metrics_period_s: float) -> None:
    """Refuse a run whose tables would not fit in memory or that would compute for more than ``WORK_LIMIT_S``.

    Raises:
        ValueError: Naming the parameters that ask for too much and the limit they break.
    """
    _check_requests(workload, duration_s)
    rows = math.ceil(duration_s / metrics_period_s)
    if rows > MAX_METRICS_ROWS:
        msg = (f"duration_s={duration_s:g} / metrics_period_s={metrics_period_s:g} asks for {rows:,} metrics rows; "
               f"simulate() keeps at most {MAX_METRICS_ROWS:,} (about 0.9 GB): raise metrics_period_s to at least "
               f"{duration_s / MAX_METRICS_ROWS:.3g}")
        raise ValueError(msg)
    parts = [_controller_part(workload, assumptions, duration_s),
             _Part(rows * METRICS_ROW_S, f"{rows:,} metrics rows (duration_s / metrics_period_s={metrics_period_s:g})",
                   "raise metrics_period_s"),
             _requests_part(workload, duration_s), *_queue_parts(config, workload, assumptions, duration_s),
             *_pool_parts(config, workload, duration_s)]
    total = sum(part.seconds for part in parts)
    if total > WORK_LIMIT_S:
        worst = sorted(parts, reverse=True)[:2]
        counted = "; ".join(f"{part.what}: about {part.seconds:.3g} s" for part in worst if part.seconds > 0)
        msg = (f"this run would compute for about {total:.3g} s, over simulate()'s limit of {WORK_LIMIT_S:g} s "
               f"(duration_s={duration_s:g}): {counted}. To fit, {worst[0].remedy}")
        raise ValueError(msg)


def expected_requests(workload: Workload, duration_s: float) -> list[float]:
    """Each segment's expected requests before ``duration_s`` (arrivals stop then).

    Example:
        >>> expected_requests(Workload(segments=[(0, 60, 2.0), (100, 200, 1.0)]), duration_s=150)
        [120.0, 50.0]
    """
    return [rate * max(0.0, min(end, duration_s) - start) for start, end, rate in workload.segments]


def _check_requests(workload: Workload, duration_s: float) -> None:
    per_segment = expected_requests(workload, duration_s)
    total = sum(per_segment)
    if total > MAX_REQUESTS:
        index = max(range(len(per_segment)), key=per_segment.__getitem__)
        start, end, rate = workload.segments[index]
        seconds = min(end, duration_s) - start
        msg = (f"segments ask for about {total:.3g} requests before duration_s={duration_s:g} (segments[{index}]: "
               f"{rate:g} requests/s for {seconds:g} s); simulate() keeps at most {MAX_REQUESTS:,} requests (about "
               f"0.6 GB while it runs): lower the rates or shorten duration_s")
        raise ValueError(msg)


def _controller_part(workload: Workload, assumptions: ModelAssumptions, duration_s: float) -> _Part:
    """The controller wakes every period, and a capacity change looking for a scaling point every poll."""
    name, step_s = min(("controller_period_s", assumptions.controller_period_s),
                       ("scaling_point_poll_s", assumptions.scaling_point_poll_s), key=lambda item: item[1])
    steps = duration_s / step_s
    blocking = len(workload.blocking)
    each = f", each over {blocking:,} blocking operations" if blocking else ""
    return _Part(steps * (CONTROLLER_STEP_S + BLOCKER_STEP_S * blocking),
                 f"{steps:.3g} controller steps (duration_s / {name}={step_s:g}{each})",
                 f"shorten duration_s or raise ModelAssumptions.{name}")


def _requests_part(workload: Workload, duration_s: float) -> _Part:
    count = sum(expected_requests(workload, duration_s))
    if not workload.tracked:
        return _Part(count * REQUEST_S, f"{count:.3g} requests", "lower the rates or shorten duration_s")
    policy = workload.retry
    attempts = policy.max_attempts if policy is not None and policy.strategy != "none" else 1
    return _Part(count * attempts * ATTEMPT_S,
                 f"{count:.3g} tracked requests × up to {attempts} attempts each (RetryPolicy.max_attempts)",
                 "lower the rates, shorten duration_s or lower max_attempts")


def _queue_parts(config: ClusterConfig, workload: Workload, assumptions: ModelAssumptions,
                 duration_s: float) -> list[_Part]:
    """Bulk traffic offering more work than a rung serves fills that rung's connections with queued requests; every
    step then walks the queue, and what is queued at the end drains at that rung's pace."""
    load = max(rate for _, _, rate in workload.segments) * workload.query_cpu_s  # ACUs of work offered at the peak
    saturated = [capacity for capacity in config.ladder if capacity <= load]
    if workload.tracked or not saturated:
        return []
    capacity = saturated[-1]
    queued = facts.connection_limit(config.engine, capacity)
    steps = duration_s / min(assumptions.controller_period_s, assumptions.scaling_point_poll_s)
    drain_steps = queued * workload.query_cpu_s / capacity / assumptions.controller_period_s
    return [_Part((steps + drain_steps / 2) * queued * QUEUED_STEP_S,
                  f"a queue of up to {queued:,} requests walked at every step (the segments offer {load:.3g} ACU of "
                  f"work at their peak, query_cpu_s={workload.query_cpu_s:g}: more than {capacity} ACU serve)",
                  "lower the rates or query_cpu_s, or shorten duration_s")]


def _pool_parts(config: ClusterConfig, workload: Workload, duration_s: float) -> list[_Part]:
    """A pool checks each idle connection at min_size every idle_timeout_s (or max_lifetime_s, if shorter), and
    retries to fill every second while min_size connections cannot fit in the cluster."""
    pool = workload.connections
    if not isinstance(pool, ConnectionPool):
        return []
    parts = []
    limits = [(name, value) for name, value in (("idle_timeout_s", pool.idle_timeout_s),
                                                ("max_lifetime_s", pool.max_lifetime_s)) if value is not None]
    if limits and pool.min_size:
        name, every_s = min(limits, key=lambda item: item[1])
        checks = pool.min_size * duration_s / every_s
        parts.append(_Part(checks * POOL_CHECK_S,
                           f"{checks:.3g} pool checks (min_size={pool.min_size} × duration_s / {name}={every_s:g})",
                           f"raise ConnectionPool.{name} or lower min_size"))
    if pool.min_size > facts.connection_limit(config.engine, config.ladder[-1]):  # ladder[-1]: v2 max may be 2.5
        parts.append(_Part(duration_s * POOL_CHECK_S,
                           f"{duration_s:.3g} refills of a pool whose min_size={pool.min_size} never fits",
                           "lower ConnectionPool.min_size"))
    return parts
