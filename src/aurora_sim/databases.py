"""Several databases on one cluster: each keeps its own workload, and the cluster serves them all.

``simulate(config, {"shop": shop, "reports": reports}, ...)`` draws each database's arrivals and query costs
from its own random streams (keyed by the database's name, so adding a database never reshuffles another's
draws), then hands the cluster one merged stream of requests and every database's blocking operations. The
databases share what one cluster has only once: CPU, ``max_connections``, scaling points and pauses. The
``requests`` and ``events`` tables carry each row's ``database``.

Example:
    >>> from aurora_sim.workload import LongTransaction, Workload
    >>> merged = merge_workloads({"shop": Workload(segments=[(0, 60, 2.0)]),
    ...                           "reports": Workload(segments=[(30, 90, 1.0)],
    ...                                               blocking=[LongTransaction(start_s=10, duration_s=5)])})
    >>> merged.workload.segments
    ((0, 30, 2.0), (30, 60, 3.0), (60, 90, 1.0))
    >>> merged.names, merged.blocker_databases
    (('shop', 'reports'), ('reports',))
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .workload import Workload

MAX_DATABASES = 64  # a v1 cluster has no documented limit; a learner's plan needs a handful


@dataclass(frozen=True)
class MergedWorkloads:
    """What the cluster sees of several databases: one workload, and which database each blocking operation is."""

    names: tuple[str, ...]
    workload: Workload
    blocker_databases: tuple[str, ...]


def stream_key(name: str) -> int:
    """The database's own random substream: a checksum of its name, so draws follow the name, not the order.

    Example:
        >>> stream_key("shop") == stream_key("shop") != stream_key("reports")
        True
    """
    return zlib.crc32(name.encode())


def check_databases(workloads: object) -> dict[str, Workload]:
    """A mapping of database name → bulk ``Workload``; raises ValueError naming the bad entry."""
    if not isinstance(workloads, Mapping) or not workloads:
        raise ValueError(f"workload={workloads!r} must be a Workload or a non-empty dict of database name → Workload")
    if len(workloads) > MAX_DATABASES:
        raise ValueError(f"workload has {len(workloads)} databases; at most {MAX_DATABASES} per cluster here")
    for name, workload in workloads.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"database name {name!r} must be a non-empty string")
        if not isinstance(workload, Workload):
            raise ValueError(f"workload[{name!r}]={workload!r} must be a Workload")
        if workload.tracked:
            raise ValueError(f"workload[{name!r}] has a connection strategy or retry policy; a cluster of several "
                             "databases simulates bulk traffic only (connections=None, retry=None)")
    return dict(workloads)


def merge_workloads(workloads: Mapping[str, Workload]) -> MergedWorkloads:
    """One workload with the summed rates, the mean cost weighted by requests, and every blocking operation."""
    checked = check_databases(workloads)
    bounds = sorted({t for wl in checked.values() for start, end, _ in wl.segments for t in (start, end)})
    segments = [(a, b, sum(wl.rate_at(a) for wl in checked.values())) for a, b in itertools.pairwise(bounds)]
    expected = [wl.expected_requests for wl in checked.values()]
    costs = [wl.query_cpu_s for wl in checked.values()]
    mean_cost = float(np.average(costs, weights=expected)) if sum(expected) > 0 else max(costs)
    blocking = tuple(op for wl in checked.values() for op in wl.blocking)
    owners = tuple(name for name, wl in checked.items() for _ in wl.blocking)
    merged = Workload(segments=segments, query_cpu_s=mean_cost, blocking=blocking)
    return MergedWorkloads(names=tuple(checked), workload=merged, blocker_databases=owners)


def interleave(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each database's (arrivals, costs) merged in arrival order, with each request's database code.

    Example:
        >>> arrival, cost, code = interleave([(np.array([1.0, 3.0]), np.array([0.1, 0.3])),
        ...                                   (np.array([2.0]), np.array([0.2]))])
        >>> arrival.tolist(), code.tolist()
        ([1.0, 2.0, 3.0], [0, 1, 0])
    """
    arrival = np.concatenate([a for a, _ in parts])
    cost = np.concatenate([c for _, c in parts])
    code = np.concatenate([np.full(len(a), k, dtype=np.int8) for k, (a, _) in enumerate(parts)])
    order = np.argsort(arrival, kind="stable")  # stable: equal times keep the databases' order
    return arrival[order], cost[order], code[order]


@dataclass(frozen=True, eq=False)
class DatabaseTags:
    """Which database each pre-drawn request and each blocking operation belongs to (for the event log)."""

    names: tuple[str, ...]
    request_code: np.ndarray
    blocker_databases: tuple[str, ...]

    def of_request(self, request: int) -> str | None:
        """The database of pre-drawn request ``request`` (tracked tickets, ids < 0, have none)."""
        return self.names[self.request_code[request]] if 0 <= request < len(self.request_code) else None

    def of_blocker(self, index: int) -> str | None:
        """The database of blocking operation ``index`` of the merged workload."""
        return self.blocker_databases[index] if index < len(self.blocker_databases) else None
