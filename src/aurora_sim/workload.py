"""What the applications ask of the cluster: request rates over time and the blocking operations.

A ``Workload`` is a list of ``(start_s, end_s, requests_per_second)`` segments plus operations that
hold a connection for a while: ``LongTransaction``, ``LongQuery``, ``TemporaryTable`` and ``TableLock``
block scaling points; ``IdleConnection`` (a monitoring agent, a pool's spare connection) only keeps
the cluster awake.

Example:
    >>> wl = Workload(segments=[(0, 600, 5.0), (600, 1800, 120.0)],
    ...               blocking=[LongTransaction(start_s=700, duration_s=900)])
    >>> wl.expected_requests
    147000.0
    >>> Workload(segments=[(60, 30, 1.0)])
    Traceback (most recent call last):
    ...
    ValueError: segments[0]=(60, 30, 1.0) must have start_s < end_s
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._validate import _check_choice, _check_positive, _check_range, _check_type
from .clients import CONNECTION_STRATEGIES, ConnectionPool, ConnectPerRequest, DataApi, RetryPolicy

ARRIVAL_PATTERNS = ("poisson", "regular")
# A request is a statement: one that needs more than an hour of one ACU is a LongQuery (a blocking operation). The
# bound keeps a run's backlog finite: a mean of 1e6 ACU-seconds would leave requests in flight for weeks.
MAX_QUERY_CPU_S = 3600.0
MAX_PIECES = 1000  # LongTransaction.split: more pieces than this is no longer one transaction narrowed


@dataclass(frozen=True, kw_only=True)
class _HeldConnection:
    """An operation that opens one connection at ``start_s`` and holds it for ``duration_s``."""

    start_s: float
    duration_s: float
    blocks_scaling: ClassVar[bool] = True
    uses_cpu: ClassVar[bool] = False
    # What forced scaling does to it: "abort" the transaction/query, or "drop" the connection.
    on_force: ClassVar[str] = "abort"
    holds: ClassVar[str] = "an open transaction"

    def __post_init__(self) -> None:
        _check_positive("start_s", self.start_s, allow_zero=True)
        _check_positive("duration_s", self.duration_s)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, kw_only=True)
class LongTransaction(_HeldConnection):
    """An open transaction (``BEGIN`` … ``COMMIT``): blocks every scaling point while open; uses no CPU.

    Between its statements the session is idle in transaction, which PostgreSQL's
    ``idle_in_transaction_session_timeout`` ends.
    """

    def split(self, pieces: int, gap_s: float) -> tuple[LongTransaction, ...]:
        """The same work as ``pieces`` short transactions with ``gap_s`` between them ("narrow the transaction").

        Example:
            >>> [t.start_s for t in LongTransaction(start_s=0, duration_s=600).split(3, gap_s=30)]
            [0.0, 230.0, 460.0]
        """
        _check_type("pieces", pieces, int, "a whole number")
        if pieces < 1:
            raise ValueError(f"pieces={pieces!r} must be >= 1")
        if pieces > MAX_PIECES:
            raise ValueError(f"pieces={pieces!r} must be <= {MAX_PIECES}")
        _check_positive("gap_s", gap_s, allow_zero=True)
        each = self.duration_s / pieces
        return tuple(LongTransaction(start_s=float(self.start_s + k * (each + gap_s)), duration_s=each)
                     for k in range(pieces))


@dataclass(frozen=True, kw_only=True)
class LongQuery(_HeldConnection):
    """A long-running statement: blocks scaling points and uses ``ModelAssumptions.long_query_acu`` of CPU.

    ``internal_temp_table``: the engine builds an internal temporary table for it (UNION, view, derived table,
    CTE); it blocks scaling for the query's life either way. It is a top-level read-only SELECT, so MySQL's
    ``max_execution_time`` and PostgreSQL's ``statement_timeout`` cancel it.
    """

    internal_temp_table: bool = True
    uses_cpu: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_type("internal_temp_table", self.internal_temp_table, bool, "True or False")


@dataclass(frozen=True, kw_only=True)
class TemporaryTable(_HeldConnection):
    """A session holding a temporary table: blocks scaling points; forced scaling drops its connection."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "a temporary table"


@dataclass(frozen=True, kw_only=True)
class TableLock(_HeldConnection):
    """A session holding ``LOCK TABLES``: blocks scaling points; forced scaling drops its connection."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "a table lock"


@dataclass(frozen=True, kw_only=True)
class AdvisoryLock(_HeldConnection):
    """PostgreSQL only: a session-level advisory lock (``pg_advisory_lock``): blocks scaling points."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "an advisory lock"


