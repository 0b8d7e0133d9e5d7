"""The cluster's query engine as a first-in-first-out fluid server.

"Aggregate the crowd": requests are not simpy processes. Capacity C serves C ACU-seconds of work per
second; a request that arrives at ``a`` with cost ``c`` leaves when the cumulative service ``S(t)``
reaches ``D = max(S(a), D_previous) + c`` (a Lindley recursion in service units), so a whole batch of
pre-drawn arrivals is admitted with a few numpy operations. ``advance(t)`` moves the server to ``t`` at
the current rate; the cluster calls it before every change of rate, so the rate is constant in between.

Tracked clients (pools, retries, the Data API) ``submit`` their queries one at a time and hear of each
query's end through a callback. A statement timeout cancels a query still unfinished that long after it
reached the server, and the queries behind it move up.

A ``Projection`` reads ahead: what a simple server (pre-drawn requests only) will have done at any later times
if its rate stays as it is, from one recursion over up to an hour of arrivals. The cluster's controller reads its
steps and metrics samples from it (a week at 20 requests/s: 36,000 steps in about 100 projections), and
``advance`` takes the projection's results instead of computing them again.

Example:
    >>> server = QueueServer(np.array([0.0, 0.1]), np.array([0.5, 0.5]), max_connections=lambda: 90)
    >>> server.set_rate(0.0, 1.0)
    >>> server.advance(2.0)
    >>> server.finish_s.round(2).tolist(), server.connections
    ([0.5, 1.0], 0)
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable

import numpy as np

PENDING, OK, ERROR, TIMEOUT = 0, 1, 2, 3
NO_ERROR, TOO_MANY_CONNECTIONS, FORCED_SCALING, STATEMENT_TIMEOUT = 0, 1, 2, 3
LOST_CONNECTION, CANNOT_CONNECT = 4, 5  # a fault took the instance: cut off mid-query; refused while it is gone
_SMALL = 16  # below this many requests, plain Python beats numpy's per-call overhead
_INF = math.inf
_PROBE = 256  # arrivals a projection admits first, to find a refusal among them before admitting the rest
_EPS = 1e-9  # an end this close to a chunk's end belongs to it (floating point must not leave a watcher spinning)


def _full_at(done: np.ndarray, queued: int, at_service: np.ndarray, room: float) -> np.ndarray:
    """Whether each new arrival finds ``room`` connections taken if every arrival before it was admitted.

    ``done`` holds the service levels at which the ``queued`` requests already at the server and then the new
    arrivals are done (increasing: first in, first out); ``at_service`` the level at each new arrival. As the
    requests leave in order, arrival ``i`` finds at least ``room`` open exactly when the ``room``-th request before
    it is not done yet: one comparison each instead of a search.

    Example:
        >>> _full_at(np.array([2.0, 3.0, 4.0]), 1, np.array([1.0, 2.5]), room=1).tolist()
        [True, True]
    """
    count = len(at_service)
    if room == _INF:
        return np.zeros(count, dtype=bool)
    room = math.floor(room)
    if room <= 0:
        return np.ones(count, dtype=bool)
    full = np.zeros(count, dtype=bool)
    first = max(0, room - queued)  # the arrivals before it find fewer than room requests at the server at all
    if first < count:
        np.greater(done[queued + first - room:queued + count - room], at_service[first:], out=full[first:])
    return full


class QueueServer:
    """Admits, serves and accounts for every request; knows nothing of pauses or scaling rules.

    Pending requests live in plain lists (FIFO order): a lightly loaded cluster has a handful at a time,
    where Python beats numpy's per-call overhead. Batches of more than ``_SMALL`` go through numpy. A pending
    id ``i >= 0`` is a pre-drawn request; ``-(k + 1)`` is tracked ticket ``k``.
    """

    def __init__(self, arrival_s: np.ndarray, cost_acu_s: np.ndarray, max_connections: Callable[[], float],
                 *, statement_timeout_s: float = 0.0,
                 on_ticket_end: Callable[[int, float, int], None] | None = None) -> None:
        self.arrival_s = arrival_s
        self.cost = cost_acu_s
        self._finish_s: np.ndarray | None = None  # made at first use (finish_s), unless it is the costs' array
        self.outcome = np.zeros(len(arrival_s), dtype=np.int8)
        self.error = np.zeros(len(arrival_s), dtype=np.int8)
        self._max_connections = max_connections
        self.statement_timeout_s = statement_timeout_s  # 0: no timeout
        self._on_ticket_end = on_ticket_end
        self.tickets = 0  # tracked queries submitted so far
        self.now = 0.0
        self.rate = 0.0  # ACU-seconds of request work served per second
        self.service = 0.0  # cumulative potential service S(now)
        self.next_arrival = 0  # arrivals before this index are admitted or refused
        self._ids: list[int] = []  # pending requests, in FIFO order
        self._arrived: list[float] = []  # their arrival times
        self._level: list[float] = []  # S at their arrival
        self._done: list[float] = []  # D: the service level at which each is done
        self._start: list[float] = []  # D - cost: the service level at which it starts
        self._deadline: list[float] = []  # when a statement timeout cancels it (inf: never)
        self.held = 0  # connections held by blocking operations
        self.refusal_code = TOO_MANY_CONNECTIONS  # why an arrival is refused (CANNOT_CONNECT: no instance)
        self.work_done = 0.0  # ACU-seconds of request work served so far
        self.connection_seconds = 0.0  # integral of pre-drawn requests' connections over time
        self.last_close_s = 0.0  # when a pre-drawn request last released its connection
        self.last_open_s = -1.0  # when a pre-drawn request last opened one
        self._ahead: Projection | None = None  # the latest projection: advance() takes its results when it can
        self._crowded = False  # the last batch met the connection limit, and no batch since was admitted whole
        self._scratch = _Scratch()  # the arrays projections compute in

    @property
    def finish_s(self) -> np.ndarray:
        """When each pre-drawn request ended (NaN while it is pending, or its cost: ``finish_over_costs``)."""
        if self._finish_s is None:
            self._finish_s = np.full(len(self.arrival_s), np.nan)
        return self._finish_s

    def finish_over_costs(self) -> None:
        """Write each request's finish time over its cost, in the caller's array: a request's cost is read when it
        is admitted (or a projection reads ahead from the next to be admitted), its finish written after that. A
        month of requests needs one array of 128 MB fewer, and fresh memory costs more to touch than to compute in.
        Call it before any request has ended; the caller's costs are spent then.

        Example:
            >>> cost = np.array([0.5, 0.5])
            >>> server = QueueServer(np.array([0.0, 0.1]), cost, max_connections=lambda: 90)
            >>> server.finish_over_costs()
            >>> server.set_rate(0.0, 1.0)
            >>> server.advance(2.0)
            >>> cost.round(2).tolist()
            [0.5, 1.0]
        """
        if self._finish_s is not None:
            raise RuntimeError("finish_over_costs() comes before the first request ends")
        self._finish_s = self.cost

    @property
    def _lists(self) -> tuple[list, ...]:
        return self._ids, self._arrived, self._level, self._done, self._start, self._deadline

    @property
    def connections(self) -> int:
        """Connections of pre-drawn requests open right now, plus held ones (tracked queries use their own)."""
        return (0 if self.tickets else len(self._ids)) + self.held

    @property
    def pending(self) -> int:
        """Pre-drawn requests not ended yet: at the server, or still to arrive (a count, not a scan of every row)."""
        queued = sum(1 for request in self._ids if request >= 0) if self.tickets else len(self._ids)
        return queued + len(self.arrival_s) - self.next_arrival

    def backlog_work(self) -> float:
        """ACU-seconds of work queued or in service: at C ACUs it takes this / C seconds to drain."""
        return self._done[-1] - self.service if self._ids else 0.0

    @property
    def queries(self) -> int:
        """Queries at the server (executing or queued)."""
        return len(self._ids)

    def backlog_s(self) -> float:
        """Seconds the pending work would take to drain at the current rate (inf if stopped with work)."""
        if not self._ids:
            return 0.0
        work = self._done[-1] - self.service
        return work / self.rate if self.rate > 0 else _INF

    def next_arrival_s(self) -> float:
        """When the next pre-drawn request asks for a connection (inf when none is left)."""
        n = self.next_arrival
        return float(self.arrival_s[n]) if n < len(self.arrival_s) else _INF

    def next_end_s(self) -> float:
        """When the next pending query ends (completes or times out) if nothing changes; inf if none will."""
        if not self._ids:
            return _INF
        finish = self.now + (self._done[0] - self.service) / self.rate if self.rate > 0 else _INF
        if self.statement_timeout_s > 0:  # without one every deadline is inf (a scan of hundreds of tickets)
            return min(finish, min(self._deadline))
        return finish

    def set_rate(self, now: float, rate: float) -> None:
        """Serve at ``rate`` from ``now`` on (advancing to ``now`` first)."""
        self.advance(now)
        self.rate = rate

    def submit(self, now: float, cost_acu_s: float) -> int:
        """Queue a tracked query at ``now`` (connection limits are the caller's); returns its ticket."""
        self.advance(now)
        ticket = self.tickets
        self.tickets += 1
        start = max(self.service, self._done[-1]) if self._done else self.service
        deadline = now + self.statement_timeout_s if self.statement_timeout_s > 0 else _INF
        self._ids.append(-(ticket + 1))  # the lists of _lists, appended to one by one: once per tracked query
        self._arrived.append(now)
        self._level.append(self.service)
        self._done.append(start + cost_acu_s)
        self._start.append(start)
        self._deadline.append(deadline)
        return ticket

    def cancel(self, now: float, ticket: int) -> None:
        """Withdraw a tracked query (its caller gave up); the queries behind it move up. No callback."""
        self.advance(now)
        if -(ticket + 1) in self._ids:
            self._remove(self._ids.index(-(ticket + 1)), self.service)

    def advance(self, t1: float) -> None:
        """Admit the pre-drawn arrivals before ``t1``, serve until ``t1`` and record who ended."""
        t0 = self.now
        if t1 <= t0:
            if self._ids and self.next_end_s() <= t0 + _EPS:  # ends due now (a watcher woke for them)
                self._serve_one_by_one(t0, t0, self.service, self.service)
            return
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.still_describes(self, t1):
            self._take_projection(ahead, t1)
            return
        first = self.next_arrival  # tracked runs have no pre-drawn arrivals: no search
        stop = int(self.arrival_s.searchsorted(t1, side="left")) if first < len(self.arrival_s) else first
        pending = None
        if stop > first:
            at_service = self.service + self.rate * (self.arrival_s[first:stop] - t0)
            if (stop - first > _SMALL and self.statement_timeout_s == 0 and not self._crowded
                    and not self._full_at_first(at_service)):
                pending = self._admit_batch(first, stop, at_service)
            else:
                self._admit_one_by_one(first, at_service)
            self.next_arrival = stop
        s0, s1 = self.service, self.service + self.rate * (t1 - t0)
        simple = self.statement_timeout_s == 0 and self.tickets == 0
        if simple and pending is not None:
            self._serve_batch(t0, t1, s0, s1, *pending)
        elif simple and len(self._ids) > _SMALL:
            self._serve_queue(t0, t1, s0, s1)
        elif self._ids:
            self._serve_one_by_one(t0, t1, s0, s1)
        self.now, self.service = t1, s1

    def _take_projection(self, ahead: Projection, t1: float) -> None:
        """Advance to ``t1`` with what ``ahead`` computed for this trajectory (the controller's fast-forward has
        just read it): the same numbers, without admitting and serving the span a second time."""
        at = np.array([t1])
        s1 = self.service + self.rate * (t1 - self.now)
        _, admitted, finished = ahead._counts(at)
        admitted, finished = int(admitted[0]), int(finished[0])
        was_finished, was_admitted = ahead.taken  # the server's queue is the projection's entries between these
        first, offset = self.next_arrival, was_admitted - ahead.pending
        from_queue = min(finished, was_admitted) - was_finished
        new, new_finished = admitted - was_admitted, max(0, finished - was_admitted)
        self.work_done = float(ahead.work_done(at)[0])
        self.connection_seconds = float(ahead.connection_seconds(at)[0])
        self.last_close_s = float(ahead.last_close_s(at)[0])
        self.last_open_s = float(ahead.last_open_s(at)[0])
        if from_queue:
            ended = np.array(self._ids[:from_queue], dtype=np.int64)
            self.finish_s[ended] = ahead.finish[was_finished:was_finished + from_queue]
            self.outcome[ended] = OK
        if new_finished:  # new arrivals were all admitted: their ids run on
            self.finish_s[first:first + new_finished] = ahead.finish[finished - new_finished:finished]
            self.outcome[first:first + new_finished] = OK
        waiting = slice(offset + new_finished, offset + new)
        self._ids = self._ids[from_queue:] + list(range(first + new_finished, first + new))
        self._arrived = self._arrived[from_queue:] + ahead.arrived_new[waiting].tolist()
        self._level = self._level[from_queue:] + ahead.at_service[waiting].tolist()
        self._done = ahead.done[finished:admitted].tolist()
        self._start = ahead._start[finished:admitted].tolist()
        self._deadline = [_INF] * len(self._ids)
        self.next_arrival = first + new
        self.now, self.service = t1, s1
        ahead.taken = (finished, admitted)
        ahead._state = ahead._state_of(self)
        self._ahead = ahead

    # --- admission of pre-drawn requests ----------------------------------------------------------------------

    def _full_at_first(self, at_service: np.ndarray) -> bool:
        """Whether the first arrival already finds every connection taken: then a batch cannot be admitted whole
        (a saturated cluster, step after step), and trying costs a Lindley recursion for nothing."""
        queue = self._done
        return bool(queue) and len(queue) - bisect_right(queue, float(at_service[0])) + self.held + 1 > \
            self._max_connections()

    def _admit_batch(self, first: int, stop: int, at_service: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """Every arrival of the batch at once, unless one would exceed the connection limit; returns the whole
        pending queue as arrays (ids, arrived, done, start), or None after falling back to one by one."""
        cost = self.cost[first:stop]
        total = np.cumsum(cost)
        tail = self._done[-1] if self._done else -np.inf
        done = total + np.maximum(np.maximum.accumulate(at_service - total + cost), tail)
        everything = np.concatenate((self._done, done))
        if _full_at(everything, len(self._done), at_service, self._max_connections() - self.held).any():
            self._crowded = True  # until a batch is admitted whole again, go one by one at once (a saturated
            self._admit_one_by_one(first, at_service)  # 1-ACU sale tried and refused 146 batches in a row)
            return None
        self.last_open_s = max(self.last_open_s, float(self.arrival_s[stop - 1]))
        self._level += at_service.tolist()
        self._deadline += [_INF] * (stop - first)
        return (np.concatenate((np.array(self._ids, dtype=np.int64), np.arange(first, stop))),
                np.concatenate((self._arrived, self.arrival_s[first:stop])), everything,
                np.concatenate((self._start, done - cost)))

    def _admit_one_by_one(self, first: int, at_service: np.ndarray) -> None:
        """One at a time: for a few arrivals (faster than numpy), or at the connection limit, where a refusal
        changes what every later arrival sees. While the queue is full, every arrival before the next
        departure is refused in one step (a saturated 1-ACU sale: 0.4 s → 0.05 s)."""
        limit = self._max_connections() - self.held
        queue, starts = self._done, self._start
        levels = at_service.tolist()
        costs = self.cost[first:first + len(levels)].tolist()
        times = self.arrival_s[first:first + len(levels)].tolist()
        timeout = self.statement_timeout_s
        head = 0  # queue[:head] had left before the current arrival's service level
        size, tail = len(queue), (queue[-1] if queue else -_INF)
        k, count = 0, len(levels)
        taken: list[int] = []  # the arrivals admitted (offsets from first); their other columns follow in bulk
        push_done, push_start, take = queue.append, starts.append, taken.append  # the hot loop of a saturated run
        while k < count:
            level = levels[k]
            while head < size and queue[head] <= level:
                head += 1
            if size - head >= limit:  # full: refuse every arrival before the next departure, then try the next
                if head == size:  # room for none (a limit of 0): every later arrival is refused too
                    break
                k = bisect_left(levels, queue[head], k + 1)
                if k == count:
                    break
                level = levels[k]
                head += 1  # queue[head] <= level: it has left
                while head < size and queue[head] <= level:
                    head += 1
                if size - head >= limit:
                    continue
            start = level if level >= tail else tail
            tail = start + costs[k]
            push_done(tail)
            push_start(start)
            take(k)
            size += 1
            k += 1
        if taken:
            self._ids.extend([first + k for k in taken])
            self._arrived.extend([times[k] for k in taken])
            self._level.extend([levels[k] for k in taken])
            self._deadline.extend([times[k] + timeout for k in taken] if timeout > 0 else [_INF] * len(taken))
            self.last_open_s = max(self.last_open_s, times[taken[-1]])
        self._crowded = self._crowded and len(taken) < count
        if len(taken) < count:
            refused = np.ones(count, dtype=bool)
            refused[taken] = False
            self._refuse(first + np.flatnonzero(refused))

    def _refuse(self, requests: np.ndarray) -> None:
        self.finish_s[requests] = self.arrival_s[requests]
        self.outcome[requests], self.error[requests] = ERROR, self.refusal_code

    # --- service ---------------------------------------------------------------------------------------------

    def _serve_batch(self, t0: float, t1: float, s0: float, s1: float, ids: np.ndarray, arrived: np.ndarray,
                     done: np.ndarray, start: np.ndarray) -> None:
        """Serve the whole pending queue (given as arrays) with numpy; keep the unfinished as lists."""
        served = np.minimum(done, s1)
        served -= np.maximum(start, s0)
        self.work_done += float(np.maximum(served, 0.0, out=served).sum())  # np.clip's wrapper costs more than this
        # A stopped server (paused, resuming, applying a change) finishes nothing, as in _serve_one_by_one: a
        # request whose cost rounds to nothing next to the service level would otherwise end at 0 / 0 seconds.
        finished = int(done.searchsorted(s1, side="right")) if self.rate > 0 else 0
        since = np.maximum(arrived, t0)
        if finished:
            self._end_served(t0, s0, ids[:finished], since[:finished], done[:finished])
        self.connection_seconds += float((t1 - since[finished:]).sum())
        self._level = self._level[finished:]
        self._deadline = self._deadline[finished:]
        self._ids, self._arrived = ids[finished:].tolist(), arrived[finished:].tolist()
        self._done, self._start = done[finished:].tolist(), start[finished:].tolist()

    def _serve_queue(self, t0: float, t1: float, s0: float, s1: float) -> None:
        """``_serve_batch`` for a queue held as lists: the finished are found by bisection and only they go through
        numpy; of the rest only the first is served at all (the others start after it ends), and they stay lists."""
        done = self._done
        finished = bisect_right(done, s1) if self.rate > 0 else 0  # done levels rise: first in, first out
        arrived = self._arrived
        if finished:
            ends = np.array(done[:finished])
            work = ends - np.maximum(np.array(self._start[:finished]), s0)
            self.work_done += float(np.maximum(work, 0.0, out=work).sum())
            self._end_served(t0, s0, np.array(self._ids[:finished], dtype=np.int64),
                             np.maximum(np.array(arrived[:finished]), t0), ends)
        if finished < len(done):
            self.work_done += max(0.0, min(done[finished], s1) - max(self._start[finished], s0))
            self.connection_seconds += sum(t1 - (a if a > t0 else t0) for a in arrived[finished:])
        for pending in self._lists:
            del pending[:finished]

    def _end_served(self, t0: float, s0: float, ids: np.ndarray, since: np.ndarray, done: np.ndarray) -> None:
        """Record the end of pre-drawn requests ``ids`` that finished since ``t0``: each when the service reached its
        ``done`` level, never before it held its connection (``since``: its arrival, or ``t0``)."""
        finish = t0 + (done - s0) / self.rate
        # Never before arrival: a request costing next to nothing would otherwise finish 1e-16 s early.
        np.maximum(finish, since, out=finish)
        self.finish_s[ids] = finish
        self.outcome[ids] = OK
        self.last_close_s = max(self.last_close_s, float(finish[-1]))
        self.connection_seconds += float((finish - since).sum())

    def _serve_one_by_one(self, t0: float, t1: float, s0: float, s1: float) -> None:
        """Serve in plain Python: a handful of requests, or statement timeouts and tracked queries, where a
        cancelled query moves every query behind it up (the ones before it never notice)."""
        rate, i = self.rate, 0
        while i < len(self._ids):
            finish = t0 + (self._done[i] - s0) / rate if rate > 0 else _INF
            if finish <= t1 + _EPS and finish <= self._deadline[i]:
                finish = max(min(finish, t1), self._arrived[i])  # rounding must not end it before it arrived
                self.work_done += max(0.0, self._done[i] - max(self._start[i], s0))
                self._end(self._ids[i], self._arrived[i], finish, OK, NO_ERROR, t0)
                i += 1
                continue
            # Query i is still running at t1 (or times out); those behind it cannot finish, but may time out.
            j = i
            while self.statement_timeout_s > 0 and j < len(self._ids):
                if self._deadline[j] <= t1 + _EPS:
                    self._time_out(j, t0, t1, s0)
                else:
                    j += 1
            break
        if i < len(self._ids):
            # Only the first unfinished query is in service: the ones behind it start after it ends, past s1.
            self.work_done += max(0.0, min(self._done[i], s1) - max(self._start[i], s0))
            if not self.tickets:  # pre-drawn requests hold their connections while they wait
                self.connection_seconds += sum(t1 - max(arrived, t0) for arrived in self._arrived[i:])
        if i:
            for pending in self._lists:
                del pending[:i]

    def _time_out(self, index: int, t0: float, t1: float, s0: float) -> None:
        deadline = min(self._deadline[index], t1)
        level = s0 + self.rate * (deadline - t0)
        self.work_done += max(0.0, min(self._done[index], level) - max(self._start[index], s0))
        self._end(self._ids[index], self._arrived[index], deadline, TIMEOUT, STATEMENT_TIMEOUT, t0)
        self._remove(index, level)

    def _end(self, request: int, arrived: float, time_s: float, outcome: int, error: int, t0: float) -> None:
        if request >= 0:
            self.finish_s[request] = time_s
            self.outcome[request], self.error[request] = outcome, error
            self.last_close_s = max(self.last_close_s, time_s)
            self.connection_seconds += time_s - max(arrived, t0)
        elif self._on_ticket_end is not None:
            self._on_ticket_end(-request - 1, time_s, error)

    def _remove(self, index: int, level: float) -> None:
        """Take pending ``index`` out at service level ``level``; the queries behind it start earlier."""
        previous = max(level, self._done[index - 1]) if index else level
        for pending in self._lists:
            del pending[index]
        for j in range(index, len(self._ids)):
            start = max(self._level[j], previous)
            self._done[j] = start + (self._done[j] - self._start[j])
            self._start[j] = start
            previous = self._done[j]

    def abort_all(self, now: float, code: int = FORCED_SCALING) -> list[int]:
        """End every pending query with error ``code`` (the forced-scaling error, or ``LOST_CONNECTION`` when the
        instance fails); returns the pre-drawn ids and tickets aborted (tickets as ``-(k + 1)``)."""
        self.advance(now)
        aborted = list(self._ids)
        for request, arrived in zip(aborted, self._arrived, strict=True):
            self._end(request, arrived, now, ERROR, code, now)
        for pending in self._lists:
            pending.clear()
        return aborted


class Projection:
    """What a simple server (no statement timeout, no tracked query) will have done at later times if its rate
    stays as it is: the controller's fast-forward reads many controller steps and metrics samples from one
    projection instead of advancing the server step by step.

    It admits the pre-drawn arrivals before ``until_s`` with one Lindley recursion. ``valid_until_s`` is the
    last time it answers for: ``until_s``, or the first arrival the connection limit would refuse (a refusal
    changes what every later arrival sees, so the projection stops there). The server itself is not changed.

    Example:
        >>> server = QueueServer(np.array([0.5, 1.5]), np.array([0.5, 0.5]), max_connections=lambda: 90)
        >>> server.set_rate(0.0, 1.0)
        >>> ahead = Projection(server, 10.0)
        >>> ahead.connections(np.array([0.75, 1.25, 1.75])).tolist(), ahead.last_close_s(np.array([3.0])).tolist()
        ([1, 0, 1], [2.0])
    """

    def __init__(self, server: QueueServer, until_s: float) -> None:
        now, level, rate = server.now, server.service, server.rate
        if rate <= 0 or server.tickets or server.statement_timeout_s > 0:
            raise ValueError("a projection needs a serving rate > 0, no tracked query and no statement timeout")
        self.now, self.level, self.rate, self.held = now, level, rate, server.held
        self._all_arrivals = server.arrival_s
        self._state = self._state_of(server)
        server._ahead = self
        self._work_done, self._connection_seconds = server.work_done, server.connection_seconds
        self._last_close, self._last_open = server.last_close_s, server.last_open_s
        first = server.next_arrival
        stop = int(server.arrival_s.searchsorted(until_s, side="left"))
        queued = self.pending = len(server._done)
        # These arrays span up to an hour of arrivals, computed once per fast-forward, in the arrays of the server's
        # previous projection: fresh memory costs more to touch than to compute in (page faults).
        scratch = self._scratch = server._scratch
        scratch.generation += 1
        self._generation = scratch.generation
        # A saturated cluster refuses an arrival within a few: admit a first few hundred before the rest (a 1-ACU
        # sale's projections were cut within five arrivals of three thousand, step after step).
        self.valid_until_s = until_s
        for end in ((first + _PROBE, stop) if stop - first > 4 * _PROBE else (stop,)):
            arrived, cost, total, at_service, done = self._admit(server, first, end)
            over = np.flatnonzero(_full_at(done, queued, at_service, server._max_connections() - server.held))
            if len(over):
                cut = int(over[0])
                self.valid_until_s = float(arrived[cut])
                arrived, cost, total, at_service, done = (arrived[:cut], cost[:cut], total[:cut], at_service[:cut],
                                                          done[:queued + cut])
                break
        count = len(done)
        self.arrived_new, self.at_service, self.done = arrived, at_service, done
        self.taken = (0, queued)  # the entries the server has taken up to (finished, admitted)
        self._last_counts: tuple[np.ndarray | None, tuple] = (None, ())  # the last times _counts answered, and how
        waiting_since = np.maximum(np.array(server._arrived), now)
        finish = self.finish = np.subtract(done, level, out=scratch.array("finish", count))
        finish /= rate
        finish += now
        np.maximum(finish[:queued], waiting_since, out=finish[:queued])
        np.maximum(finish[queued:], arrived, out=finish[queued:])  # a new arrival waits from its arrival
        start = self._start = scratch.array("start", count)
        start[:queued] = server._start
        np.subtract(done[queued:], cost, out=start[queued:])
        # Sums from the projection's start: work served (a running sum with a leading 0; a new request's is its
        # cost), connection-seconds of the finished, and the waiting time of the queued (read at a few hundred
        # times only: block sums, a tenth of the time of another running sum over every request).
        work = self._cum_work = scratch.array("work", 1 + count)
        work[0] = 0.0
        np.cumsum(done[:queued] - np.maximum(start[:queued], level), out=work[1:1 + queued])
        np.add(total, work[queued], out=work[1 + queued:])
        held = self._held = _SumsBefore(scratch, "held", count)
        np.subtract(finish[:queued], waiting_since, out=held.values[:queued])
        np.subtract(finish[queued:], arrived, out=held.values[queued:count])
        held.sum_blocks()
        since = self._since = _SumsBefore(scratch, "since", count)
        np.subtract(waiting_since, now, out=since.values[:queued])
        np.subtract(arrived, now, out=since.values[queued:count])
        since.sum_blocks()

    def _admit(self, server: QueueServer, first: int, stop: int) -> tuple[np.ndarray, ...]:
        """The arrivals ``first:stop`` admitted if none were refused: (arrived, cost, running cost, service level at
        arrival, done level of the queued and then of these), in the scratch arrays."""
        now, level, rate, scratch, queued = self.now, self.level, self.rate, self._scratch, self.pending
        arrived, cost = server.arrival_s[first:stop], server.cost[first:stop]
        at_service = np.subtract(arrived, now, out=scratch.array("at_service", len(arrived)))
        at_service *= rate
        at_service += level
        total = np.cumsum(cost, out=scratch.array("total", len(arrived)))
        done = scratch.array("done", queued + len(arrived))
        done[:queued] = server._done
        new = done[queued:]  # the Lindley recursion of QueueServer._admit_batch
        np.subtract(at_service, total, out=new)
        new += cost
        if queued and len(new):  # no request starts before the queue's last one is done
            new[0] = max(new[0], server._done[-1])
        np.maximum.accumulate(new, out=new)
        new += total
        return arrived, cost, total, at_service, done

    @staticmethod
    def _state_of(server: QueueServer) -> tuple:
        return (server.now, server.service, server.rate, server.next_arrival, len(server._ids), server.held,
                server._max_connections(), server.tickets, server.statement_timeout_s)

    def still_describes(self, server: QueueServer, time_s: float) -> bool:
        """Whether the server is still where this projection started, and ``time_s`` within its reach."""
        return time_s <= self.valid_until_s and self._state_of(server) == self._state

    def _counts(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(service level, requests admitted, requests finished) at each time: admitted before it, finished by it."""
        if self._generation != self._scratch.generation:
            raise RuntimeError("a newer projection of this server has reused this one's arrays: read the latest only")
        last_times, counts = self._last_counts
        if times is last_times:  # work, connections and their seconds are read at the same times (the same array)
            return counts
        level = self.level + self.rate * (times - self.now)
        admitted = self.pending + self.arrived_new.searchsorted(times, side="left")
        finished = np.minimum(self.done.searchsorted(level, side="right"), admitted)
        self._last_counts = (times, (level, admitted, finished))  # held: no other array can take its id
        return level, admitted, finished

    def connections(self, times: np.ndarray) -> np.ndarray:
        """Connections the server counts at each time (pre-drawn requests open, plus held ones)."""
        _, admitted, finished = self._counts(times)
        return admitted - finished + self.held

    def work_done(self, times: np.ndarray) -> np.ndarray:
        """``QueueServer.work_done`` at each time."""
        level, admitted, finished = self._counts(times)
        partial = np.zeros(len(times))
        running = finished < admitted
        index = finished[running]
        partial[running] = np.maximum(np.minimum(self.done[index], level[running])
                                      - np.maximum(self._start[index], self.level), 0.0)
        return self._work_done + self._cum_work[finished] + partial

    def connection_seconds(self, times: np.ndarray) -> np.ndarray:
        """``QueueServer.connection_seconds`` at each time."""
        _, admitted, finished = self._counts(times)
        waiting = (admitted - finished) * (times - self.now) - (self._since.at(admitted) - self._since.at(finished))
        return self._connection_seconds + self._held.at(finished) + waiting

    def last_close_s(self, times: np.ndarray) -> np.ndarray:
        """``QueueServer.last_close_s`` at each time."""
        _, _, finished = self._counts(times)
        latest = self.finish[np.maximum(finished - 1, 0)] if len(self.finish) else np.zeros(len(times))
        return np.where(finished > 0, np.maximum(latest, self._last_close), self._last_close)

    def last_open_s(self, times: np.ndarray) -> np.ndarray:
        """``QueueServer.last_open_s`` at each time."""
        new = self.arrived_new.searchsorted(times, side="left")
        latest = self.arrived_new[np.maximum(new - 1, 0)] if len(self.arrived_new) else np.zeros(len(times))
        return np.where(new > 0, np.maximum(latest, self._last_open), self._last_open)

    def arrival_at(self, time_s: float) -> bool:
        """Whether a pre-drawn request asks for a connection at exactly ``time_s`` (it wins over a pause timer)."""
        index = int(self._all_arrivals.searchsorted(time_s, side="left"))
        return index < len(self._all_arrivals) and self._all_arrivals[index] == time_s


class _Scratch:
    """The arrays of a server's latest projection, reused by the next one: a projection fills a dozen arrays of up
    to an hour of arrivals, and touching fresh memory (page faults) cost more than computing in it. Only the latest
    projection of a server may be read: ``generation`` counts them.

    Example:
        >>> scratch = _Scratch()
        >>> first = scratch.array("done", 10)
        >>> bool(np.shares_memory(first, scratch.array("done", 8))), len(scratch.array("done", 20))
        (True, 20)
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self.generation = 0

    def array(self, name: str, size: int) -> np.ndarray:
        """``size`` elements of the array ``name`` (its values are left over: the caller fills them)."""
        array = self._arrays.get(name)
        if array is None or len(array) < size:
            # Look-aheads double from a minute to an hour: growing by at least twice reallocates a few times only.
            array = self._arrays[name] = np.empty(max(size, 2 * len(array) if array is not None else 0, 1024))
        return array[:size]


_BLOCK = 16  # values summed per block of a _SumsBefore


class _SumsBefore:
    """``values[:k].sum()`` for any k, read at a few times: the sums of blocks of ``_BLOCK`` values and their running
    sum, plus the values of k's own block before it. A running sum over every value (``np.cumsum``) is a scalar loop
    (3.3 ns a value here), where block sums take vectorised loops (0.2 ns).

    Example:
        >>> sums = _SumsBefore(_Scratch(), "sums", 70)
        >>> sums.values[:] = np.arange(70.0)
        >>> sums.sum_blocks()
        >>> sums.at(np.array([0, 1, 16, 33, 70])).tolist()
        [0.0, 0.0, 120.0, 528.0, 2415.0]
    """

    def __init__(self, scratch: _Scratch, name: str, count: int) -> None:
        padded = scratch.array(name, -(-count // _BLOCK) * _BLOCK)
        padded[count:] = 0.0  # the last block's rest adds nothing
        self.values = padded[:count]  # the caller fills them, then calls sum_blocks()
        self._blocks = padded.reshape(-1, _BLOCK)
        self._before = np.zeros(len(self._blocks) + 1)

    def sum_blocks(self) -> None:
        """Take the block sums of ``values`` as filled now."""
        np.cumsum(np.einsum("ij->i", self._blocks), out=self._before[1:])  # 3 times faster than sum(axis=1)

    def at(self, index: np.ndarray) -> np.ndarray:
        """The sum of the values before each index (0 to ``len(values)``)."""
        if not len(self._blocks):
            return np.zeros(len(index))
        block, within = np.divmod(index, _BLOCK)
        rows = self._blocks[np.minimum(block, len(self._blocks) - 1)]
        partial = np.where(within[:, None] > _IN_BLOCK, rows, 0.0).sum(axis=1)
        return self._before[block] + partial


_IN_BLOCK = np.arange(_BLOCK)
