"""Notebook 01 on a real PostgreSQL: what a connection costs, and a pool's hygiene."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from .._tables import WholeTable
from .startup import _CONNECT_KWARGS, CONNECT_TIMEOUT_S, _first_line

# ---------------------------------------------------------------- notebook 01: what a connection costs


@dataclass(frozen=True)
class ConnectCost:
    """Milliseconds per `SELECT 1`: opening and closing a connection each time vs borrowing one from a pool.

    Example:
        >>> ConnectCost(samples=300, connect_median_ms=4.0, connect_p95_ms=6.0, pool_median_ms=0.1, pool_p95_ms=0.2)
        ConnectCost(samples=300, connect 4.00 ms vs pool 0.10 ms median: 40x)
    """

    samples: int
    connect_median_ms: float
    connect_p95_ms: float
    pool_median_ms: float
    pool_p95_ms: float

    @property
    def speedup(self) -> float:
        """How many times faster the pool is, by median."""
        return self.connect_median_ms / self.pool_median_ms

    def __repr__(self) -> str:
        return (f"ConnectCost(samples={self.samples}, connect {self.connect_median_ms:.2f} ms vs pool "
                f"{self.pool_median_ms:.2f} ms median: {self.speedup:.0f}x)")

    def table(self) -> pd.DataFrame:
        """Milliseconds per `SELECT 1`, one row per method, as a notebook shows them.

        Example:
            >>> cost = ConnectCost(samples=300, connect_median_ms=4.0, connect_p95_ms=6.0, pool_median_ms=0.1,
            ...                    pool_p95_ms=0.2)
            >>> cost.table().loc["borrowed from a pool"].tolist()
            [0.1, 0.2]
        """
        return pd.DataFrame({"median (ms)": [self.connect_median_ms, self.pool_median_ms],
                             "p95 (ms)": [self.connect_p95_ms, self.pool_p95_ms]},
                            index=pd.Index(["new connection per query", "borrowed from a pool"],
                                           name=f"SELECT 1, {self.samples} times each")).round(2)


def _check_range(name: str, value: float, low: float, high: float, unit: str) -> None:
    """Raise ValueError naming the parameter, its value and the allowed range.

    Example:
        >>> _check_range("timeout_ms", 0, 1, 999, "milliseconds")
        Traceback (most recent call last):
        ValueError: timeout_ms=0 is outside 1..999 (milliseconds)
    """
    if not low <= value <= high:
        msg = f"{name}={value!r} is outside {low}..{high} ({unit})"
        raise ValueError(msg)


def _p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method).

    Example:
        >>> _p95([float(v) for v in range(1, 101)])
        95.05
    """
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def connect_cost(dsn: str, samples: int = 300) -> ConnectCost:
    """Time `SELECT 1` with a new connection per query against one borrowed from a pool (min 1, max 4).

    The connection here is a local Unix socket without TLS; to Aurora over the network a new connection also
    pays TCP and TLS round trips, so the gap is wider there.

    Raises:
        ValueError: If samples is outside 2..100000 (the message names the value).
    """
    _check_range("samples", samples, 2, 100_000, "queries per method")
    per_request, pooled = [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        with psycopg.connect(dsn, **_CONNECT_KWARGS) as conn:
            conn.execute("SELECT 1").fetchone()
        per_request.append((time.perf_counter() - t0) * 1000)
    with ConnectionPool(dsn, min_size=1, max_size=4, timeout=CONNECT_TIMEOUT_S, kwargs=dict(_CONNECT_KWARGS)) as pool:
        pool.wait(timeout=CONNECT_TIMEOUT_S)
        for _ in range(samples):
            t0 = time.perf_counter()
            with pool.connection() as conn:
                conn.execute("SELECT 1").fetchone()
            pooled.append((time.perf_counter() - t0) * 1000)
    return ConnectCost(samples=samples, connect_median_ms=statistics.median(per_request),
                       connect_p95_ms=_p95(per_request), pool_median_ms=statistics.median(pooled),
                       pool_p95_ms=_p95(pooled))


class Step(NamedTuple):
    """One line of a demonstration: what was done, and what happened."""

    step: str
    outcome: str


def steps_table(steps: Sequence[Step]) -> pd.DataFrame:
    """The steps of a demonstration, one row each, with their outcomes shown whole (error texts are long).

    Example:
        >>> steps_table([Step("borrow again", "backend pid 42: a new connection")]).loc["borrow again"].tolist()
        ['backend pid 42: a new connection']
    """
    return WholeTable([tuple(step) for step in steps], columns=["step", "what happened"]).set_index("step")


def describe_error(exc: BaseException) -> str:
    """`Class (SQLSTATE): first line of the message`, as a notebook prints it.

    Example:
        >>> describe_error(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"))
        'QueryCanceled (57014): canceling statement due to statement timeout'
    """
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" ({sqlstate})" if sqlstate else ""
    return f"{type(exc).__name__}{code}: {_first_line(exc)}"


def _pool(dsn: str, **options) -> ConnectionPool:
    pool = ConnectionPool(dsn, min_size=1, max_size=1, timeout=CONNECT_TIMEOUT_S, kwargs=dict(_CONNECT_KWARGS),
                          open=True, **options)
    pool.wait(timeout=CONNECT_TIMEOUT_S)
    return pool


def _terminate(dsn: str, pid: int) -> None:
    """End backend `pid` from another session, as a failover or an idle-timeout on the server would."""
    with psycopg.connect(dsn, autocommit=True, **_CONNECT_KWARGS) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):  # wait (at most 1 s) until it is gone
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            time.sleep(0.01)


