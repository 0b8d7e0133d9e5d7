"""Aurora Serverless v2 and a provisioned instance beside v1: their settings, and the capacity policy of each.

``simulate()`` runs any of three configs on the same workload: ``ClusterConfig`` (Serverless v1),
``ServerlessV2Config`` and ``ProvisionedConfig``. The cluster asks its policy (``capacity_policy(config)``) the
questions on which the three differ: what capacity it starts at, which process chooses the next capacity, what
``max_connections`` is, how long a resume takes and which RDS event ids its events carry.

- **v1** keeps the cluster's own controller: one ladder step at a time, each change waiting for a scaling point.
- **v2** moves in 0.5-ACU steps between its minimum and maximum, in place: no scaling point, so a blocking
  operation never holds a change back (the fact sheet, section 8). How fast it moves is a set of named assumptions
  (``ModelAssumptions.v2_*``). A minimum of 0 turns auto-pause on; a paused instance resumes in
  ``v2_resume_s``.
- **provisioned** is one instance class: fixed capacity (the class's memory in ACUs, from the User Guide's
  conversion table), no scaling, no pause, priced per hour.

Example:
    >>> from aurora_sim import Workload, simulate
    >>> wl = Workload(segments=[(0, 600, 20.0)], query_cpu_s=0.05)
    >>> v2 = simulate(ServerlessV2Config(min_capacity=0.5, max_capacity=8), wl, duration_s=600, seed=1)
    >>> v2.sql("SELECT max(capacity_acu) FROM capacity").fetchall()[0][0] >= 1.5
    True
    >>> ServerlessV2Config(min_capacity=0.7)
    Traceback (most recent call last):
    ...
    ValueError: min_capacity=0.7 must be a multiple of 0.5 ACU between 0 and 256 (0 turns auto-pause on)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from . import facts, scaling
from ._validate import _check_choice, _check_number, _check_order, _check_range, _check_type
from .config import ClusterConfig, ModelAssumptions, _check_parameters
from .names import ACTIVE, PAUSED, RESUMING, SCALE_COMPLETED

if TYPE_CHECKING:
    import pandas as pd

    from .cluster import Cluster, _Span
    from .server import Projection

# ASSUMPTION, not a fact: approximate on-demand list prices per hour of each class (us-east-1, Aurora Standard),
# from the AWS pricing page as third parties quote it; the stored primary page lacks the numbers. Verify on
# https://aws.amazon.com/rds/aurora/pricing/ — or pass your own ``ProvisionedConfig(hourly_price_usd=...)``.
PROVISIONED_HOURLY_PRICE_USD = MappingProxyType({
    "db.t3.small": 0.041, "db.t3.medium": 0.082, "db.t3.large": 0.164, "db.r5.large": 0.29, "db.r5.xlarge": 0.58,
    "db.r5.2xlarge": 1.16, "db.r5.4xlarge": 2.32, "db.r5.8xlarge": 4.64, "db.r5.12xlarge": 6.96,
    "db.r5.16xlarge": 9.28, "db.r5.24xlarge": 13.92,
})
PRICE_SOURCE = ("ASSUMPTION: approximate us-east-1 on-demand list prices (3P quotes of the AWS pricing page); "
                "verify on aws.amazon.com/rds/aurora/pricing")
INSTANCE_CLASSES = tuple(facts.PROVISIONED_CLASS_FOR_ACU.values())
_ACU_OF_CLASS = MappingProxyType({name: acu for acu, name in facts.PROVISIONED_CLASS_FOR_ACU.items()})


def _check_half_steps(name: str, value: object, low: float, high: float, note: str = "") -> None:
    _check_number(name, value)
    step = facts.V2_CAPACITY_STEP_ACU
    if not (low <= value <= high and float(value / step).is_integer()):
        raise ValueError(f"{name}={value!r} must be a multiple of {step:g} ACU between {low:g} and {high:g}{note}")


@dataclass(frozen=True, kw_only=True)
class ServerlessV2Config:
    """An Aurora Serverless v2 instance's settings, checked against the API's limits.

    Capacity moves in 0.5-ACU steps between ``min_capacity`` and ``max_capacity`` (at most 256). A
    ``min_capacity`` of 0 turns auto-pause on (after ``seconds_until_auto_pause`` with no connections); while
    awake the instance runs at 0.5 ACU or more.

    Example:
        >>> ServerlessV2Config(min_capacity=0, max_capacity=4).auto_pause
        True
        >>> ServerlessV2Config(max_capacity=300)
        Traceback (most recent call last):
        ...
        ValueError: max_capacity=300 must be a multiple of 0.5 ACU between 0.5 and 256
    """

    engine: str = "aurora-mysql"
    min_capacity: float = facts.V2_LOWEST_RUNNING_ACU
    max_capacity: float = 16.0
    seconds_until_auto_pause: int = facts.V2_DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S
    parameters: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        _check_choice("engine", self.engine, facts.ENGINES)
        _check_half_steps("min_capacity", self.min_capacity, 0, facts.V2_MAX_CAPACITY_ACU,
                          " (0 turns auto-pause on)")
        _check_half_steps("max_capacity", self.max_capacity, facts.V2_LOWEST_RUNNING_ACU, facts.V2_MAX_CAPACITY_ACU)
        _check_order("min_capacity", self.min_capacity, "max_capacity", self.max_capacity)
        _check_type("seconds_until_auto_pause", self.seconds_until_auto_pause, int, "a whole number of seconds")
        _check_range("seconds_until_auto_pause", self.seconds_until_auto_pause,
                     *facts.V2_SECONDS_UNTIL_AUTO_PAUSE_RANGE_S, unit="seconds")
        object.__setattr__(self, "parameters", _check_parameters(self.parameters, self.engine, ""))

    model = "Serverless v2"
    engine_version = None  # v2 runs newer engine versions; the model's texts depend only on the engine

    @property
    def auto_pause(self) -> bool:
        """Whether the instance pauses when idle: a minimum capacity of 0 turns it on."""
        return self.min_capacity == 0

    @property
    def lowest_running_acu(self) -> float:
        """The least capacity while awake: the minimum, or 0.5 when the minimum is 0."""
        return max(self.min_capacity, facts.V2_LOWEST_RUNNING_ACU)

    @property
    def ladder(self) -> tuple[int, ...]:
        """The v1 rungs up to the maximum: what the run-size estimate walks (not capacities v2 keeps to)."""
        return _rungs_up_to(self.engine, self.max_capacity)

    def parameter(self, name: str) -> int:
        """An engine parameter's value in milliseconds (0 when not set)."""
        return dict(self.parameters).get(name, 0)

    def label(self) -> str:
        """A short description, e.g. for a table's column: ``v2 0.5–16 ACU``."""
        pause = ", auto-pause" if self.auto_pause else ""
        return f"v2 {self.min_capacity:g}–{self.max_capacity:g} ACU{pause}"


