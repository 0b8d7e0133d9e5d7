"""Backoff and jitter: the retry formulas, and the contended-write experiment of Brooker's 2015 blog post.

Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015) compared retry strategies with a
small simulator (aws-samples/aws-arch-backoff-simulator, ``src/backoff_simulator.py``). This module reproduces its
model, written afresh:

- one row under optimistic concurrency: a read returns the row's version; a write succeeds only if the version is
  unchanged since that read, and bumps it;
- N clients all start at t = 0 with a read, then a write; each client stops after one successful write;
- every message (each request and each reply) takes a one-way network delay of |Normal(10 ms, 2 ms)|;
- the server answers at once, with no queueing;
- after a failed write a client sleeps its backoff, then reads again (the first retry is attempt 1).

The formulas live in :func:`backoff_ms`, so the cluster's retry policies can reuse them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from numbers import Integral

import numpy as np
import pandas as pd

from ._validate import _check_choice, _check_type

STRATEGIES = ("none", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter")
STRATEGY_STREAMS = {  # append only; never renumber: each id addresses the random stream of one strategy
    "none": 0,
    "exponential": 1,
    "full_jitter": 2,
    "equal_jitter": 3,
    "decorrelated_jitter": 4,
}
BASE_MS = 5  # the blog simulator's base sleep
CAP_MS = 2000  # the blog simulator's cap on any one sleep
NETWORK_DELAY_MEAN_MS = 10.0  # one-way delay per message: |Normal(10, 2)| ms, as in the blog simulator
NETWORK_DELAY_SD_MS = 2.0
SWEEP_COLUMNS = ("strategy", "clients", "calls", "completion_ms")
# Without jitter every client collides with every other, so a run's work grows as clients²: 1,000 clients take
# 0.3 s a run with "none". The experiment refuses more than about a minute of it (issue 12).
MAX_CLIENTS = 1000
MAX_CLIENT_PAIRS = 200_000_000  # Σ clients² × runs over the points asked for: about 60 s at 0.3 µs each
MAX_RETRIES = 100  # sleep_table's columns

# Random numbers are drawn from numpy in chunks and handed out one at a time (a scalar rng.normal() call costs
# about 1 us). With only writes as events, this took the 100-client bench point (5 strategies x 50 runs)
# from 0.91 s to 0.21 s; the blog's own simulator needs about 1.2 s for it.
_CHUNK = 8192


def backoff_ms(
    strategy: str,
    attempt: int,
    previous_ms: float,
    rng: np.random.Generator,
    *,
    base_ms: float = BASE_MS,
    cap_ms: float = CAP_MS,
) -> float:
    """Return how long a client sleeps before retry number ``attempt``, in milliseconds.

    With ``v = min(cap, base * 2**attempt)``: "exponential" sleeps v; "full_jitter" uniform(0, v);
    "equal_jitter" v/2 + uniform(0, v/2); "decorrelated_jitter" ignores the attempt and sleeps
    min(cap, uniform(base, previous * 3)), where ``previous_ms`` is its own previous sleep (the base before
    the first retry); "none" retries at once.

    Args:
        strategy: One of ``STRATEGIES``.
        attempt: The retry's number, 1 for the first retry.
        previous_ms: The sleep this client returned last time (``base_ms`` before the first retry); only
            "decorrelated_jitter" reads it.
        rng: Source of the jitter; only its ``uniform(low, high)`` method is called.
        base_ms: Base sleep.
        cap_ms: Longest sleep.

    Raises:
        ValueError: If the strategy is unknown or attempt < 1.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> backoff_ms("exponential", 3, BASE_MS, rng)
        40.0
        >>> 0 <= backoff_ms("full_jitter", 3, BASE_MS, rng) <= 40
        True
    """
    if attempt < 1:
        msg = f"attempt={attempt!r} must be >= 1 (the first retry is attempt 1)"
        raise ValueError(msg)
    if strategy == "decorrelated_jitter":
        return min(cap_ms, rng.uniform(base_ms, previous_ms * 3))
    if strategy == "none":
        return 0.0
    ceiling_ms = min(cap_ms, base_ms * 2.0 ** min(attempt, 1023))  # 2.0**1024 would overflow; the cap wins anyway
    if strategy == "exponential":
        return ceiling_ms
    if strategy == "full_jitter":
        return rng.uniform(0, ceiling_ms)
    if strategy == "equal_jitter":
        return ceiling_ms / 2 + rng.uniform(0, ceiling_ms / 2)
    _check_choice("strategy", strategy, STRATEGIES)
    raise AssertionError("unreachable")  # pragma: no cover


def contended_write_experiment(strategy: str, clients: int, runs: int = 100, seed: int = 0) -> dict[str, float]:
    """Run the blog's contended-write experiment ``runs`` times and return the means.

    Each run is a discrete-event simulation of ``clients`` clients racing to update one row (see the module
    docstring for the model). "calls" counts write requests, failed and successful, not reads;
    "completion_ms" is when the last client receives its successful write's reply.

    Args:
        strategy: One of ``STRATEGIES``.
        clients: How many clients race, >= 1.
        runs: How many independent runs to average, >= 1 (the blog used 100).
        seed: Selects the random stream; each (strategy, clients) pair has its own, and the first k runs of a
            longer experiment are the k runs of a shorter one.

    Returns:
        ``{"calls": mean writes per run, "completion_ms": mean completion time}``, unrounded.

    Raises:
        ValueError: If the strategy is unknown, clients < 1, runs < 1 or seed < 0.

    Example:
        >>> contended_write_experiment("none", clients=1, runs=5)["calls"]
        1.0
        >>> jitter = contended_write_experiment("full_jitter", clients=20, runs=20)
        >>> plain = contended_write_experiment("exponential", clients=20, runs=20)
        >>> jitter["calls"] < plain["calls"], jitter["completion_ms"] < plain["completion_ms"]
        (True, True)
    """
    _check_choice("strategy", strategy, STRATEGIES)
    _check_count("clients", clients, high=MAX_CLIENTS)
    _check_count("runs", runs)
    _check_count("seed", seed, low=0)
    _check_work((clients,), runs, strategies=1)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STRATEGY_STREAMS[strategy], int(clients))))
    delay = _endless(lambda: np.abs(rng.normal(NETWORK_DELAY_MEAN_MS, NETWORK_DELAY_SD_MS, _CHUNK)))
    jitter = _BufferedUniform(rng)
    total_calls = 0
    total_ms = 0.0
    for _ in range(runs):
        calls, completion_ms = _one_run(strategy, int(clients), delay, jitter)
        total_calls += calls
        total_ms += completion_ms
    return {"calls": total_calls / runs, "completion_ms": total_ms / runs}


def sweep(
    client_counts: Iterable[int],
    strategies: Sequence[str] = STRATEGIES,
    runs: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Run the experiment for every strategy and client count, one row each, for the notebook's plot.

    Args:
        client_counts: The x axis, e.g. ``range(10, 201, 10)``.
        strategies: Which strategies to run, each one of ``STRATEGIES``.
        runs: Runs per point.
        seed: Passed to every point; each point still has its own stream.

    Returns:
        Columns strategy, clients, calls, completion_ms; one row per (strategy, clients), strategy-major.

    Raises:
        ValueError: If client_counts or strategies is empty, or any point is invalid.

    Example:
        >>> table = sweep([1, 5], strategies=("none", "full_jitter"), runs=3)
        >>> table[["strategy", "clients"]].to_records(index=False).tolist()
        [('none', 1), ('none', 5), ('full_jitter', 1), ('full_jitter', 5)]
    """
    counts = tuple(client_counts)
    strategies = tuple(strategies)
    for name, values in (("client_counts", counts), ("strategies", strategies)):
        if not values:
            msg = f"{name}={values!r} must name at least one value"
            raise ValueError(msg)
    for strategy in strategies:
        _check_choice("strategy", strategy, STRATEGIES)
    for clients in counts:
        _check_count("clients", clients, high=MAX_CLIENTS)
    _check_count("runs", runs)
    _check_work(counts, runs, strategies=len(strategies))
    rows = []
    for strategy in strategies:
        for clients in counts:
            means = contended_write_experiment(strategy, clients, runs, seed)
            rows.append((strategy, int(clients), means["calls"], means["completion_ms"]))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def sleep_table(policies: Mapping[str, object], retries: int = 6, seed: int = 0) -> pd.DataFrame:
    """The sleep each policy draws before retries 1 to ``retries``: one row per policy, one column per retry.

    A policy is anything with ``delay_s(retry, previous_s, rng)``, such as ``clients.RetryPolicy`` (seconds). One
    generator seeded ``seed`` serves the rows in order, so a jittered row is one possible draw; each row feeds its
    own previous sleep back (decorrelated jitter reads it).

    Raises:
        ValueError: If policies is empty or retries < 1.

    Example:
        >>> from aurora_sim.clients import RetryPolicy
        >>> sleep_table({"exponential": RetryPolicy("exponential")}, retries=3).loc["exponential"].tolist()
        [0.2, 0.4, 0.8]
    """
    if not policies:
        msg = f"policies={policies!r} must name at least one policy"
        raise ValueError(msg)
    _check_count("retries", retries, high=MAX_RETRIES)
    rng = np.random.default_rng(seed)
    rows = {}
    for name, policy in policies.items():
        previous_s, sleeps = 0.0, []
        for retry in range(1, retries + 1):
            previous_s = policy.delay_s(retry, previous_s, rng)  # type: ignore[attr-defined]
            sleeps.append(round(previous_s, 2))
        rows[name] = sleeps
    columns = [f"retry {retry}" for retry in range(1, retries + 1)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("strategy")


def _one_run(strategy: str, clients: int, delay: Callable[[], float], jitter: _BufferedUniform) -> tuple[int, float]:
    """One run; returns (write requests, time the last successful write's reply arrives).

    Only writes reaching the server are events. A write succeeds if no other write succeeded between this
    client's read and its write; since events pop in time order, that is "the last success came before my read".
    An event is (write arrives, read arrived, retry number if this write fails, previous sleep).
    """
    events = []
    for _ in range(clients):
        read_ms = delay()  # the read request's trip
        events.append((read_ms + delay() + delay(), read_ms, 1, BASE_MS))  # read reply, then write request
    heapq.heapify(events)
    pop, push = heapq.heappop, heapq.heappush
    last_success_ms = -1.0
    completion_ms = 0.0
    calls = 0
    while events:
        write_ms, read_ms, attempt, previous_ms = pop(events)
        calls += 1
        if read_ms > last_success_ms:
            last_success_ms = write_ms
            completion_ms = max(completion_ms, write_ms + delay())
        else:
            sleep_ms = backoff_ms(strategy, attempt, previous_ms, jitter)  # type: ignore[arg-type]
            read_ms = write_ms + delay() + sleep_ms + delay()  # failure reply, sleep, read request
            push(events, (read_ms + delay() + delay(), read_ms, attempt + 1, sleep_ms))
    return calls, completion_ms


def _endless(chunk: Callable[[], np.ndarray]) -> Callable[[], float]:
    """Turn a function that draws an array into one that returns one float per call, forever."""
    return chain.from_iterable(iter(lambda: chunk().tolist(), None)).__next__


class _BufferedUniform:
    """Offers ``uniform(low, high)`` like numpy's Generator, from draws made in chunks (same formula as numpy)."""

    __slots__ = ("_next",)

    def __init__(self, rng: np.random.Generator) -> None:
        self._next = _endless(lambda: rng.random(_CHUNK))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._next()


def _check_count(name: str, value: object, *, low: int = 1, high: int | None = None) -> None:
    _check_type(name, value, Integral, "an integer")
    if value < low:  # type: ignore[operator]
        msg = f"{name}={value!r} must be >= {low}"
        raise ValueError(msg)
    if high is not None and value > high:  # type: ignore[operator]
        msg = f"{name}={value!r} must be <= {high}"
        raise ValueError(msg)


def _check_work(client_counts: Sequence[int], runs: int, *, strategies: int) -> None:
    """Refuse an experiment of more than about a minute: its work grows as clients² × runs."""
    pairs = sum(int(clients) ** 2 for clients in client_counts) * int(runs) * strategies
    if pairs > MAX_CLIENT_PAIRS:
        msg = (f"runs={runs!r} over clients={max(client_counts)!r} (and the rest asked for) would take about "
               f"{pairs * 0.3e-6:.3g} s: Σ clients² × runs × strategies = {pairs:.3g} is over {MAX_CLIENT_PAIRS:,}; "
               f"lower runs or clients")
        raise ValueError(msg)
