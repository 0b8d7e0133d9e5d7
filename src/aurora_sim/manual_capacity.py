"""The RDS API's manual capacity change of a v1 cluster, ``ModifyCurrentDBClusterCapacity``, as a scheduled action.

The seed's second pre-warming route (beside a scheduled connection, notebook 03): set the capacity yourself a
few minutes before a known peak. The call takes any value of the engine's ladder, not one step at a time, and
looks for a scaling point like autoscaling does — but with its own timeout (``SecondsBeforeTimeout``, 10–600 s,
default 300) and its own default action, ``ForceApplyCapacityChange`` (the API reference: "the default"), where
autoscaling defaults to rolling back. A paused cluster resumes first ("When you change the capacity of a paused
Aurora Serverless v1 DB cluster, it automatically resumes"). Afterwards autoscaling carries on with its
cooldowns, so a scale-down waits 15 minutes after a manual scale-up.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> run = simulate(ClusterConfig(max_capacity=8), Workload(segments=[(0, 900, 1.0)]), duration_s=900,
    ...                actions=[ModifyCurrentDBClusterCapacity(at_s=60, capacity=8)])
    >>> run.sql("SELECT kind, rds_event_id, capacity_to FROM events WHERE kind LIKE 'scale%' ORDER BY seq"
    ...         ).fetchall()
    [('scale_started', 'RDS-EVENT-0141', 8), ('scale_completed', 'RDS-EVENT-0142', 8)]
    >>> ModifyCurrentDBClusterCapacity(at_s=60, capacity=8, seconds_before_timeout=5)
    Traceback (most recent call last):
    ...
    ValueError: seconds_before_timeout=5 is outside 10..600 (seconds, ModifyCurrentDBClusterCapacity)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import facts, scaling
from ._validate import _check_choice, _check_range, _check_type
from .actions import ClusterAction
from .config import ClusterConfig
from .names import ACTIVE, SCALING

if TYPE_CHECKING:
    from .cluster import Cluster

MANUAL_REASON = "ModifyCurrentDBClusterCapacity: capacity set by an API call"


@dataclass(frozen=True, kw_only=True)
class ModifyCurrentDBClusterCapacity(ClusterAction):
    """At ``at_s``, ask a v1 cluster for ``capacity`` ACUs (any value of its engine's ladder).

    Example:
        >>> ModifyCurrentDBClusterCapacity(at_s=0, capacity=4).timeout_action
        'ForceApplyCapacityChange'
    """

    capacity: int
    seconds_before_timeout: int = facts.MANUAL_DEFAULT_SECONDS_BEFORE_TIMEOUT_S
    timeout_action: str = facts.MANUAL_DEFAULT_TIMEOUT_ACTION

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_type("capacity", self.capacity, int, "an integer number of ACUs")
        _check_type("seconds_before_timeout", self.seconds_before_timeout, int, "a whole number of seconds")
        _check_range("seconds_before_timeout", self.seconds_before_timeout,
                     *facts.MANUAL_SECONDS_BEFORE_TIMEOUT_RANGE_S, unit="seconds, ModifyCurrentDBClusterCapacity")
        _check_choice("timeout_action", self.timeout_action, facts.TIMEOUT_ACTIONS)

    def validate(self, config: object, duration_s: float) -> None:
        """Only a v1 cluster takes the call ("This operation only applies to Aurora Serverless v1 DB clusters"),
        and only a value of its engine's ladder."""
        super().validate(config, duration_s)
        if not isinstance(config, ClusterConfig):
            msg = (f"ModifyCurrentDBClusterCapacity applies only to Aurora Serverless v1 clusters (a ClusterConfig), "
                   f"not a {type(config).__name__}")
            raise ValueError(msg)
        ladder = facts.CAPACITY_LADDER[config.engine]
        if self.capacity not in ladder:
            raise ValueError(f"capacity={self.capacity!r} is not on the {config.engine} ladder {ladder}")

    def start(self, cluster: Cluster) -> None:
        cluster.env.process(self._change(cluster))

    def _change(self, cluster: Cluster):
        yield cluster.env.timeout(max(0.0, self.at_s - cluster.env.now))
        woke = yield from _wait_until_active(cluster)
        if cluster.capacity != self.capacity:
            decision = scaling.Decision(self.capacity, MANUAL_REASON)
            yield from cluster._change_capacity(decision, self.seconds_before_timeout, self.timeout_action)
        if woke:
            _restart_idle_clock(cluster)


def _wait_until_active(cluster: Cluster):
    """Wake a paused (or pausing) cluster and wait for it; let a capacity change in progress end first. Returns
    whether the call had to wake the cluster."""
    woke = False
    while cluster.state != ACTIVE or cluster._pausing:
        if cluster.state == SCALING:
            yield cluster._scaling_done
            continue
        cluster.request_connection()  # cancels a pause in progress, or starts the resume of a paused cluster
        _restart_idle_clock(cluster)
        woke = True
        yield cluster.env.timeout(0) if cluster.state == ACTIVE else cluster.awake
    return woke


def _restart_idle_clock(cluster: Cluster) -> None:
    """The call asks for the cluster like a connection request, but holds no connection: the idle clock restarts
    now, as when a connection closes (so the cluster can pause again ``seconds_until_auto_pause`` later)."""
    cluster._last_blocker_close_s = max(cluster._last_blocker_close_s, cluster.env.now)