@dataclass(frozen=True, kw_only=True)
class ProvisionedConfig:
    """One provisioned Aurora instance of a chosen class: fixed capacity, billed per hour, never paused.

    Its capacity in ACUs is the class the User Guide recommends for that v1 capacity (``db.r5.large`` ↔ 8 ACU:
    the same memory, about 2 GB per ACU). ``hourly_price_usd`` ``None`` takes the assumed list price
    (``PROVISIONED_HOURLY_PRICE_USD``).

    Example:
        >>> ProvisionedConfig(instance_class="db.r5.large").capacity_acu
        8
        >>> ProvisionedConfig(instance_class="db.m5.large")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: instance_class='db.m5.large' must be one of ('db.t3.small', 'db.t3.medium', ...)
    """

    engine: str = "aurora-mysql"
    instance_class: str = "db.r5.large"
    hourly_price_usd: float | None = None
    parameters: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        _check_choice("engine", self.engine, facts.ENGINES)
        _check_choice("instance_class", self.instance_class, INSTANCE_CLASSES)
        if self.hourly_price_usd is not None:
            _check_range("hourly_price_usd", self.hourly_price_usd, 0, 1000, unit="US dollars per hour")
        object.__setattr__(self, "parameters", _check_parameters(self.parameters, self.engine, ""))

    model = "provisioned"
    engine_version = None
    auto_pause = False
    seconds_until_auto_pause = facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S  # unused: a provisioned instance never pauses

    @property
    def capacity_acu(self) -> int:
        """The class's capacity in ACUs (its memory at about 2 GB per ACU)."""
        return _ACU_OF_CLASS[self.instance_class]

    @property
    def min_capacity(self) -> int:
        return self.capacity_acu

    @property
    def max_capacity(self) -> int:
        return self.capacity_acu

    @property
    def price_per_hour_usd(self) -> float:
        """What one hour of the instance costs: ``hourly_price_usd``, or the assumed list price."""
        if self.hourly_price_usd is not None:
            return float(self.hourly_price_usd)
        return PROVISIONED_HOURLY_PRICE_USD[self.instance_class]

    @property
    def ladder(self) -> tuple[int, ...]:
        return _rungs_up_to(self.engine, self.capacity_acu)

    def parameter(self, name: str) -> int:
        """An engine parameter's value in milliseconds (0 when not set)."""
        return dict(self.parameters).get(name, 0)

    def label(self) -> str:
        """A short description: ``db.r5.large (8 ACU)``."""
        return f"{self.instance_class} ({self.capacity_acu} ACU)"