@dataclass(frozen=True, kw_only=True)
class Listen(_HeldConnection):
    """PostgreSQL only: a session that ran ``LISTEN``: blocks scaling points while it listens."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "a LISTEN registration"


@dataclass(frozen=True, kw_only=True)
class Notify(_HeldConnection):
    """PostgreSQL only: a session sending ``NOTIFY`` ("NOTIFY commands prevent scaling"): blocks scaling points."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "a pending NOTIFY"


@dataclass(frozen=True, kw_only=True)
class HoldCursor(_HeldConnection):
    """PostgreSQL only: an open ``CURSOR WITH HOLD``: blocks scaling points while it is open."""

    on_force: ClassVar[str] = "drop"
    holds: ClassVar[str] = "a cursor WITH HOLD"


@dataclass(frozen=True, kw_only=True)
class IdleConnection(_HeldConnection):
    """An open but idle connection (a monitoring agent): never blocks scaling, but keeps the cluster awake."""

    blocks_scaling: ClassVar[bool] = False
    on_force: ClassVar[str] = "keep"


BLOCKING_KINDS = (LongTransaction, LongQuery, TemporaryTable, TableLock, AdvisoryLock, Listen, Notify, HoldCursor,
                  IdleConnection)


def _check_segments(segments: object) -> tuple[tuple[float, float, float], ...]:
    _check_type("segments", segments, (list, tuple), "a list of (start_s, end_s, requests_per_second)")
    if not segments:
        msg = ("segments=() is empty: give at least one (start_s, end_s, requests_per_second), "
               "e.g. (0, 3600, 0.0) for an idle hour")
        raise ValueError(msg)
    checked = []
    previous_end = 0.0
    for i, segment in enumerate(segments):
        name = f"segments[{i}]"
        if not isinstance(segment, (list, tuple)) or len(segment) != 3:
            raise ValueError(f"{name}={segment!r} must be a (start_s, end_s, requests_per_second) triple")
        start_s, end_s, rate = segment
        for part, value in (("start_s", start_s), ("end_s", end_s), ("requests_per_second", rate)):
            _check_positive(f"{name}.{part}", value, allow_zero=True)
        if start_s >= end_s:
            raise ValueError(f"{name}={tuple(segment)!r} must have start_s < end_s")
        if start_s < previous_end:
            msg = f"{name}={tuple(segment)!r} starts before the previous segment ends at {previous_end!r}"
            raise ValueError(msg)
        previous_end = end_s
        checked.append((start_s, end_s, rate))
    return tuple(checked)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Request segments (in time order, not overlapping), arrival pattern, mean CPU cost, blocking operations.

    ``arrivals="poisson"`` draws random arrivals at each segment's rate; ``"regular"`` spaces them evenly
    from each segment's start. ``query_cpu_s`` is the mean ACU-seconds of CPU one request costs.
    """

    segments: tuple[tuple[float, float, float], ...]
    arrivals: str = "poisson"
    query_cpu_s: float = 0.02
    blocking: tuple[_HeldConnection, ...] = ()
    connections: ConnectPerRequest | ConnectionPool | DataApi | None = None
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", _check_segments(self.segments))
        _check_choice("arrivals", self.arrivals, ARRIVAL_PATTERNS)
        _check_positive("query_cpu_s", self.query_cpu_s)
        _check_range("query_cpu_s", self.query_cpu_s, 0, MAX_QUERY_CPU_S,
                     unit="mean ACU-seconds per request; model a longer statement as a LongQuery")
        _check_type("blocking", self.blocking, (list, tuple), "a list of blocking operations")
        for i, op in enumerate(self.blocking):
            if not isinstance(op, BLOCKING_KINDS):
                names = ", ".join(kind.__name__ for kind in BLOCKING_KINDS)
                raise ValueError(f"blocking[{i}]={op!r} must be one of {names}")
        object.__setattr__(self, "blocking", tuple(self.blocking))
        if self.connections is not None and not isinstance(self.connections, CONNECTION_STRATEGIES):
            names = ", ".join(kind.__name__ for kind in CONNECTION_STRATEGIES)
            raise ValueError(f"connections={self.connections!r} must be None or one of {names}")
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry={self.retry!r} must be None or a RetryPolicy")

    @property
    def tracked(self) -> bool:
        """Simulated request by request (a connection strategy or a retry policy is set)."""
        return self.connections is not None or self.retry is not None

    @property
    def expected_requests(self) -> float:
        """Σ rate × duration over the segments."""
        return sum((end - start) * rate for start, end, rate in self.segments)

    @property
    def end_s(self) -> float:
        """When the last segment ends."""
        return self.segments[-1][1]

    def rate_at(self, time_s: float) -> float:
        """The requests per second asked for at ``time_s`` (0 between segments)."""
        for start, end, rate in self.segments:
            if start <= time_s < end:
                return rate
        return 0.0
