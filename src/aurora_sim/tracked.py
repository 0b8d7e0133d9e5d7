"""Tracked clients: each request a simpy process that connects, queries, fails and retries as its strategy says.

"Simulate the individuals": with ``Workload(connections=…)`` or ``Workload(retry=…)`` every request is a
generator driven by the events it waits for (a ``_Task``: a simpy process without a process's own events). It
gets a connection (its own, from a ``Pool``, or a Data API call), sends its query to the cluster's server, and on
a failure the ``RetryPolicy`` decides whether and when it tries again. ``Clients`` records one row per request:
submit and finish times, attempts, outcome and the last error's exact text.

Example:
    >>> from aurora_sim import ClusterConfig, Workload, simulate
    >>> from aurora_sim.clients import ConnectionPool
    >>> run = simulate(ClusterConfig(), Workload(segments=[(0, 60, 2.0)], connections=ConnectionPool(min_size=1)),
    ...                duration_s=120, seed=1)
    >>> run.sql("SELECT count(*), max(attempts) FROM requests WHERE outcome = 'ok'").fetchall()[0][1]
    1
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import simpy
from simpy.events import Initialize

from . import facts, server
from .clients import (
    DATA_API_RESUMING,
    DATA_API_TIMEOUT,
    DROPPED,
    FORCED_ABORT,
    POOL_TIMEOUT,
    REFUSED,
    STATEMENT_TIMEOUT,
    ConnectionPool,
    ConnectPerRequest,
    DataApi,
    RetryPolicy,
)
from .cluster import CONNECTION_AGE_LIMIT_MESSAGE, PAUSED, RESUMING, Cluster
from .names import CONNECTION_CLOSED, FAILING_OVER
from .workload import Workload

OUTCOME_OF = {None: server.OK, POOL_TIMEOUT: server.TIMEOUT, DATA_API_TIMEOUT: server.TIMEOUT,
              STATEMENT_TIMEOUT: server.TIMEOUT}


class Failure(Exception):
    """An attempt failed: ``error_class`` decides whether it is retried, ``text`` is what the client saw."""

    def __init__(self, error_class: str, text: str) -> None:
        super().__init__(error_class, text)  # both in args: simpy re-raises a copy made from them
        self.error_class, self.text = error_class, text


class _Cut(Exception):
    """Thrown into a Data API call's task when the call limit cuts it."""


class _Task:
    """Drives one generator on the events it yields, as a ``simpy.Process`` does, without the process's own
    events: no start event (it runs to its first wait at once) and no end event (nobody waits for a request).
    Those two were a quarter of the events of notebook 01's burst, where a request waits for about seven.

    The generator resumes in the callbacks of the event it waits for, in the same order a process would, so a
    run is the same event for event. ``throw`` stands in for ``Process.interrupt``.

    Example:
        >>> env = simpy.Environment()
        >>> def sleeper():
        ...     yield env.timeout(2)
        ...     print("awake at", env.now)
        >>> _Task().start(sleeper())
        >>> env.run()
        awake at 2
    """

    __slots__ = ("_generator", "_target")

    def __init__(self) -> None:
        self._generator = None
        self._target: simpy.Event | None = None  # the event it waits for

    def start(self, generator) -> None:
        """Run ``generator`` to the first event it waits for, now (a process would start in an event of its own)."""
        self._generator = generator
        self._step(None, None)

    def throw(self, error: BaseException) -> None:
        """Stop waiting and raise ``error`` where the generator waits."""
        target = self._target
        if target is not None and target.callbacks is not None:
            target.callbacks.remove(self._resume)
        self._step(None, error)

    def _resume(self, event: simpy.Event) -> None:
        if event.ok:
            self._step(event.value, None)
        else:  # a copy, as simpy's processes raise: the original's traceback would grow a cycle through this task
            event.defused = True
            error = type(event.value)(*event.value.args)
            error.__cause__ = event.value
            self._step(None, error)

    def _step(self, value: object, error: BaseException | None) -> None:
        generator = self._generator
        while True:
            try:
                event = generator.send(value) if error is None else generator.throw(error)
            except StopIteration:
                self._target = None
                return
            if event.callbacks is not None:  # not processed yet: resume in its callbacks
                event.callbacks.append(self._resume)
                self._target = event
                return
            value, error = (event.value, None) if event.ok else (None, event.value)


class _Call:
    """A Data API call in progress: when the call limit cuts it, whether it has ended, and whether it waited for a
    resume."""

    __slots__ = ("deadline", "done", "saw_resume", "task")

    def __init__(self, task: _Task, deadline: float) -> None:
        self.task, self.deadline, self.done, self.saw_resume = task, deadline, False, False


