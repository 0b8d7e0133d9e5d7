"""The cluster's query engine as a first-in-first-out fluid server over pre-drawn requests.

"Aggregate the crowd": requests are not simpy processes. Capacity C serves C ACU-seconds of work per
second; a request that arrives at ``a`` with cost ``c`` leaves when the cumulative service ``S(t)``
reaches ``D = max(S(a), D_previous) + c`` (a Lindley recursion in service units), so a whole batch of
arrivals is admitted with a few numpy operations. ``advance(t)`` moves the server to ``t`` at the
current rate; the cluster calls it before every change of rate, so the rate is constant in between.

Example:
    >>> server = QueueServer(np.array([0.0, 0.1]), np.array([0.5, 0.5]), max_connections=lambda: 90)
    >>> server.set_rate(0.0, 1.0)
    >>> server.advance(2.0)
    >>> server.finish_s.round(2).tolist(), server.connections
    ([0.5, 1.0], 0)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

import numpy as np

PENDING, OK, ERROR = 0, 1, 2
NO_ERROR, TOO_MANY_CONNECTIONS, FORCED_SCALING = 0, 1, 2
_SMALL = 16  # below this many requests, plain Python beats numpy's per-call overhead


class QueueServer:
    """Admits, serves and accounts for every request; knows nothing of pauses or scaling rules.

    Pending requests live in plain lists (FIFO order): a lightly loaded cluster has a handful at a time,
    where Python beats numpy's per-call overhead. Batches of more than ``_SMALL`` go through numpy.
    """

    def __init__(self, arrival_s: np.ndarray, cost_acu_s: np.ndarray,
                 max_connections: Callable[[], float]) -> None:
        self.arrival_s = arrival_s
        self.cost = cost_acu_s
        self.finish_s = np.full(len(arrival_s), np.nan)
        self.outcome = np.zeros(len(arrival_s), dtype=np.int8)
        self.error = np.zeros(len(arrival_s), dtype=np.int8)
        self._max_connections = max_connections
        self.now = 0.0
        self.rate = 0.0  # ACU-seconds of request work served per second
        self.service = 0.0  # cumulative potential service S(now)
        self.next_arrival = 0  # arrivals before this index are admitted or refused
        self._ids: list[int] = []  # pending requests, in FIFO order
        self._arrived: list[float] = []  # their arrival times
        self._done: list[float] = []  # D: the service level at which each is done
        self._start: list[float] = []  # D - cost: the service level at which it starts
        self.held = 0  # connections held by blocking operations
        self.work_done = 0.0  # ACU-seconds of request work served so far
        self.connection_seconds = 0.0  # integral of request connections over time
        self.last_close_s = 0.0  # when a request last released its connection
        self.last_open_s = -1.0  # when a request last opened one

    @property
    def connections(self) -> int:
        """Connections open right now: pending requests plus held ones."""
        return len(self._ids) + self.held

    def backlog_s(self) -> float:
        """Seconds the pending work would take to drain at the current rate (inf if stopped with work)."""
        if not self._ids:
            return 0.0
        work = self._done[-1] - self.service
        return work / self.rate if self.rate > 0 else float("inf")

    def next_arrival_s(self) -> float:
        """When the next request asks for a connection (inf when none is left)."""
        n = self.next_arrival
        return float(self.arrival_s[n]) if n < len(self.arrival_s) else float("inf")

    def set_rate(self, now: float, rate: float) -> None:
        """Serve at ``rate`` from ``now`` on (advancing to ``now`` first)."""
        self.advance(now)
        self.rate = rate

    def advance(self, t1: float) -> None:
        """Admit the arrivals before ``t1``, serve until ``t1`` and record who finished."""
        t0 = self.now
        if t1 <= t0:
            return
        first = self.next_arrival
        stop = int(self.arrival_s.searchsorted(t1, side="left"))
        pending = None
        if stop > first:
            at_service = self.service + self.rate * (self.arrival_s[first:stop] - t0)
            if stop - first > _SMALL:
                pending = self._admit_batch(first, stop, at_service)
            else:
                self._admit_one_by_one(first, at_service)
            self.next_arrival = stop
        s0, s1 = self.service, self.service + self.rate * (t1 - t0)
        if pending is None and len(self._ids) > _SMALL:
            pending = (np.array(self._ids, dtype=np.int64), np.array(self._arrived), np.array(self._done),
                       np.array(self._start))
        if pending is not None:
            self._serve_batch(t0, t1, s0, s1, *pending)
        elif self._ids:
            self._serve_few(t0, t1, s0, s1)
        self.now, self.service = t1, s1

    def _admit_batch(self, first: int, stop: int, at_service: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """Every arrival of the batch at once, unless one would exceed the connection limit; returns the whole
        pending queue as arrays (ids, arrived, done, start), or None after falling back to one by one."""
        cost = self.cost[first:stop]
        total = np.cumsum(cost)
        tail = self._done[-1] if self._done else -np.inf
        done = total + np.maximum(np.maximum.accumulate(at_service - total + cost), tail)
        # Connections each arrival would see, itself included, if every arrival were admitted.
        everything = np.concatenate((self._done, done))
        open_before = len(self._done) + np.arange(stop - first) - everything.searchsorted(at_service, side="right")
        if (open_before + 1 + self.held).max() > self._max_connections():
            self._admit_one_by_one(first, at_service)
            return None
        self.last_open_s = max(self.last_open_s, float(self.arrival_s[stop - 1]))
        return (np.concatenate((np.array(self._ids, dtype=np.int64), np.arange(first, stop))),
                np.concatenate((self._arrived, self.arrival_s[first:stop])), everything,
                np.concatenate((self._start, done - cost)))

    def _admit_one_by_one(self, first: int, at_service: np.ndarray) -> None:
        """One at a time: for a few arrivals (faster than numpy), or at the connection limit, where a refusal
        changes what every later arrival sees. While the queue is full, every arrival before the next
        departure is refused in one step (a saturated 1-ACU sale: 0.4 s → 0.05 s)."""
        limit = self._max_connections() - self.held
        queue, ids, arrived, starts = self._done, self._ids, self._arrived, self._start
        levels = at_service.tolist()
        costs = self.cost[first:first + len(levels)].tolist()
        times = self.arrival_s[first:first + len(levels)].tolist()
        head = 0  # queue[:head] had left before the current arrival's service level
        k, count = 0, len(levels)
        admitted_before = len(ids)
        while k < count:
            level = levels[k]
            while head < len(queue) and queue[head] <= level:
                head += 1
            if len(queue) - head >= limit:  # full: skip to the first arrival after the next departure
                k = max(bisect_left(levels, queue[head], k) if head < len(queue) else count, k + 1)
                continue
            start = max(level, queue[-1]) if queue else level
            queue.append(start + costs[k])
            starts.append(start)
            ids.append(first + k)
            arrived.append(times[k])
            k += 1
        if len(ids) > admitted_before:
            self.last_open_s = max(self.last_open_s, arrived[-1])
        if len(ids) - admitted_before < count:
            refused = np.ones(count, dtype=bool)
            refused[np.array(ids[admitted_before:], dtype=np.int64) - first] = False
            self._refuse(first + np.flatnonzero(refused))

    def _refuse(self, requests: np.ndarray) -> None:
        self.finish_s[requests] = self.arrival_s[requests]
        self.outcome[requests], self.error[requests] = ERROR, TOO_MANY_CONNECTIONS

    def _serve_batch(self, t0: float, t1: float, s0: float, s1: float, ids: np.ndarray, arrived: np.ndarray,
                     done: np.ndarray, start: np.ndarray) -> None:
        """Serve the whole pending queue (given as arrays) with numpy; keep the unfinished as lists."""
        self.work_done += float(np.clip(np.minimum(done, s1) - np.maximum(start, s0), 0, None).sum())
        finished = int(done.searchsorted(s1, side="right"))
        since = np.maximum(arrived, t0)
        if finished:
            finish = t0 + (done[:finished] - s0) / self.rate
            self.finish_s[ids[:finished]] = finish
            self.outcome[ids[:finished]] = OK
            self.last_close_s = max(self.last_close_s, float(finish[-1]))
            self.connection_seconds += float((finish - since[:finished]).sum())
        self.connection_seconds += float((t1 - since[finished:]).sum())
        self._ids, self._arrived = ids[finished:].tolist(), arrived[finished:].tolist()
        self._done, self._start = done[finished:].tolist(), start[finished:].tolist()

    def _serve_few(self, t0: float, t1: float, s0: float, s1: float) -> None:
        """``_serve_batch`` in plain Python, for a handful of pending requests."""
        finished = 0
        for request, arrived, done, start in zip(self._ids, self._arrived, self._done, self._start, strict=True):
            self.work_done += max(0.0, min(done, s1) - max(start, s0))
            arrived = max(arrived, t0)
            if done <= s1:
                finish = t0 + (done - s0) / self.rate
                self.finish_s[request] = finish
                self.outcome[request] = OK
                self.last_close_s = max(self.last_close_s, finish)
                self.connection_seconds += finish - arrived
                finished += 1
            else:
                self.connection_seconds += t1 - arrived
        if finished:
            self._drop(finished)

    def _drop(self, count: int) -> None:
        """Forget the first ``count`` pending requests (they have ended)."""
        for pending in (self._ids, self._arrived, self._done, self._start):
            del pending[:count]

    def abort_all(self, now: float) -> np.ndarray:
        """End every pending request with the forced-scaling error; returns their ids."""
        self.advance(now)
        ids = np.array(self._ids, dtype=np.int64)
        self.finish_s[ids] = now
        self.outcome[ids], self.error[ids] = ERROR, FORCED_SCALING
        if len(ids):
            self.last_close_s = now
        self._drop(len(ids))
        return ids
