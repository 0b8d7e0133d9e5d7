"""The cluster's settings (``ClusterConfig``) and the model's undocumented knobs (``ModelAssumptions``).

Both are frozen, validated at construction and hashable, so widgets can cache runs on them.
Change a setting with ``dataclasses.replace``, which validates again.

Example:
    >>> cfg = ClusterConfig(min_capacity=2, max_capacity=8)
    >>> cfg.engine_version, cfg.max_capacity
    ('5.7', 8)
    >>> ClusterConfig(min_capacity=3)
    Traceback (most recent call last):
    ...
    ValueError: min_capacity=3 is not on the aurora-mysql ladder (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import facts
from ._validate import _check_choice, _check_order, _check_positive, _check_range, _check_type

if TYPE_CHECKING:  # pandas only for ModelAssumptions.table(), imported when it is called
    import pandas as pd


def _check_on_ladder(name: str, value: object, engine: str) -> None:
    _check_type(name, value, int, "an integer number of ACUs")
    ladder = facts.CAPACITY_LADDER[engine]
    if value not in ladder:
        raise ValueError(f"{name}={value!r} is not on the {engine} ladder {ladder}")


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """One Aurora Serverless v1 cluster's settings, checked against the documented limits.

    ``engine_version`` picks the error texts (``None``: the engine's newest v1 version; PostgreSQL ran 10, 11 and
    13 on v1); ``min_capacity`` ``None`` means the engine's lowest rung (1 ACU on MySQL, 2 on PostgreSQL).
    ``seconds_until_auto_pause`` is validated even when ``auto_pause`` is off. ``parameters`` sets engine timeouts
    in milliseconds for every session of the application (per session or role: whether v1's cluster parameter
    group accepts them is unknown).

    Example:
        >>> ClusterConfig(engine="aurora-postgresql").min_capacity
        2
    """

    engine: str = "aurora-mysql"
    engine_version: str | None = None
    min_capacity: int | None = None
    max_capacity: int = 16
    auto_pause: bool = True
    seconds_until_auto_pause: int = facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S
    timeout_action: str = facts.DEFAULT_TIMEOUT_ACTION
    seconds_before_timeout: int = facts.DEFAULT_SECONDS_BEFORE_TIMEOUT_S
    parameters: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        _check_choice("engine", self.engine, facts.ENGINES)
        if self.engine_version is None:
            object.__setattr__(self, "engine_version", facts.DEFAULT_ENGINE_VERSION[self.engine])
        _check_choice("engine_version", self.engine_version, facts.ENGINE_VERSIONS[self.engine])
        if self.min_capacity is None:
            object.__setattr__(self, "min_capacity", facts.CAPACITY_LADDER[self.engine][0])
        _check_on_ladder("min_capacity", self.min_capacity, self.engine)
        _check_on_ladder("max_capacity", self.max_capacity, self.engine)
        _check_order("min_capacity", self.min_capacity, "max_capacity", self.max_capacity)
        _check_type("auto_pause", self.auto_pause, bool, "True or False")
        _check_type("seconds_until_auto_pause", self.seconds_until_auto_pause, int, "a whole number of seconds")
        _check_range("seconds_until_auto_pause", self.seconds_until_auto_pause,
                     *facts.SECONDS_UNTIL_AUTO_PAUSE_RANGE_S, unit="seconds")
        _check_choice("timeout_action", self.timeout_action, facts.TIMEOUT_ACTIONS)
        _check_type("seconds_before_timeout", self.seconds_before_timeout, int, "a whole number of seconds")
        _check_range("seconds_before_timeout", self.seconds_before_timeout,
                     *facts.SECONDS_BEFORE_TIMEOUT_RANGE_S, unit="seconds")
        object.__setattr__(self, "parameters", _check_parameters(self.parameters, self.engine, self.engine_version))

    def parameter(self, name: str) -> int:
        """An engine parameter's value in milliseconds (0, the engine default, when not set: disabled).

        Example:
            >>> ClusterConfig(engine="aurora-postgresql", parameters={"statement_timeout": 500}).parameter(
            ...     "statement_timeout")
            500
        """
        return dict(self.parameters).get(name, 0)

    @property
    def ladder(self) -> tuple[int, ...]:
        """The rungs between min_capacity and max_capacity, inclusive."""
        return tuple(c for c in facts.CAPACITY_LADDER[self.engine] if self.min_capacity <= c <= self.max_capacity)


def _check_parameters(parameters: object, engine: str, version: str) -> tuple[tuple[str, int], ...]:
    """Engine parameters as sorted (name, milliseconds) pairs, so the config stays hashable."""
    items = parameters.items() if isinstance(parameters, Mapping) else parameters
    _check_type("parameters", items, (tuple, list, type({}.items())), "a mapping of parameter name to milliseconds")
    known = facts.ENGINE_PARAMETERS[engine]
    checked = {}
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            msg = (f"parameters[{index}]={item!r} must be a (name, milliseconds) pair, "
                   f"e.g. ({known[-1]!r}, 5000)")
            raise ValueError(msg)
        name, value = item
        if name not in known:
            other = [e for e, names in facts.ENGINE_PARAMETERS.items() if name in names]
            where = f" (it is an {other[0]} parameter)" if other else ""
            raise ValueError(f"parameters[{name!r}]={value!r}: not a parameter of {engine}{where}; allowed: {known}")
        if facts.PARAMETER_MISSING_IN.get(name) == (engine, version):
            raise ValueError(f"parameters[{name!r}]={value!r}: the parameter does not exist in {engine} {version}")
        if name in checked:
            raise ValueError(f"parameters[{index}]={item!r} sets {name!r} a second time; name each parameter once")
        _check_type(f"parameters[{name!r}]", value, int, "a whole number of milliseconds")
        if value < 0:
            raise ValueError(f"parameters[{name!r}]={value!r} must be >= 0 (milliseconds; 0 disables)")
        highest = facts.ENGINE_PARAMETER_MAX_MS[name]
        if value > highest:
            msg = f"parameters[{name!r}]={value!r} must be <= {highest} (milliseconds: the most {engine} accepts)"
            raise ValueError(msg)
        checked[name] = value
    return tuple(sorted(checked.items()))


def _assumption(default: float, why: str) -> float:
    return field(default=default, metadata={"why": why})


@dataclass(frozen=True, kw_only=True)
class ModelAssumptions:
    """The numbers AWS never published, each named, defaulted and explained (``docs/model-assumptions.md``).

    ``ModelAssumptions.describe()`` lists every field with its default and reason; ``ALLOWED`` gives each field's
    accepted range (``table()`` shows it), wide enough for any experiment and narrow enough that no value makes a
    run spin.

    Example:
        >>> ModelAssumptions().controller_window_s
        60.0
        >>> ModelAssumptions(scale_apply_s=-1)
        Traceback (most recent call last):
        ...
        ValueError: scale_apply_s=-1 must be >= 0
    """

    controller_window_s: float = _assumption(
        60.0, "How long CPU and connections are averaged before the controller acts: how long an overload must "
        "last before a scale-up is requested. One CloudWatch period; AWS gives no number.")
    controller_period_s: float = _assumption(
        5.0, "How often the controller evaluates its window. Must divide controller_window_s.")
    scaling_point_poll_s: float = _assumption(
        5.0, "How often a pending capacity change looks for a scaling point ('every few seconds').")
    scaling_point_drain_s: float = _assumption(
        0.5, "A scaling point exists when no blocking operation is open and the queries in flight would drain "
        "within this many seconds while new ones wait.")
    scale_apply_s: float = _assumption(
        3.0, "How long the switch to the new capacity holds new queries once a scaling point is found. 3P "
        "reports 30-60 s from trigger to new capacity, most of which is the window and the search here.")
    rollback_s_per_transaction_s: float = _assumption(
        0.5, "Under ForceApplyCapacityChange, seconds of rollback per second of an aborted transaction's age; the "
        "longest rollback delays the change (the seed: 'you must complete a proper rollback first'). AWS gives no "
        "number. InnoDB undoes row by row, so a write-heavy transaction can take as long to roll back as it ran "
        "(or longer) and a read-only one almost nothing: 0.5 is a middle value. PostgreSQL aborts almost at once: "
        "set 0 to model that.")
    pause_transition_s: float = _assumption(
        60.0, "Time from pause_started to paused; a connection request in between cancels the pause. "
        "3P v-studios/scale-to-zero: pausing took about 1 min at event granularity.")
    resume_median_s: float = _assumption(
        facts.MEASURED_RESUME_S["median"], "Median cold start, calibrated on 113 measured resumes (3P).")
    resume_p95_s: float = _assumption(
        facts.MEASURED_RESUME_S["p95"], "95th-percentile cold start of the same measurements; sets the "
        "lognormal spread.")
    resume_min_s: float = _assumption(
        facts.MEASURED_RESUME_S["min"], "Shortest resume drawn: the lognormal is truncated to the measured range.")
    resume_max_s: float = _assumption(
        facts.MEASURED_RESUME_S["max"], "Longest resume drawn: keeps the tail bounded (7 of 145 measured calls "
        "hit a 120 s client cap, treated as outliers).")
    query_cost_cv: float = _assumption(
        1.0, "Coefficient of variation of a request's CPU cost (gamma distribution with the workload's mean; "
        "1 = exponential, 0 = every request costs exactly the mean).")
    long_query_acu: float = _assumption(
        0.25, "ACUs of CPU a LongQuery uses while it runs (one busy core); long transactions, temporary tables, "
        "table locks and idle connections use none.")

    connect_latency_s: float = _assumption(
        0.02, "Time to open a connection (TCP, TLS and authentication round trips within a region).")
    connect_cpu_acu_s: float = _assumption(
        0.005, "Server CPU one new connection costs (TLS handshake, authentication, session set-up), ACU-seconds.")
    round_trip_s: float = _assumption(
        0.001, "One client-server round trip, what a pool's pre-ping costs.")

    v2_target_utilization_pct: float = _assumption(
        facts.SCALE_UP_CPU_PCT, "Aurora Serverless v2 publishes no thresholds: the model keeps its CPU at or below "
        "this share of capacity, v1's documented 70 % scale-up threshold reused.")
    v2_scale_up_factor: float = _assumption(
        2.0, "How much a v2 instance may grow per controller period (at least 0.5 ACU): AWS says only 'the larger "
        "the current capacity, the larger the scaling increment'.")
    v2_scale_down_factor: float = _assumption(
        0.9, "The share of its capacity a v2 instance keeps per controller period when scaling down (at least "
        "0.5 ACU less): scaling down is gradual; AWS gives no rate.")
    v2_scale_down_window_s: float = _assumption(
        60.0, "A v2 instance scales down only when the busiest controller period of this window fits the smaller "
        "capacity, so a brief lull does not shed capacity.")
    v2_resume_s: float = _assumption(
        float(facts.V2_RESUME_UP_TO_S), "How long a paused v2 instance takes to resume: AWS says it 'can take up to "
        "15 seconds'; the model uses that bound for every resume.")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _check_positive(f.name, value, allow_zero=f.name in _MAY_BE_ZERO)
            low, high, unit = ALLOWED[f.name]
            _check_range(f.name, value, low, high, unit=unit)
        _check_order("resume_min_s", self.resume_min_s, "resume_median_s", self.resume_median_s)
        _check_order("resume_median_s", self.resume_median_s, "resume_p95_s", self.resume_p95_s)
        _check_order("resume_p95_s", self.resume_p95_s, "resume_max_s", self.resume_max_s)
        periods = self.controller_window_s / self.controller_period_s
        if abs(periods - round(periods)) > 1e-9:
            msg = (f"controller_window_s={self.controller_window_s!r} must be a whole multiple of "
                   f"controller_period_s={self.controller_period_s!r}")
            raise ValueError(msg)

    @classmethod
    def describe(cls) -> list[tuple[str, float, str]]:
        """Every assumption as ``(name, default, why)``, in declaration order."""
        return [(f.name, f.default, f.metadata["why"]) for f in fields(cls)]

    @classmethod
    def table(cls) -> pd.DataFrame:
        """Every assumption on one row with its default and why: ``describe()`` as a table a notebook shows whole.

        Example:
            >>> ModelAssumptions.table().loc["controller_window_s", "default"]
            '60'
        """
        from ._tables import WholeTable

        rows = {name: (f"{default:g}", f"{ALLOWED[name][0]:g}..{ALLOWED[name][1]:g}", why)
                for name, default, why in cls.describe()}
        return WholeTable.from_dict(rows, orient="index", columns=["default", "allowed", "why"]).rename_axis(
            "assumption")


_MAY_BE_ZERO = {"scale_apply_s", "pause_transition_s", "query_cost_cv", "long_query_acu", "scaling_point_drain_s",
                "rollback_s_per_transaction_s", "v2_scale_down_factor", "v2_resume_s"}
# The MySQL manual: rolling back a big transaction can take "several times as long to perform as the original data
# change operations". Ten times bounds "several" generously.
MAX_ROLLBACK_RATIO = 10.0
# Beyond 10 a gamma with the workload's mean puts nearly all the work in a few requests per million: model those
# as LongQuery instead.
MAX_QUERY_COST_CV = 10.0
_SECONDS = "seconds"
# What each assumption may be set to: wide enough for any experiment a learner means, narrow enough that no value
# makes a run spin (a 1e-4 s controller period is 50,000 simpy steps per simulated second). A period or poll finer
# than CloudWatch's 1-second resolution means nothing here. docs/model-assumptions.md lists the same ranges.
ALLOWED = MappingProxyType({
    "controller_window_s": (1, 3600, _SECONDS),
    "controller_period_s": (1, 3600, _SECONDS),
    "scaling_point_poll_s": (1, 600, _SECONDS),
    "scaling_point_drain_s": (0, 60, _SECONDS),
    "scale_apply_s": (0, 600, _SECONDS),
    "rollback_s_per_transaction_s": (0, MAX_ROLLBACK_RATIO, "seconds of rollback per second of transaction"),
    "pause_transition_s": (0, 3600, _SECONDS),
    "resume_median_s": (0, 3600, _SECONDS),
    "resume_p95_s": (0, 3600, _SECONDS),
    "resume_min_s": (0, 3600, _SECONDS),
    "resume_max_s": (0, 3600, _SECONDS),
    "query_cost_cv": (0, MAX_QUERY_COST_CV, "coefficient of variation"),
    "long_query_acu": (0, max(max(ladder) for ladder in facts.CAPACITY_LADDER.values()), "ACUs"),
    "connect_latency_s": (0, 60, _SECONDS),
    "connect_cpu_acu_s": (0, 60, "ACU-seconds"),
    "round_trip_s": (0, 10, _SECONDS),
    "v2_target_utilization_pct": (1, 100, "percent"),
    "v2_scale_up_factor": (1, 16, "times the capacity per controller period"),
    "v2_scale_down_factor": (0, 1, "share of the capacity kept per controller period"),
    "v2_scale_down_window_s": (1, 3600, _SECONDS),
    "v2_resume_s": (0, 3600, _SECONDS),
})