AnyConfig = ClusterConfig | ServerlessV2Config | ProvisionedConfig
CONFIG_TYPES = (ClusterConfig, ServerlessV2Config, ProvisionedConfig)


def _rungs_up_to(engine: str, capacity: float) -> tuple[int, ...]:
    ladder = facts.CAPACITY_LADDER[engine]
    return tuple(rung for rung in ladder if rung <= max(capacity, ladder[0]))


def v2_max_connections(engine: str, capacity_acu: float) -> int:
    """``max_connections`` of an instance of ``capacity_acu`` from the v2 table (the row at or below it).

    Example:
        >>> v2_max_connections("aurora-mysql", 16), v2_max_connections("aurora-mysql", 6), v2_max_connections(
        ...     "aurora-postgresql", 0.5)
        (2000, 135, 189)
    """
    table = facts.V2_MAX_CONNECTIONS[engine]
    rows = [acu for acu in table if acu <= capacity_acu]
    return table[rows[-1] if rows else min(table)]


def _application_limit(engine: str, max_connections: int) -> int:
    reserved = facts.SUPERUSER_RESERVED_CONNECTIONS if engine == "aurora-postgresql" else 0
    return max_connections - reserved


def next_v2_capacity(capacity: float, demand_acu: float, recent_peak_acu: float, *, lowest: float, highest: float,
                     assumptions: ModelAssumptions) -> float:
    """The capacity a v2 instance moves to after one controller period, in 0.5-ACU steps.

    Up at once toward what keeps ``demand_acu`` at ``v2_target_utilization_pct`` — at most
    ``v2_scale_up_factor`` times the capacity per period; down only when the window's busiest period
    (``recent_peak_acu``) fits, keeping ``v2_scale_down_factor`` of the capacity per period.

    Example:
        >>> a = ModelAssumptions()
        >>> next_v2_capacity(1.0, 3.0, 3.0, lowest=0.5, highest=16, assumptions=a)  # wants 4.5: doubles
        2.0
        >>> next_v2_capacity(8.0, 0.1, 0.1, lowest=0.5, highest=16, assumptions=a)  # sheds 10 %
        7.0
    """
    utilization = assumptions.v2_target_utilization_pct / 100
    step = facts.V2_CAPACITY_STEP_ACU
    wanted = _half_steps_up(demand_acu / utilization)
    if wanted > capacity:
        fastest = max(capacity * assumptions.v2_scale_up_factor, capacity + step)
        return min(highest, wanted, _half_steps_down(fastest))
    wanted = _half_steps_up(recent_peak_acu / utilization)
    if wanted < capacity:
        slowest = min(_half_steps_down(capacity * assumptions.v2_scale_down_factor), capacity - step)
        return max(lowest, wanted, slowest)
    return capacity


