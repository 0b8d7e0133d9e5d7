"""How applications reach the cluster — connection strategies — and how they retry: frozen, validated settings.

Give a ``Workload`` ``connections=`` (``ConnectPerRequest``, ``ConnectionPool`` or ``DataApi``) or
``retry=`` (a ``RetryPolicy``) and it is simulated request by request, each request a simpy process
(``tracked.py``), with one row per request.

Example:
    >>> pool = ConnectionPool(min_size=2, max_size=10, max_lifetime_s=3600, pre_ping=True)
    >>> RetryPolicy("full_jitter", max_attempts=5).retries("refused")
    True
    >>> ConnectionPool(min_size=5, max_size=2)
    Traceback (most recent call last):
    ...
    ValueError: min_size=5 must be <= max_size=2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import backoff, facts
from ._validate import _check_choice, _check_order, _check_positive, _check_range, _check_type

# Error classes a request can end with; RetryPolicy.retry_on names them.
FORCED_ABORT, REFUSED, DROPPED, DATA_API_RESUMING = "forced_abort", "refused", "dropped", "data_api_resuming"
STATEMENT_TIMEOUT, IDLE_IN_TRANSACTION, MAX_EXECUTION_TIME = "statement_timeout", "idle_in_transaction", \
    "max_execution_time"
POOL_TIMEOUT, DATA_API_TIMEOUT = "pool_timeout", "data_api_timeout"
ERROR_CLASSES = (FORCED_ABORT, REFUSED, DROPPED, DATA_API_RESUMING, STATEMENT_TIMEOUT, IDLE_IN_TRANSACTION,
                 MAX_EXECUTION_TIME, POOL_TIMEOUT, DATA_API_TIMEOUT)
TRANSIENT = (FORCED_ABORT, REFUSED, DROPPED, DATA_API_RESUMING)

RETRY_STRATEGIES = ("none", "fixed", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter")
# The AWS SDKs default to 3 (standard mode) or 5 (legacy) attempts; 100 already retries for minutes, and each
# attempt of each request is simulated.
MAX_ATTEMPTS = 100
MAX_CAP_S = 3600.0  # longest sleep between two attempts: an hour


def _check_optional_positive(name: str, value: float | None) -> None:
    if value is not None:
        _check_positive(name, value)


@dataclass(frozen=True, kw_only=True)
class ConnectPerRequest:
    """Each request opens its own connection and closes it when done: a burst of invocations is a burst of
    connections, each paying ``ModelAssumptions.connect_latency_s`` and ``connect_cpu_acu_s``."""


@dataclass(frozen=True, kw_only=True)
class ConnectionPool:
    """A client-side pool with the semantics of psycopg_pool and HikariCP.

    ``min_size`` connections open when the workload starts and the pool refills to it (so ``min_size >= 1``
    keeps the cluster from pausing); up to ``max_size`` open on demand. A request that gets no connection within
    ``acquire_timeout_s`` ends with ``outcome='timeout'``. ``idle_timeout_s`` closes connections above
    ``min_size`` idle that long; ``max_lifetime_s`` retires a connection that old when it is returned or idle
    (``None``: never). ``pre_ping`` checks a connection before handing it out (one round trip) and replaces a
    dead one; without it a connection the cluster closed fails its next request ("gone away").
    """

    min_size: int = 1
    max_size: int = 10
    acquire_timeout_s: float = 30.0
    idle_timeout_s: float | None = 600.0
    max_lifetime_s: float | None = 3600.0
    pre_ping: bool = False

    def __post_init__(self) -> None:
        _check_type("min_size", self.min_size, int, "a whole number")
        _check_type("max_size", self.max_size, int, "a whole number")
        _check_positive("min_size", self.min_size, allow_zero=True)
        _check_positive("max_size", self.max_size)
        _check_order("min_size", self.min_size, "max_size", self.max_size)
        _check_positive("acquire_timeout_s", self.acquire_timeout_s)
        _check_optional_positive("idle_timeout_s", self.idle_timeout_s)
        _check_optional_positive("max_lifetime_s", self.max_lifetime_s)
        _check_type("pre_ping", self.pre_ping, bool, "True or False")


@dataclass(frozen=True, kw_only=True)
class DataApi:
    """The Data API: no client connection; each call is an HTTPS request with ``overhead_s`` of its own, served
    from the service's pool, whose connection counts only while the call's statement runs. Calls are cut at
    ``facts.DATA_API_CALL_LIMIT_S``; a v1 cluster found paused fails the call and starts the resume. A call cut
    while it still waits for the resume, or after waiting for one, gets the same resume error, not
    StatementTimeoutException (a model assumption: AWS documents neither).

    ``overhead_s`` defaults to ``facts.DATA_API_WARM_CALL_S``, the measured median of a warm call from Lambda
    (14.5 ms); the first call of a Lambda invocation paid about ``facts.DATA_API_FIRST_CALL_S`` (0.75 s).

    Example:
        >>> DataApi().overhead_s
        0.0145
    """

    overhead_s: float = facts.DATA_API_WARM_CALL_S

    def __post_init__(self) -> None:
        _check_positive("overhead_s", self.overhead_s)


CONNECTION_STRATEGIES = (ConnectPerRequest, ConnectionPool, DataApi)


@dataclass(frozen=True)
class RetryPolicy:
    """Whether, when and how often a failed request is tried again.

    ``strategy``: ``none`` (no retry), ``fixed`` (sleep ``base_s``), ``exponential`` (``min(cap_s, base_s·2ⁿ)``),
    ``full_jitter``, ``equal_jitter`` or ``decorrelated_jitter`` (fact sheet §10); the first retry has n = 1 and
    ``max_attempts`` counts the first attempt (the AWS SDK convention). ``budget_tokens`` (``None``: no budget)
    is a token bucket that starts full: each success deposits ``budget_deposit``, each retry spends one, and a
    retry the bucket cannot pay for ends the request with its last error. ``retry_on`` names the error classes
    worth retrying (default: the transient ones).

    Example:
        >>> policy = RetryPolicy("exponential", base_s=0.1, cap_s=1.0)
        >>> [policy.delay_s(n, 0.0, np.random.default_rng(0)) for n in (1, 2, 3, 4)]
        [0.2, 0.4, 0.8, 1.0]
    """

    strategy: str = "none"
    base_s: float = 0.1
    cap_s: float = 20.0
    max_attempts: int = 3
    budget_tokens: float | None = None
    budget_deposit: float = 0.1
    retry_on: tuple[str, ...] = TRANSIENT

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, RETRY_STRATEGIES)
        _check_positive("base_s", self.base_s)
        _check_positive("cap_s", self.cap_s)
        _check_range("cap_s", self.cap_s, 0, MAX_CAP_S, unit="seconds")
        _check_order("base_s", self.base_s, "cap_s", self.cap_s)
        _check_type("max_attempts", self.max_attempts, int, "a whole number")
        _check_positive("max_attempts", self.max_attempts)
        _check_range("max_attempts", self.max_attempts, 1, MAX_ATTEMPTS, unit="attempts, the first included")
        _check_optional_positive("budget_tokens", self.budget_tokens)
        _check_positive("budget_deposit", self.budget_deposit, allow_zero=True)
        _check_type("retry_on", self.retry_on, (tuple, list, frozenset, set), "a collection of error classes")
        for name in self.retry_on:
            _check_choice("retry_on", name, ERROR_CLASSES)
        object.__setattr__(self, "retry_on", tuple(sorted(set(self.retry_on))))

    def retries(self, error_class: str) -> bool:
        """Whether this policy would retry an ``error_class`` failure at all."""
        return self.strategy != "none" and self.max_attempts > 1 and error_class in self.retry_on

    def delay_s(self, retry: int, previous_s: float, rng: np.random.Generator) -> float:
        """The sleep before retry number ``retry`` (1 = the first retry); ``previous_s`` feeds decorrelated jitter."""
        if self.strategy == "fixed":
            return self.base_s
        return backoff.backoff_ms(self.strategy, retry, previous_s or self.base_s, rng, base_ms=self.base_s,
                                  cap_ms=self.cap_s)