class _CallLimits:
    """The Data API's call limit for every call, with one timer instead of a timeout per call (most calls end in
    milliseconds, and a timeout each was a seventh of a call's events).

    Calls are cut in the order they started, each at exactly ``start + limit_s`` (the time a timeout created at
    its start would fire at): a timer whose delay cannot land on that float exactly wakes half-way first.

    Example:
        >>> env = simpy.Environment()
        >>> def stuck():
        ...     try:
        ...         yield env.event()
        ...     except _Cut:
        ...         print("cut at", env.now)
        >>> limits, task = _CallLimits(env, 45.0), _Task()
        >>> task.start(stuck())
        >>> _ = limits.start(task)
        >>> env.run()
        cut at 45.0
    """

    def __init__(self, env: simpy.Environment, limit_s: float) -> None:
        self.env, self.limit_s = env, limit_s
        self._calls: deque[_Call] = deque()  # in the order they started: their deadlines never decrease
        self._armed_for: float | None = None  # the deadline the timer waits for (None: no timer)

    def start(self, task: _Task) -> _Call:
        """A call of ``task`` starts now."""
        call = _Call(task, self.env.now + self.limit_s)  # the float Timeout(limit_s) would be scheduled at
        self._calls.append(call)
        if self._armed_for is None:
            self._arm(call.deadline)
        return call

    def _arm(self, deadline: float) -> None:
        now, self._armed_for = self.env.now, deadline
        delay = deadline - now
        if now + delay != deadline:  # rounding would miss it: wake half-way, nearer, where the delay is exact
            delay /= 2
        self.env.timeout(delay).callbacks.append(self._wake)

    def _wake(self, _timer: simpy.Event) -> None:
        now, calls = self.env.now, self._calls
        if now < self._armed_for:
            self._arm(self._armed_for)
            return
        while calls and (calls[0].done or calls[0].deadline <= now):
            call = calls.popleft()
            if not call.done:
                call.task.throw(_Cut())
        self._armed_for = None
        if calls:
            self._arm(calls[0].deadline)


class Connection:
    """One client connection; the cluster may close it (``alive`` False) while a pool keeps it, and a fault may
    take the instance it leads to (``instance`` older than the cluster's ``instance_generation``)."""

    __slots__ = ("alive", "busy", "idle_since", "instance", "opened_s", "retire")

    def __init__(self, opened_s: float, instance: int = 0) -> None:
        self.opened_s, self.alive, self.busy, self.retire = opened_s, True, False, False
        self.idle_since, self.instance = opened_s, instance


