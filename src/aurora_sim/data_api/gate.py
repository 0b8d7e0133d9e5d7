"""The endpoint's cluster in time: auto-pause when idle, resume on demand, idle transactions rolled back.

``ClusterGate`` stands between a validated request and the database. It keeps the clock lazily: the state is
brought up to date whenever a call arrives, so no background thread is needed. All durations are real seconds
divided by ``time_scale``, except the 24-hour transaction limit, which stays.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from aurora_sim import facts
from aurora_sim.config import ModelAssumptions
from aurora_sim.data_api.errors import error_for
from aurora_sim.scaling import resume_time_s
from aurora_sim.simulation import rng_for

TRANSACTION_IDLE_S = facts.DATA_API_TRANSACTION_IDLE_S
TRANSACTION_MAX_S = facts.DATA_API_TRANSACTION_MAX_S
BOTOCORE_READ_TIMEOUT_S = 60  # botocore's default read timeout; the call limit must stay under it

AVAILABLE, PAUSED, RESUMING = "available", "paused", "resuming"


class ClusterGate:
    """Pause, resume and transaction bookkeeping for one endpoint's cluster.

    Args:
        flavour: ``v1``, an Aurora Serverless v1 cluster (the call that finds the cluster paused fails, later calls
            wait; one still waiting when its call limit runs out gets the same resume error, a model assumption: AWS
            documents neither), or ``v2``, an Aurora Serverless v2 cluster (every call fails with
            DatabaseResumingException until resumed).
        auto_pause_s: Idle seconds before the cluster pauses (``None``: never pauses).
        resume_s: Seconds a resume takes; ``None`` draws each one from ``scaling.resume_time_s``.
        expire: Rolls back one transaction by id (``Database.expire_transaction``).
        open_transactions: How many transactions the database holds open (one keeps the cluster from pausing).

    Example:
        >>> gate = ClusterGate(flavour="v1", auto_pause_s=None, resume_s=0, time_scale=1.0,
        ...                    resource_arn="arn:aws:rds:us-east-1:1:cluster:c", expire=print)
        >>> gate.status()
        'available'
    """

    def __init__(self, *, flavour: str, auto_pause_s: float | None, resume_s: float | None, time_scale: float,
                 resource_arn: str, expire: Callable[[str], object], open_transactions: Callable[[], int] = lambda: 0,
                 seed: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.flavour, self.time_scale, self.resource_arn = flavour, time_scale, resource_arn
        self.pause_after_s = None if auto_pause_s is None else auto_pause_s / time_scale
        self.call_limit_s = facts.DATA_API_CALL_LIMIT_S / time_scale
        self.transaction_idle_s = TRANSACTION_IDLE_S / time_scale
        self._resume_s, self._expire, self._open_transactions = resume_s, expire, open_transactions
        self._rng, self._assumptions, self._clock = rng_for(seed, "resume_time"), ModelAssumptions(), clock
        self._condition = threading.Condition()
        self._state, self._running, self._idle_since, self._resume_until = AVAILABLE, 0, clock(), 0.0
        self._transactions: dict[str, tuple[float, float]] = {}  # id -> (began, last used)
        self._busy: dict[str, int] = {}  # id -> calls running inside it (a busy transaction never expires)
        self.resumes = 0

    def __repr__(self) -> str:
        return (f"ClusterGate(flavour={self.flavour!r}, status={self.status()!r}, running={self._running}, "
                f"transactions={len(self._transactions)})")

    @property
    def running(self) -> int:
        """Calls admitted whose statements have not ended yet (a timed-out one may still run)."""
        with self._condition:
            return self._running

    def status(self) -> str:
        """``available``, ``paused`` or ``resuming``, as of now."""
        with self._condition:
            self._advance(self._clock())
            return self._state

    def pause(self) -> None:
        """Pause now if idle (no call running, no open transaction), as the idle timer would."""
        with self._condition:
            self._advance(self._clock())
            if self._state == AVAILABLE and self._idle():
                self._state = PAUSED

    def enter(self, transaction_id: str | None = None) -> float:
        """Admit one call, or raise the paused error; returns the seconds left of its call limit.

        Raises:
            ApiError: The flavour's paused error (v1: the call that finds the cluster paused, and a call still
                waiting for the resume when its limit runs out; v2: every call until resumed), or on v2
                "Transaction is still running a query" for a call on a transaction that is running one.
        """
        started = self._clock()
        with self._condition:
            self._advance(started)
            if self._state == PAUSED:
                self._start_resume(started)
                raise error_for("paused", self.flavour, resource_arn=self.resource_arn)
            if self._state == RESUMING and self.flavour == "v2":
                raise error_for("paused", self.flavour, resource_arn=self.resource_arn)
            while self._state == RESUMING:
                left = started + self.call_limit_s - self._clock()
                if left <= 0:  # still resuming: the resume error again (model assumption), not a statement timeout
                    raise error_for("paused", self.flavour, resource_arn=self.resource_arn)
                self._condition.wait(min(left, self._resume_until - self._clock()))
                self._advance(self._clock())
            if self.flavour == "v2" and self._busy.get(transaction_id):
                # v2 answers at once; v1 lets the call wait its turn (UG data-api.differences).
                raise error_for("transaction_busy", self.flavour)
            self._running += 1
            if transaction_id in self._transactions:
                began, _ = self._transactions[transaction_id]
                self._transactions[transaction_id] = (began, self._clock())
                self._busy[transaction_id] = self._busy.get(transaction_id, 0) + 1
            return started + self.call_limit_s - self._clock()

    def leave(self, transaction_id: str | None = None) -> None:
        """One admitted call finished (its statement really ended, even after a timeout)."""
        with self._condition:
            now = self._clock()
            self._running -= 1
            self._idle_since = max(self._idle_since, now)
            if transaction_id in self._busy:
                self._busy[transaction_id] -= 1
                if not self._busy[transaction_id]:
                    del self._busy[transaction_id]
            if transaction_id in self._transactions:
                self._transactions[transaction_id] = (self._transactions[transaction_id][0], now)
            self._condition.notify_all()

    def began(self, transaction_id: str) -> None:
        """A transaction opened: it holds a connection until committed, rolled back or expired."""
        with self._condition:
            now = self._clock()
            self._transactions[transaction_id] = (now, now)

    def ended(self, transaction_id: str) -> None:
        """A transaction was committed or rolled back (or was never known)."""
        with self._condition:
            if self._transactions.pop(transaction_id, None) is not None:
                self._idle_since = max(self._idle_since, self._clock())

    def _idle(self) -> bool:
        return self._running == 0 and not self._transactions and self._open_transactions() == 0

    def _start_resume(self, now: float) -> None:
        seconds = self._resume_s if self._resume_s is not None else resume_time_s(self._assumptions, self._rng)
        self._state, self._resume_until = RESUMING, now + seconds / self.time_scale
        self.resumes += 1

    def _advance(self, now: float) -> None:
        for transaction_id, (began, used) in list(self._transactions.items()):
            expires = min(used + self.transaction_idle_s, began + TRANSACTION_MAX_S)
            if now >= expires and not self._busy.get(transaction_id):
                del self._transactions[transaction_id]
                self._idle_since = max(self._idle_since, expires)
                self._expire_quietly(transaction_id)
        if self._state == RESUMING and now >= self._resume_until:
            self._state, self._idle_since = AVAILABLE, max(self._idle_since, self._resume_until)
        if (self._state == AVAILABLE and self.pause_after_s is not None and self._idle()
                and now - self._idle_since >= self.pause_after_s):
            self._state = PAUSED

    def _expire_quietly(self, transaction_id: str) -> None:
        with contextlib.suppress(Exception):  # already gone (committed meanwhile): nothing to roll back
            self._expire(transaction_id)


def check_time_scale(time_scale: float) -> None:
    """Reject a time scale that would stretch the 45 s call limit past botocore's 60 s read timeout."""
    if not isinstance(time_scale, (int, float)) or isinstance(time_scale, bool):
        msg = f"time_scale={time_scale!r} must be a number"
        raise TypeError(msg)
    if time_scale <= 0 or facts.DATA_API_CALL_LIMIT_S / time_scale >= BOTOCORE_READ_TIMEOUT_S:
        low = facts.DATA_API_CALL_LIMIT_S / BOTOCORE_READ_TIMEOUT_S
        msg = (f"time_scale={time_scale!r} must be > {low} (the {facts.DATA_API_CALL_LIMIT_S} s call limit "
               f"divided by it must stay under botocore's {BOTOCORE_READ_TIMEOUT_S} s read timeout)")
        raise ValueError(msg)