def _half_steps_up(acu: float) -> float:
    step = facts.V2_CAPACITY_STEP_ACU
    return math.ceil(acu / step - 1e-9) * step


def _half_steps_down(acu: float) -> float:
    step = facts.V2_CAPACITY_STEP_ACU
    return math.floor(acu / step + 1e-9) * step


# --- capacity policies: what the cluster asks its model -----------------------------------------------------------

class ServerlessV1Policy:
    """v1: the cluster's own controller, the v1 ladder's max_connections and the measured resume times."""

    whole_acu = True
    rds_event_ids = facts.RDS_EVENT_IDS

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.starting_capacity = config.min_capacity

    def controller(self, cluster: Cluster):
        return cluster._controller()

    def max_connections(self, capacity_acu: float) -> int:
        return facts.max_connections(self.config.engine, capacity_acu)

    def connection_limit(self, capacity_acu: float) -> int:
        return facts.connection_limit(self.config.engine, capacity_acu)

    def resume_time_s(self, assumptions: ModelAssumptions, rng: np.random.Generator) -> float:
        return scaling.resume_time_s(assumptions, rng)


class ServerlessV2Policy:
    """v2: 0.5-ACU steps in place (no scaling point), max_connections by maximum capacity, a short resume. AWS
    publishes v2 events under ids of their own; the model names none (``rds_event_id`` is NULL)."""

    whole_acu = False
    rds_event_ids: MappingProxyType = MappingProxyType({})

    def __init__(self, config: ServerlessV2Config) -> None:
        self.config = config
        self.starting_capacity = config.lowest_running_acu
        self._max_connections = v2_max_connections(config.engine, config.max_capacity)

    def controller(self, cluster: Cluster):
        return _v2_controller(cluster, self.config)

    def max_connections(self, capacity_acu: float) -> int:
        return self._max_connections

    def connection_limit(self, capacity_acu: float) -> int:
        return _application_limit(self.config.engine, self._max_connections)

    def resume_time_s(self, assumptions: ModelAssumptions, rng: np.random.Generator) -> float:
        return assumptions.v2_resume_s


class ProvisionedPolicy(ServerlessV2Policy):
    """Provisioned: no controller at all (the capacity never changes) and no pause."""

    whole_acu = True

    def __init__(self, config: ProvisionedConfig) -> None:
        self.config = config
        self.starting_capacity = config.capacity_acu
        self._max_connections = v2_max_connections(config.engine, config.capacity_acu)

    def controller(self, cluster: Cluster):
        return _no_controller()


def capacity_policy(config: AnyConfig) -> ServerlessV1Policy | ServerlessV2Policy | ProvisionedPolicy:
    """The policy the cluster consults for ``config``'s model.

    Example:
        >>> type(capacity_policy(ProvisionedConfig())).__name__
        'ProvisionedPolicy'
    """
    if isinstance(config, ServerlessV2Config):
        return ServerlessV2Policy(config)
    if isinstance(config, ProvisionedConfig):
        return ProvisionedPolicy(config)
    return ServerlessV1Policy(config)


def _no_controller():
    return
    yield  # a generator that ends at once: simpy needs a process, a provisioned instance has nothing to decide


_NO_WINDOW: deque = deque(maxlen=0)  # v2 keeps no v1 window: the fast-forward's samples for it go nowhere