class Clients:
    """Runs every request of a tracked workload against ``cluster`` and keeps their rows."""

    def __init__(self, env: simpy.Environment, cluster: Cluster, workload: Workload, arrival_s: np.ndarray,
                 cost_acu_s: np.ndarray, jitter_rng: np.random.Generator) -> None:
        self.env, self.cluster, self.config = env, cluster, cluster.config
        self.assumptions = cluster.assumptions
        self.strategy = workload.connections
        self.policy = workload.retry or RetryPolicy("none")
        self.arrival_s, self.cost = arrival_s, cost_acu_s
        self._costs = cost_acu_s.tolist()  # Python floats: an item of a list is read 10 times faster
        count = len(arrival_s)
        self.finish_s = np.full(count, np.nan)
        self.outcome = np.zeros(count, dtype=np.int8)
        self.attempts = np.zeros(count, dtype=np.int32)
        self.error: list[str | None] = [None] * count
        self.pending = count
        self._rng = jitter_rng
        self._tokens = self.policy.budget_tokens
        self.pool = Pool(self, workload.connections) if isinstance(workload.connections, ConnectionPool) else None
        self._attempt = self._attempt_of(workload.connections)
        self._call_limits = _CallLimits(env, facts.DATA_API_CALL_LIMIT_S)
        self._paid = isinstance(workload.connections, ConnectPerRequest)
        self._arrivals, self._next_arrival = self.arrival_s.tolist(), 0
        Initialize(env, self)  # calls _resume: the first arrival is scheduled where an arrivals process would start

    def _resume(self, event: simpy.Event) -> None:
        """Start the requests arriving now, after scheduling the next arrival (a timeout with this callback: one
        event per arrival time, and a request starts without an event of its own). The order of it all is an
        arrivals process's, so every time comes out the same to the last bit."""
        now, arrivals = self.env.now, self._arrivals
        first = self._next_arrival
        # The request this timeout waited for is due even if now rounds a hair below its arrival time.
        last = first if isinstance(event, Initialize) else first + 1
        while last < len(arrivals) and arrivals[last] <= now:
            last += 1
        self._next_arrival = last
        if last < len(arrivals):
            self.env.timeout(arrivals[last] - now).callbacks.append(self._resume)
        request = self._request
        for index in range(first, last):
            task = _Task()
            task.start(request(task, index))

    # --- one request, with retries ---------------------------------------------------------------------------

    def _request(self, task: _Task, request: int):
        policy, attempt_once, cost = self.policy, self._attempt, self._costs[request]
        previous_delay = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                yield from attempt_once(task, cost)
            except Failure as caught:  # its class and text only: the exception's traceback holds this frame
                error_class, text = caught.error_class, caught.text
            else:
                error_class = text = None
                if self._tokens is not None:
                    self._tokens = min(policy.budget_tokens, self._tokens + policy.budget_deposit)
                break
            if not policy.retries(error_class) or attempt >= policy.max_attempts:
                break
            if self._tokens is not None:
                if self._tokens < 1:
                    break
                self._tokens -= 1
            previous_delay = policy.delay_s(attempt, previous_delay, self._rng)
            yield self.env.timeout(previous_delay)
        self.finish_s[request] = self.env.now
        self.attempts[request] = attempt
        if error_class is None:
            self.outcome[request] = server.OK
        else:
            self.outcome[request] = OUTCOME_OF.get(error_class, server.ERROR)
            self.error[request] = text
        self.pending -= 1

    def _attempt_of(self, strategy: object):
        """The generator function of one attempt under ``strategy``."""
        if isinstance(strategy, DataApi):
            return self._data_api_call
        return self._pooled_attempt if self.pool is not None else self._connected_attempt

    def _pooled_attempt(self, _task: _Task, cost: float):
        connection = yield from self.pool.acquire()
        try:
            code = yield self._send(connection, cost)
            self._answer(connection, code)
        finally:
            self.pool.release(connection)

    def _connected_attempt(self, _task: _Task, cost: float):
        """ConnectPerRequest, or the foundation's free connection per request with a retry policy: ``connect``
        and ``query`` in one generator (a level less for each of a request's events to pass through)."""
        cluster = self.cluster
        cluster.request_connection()
        while cluster.state in (PAUSED, RESUMING):
            yield cluster.awake
        connection = self._open()
        try:
            if self._paid:
                yield self.env.timeout(self.assumptions.connect_latency_s)
                code = yield cluster.submit(self.assumptions.connect_cpu_acu_s)
                if code != server.NO_ERROR:
                    raise self._failure_of(code)
            code = yield self._send(connection, cost)
            self._answer(connection, code)
        finally:
            self.disconnect(connection)

    # --- connections and queries -----------------------------------------------------------------------------

    def connect(self, *, paid: bool = True, pooled: bool = False):
        """Open a connection: wakes a paused cluster and waits for it; refused above max_connections. A pooled
        connection may live long enough to meet the cluster's 24-hour cap."""
        cluster = self.cluster
        cluster.request_connection()
        while cluster.state in (PAUSED, RESUMING):
            yield cluster.awake
        connection = self._open(pooled=pooled)
        if paid:
            yield self.env.timeout(self.assumptions.connect_latency_s)
            code = yield cluster.submit(self.assumptions.connect_cpu_acu_s)
            if code != server.NO_ERROR:
                self.disconnect(connection)
                raise self._failure_of(code)
        return connection

    def _open(self, *, pooled: bool = False) -> Connection:
        """The connection an awake cluster grants now, counted; a Failure if it refuses."""
        cluster, now = self.cluster, self.env.now
        if cluster.state == FAILING_OVER or now < cluster.dns_stale_until_s:  # no instance (at that address)
            raise Failure(REFUSED, facts.CANNOT_CONNECT_ERROR[self.config.engine])
        if not cluster.accepts_connection():
            raise Failure(REFUSED, facts.TOO_MANY_CONNECTIONS_ERROR[self.config.engine])
        connection = Connection(now, cluster.instance_generation)
        cluster.tracked.opened()
        if pooled:
            self.env.process(self._age_limit(connection))
        return connection

    def disconnect(self, connection: Connection) -> None:
        if connection.alive:
            connection.alive = False
            if connection.instance == self.cluster.instance_generation:  # a lost instance's are no longer counted
                self.cluster.tracked.closed()

    def usable(self, connection: Connection) -> bool:
        """Whether ``connection`` still leads to a server: not closed, and its instance not lost to a fault."""
        return connection.alive and connection.instance == self.cluster.instance_generation

    def _send(self, connection: Connection, cost: float) -> simpy.Event:
        """Send a statement on ``connection``: the event of its answer (a server code), or a Failure now."""
        if not connection.alive or connection.instance != self.cluster.instance_generation:  # not usable()
            raise Failure(DROPPED, facts.GONE_AWAY_ERROR[self.config.engine])
        connection.busy = True
        return self.cluster.submit(cost)

    def _answer(self, connection: Connection, code: int) -> None:
        """The statement on ``connection`` answered ``code``: a Failure unless it succeeded."""
        connection.busy = False
        if connection.retire:
            self._close_by_cluster(connection)
        if code == server.LOST_CONNECTION or (code == server.FORCED_SCALING
                                              and self.config.engine == "aurora-postgresql"):
            self.disconnect(connection)  # the instance is gone, or PostgreSQL's FATAL forced scaling ended the session
        if code != server.NO_ERROR:
            raise self._failure_of(code)

    def _failure_of(self, code: int) -> Failure:
        if code == server.LOST_CONNECTION:  # the instance failed under the statement: lost, never committed
            if isinstance(self.strategy, DataApi):  # the service's own JDBC connection failed (a model assumption)
                return Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR)
            return Failure(DROPPED, facts.LOST_CONNECTION_ERROR[self.config.engine])
        if code == server.FORCED_SCALING:
            return Failure(FORCED_ABORT, facts.FORCED_SCALING_ERROR[(self.config.engine, self.config.engine_version)])
        return Failure(STATEMENT_TIMEOUT, facts.STATEMENT_TIMEOUT_ERROR)

    def _age_limit(self, connection: Connection):
        """The 24-hour cap: the cluster closes the connection then, or when its running statement ends."""
        yield self.env.timeout(facts.MAX_CONNECTION_AGE_S)
        if not self.usable(connection):
            return
        if connection.busy:
            connection.retire = True
        else:
            self._close_by_cluster(connection)

    def _close_by_cluster(self, connection: Connection) -> None:
        if connection.alive:
            self.disconnect(connection)
            self.cluster._emit(CONNECTION_CLOSED, message=CONNECTION_AGE_LIMIT_MESSAGE)

    # --- the Data API ----------------------------------------------------------------------------------------

    def _data_api_call(self, task: _Task, cost: float):
        """One ExecuteStatement call, cut at the Data API's 45-second limit. A call that waited for a resume (still
        waiting, or queued behind the calls the resume released) is cut with the resume error, any other with
        StatementTimeoutException: a model assumption, as AWS documents neither."""
        env, cluster, call = self.env, self.cluster, self._call_limits.start(task)
        overhead = self.strategy.overhead_s / 2  # half on the way in, half on the way out
        ticket, counted = None, False
        try:
            yield env.timeout(overhead)
            if cluster.state == PAUSED:  # a v1 cluster: the call fails, and starts the resume
                cluster.request_connection()
                yield env.timeout(overhead)
                raise Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR)
            cluster.request_connection()
            while cluster.state in (PAUSED, RESUMING):
                call.saw_resume = True
                yield cluster.awake
            if cluster.state == FAILING_OVER:  # the service cannot reach the database (a model assumption)
                yield env.timeout(overhead)
                raise Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR)
            if not cluster.accepts_connection():
                raise Failure(REFUSED, facts.TOO_MANY_CONNECTIONS_ERROR[self.config.engine])
            cluster.tracked.opened()
            counted, instance = True, cluster.instance_generation
            ticket = cluster.submit(cost)
            code = yield ticket
            counted = False
            if instance == cluster.instance_generation:  # a lost instance's connections are no longer counted
                cluster.tracked.closed()
            yield env.timeout(overhead)  # the answer travels back, error or not
            if code != server.NO_ERROR:
                raise self._failure_of(code)
        except _Cut:
            if ticket is not None:
                cluster.cancel(ticket)
            if counted and instance == cluster.instance_generation:
                cluster.tracked.closed()
            if call.saw_resume:
                raise Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR) from None
            raise Failure(DATA_API_TIMEOUT, facts.DATA_API_STATEMENT_TIMEOUT_ERROR) from None
        finally:
            call.done = True