@contextmanager
def _quiet_pool_log() -> Iterator[None]:
    """The pool logs a warning for each connection it discards; the steps already tell the story."""
    logger = logging.getLogger("psycopg.pool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def pool_hygiene_demo(dsn: str, max_lifetime_s: float = 1.0) -> list[Step]:
    """Four habits of a healthy pool, each shown on a real server; returns what was done and what happened.

    1. ``max_lifetime`` recycles connections (psycopg_pool enforces no minimum; it checks the age when a
       connection is returned, with up to 5 % jitter below the lifetime).
    2. A connection the server killed breaks the next query without a check ...
    3. ... and is replaced transparently with ``check=ConnectionPool.check_connection`` (a pre-ping).
    4. ``with pool.connection()`` returns the connection even when the block raises; a bare ``getconn()``
       leaks it, and the next caller waits for a ``PoolTimeout``.
    """
    _check_range("max_lifetime_s", max_lifetime_s, 0.1, 10, "seconds")
    steps = []
    with _quiet_pool_log():
        with _pool(dsn, max_lifetime=max_lifetime_s) as pool:
            with pool.connection() as conn:
                first = conn.info.backend_pid
                time.sleep(max_lifetime_s * 1.2)
            with pool.connection() as conn:
                second = conn.info.backend_pid
        steps.append(Step(f"max_lifetime={max_lifetime_s} s: borrow, hold {max_lifetime_s * 1.2:.2g} s, return",
                          f"backend pid {first}; the pool closed it on return (too old)"))
        steps.append(Step("borrow again", f"backend pid {second}: a new connection" if second != first
                          else f"backend pid {second}: the same connection (unexpected)"))
        for check in (None, ConnectionPool.check_connection):
            steps.append(_killed_connection_step(dsn, check))
        steps += _return_on_exception_steps(dsn)
    return steps


def _killed_connection_step(dsn: str, check: Callable | None) -> Step:
    label = "check=ConnectionPool.check_connection" if check else "no check"
    with _pool(dsn, check=check) as pool:
        with pool.connection() as conn:
            killed = conn.info.backend_pid
        _terminate(dsn, killed)
        try:
            with pool.connection() as conn:
                value = conn.execute("SELECT 1").fetchone()[0]
                pid = conn.info.backend_pid
        except psycopg.Error as exc:
            return Step(f"{label}: server ends the idle pooled connection (pid {killed}); next SELECT 1",
                        f"failed: {describe_error(exc)}")
        lost = pool.get_stats().get("connections_lost", 0)
    return Step(f"{label}: server ends the idle pooled connection (pid {killed}); next SELECT 1",
                f"returned {value} on backend pid {pid}; the check caught {lost} dead connection(s)")


def _return_on_exception_steps(dsn: str) -> list[Step]:
    steps = []
    with _pool(dsn) as pool:
        before = pool.get_stats()["pool_available"]
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
                during = pool.get_stats()["pool_available"]
                raise ValueError("a bug in the application code")
        except ValueError as exc:
            after = pool.get_stats()["pool_available"]
            steps.append(Step("`with pool.connection()`; the block raises",
                              f"ValueError: {exc}; idle connections before {before}, inside {during}, after {after}:"
                              " it went back (rolled back)"))
        leaked = pool.getconn()
        try:
            try:
                leaked.execute("SELECT 1")
                raise ValueError("a bug in the application code")
            except ValueError:
                pass  # ...and no putconn: the connection is leaked
            try:
                pool.getconn(timeout=0.1).close()  # nothing will come: no need to wait long
                outcome = "got a connection (unexpected)"
            except PoolTimeout as exc:
                outcome = f"{describe_error(exc)}: the pool (max_size=1) has nothing to give"
            steps.append(Step("bare `getconn()`, the code raises before `putconn()`; the next caller asks", outcome))
        finally:
            pool.putconn(leaked)
    return steps