def _v2_controller(cluster: Cluster, config: ServerlessV2Config):
    """Every controller period: measure the demand (work done plus what queued), arm the pause countdown, and move
    the capacity in place. The demand counts the queue so that a saturated instance sees what it is missing.

    Quiet stretches pass in one step, as v1's do (``Cluster._plan_span``): the coming steps' demands are read from
    one server projection (``_V2Steps``), and the controller sleeps until the first step that would move the
    capacity or pause the instance."""
    from .cluster import FAST_FORWARD_MIN_S  # cluster.py imports this module

    assumptions, env = cluster.assumptions, cluster.env
    period = assumptions.controller_period_s
    recent: deque[float] = deque(maxlen=max(1, round(assumptions.v2_scale_down_window_s / period)))
    last_work = cluster.total_work()
    moved = False  # whether the last step moved the capacity: the next one likely does too (a ramp)
    while True:
        if cluster.state in (PAUSED, RESUMING):
            yield cluster.awake
            cluster._sync()
            last_work = cluster.total_work()
            recent.clear()
            continue
        span = None
        if not moved:  # after a move, a plain step: planning a span that ends at once costs more than it saves
            steps = _V2Steps(cluster, config, last_work, recent)
            span = cluster._plan_span(_NO_WINDOW, steps.first_change)
        if span is None:
            yield env.timeout(period)
        else:
            done = yield from cluster._sleep_through(span, _NO_WINDOW)
            if done:  # the steps that passed: each measured its demand, none moved the capacity
                last_work = float(span.work[done - 1])
                recent.extend(steps.demand[:done].tolist())
            if span.stop < len(span.ticks) - 1:  # it ended at a change: look no further ahead than that next time
                cluster._lookahead_s = max(FAST_FORWARD_MIN_S, min(cluster._lookahead_s, 2 * period * (done + 1)))
        if cluster.state != ACTIVE:
            continue
        cluster._sync()
        work = cluster.total_work()
        # the queue counts as demand to be cleared within one controller window
        demand = (work - last_work) / period + cluster.server.backlog_work() / assumptions.controller_window_s
        last_work = work
        recent.append(demand)
        cluster._arm_pause_countdown()
        moved = False
        if cluster._pausing:
            continue
        target = next_v2_capacity(cluster.capacity, demand, max(recent), lowest=config.lowest_running_acu,
                                  highest=config.max_capacity, assumptions=assumptions)
        moved = target != cluster.capacity
        if moved:
            capacity_from = cluster.capacity
            cluster._set_state(ACTIVE, target)
            cluster._emit(SCALE_COMPLETED, capacity_from, target)


class _V2Steps:
    """The v2 controller's coming steps over a fast-forward span: each step's demand and window peak, computed
    as the controller computes them one by one, and the first step at which the capacity would move."""

    def __init__(self, cluster: Cluster, config: ServerlessV2Config, last_work: float, recent: deque) -> None:
        self.cluster, self.config, self.last_work, self.recent = cluster, config, last_work, recent
        self.demand = np.empty(0)

    def first_change(self, span: _Span) -> int | None:
        """The first step of ``span`` whose target differs from the capacity (``Cluster._plan_span``'s hook)."""
        assumptions, capacity = self.cluster.assumptions, self.cluster.capacity
        work = span.work
        done = np.empty(len(work))  # the work of each step: np.diff(work, prepend=...) without its overhead
        done[0] = work[0] - self.last_work
        np.subtract(work[1:], work[:-1], out=done[1:])
        demand = self.demand = (done / assumptions.controller_period_s
                                + _backlog_work(span.ahead, span.ticks) / assumptions.controller_window_s)
        peak = _window_peaks(np.fromiter(self.recent, float, len(self.recent)), demand, self.recent.maxlen)
        lowest, highest = self.config.lowest_running_acu, self.config.max_capacity
        utilization = assumptions.v2_target_utilization_pct / 100
        wanted_up, wanted_down = _half_steps_up_array(demand / utilization), _half_steps_up_array(peak / utilization)
        # next_v2_capacity's two branches, for every step at once: the steps where it may move the capacity
        moves = (((wanted_up > capacity) & (capacity < highest))
                 | ((wanted_up <= capacity) & (wanted_down < capacity) & (capacity > lowest)))
        for index in np.flatnonzero(moves).tolist():
            target = next_v2_capacity(capacity, float(demand[index]), float(peak[index]), lowest=lowest,
                                      highest=highest, assumptions=assumptions)
            if target != capacity:
                return index
        return None