class Pool:
    """A client-side connection pool (psycopg_pool / HikariCP semantics) shared by the workload's requests."""

    def __init__(self, clients: Clients, settings: ConnectionPool) -> None:
        self.clients, self.settings, self.env = clients, settings, clients.env
        self.idle: list[Connection] = []  # most recently returned last: handed out first
        self.size = 0  # open or opening
        self.waiting: list[simpy.Event] = []
        self.env.process(self._fill())

    def _fill(self):
        """Open connections until the pool holds min_size (at the start, and after closing one)."""
        while self.size < self.settings.min_size:
            self.size += 1
            try:
                connection = yield from self.clients.connect(pooled=True)
            except Failure:
                self.size -= 1
                yield self.env.timeout(1.0)  # the pool retries in the background
                continue
            self._give(connection)

    def acquire(self):
        deadline = self.env.now + self.settings.acquire_timeout_s
        while True:
            while self.idle:
                connection = self.idle.pop()
                if self.settings.pre_ping:
                    yield self.env.timeout(self.clients.assumptions.round_trip_s)
                    if not self.clients.usable(connection):
                        self._discard(connection)
                        continue
                return connection
            if self.size < self.settings.max_size:
                # The acquire timeout bounds a new connection's set-up too (through a resume, say); one that
                # arrives late still joins the pool, as psycopg_pool's background connections do.
                self.size += 1
                opening = self.env.process(self._open())
                yield opening | self.env.timeout(max(0.0, deadline - self.env.now))  # a refusal is raised here
                if opening.triggered:
                    return opening.value
                opening.callbacks.append(self._opened_late)
                raise Failure(POOL_TIMEOUT, facts.POOL_TIMEOUT_ERROR.format(seconds=self.settings.acquire_timeout_s))
            wait = self.env.event()
            self.waiting.append(wait)
            remaining = deadline - self.env.now
            yield wait | self.env.timeout(max(0.0, remaining))
            if not wait.triggered:
                self.waiting.remove(wait)
                raise Failure(POOL_TIMEOUT, facts.POOL_TIMEOUT_ERROR.format(seconds=self.settings.acquire_timeout_s))
            if wait.value is not None:
                return wait.value

    def _open(self):
        try:
            return (yield from self.clients.connect(pooled=True))
        except Failure:
            self.size -= 1
            raise

    def _opened_late(self, opening: simpy.Process) -> None:
        if opening.ok:
            self._give(opening.value)
        else:
            opening.defused = True  # refused after its requester gave up: nobody to tell

    def release(self, connection: Connection) -> None:
        lifetime = self.settings.max_lifetime_s
        if not self.clients.usable(connection) or (lifetime is not None
                                                    and self.env.now - connection.opened_s >= lifetime):
            self.clients.disconnect(connection)  # a retired connection is closed; the pool opens a new one
            self._discard(connection)
            return
        self._give(connection)

    def _give(self, connection: Connection) -> None:
        """Hand a free connection to the first waiter, or keep it idle."""
        while self.waiting:
            wait = self.waiting.pop(0)
            if not wait.triggered:
                wait.succeed(connection)
                return
        connection.idle_since = self.env.now
        self.idle.append(connection)
        _Task().start(self._idle_watch(connection, connection.idle_since))  # once per request: no process events

    def _discard(self, connection: Connection) -> None:
        self.size -= 1
        if self.size < self.settings.min_size:
            self.env.process(self._fill())
        elif self.waiting:  # someone waits and there is room: open one for them
            self.env.process(self._open_for_waiter())

    def _open_for_waiter(self):
        self.size += 1
        try:
            connection = yield from self.clients.connect(pooled=True)
        except Failure:
            self.size -= 1
            return
        self._give(connection)

    def _idle_watch(self, connection: Connection, idle_since: float):
        """Close an idle connection above min_size after idle_timeout_s, or any idle one at max_lifetime_s."""
        settings = self.settings
        idle_limit = settings.idle_timeout_s if settings.idle_timeout_s is not None else math.inf
        life_limit = (connection.opened_s + settings.max_lifetime_s - self.env.now
                      if settings.max_lifetime_s is not None else math.inf)
        wait = min(idle_limit, max(0.0, life_limit))
        if wait == math.inf:
            return
        yield self.env.timeout(wait)
        if connection.idle_since != idle_since or connection not in self.idle:
            return  # used since: a newer watch owns it
        expired = life_limit <= wait
        if expired or self.size > settings.min_size:
            self.idle.remove(connection)
            self.clients.disconnect(connection)
            self._discard(connection)
        elif idle_limit < math.inf:  # at min_size: kept, but still retired when it reaches max_lifetime
            connection.idle_since = self.env.now
            _Task().start(self._idle_watch(connection, connection.idle_since))
