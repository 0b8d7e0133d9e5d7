"""Faults a run can inject: the DB instance fails, or its Availability Zone goes down (notebook 09).

An Aurora Serverless v1 cluster runs on one DB instance in one Availability Zone; its storage lives apart from
the instance, spread across zones, and no fault here touches it. ``InstanceFailure`` loses the instance and
replaces it from the warm pool; ``AzOutage`` loses it with its zone and recreates it in another zone, "best effort
only, subject to capacity availability": it may first wait for capacity. Both are ``ClusterAction`` objects for
``simulate(..., actions=[...])``.

While the instance is gone (state ``failing_over``): every query in flight and every open transaction is lost
(one ``transaction_aborted`` each, with the client's lost-connection error), every connection dies (a pool keeps
the dead ones until it checks them), and a new connection is refused with the client's can't-connect error. Then
the endpoint's DNS moves to the new instance (``endpoint_moved``) and the cluster is back at the same capacity
(``failover_completed``); clients that resolve the endpoint reach the new address a DNS TTL later.

AWS publishes no failover time for v1 (``facts.FAILOVER_TIME_QUOTE``): every duration is a named assumption of
``FaultAssumptions``, with its reason.

Example:
    >>> from aurora_sim import ClusterConfig, ConnectionPool, RetryPolicy, Workload, simulate
    >>> shop = Workload(segments=[(0, 300, 2.0)], connections=ConnectionPool(pre_ping=True),
    ...                 retry=RetryPolicy("full_jitter", max_attempts=10, base_s=1, cap_s=10))
    >>> run = simulate(ClusterConfig(auto_pause=False), shop, duration_s=300, seed=1,
    ...                actions=[InstanceFailure(at_s=100)])
    >>> [kind for (kind,) in run.sql("SELECT DISTINCT kind FROM events WHERE kind LIKE '%fail%' OR "
    ...                              "kind = 'endpoint_moved' ORDER BY kind").fetchall()]
    ['endpoint_moved', 'failover_completed', 'failover_started', 'instance_failed']
    >>> int(losses(run).loc[0, "committed lost"])
    0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import pandas as pd

from . import facts
from ._validate import _check_positive, _check_range, _check_type
from .actions import ClusterAction
from .config import ModelAssumptions
from .names import (
    ENDPOINT_MOVED,
    FAILING_OVER,
    FAILOVER_COMPLETED,
    FAILOVER_STARTED,
    INSTANCE_FAILED,
    OK,
    PAUSED,
    RESUMING,
    SCALING,
    TRANSACTION_ABORTED,
)

if TYPE_CHECKING:
    from .cluster import Cluster
    from .simulation import Run

_SECONDS = "seconds"
MAX_FAULT_S = 86_400.0  # no step of a fault lasts more than a day: an experiment, not a hang


def _assumption(default: float, why: str, allowed: tuple[float, float]) -> float:
    return field(default=default, metadata={"why": why, "allowed": allowed})


@dataclass(frozen=True, kw_only=True)
class FaultAssumptions:
    """How long each step of a fault takes: AWS publishes none of these for v1, so each is named and explained.

    Example:
        >>> FaultAssumptions().replace_s
        45.0
        >>> FaultAssumptions(detect_s=-1)
        Traceback (most recent call last):
        ...
        ValueError: detect_s=-1 must be >= 0
    """

    detect_s: float = _assumption(
        15.0, "From the instance failing to the service starting its replacement (health checks notice it). AWS "
        "gives no number; a few missed checks of a few seconds each.", (0, MAX_FAULT_S))
    replace_s: float = _assumption(
        45.0, "Bringing an instance from the warm pool, attaching it to the cluster's storage and starting the "
        "engine. A resume does the same work: its measured median is 43.2 s (3P), rounded up here.",
        (0, MAX_FAULT_S))
    capacity_wait_s: float = _assumption(
        120.0, "AZ outage only: how long the recreation waits for capacity in another Availability Zone. AWS: "
        "'failover time is undefined because it depends on demand and capacity availability'. A placeholder: "
        "try 0 and 900.", (0, MAX_FAULT_S))
    dns_ttl_s: float = _assumption(
        5.0, "How long a client that resolves the endpoint still reaches the old address after the endpoint moves. "
        "An AWS Database Blog post gives Aurora endpoints a 5-second TTL (provisioned clusters; a JVM or OS cache "
        "can hold it longer).", (0, 3600))
    dns_scan_s: float = _assumption(
        0.25, "What each new connection pays when the driver scans DNS for failover targets (MariaDB Connector/J "
        "without the aurora prefix); the jdbc:mariadb:aurora// prefix skips the scan. AWS gives no number.",
        (0, 60))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            _check_positive(f.name, value, allow_zero=True)
            low, high = f.metadata["allowed"]
            _check_range(f.name, value, low, high, unit=_SECONDS)

    @classmethod
    def table(cls) -> pd.DataFrame:
        """Every fault assumption with its default, the range allowed and why (like ``ModelAssumptions.table``).

        Example:
            >>> FaultAssumptions.table().loc["dns_ttl_s", "default"]
            '5'
        """
        from ._tables import WholeTable

        rows = {f.name: (f"{f.default:g}", f"{f.metadata['allowed'][0]:g}..{f.metadata['allowed'][1]:g}",
                         f.metadata["why"]) for f in fields(cls)}
        return WholeTable.from_dict(rows, orient="index", columns=["default", "allowed", "why"]).rename_axis(
            "assumption")


DISCOVERY = ("dns scan", "aurora prefix")  # how a MariaDB Connector/J client finds the instance


def connect_assumptions(discovery: str, *, base: ModelAssumptions | None = None,
                        faults: FaultAssumptions | None = None) -> ModelAssumptions:
    """The model assumptions of a client whose driver finds the instance by ``discovery``: a DNS scan adds
    ``dns_scan_s`` to every new connection (``connect_latency_s``); the aurora prefix adds nothing.

    Example:
        >>> connect_assumptions("dns scan").connect_latency_s, connect_assumptions("aurora prefix").connect_latency_s
        (0.27, 0.02)
    """
    if discovery not in DISCOVERY:
        raise ValueError(f"discovery={discovery!r} must be one of {DISCOVERY}")
    base = base or ModelAssumptions()
    extra = (faults or FaultAssumptions()).dns_scan_s if discovery == "dns scan" else 0.0
    return dataclasses.replace(base, connect_latency_s=round(base.connect_latency_s + extra, 9))


@dataclass(frozen=True, kw_only=True)
class InstanceFailure(ClusterAction):
    """At ``at_s`` the cluster's DB instance fails; after ``detect_s`` a replacement comes from the warm pool,
    ``replace_s`` later it serves (same capacity, same storage).

    Example:
        >>> InstanceFailure(at_s=600).outage_s
        60.0
    """

    assumptions: FaultAssumptions = field(default_factory=FaultAssumptions)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_type("assumptions", self.assumptions, FaultAssumptions, "a FaultAssumptions")

    @property
    def outage_s(self) -> float:
        """Seconds without a DB instance, from the failure to the new instance serving."""
        return self.assumptions.detect_s + self._wait_s() + self.assumptions.replace_s

    def _wait_s(self) -> float:
        return 0.0

    def _what_failed(self) -> str:
        return "The DB instance failed"

    def _how_replaced(self) -> str:
        return "Replacing the DB instance from the warm pool."

    def start(self, cluster: Cluster) -> None:
        cluster.env.process(self._story(cluster))

    def _story(self, cluster: Cluster):
        env = cluster.env
        yield env.timeout(max(0.0, self.at_s - env.now))
        yield from _until_it_can_fail(cluster)
        failed_s = env.now
        connections, transactions = cluster.lose_instance()
        cluster._emit(INSTANCE_FAILED, message=f"{self._what_failed()}: {connections} connections lost, "
                      f"{transactions} transactions in flight lost (never committed). Storage is unaffected.")
        yield env.timeout(self.assumptions.detect_s)
        cluster._emit(FAILOVER_STARTED, message=self._how_replaced())
        yield env.timeout(self._wait_s() + self.assumptions.replace_s)
        cluster.restore_instance(self.assumptions.dns_ttl_s)
        cluster._emit(ENDPOINT_MOVED, message=f"The cluster endpoint now resolves to the new DB instance (clients "
                      f"that cached the old address reach it {self.assumptions.dns_ttl_s:g} s later).")
        cluster._emit(FAILOVER_COMPLETED, cluster.capacity, cluster.capacity,
                      message=f"The DB cluster is available again, {env.now - failed_s:g} s after the failure, "
                      f"at {cluster.capacity} ACU.")


@dataclass(frozen=True, kw_only=True)
class AzOutage(InstanceFailure):
    """At ``at_s`` the Availability Zone of the cluster's instance goes down. v1 recreates the instance in another
    zone, best effort: after ``detect_s`` it waits ``capacity_wait_s`` (``None``: the assumption's default) for
    capacity there, then ``replace_s`` to serve.

    Example:
        >>> AzOutage(at_s=600).outage_s, AzOutage(at_s=600, capacity_wait_s=600).outage_s
        (180.0, 660.0)
    """

    capacity_wait_s: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.capacity_wait_s is not None:
            _check_positive("capacity_wait_s", self.capacity_wait_s, allow_zero=True)
            _check_range("capacity_wait_s", self.capacity_wait_s, 0, MAX_FAULT_S, unit=_SECONDS)

    def _wait_s(self) -> float:
        return self.assumptions.capacity_wait_s if self.capacity_wait_s is None else self.capacity_wait_s

    def _what_failed(self) -> str:
        return "The Availability Zone of the DB instance is down, and the instance with it"

    def _how_replaced(self) -> str:
        return (f"Recreating the DB instance in another Availability Zone: {facts.FAILOVER_BEST_EFFORT_QUOTE} "
                f"(waiting {self._wait_s():g} s for capacity).")


def _until_it_can_fail(cluster: Cluster):
    """Wait until the cluster is active and steady: a fault during a pause, a resume, a capacity change or
    another failover waits for it to end (a model simplification)."""
    while not cluster.can_fail():
        if cluster.state == SCALING:
            yield cluster.scaling_done
        elif cluster.state in (PAUSED, RESUMING, FAILING_OVER):
            yield cluster.awake
        else:  # pausing: the pause either completes (then wait for the resume) or is cancelled
            yield cluster.env.timeout(1.0)


# --- what a fault cost ----------------------------------------------------------------------------------------

def losses(run: Run) -> pd.DataFrame:
    """One row per fault of ``run``: when the instance failed and came back, what was lost, and what was not.

    ``transactions lost`` counts the statements and transactions in flight when the instance failed (never
    committed: their clients got an error); ``committed lost`` counts requests acknowledged as committed that the
    fault undid, which the model never does (storage is outside the fault) — a figure to check, always 0;
    ``committed during outage`` counts acknowledgements while no instance existed (0 as well).
    ``requests failed`` are those submitted from the failure until 60 s after it ended that still ended in error
    after every retry: orders the user must place again.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 300, 2.0)]), duration_s=300,
        ...                actions=[InstanceFailure(at_s=100)])
        >>> row = losses(run).loc[0]
        >>> float(row["outage (s)"]), int(row["committed lost"]), int(row["transactions lost"]) >= 0
        (60.0, 0, True)
    """
    faults = run.sql(
        "SELECT f.time_s AS failed_s, (SELECT min(time_s) FROM events c WHERE c.kind = $2 AND c.time_s >= f.time_s) "
        "AS back_s FROM events f WHERE f.kind = $1 ORDER BY f.seq", params=[INSTANCE_FAILED, FAILOVER_COMPLETED]).df()
    rows = [_losses_row(run, float(failed_s), float(back_s)) for failed_s, back_s in
            zip(faults["failed_s"], faults["back_s"].fillna(run.duration_s), strict=True)]
    columns = ["failed at (s)", "back at (s)", "outage (s)", "connections lost", "transactions lost",
               "committed before", "committed during outage", "committed lost", "requests failed"]
    return pd.DataFrame(rows, columns=columns)


def _losses_row(run: Run, failed_s: float, back_s: float) -> list[object]:
    lost_text = facts.LOST_CONNECTION_ERROR[run.config.engine]
    transactions, message = run.sql(
        "SELECT count(*) FILTER (WHERE kind = $1 AND message = $2 AND time_s = $3), "
        "any_value(message) FILTER (WHERE kind = $4 AND time_s = $3) FROM events",
        params=[TRANSACTION_ABORTED, lost_text, failed_s, INSTANCE_FAILED]).fetchall()[0]
    before, during, failed = run.sql(
        "SELECT count(*) FILTER (WHERE outcome = $1 AND finished_s <= $2), "
        "count(*) FILTER (WHERE outcome = $1 AND finished_s > $2 AND finished_s < $3), "
        "count(*) FILTER (WHERE outcome <> $1 AND submitted_s >= $2 AND submitted_s < $3 + 60) FROM requests",
        params=[OK, failed_s, back_s]).fetchall()[0]
    connections = int(message.split(": ", 1)[1].split(" connections", 1)[0]) if message else 0
    return [failed_s, back_s, back_s - failed_s, connections, transactions, before, during, 0, failed]


def waits_beyond_outage(run: Run) -> pd.DataFrame:
    """How long each request waited beyond the outage: ``finished_s − max(submitted_s, back_s)`` for requests
    submitted before the cluster was back, and its plain latency for the others, per outcome, with the longest.

    Example:
        >>> from aurora_sim import ClusterConfig, Workload, simulate
        >>> run = simulate(ClusterConfig(auto_pause=False), Workload(segments=[(0, 300, 2.0)]), duration_s=300,
        ...                actions=[InstanceFailure(at_s=100)])
        >>> float(waits_beyond_outage(run).loc["ok", "longest wait beyond the outage (s)"]) < 1
        True
    """
    back = run.sql("SELECT coalesce(max(time_s), 0) FROM events WHERE kind = $1",
                   params=[FAILOVER_COMPLETED]).fetchall()[0][0]
    return run.sql(
        "SELECT outcome, count(*) AS requests, round(max(finished_s - greatest(submitted_s, $1)), 2) AS "
        "\"longest wait beyond the outage (s)\", round(max(latency_s), 2) AS \"longest latency (s)\" FROM requests "
        "GROUP BY outcome ORDER BY outcome DESC", params=[back]).df().set_index("outcome")


def longest_wait_beyond_outage_s(run: Run) -> float:
    """The longest any request waited beyond the outage (see ``waits_beyond_outage``), whatever its outcome."""
    back = run.sql("SELECT coalesce(max(time_s), 0) FROM events WHERE kind = $1",
                   params=[FAILOVER_COMPLETED]).fetchall()[0][0]
    return float(run.sql("SELECT coalesce(max(finished_s - greatest(submitted_s, $1)), 0) FROM requests",
                         params=[back]).fetchall()[0][0])