def _backlog_work(ahead: Projection, times: np.ndarray) -> np.ndarray:
    """``QueueServer.backlog_work()`` at each time, read from a projection: the work admitted and not yet served."""
    level, admitted, finished = ahead._counts(times)
    if not len(ahead.done):
        return np.zeros(len(times))
    return np.where(admitted > finished, ahead.done[np.maximum(admitted - 1, 0)] - level, 0.0)


def _window_peaks(past: np.ndarray, demand: np.ndarray, size: int) -> np.ndarray:
    """The largest of the last ``size`` demands at each new step (``max(recent)`` after each append).

    Example:
        >>> _window_peaks(np.array([5.0, 1.0]), np.array([2.0, 0.5, 0.0]), 3).tolist()
        [5.0, 2.0, 2.0]
    """
    series = np.concatenate((np.full(size - 1, -np.inf), past, demand))
    peaks = series[len(past):len(past) + len(demand)].copy()
    for shift in range(1, size):  # a few whole-array maxima: cheaper than a sliding window view for short spans
        np.maximum(peaks, series[len(past) + shift:len(past) + shift + len(demand)], out=peaks)
    return peaks


def _half_steps_up_array(acu: np.ndarray) -> np.ndarray:
    """``_half_steps_up`` of each value, with the same arithmetic."""
    step = facts.V2_CAPACITY_STEP_ACU
    return np.ceil(acu / step - 1e-9) * step


# --- what each model costs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tariff:
    """How a model is billed: a price per ACU-hour of capacity in service, and the least billed per activation."""

    price_per_acu_hour_usd: float
    min_billed_s_per_activation: float
    source: str


def tariff(config: AnyConfig) -> Tariff:
    """The tariff of ``config``'s model (storage and I/O left out; they are the same for all three).

    v1: USD 0.06 per ACU-hour, at least 5 minutes per activation (3P). v2: USD 0.12 per ACU-hour, per second, no
    minimum per resume (none documented). Provisioned: the hourly price spread over the class's ACUs, at least
    10 minutes (DOC), per second.

    Example:
        >>> tariff(ProvisionedConfig(instance_class="db.r5.large")).price_per_acu_hour_usd
        0.03625
    """
    if isinstance(config, ServerlessV2Config):
        return Tariff(facts.PRICE_PER_ACU_HOUR_V2_USD, 0.0, "v2 per ACU-hour, per second")
    if isinstance(config, ProvisionedConfig):
        return Tariff(config.price_per_hour_usd / config.capacity_acu, float(facts.PROVISIONED_MIN_BILLED_S),
                      f"{config.instance_class} per hour, per second, at least 10 minutes")
    return Tariff(facts.PRICE_PER_ACU_HOUR_USD, float(facts.MIN_BILLED_S_PER_ACTIVATION),
                  "v1 per ACU-hour, per second, at least 5 minutes per activation")


def instance_prices() -> pd.DataFrame:
    """Each provisioned class with its capacity, ``max_connections`` and assumed hourly price, for a notebook.

    Example:
        >>> int(instance_prices().loc["db.r5.large", "ACU"])
        8
    """
    from ._tables import WholeTable

    rows = {name: (acu, v2_max_connections("aurora-mysql", acu), PROVISIONED_HOURLY_PRICE_USD[name])
            for acu, name in facts.PROVISIONED_CLASS_FOR_ACU.items()}
    table = WholeTable.from_dict(rows, orient="index",
                                 columns=["ACU", "MySQL max_connections", "USD per hour (assumed)"])
    return table.rename_axis("instance class")
