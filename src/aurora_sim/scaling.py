"""The scaling controller's decisions as pure functions, testable without simpy.

Example:
    >>> wants_scale_up(cpu_pct=85.0, connections=10, max_connections=90)
    True
    >>> wants_scale_down(cpu_pct=10.0, connections=50, max_connections=90)
    False
    >>> cooldown_over(now_s=1000, last_scale_up_s=200, last_scale_down_s=None)
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from . import facts
from .config import ClusterConfig, ModelAssumptions


def wants_scale_up(cpu_pct: float, connections: float, max_connections: int) -> bool:
    """Scale up if ANY holds: CPU above 70 %, or more than 90 % of max_connections in use.

    ``max_connections`` is the server's setting, not the application's limit (3 lower on PostgreSQL, whose last
    slots are kept for superusers): the 2018 rule counts connections in use against the setting.
    """
    return (cpu_pct > facts.SCALE_UP_CPU_PCT
            or connections > max_connections * facts.SCALE_UP_CONNECTIONS_PCT / 100)


def wants_scale_down(cpu_pct: float, connections: float, max_connections: int) -> bool:
    """Scale down only if ALL hold: CPU below 30 % and fewer than 40 % of max_connections in use."""
    return (cpu_pct < facts.SCALE_DOWN_CPU_PCT
            and connections < max_connections * facts.SCALE_DOWN_CONNECTIONS_PCT / 100)


def cooldown_over(now_s: float, last_scale_up_s: float | None, last_scale_down_s: float | None) -> bool:
    """No scale-down within 900 s of a scale-up's completion, nor within 310 s of a scale-down's."""
    after_up = last_scale_up_s is None or now_s - last_scale_up_s >= facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S
    after_down = (last_scale_down_s is None
                  or now_s - last_scale_down_s >= facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_DOWN_S)
    return after_up and after_down


@dataclass(frozen=True)
class Decision:
    """A capacity change the controller asks for, and why (the RDS-EVENT-0141 reason)."""

    target_acu: int
    reason: str


def decide(config: ClusterConfig, capacity_acu: int, cpu_pct: float, connections: float, now_s: float,
           last_scale_up_s: float | None, last_scale_down_s: float | None) -> Decision | None:
    """The change the controller wants after a full window, or None.

    Example:
        >>> decide(ClusterConfig(), 1, cpu_pct=95.0, connections=3, now_s=60,
        ...        last_scale_up_s=None, last_scale_down_s=None)
        Decision(target_acu=2, reason='Autoscaling: CPU 95 % > 70 %')
    """
    limit = facts.max_connections(config.engine, capacity_acu)
    if wants_scale_up(cpu_pct, connections, limit):
        target = facts.next_rung(config.engine, capacity_acu, +1)
        if target is None or target > config.max_capacity:
            return None
        if cpu_pct > facts.SCALE_UP_CPU_PCT:
            reason = f"Autoscaling: CPU {cpu_pct:.0f} % > {facts.SCALE_UP_CPU_PCT:.0f} %"
        else:
            reason = (f"Autoscaling: {connections:.0f} connections > {facts.SCALE_UP_CONNECTIONS_PCT:.0f} % "
                      f"of max_connections {limit}")
        return Decision(target, reason)
    if wants_scale_down(cpu_pct, connections, limit) and cooldown_over(now_s, last_scale_up_s, last_scale_down_s):
        target = facts.next_rung(config.engine, capacity_acu, -1)
        if target is None or target < config.min_capacity:
            return None
        reason = (f"Autoscaling: CPU {cpu_pct:.0f} % < {facts.SCALE_DOWN_CPU_PCT:.0f} % and {connections:.0f} "
                  f"connections < {facts.SCALE_DOWN_CONNECTIONS_PCT:.0f} % of max_connections {limit}")
        return Decision(target, reason)
    return None


def resume_time_s(assumptions: ModelAssumptions, rng: np.random.Generator) -> float:
    """One cold start: a lognormal through the median and p95, truncated to [resume_min_s, resume_max_s].

    Inverse-CDF sampling takes exactly one draw per resume, so the stream stays aligned.

    Example:
        >>> a = ModelAssumptions()
        >>> 12.6 <= resume_time_s(a, np.random.default_rng(0)) <= 92.6
        True
    """
    return _resume_quantile(assumptions, rng.random())


def resume_times_s(assumptions: ModelAssumptions, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` cold starts at once, drawn as ``resume_time_s`` draws them (for plots of the distribution).

    Example:
        >>> draws = resume_times_s(ModelAssumptions(), np.random.default_rng(1), 2000)
        >>> 40 < float(np.median(draws)) < 47
        True
    """
    return np.array([_resume_quantile(assumptions, u) for u in rng.random(count).tolist()])


def _resume_quantile(assumptions: ModelAssumptions, u: float) -> float:
    median, p95 = assumptions.resume_median_s, assumptions.resume_p95_s
    if p95 == median:
        return median
    mu, sigma = math.log(median), math.log(p95 / median) / _NORMAL.inv_cdf(0.95)
    low = _NORMAL.cdf((math.log(assumptions.resume_min_s) - mu) / sigma)
    high = _NORMAL.cdf((math.log(assumptions.resume_max_s) - mu) / sigma)
    return math.exp(mu + sigma * _NORMAL.inv_cdf(low + u * (high - low)))


_NORMAL = NormalDist()
