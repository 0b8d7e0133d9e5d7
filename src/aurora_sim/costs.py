"""What a run costs: ACU-hours from the exact capacity step function, and the bill with its per-activation minimum.

Aurora Serverless v1 bills the capacity in service, per second, and nothing while paused. Each time the
cluster becomes active (at the start, and after every resume) at least ``facts.MIN_BILLED_S_PER_ACTIVATION``
seconds are billed. Only ``[0, duration_s]`` counts: requests drained after ``duration_s`` cost nothing here.
Serverless v2 and provisioned runs are billed by their own tariff (``models.tariff``): v2 per ACU-hour at its
price with no minimum per resume, a provisioned instance per hour of its class, at least 10 minutes.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(min_capacity=2, max_capacity=2, auto_pause=False),
    ...                Workload(segments=[(0, 1800, 0.0)]), duration_s=1800, seed=0)
    >>> acu_hours(run)
    1.0
    >>> round(cost_usd(run), 4)
    0.06
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .models import tariff

if TYPE_CHECKING:
    from .simulation import Run


def _capacity_steps(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Change times (clipped to ``[0, duration_s]``) and the capacity in force from each, last change per instant."""
    frame = run.frame("capacity")  # read in place, in log order: a query opens the run's DuckDB views (7 ms a run)
    time_s, capacity = frame["time_s"].to_numpy(), frame["capacity_acu"].to_numpy()
    order = np.argsort(time_s, kind="stable")
    time_s, capacity = time_s[order], capacity[order]
    keep = time_s <= run.duration_s
    time_s, capacity = time_s[keep].astype(float), capacity[keep].astype(float)
    # Several changes at one instant: the last one is what is in force afterwards.
    last_at_instant = np.append(time_s[1:] != time_s[:-1], True)
    return time_s[last_at_instant], capacity[last_at_instant]


@dataclass(frozen=True)
class Bill:
    """A run's capacity used and billed, and its price (storage and I/O left out)."""

    acu_hours: float
    billed_acu_hours: float
    cost_usd: float


def bill(run: Run) -> Bill:
    """ACU-hours used, ACU-hours billed (each activation at least the minimum) and dollars, in one pass.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(min_capacity=2, max_capacity=2, auto_pause=False),
        ...                Workload(segments=[(0, 1800, 0.0)]), duration_s=1800, seed=0)
        >>> bill(run)
        Bill(acu_hours=1.0, billed_acu_hours=1.0, cost_usd=0.06)
    """
    rate = tariff(run.config)
    time_s, capacity = _capacity_steps(run)
    periods = _active_periods(run, time_s, capacity)
    used = sum(acu_s for _, _, acu_s in periods) / 3600
    billed = 0.0
    for start, _, acu_s in periods:
        starting_acu = float(capacity[np.searchsorted(time_s, start, side="right") - 1])
        billed += max(acu_s, rate.min_billed_s_per_activation * starting_acu)
    billed /= 3600
    return Bill(acu_hours=float(used), billed_acu_hours=float(billed),
                cost_usd=float(billed * rate.price_per_acu_hour_usd))


def active_periods(run: Run) -> list[tuple[float, float, float]]:
    """Each activation as ``(start_s, end_s, acu_seconds)``: from t = 0 or a resume until the next pause.

    An activation starts when capacity goes from 0 (or nothing, at t = 0) to above 0 — that is at t = 0 and
    at each ``resumed`` event — and ends when capacity drops to 0 (``paused``) or at ``duration_s``.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 1.0)]), duration_s=600, seed=1)
        >>> [(start, round(end)) for start, end, _ in active_periods(run)]
        [(0.0, 420)]
    """
    return _active_periods(run, *_capacity_steps(run))


def _active_periods(run: Run, time_s: np.ndarray, capacity: np.ndarray) -> list[tuple[float, float, float]]:
    ends = np.append(time_s[1:], run.duration_s)
    periods: list[tuple[float, float, float]] = []
    for start, end, acu in zip(time_s, ends, capacity, strict=True):
        if acu <= 0:
            continue
        if periods and periods[-1][1] == start:  # a change of capacity within one activation
            first, _, acu_s = periods[-1]
            periods[-1] = (first, float(end), acu_s + acu * (end - start))
        else:
            periods.append((float(start), float(end), float(acu * (end - start))))
    return periods


def acu_hours(run: Run) -> float:
    """The capacity step function integrated over ``[0, duration_s]``, in ACU-hours (paused and resuming: 0).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 60, 0.0)]),
        ...                duration_s=7200, seed=0)
        >>> acu_hours(run)
        2.0
    """
    return bill(run).acu_hours


def billed_acu_hours(run: Run) -> float:
    """ACU-hours as billed: each activation at least ``MIN_BILLED_S_PER_ACTIVATION`` seconds.

    An activation shorter than the minimum is billed as if it had lasted the minimum at the capacity it
    started with (a resume comes back at the capacity the cluster paused at).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 60, 0.0)]),
        ...                duration_s=60, seed=0)
        >>> acu_hours(run), billed_acu_hours(run) * 3600
        (0.016666666666666666, 300.0)
    """
    return bill(run).billed_acu_hours


def cost_usd(run: Run) -> float:
    """The run's bill in US dollars: billed ACU-hours × ``facts.PRICE_PER_ACU_HOUR_USD`` (storage and I/O left out).

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(min_capacity=4, max_capacity=4, auto_pause=False),
        ...                Workload(segments=[(0, 60, 0.0)]), duration_s=3600, seed=0)
        >>> round(cost_usd(run), 2)
        0.24
    """
    return bill(run).cost_usd
