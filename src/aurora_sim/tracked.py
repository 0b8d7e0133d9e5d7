"""Tracked clients: each request a simpy process that connects, queries, fails and retries as its strategy says.

"Simulate the individuals": with ``Workload(connections=…)`` or ``Workload(retry=…)`` every request is a
process. It gets a connection (its own, from a ``Pool``, or a Data API call), sends its query to the cluster's
server, and on a failure the ``RetryPolicy`` decides whether and when it tries again. ``Clients`` records one
row per request: submit and finish times, attempts, outcome and the last error's exact text.

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

import numpy as np
import simpy

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
        count = len(arrival_s)
        self.finish_s = np.full(count, np.nan)
        self.outcome = np.zeros(count, dtype=np.int8)
        self.attempts = np.zeros(count, dtype=np.int32)
        self.error: list[str | None] = [None] * count
        self.pending = count
        self._rng = jitter_rng
        self._tokens = self.policy.budget_tokens
        self.pool = Pool(self, workload.connections) if isinstance(workload.connections, ConnectionPool) else None
        env.process(self._arrivals())

    def _arrivals(self):
        # One process per request, started when it arrives (so thousands of them are not all waiting at t = 0).
        for request, arrival in enumerate(self.arrival_s.tolist()):
            if arrival > self.env.now:
                yield self.env.timeout(arrival - self.env.now)
            self.env.process(self._request(request))

    # --- one request, with retries ---------------------------------------------------------------------------

    def _request(self, request: int):
        previous_delay = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                yield from self._attempt(float(self.cost[request]))
                failure = None
            except Failure as caught:
                failure = caught
            if failure is None:
                if self._tokens is not None:
                    self._tokens = min(self.policy.budget_tokens, self._tokens + self.policy.budget_deposit)
                break
            if not self.policy.retries(failure.error_class) or attempt >= self.policy.max_attempts:
                break
            if self._tokens is not None:
                if self._tokens < 1:
                    break
                self._tokens -= 1
            previous_delay = self.policy.delay_s(attempt, previous_delay, self._rng)
            yield self.env.timeout(previous_delay)
        self.finish_s[request] = self.env.now
        self.attempts[request] = attempt
        self.outcome[request] = OUTCOME_OF.get(failure and failure.error_class, server.ERROR)
        self.error[request] = failure.text if failure else None
        self.pending -= 1

    def _attempt(self, cost: float):
        if isinstance(self.strategy, DataApi):
            yield from self._data_api_call(cost)
        elif self.pool is not None:
            connection = yield from self.pool.acquire()
            try:
                yield from self.query(connection, cost)
            finally:
                self.pool.release(connection)
        else:  # ConnectPerRequest, or the foundation's free connection per request with a retry policy
            connection = yield from self.connect(paid=isinstance(self.strategy, ConnectPerRequest))
            try:
                yield from self.query(connection, cost)
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
        if cluster.state == FAILING_OVER or self.env.now < cluster.dns_stale_until_s:  # no instance (at that address)
            raise Failure(REFUSED, facts.CANNOT_CONNECT_ERROR[self.config.engine])
        if not cluster.accepts_connection():
            raise Failure(REFUSED, facts.TOO_MANY_CONNECTIONS_ERROR[self.config.engine])
        connection = Connection(self.env.now, cluster.instance_generation)
        cluster.tracked.opened()
        if pooled:
            self.env.process(self._age_limit(connection))
        if paid:
            yield self.env.timeout(self.assumptions.connect_latency_s)
            code = yield cluster.submit(self.assumptions.connect_cpu_acu_s)
            if code != server.NO_ERROR:
                self.disconnect(connection)
                raise self._failure_of(code)
        return connection

    def disconnect(self, connection: Connection) -> None:
        if connection.alive:
            connection.alive = False
            if connection.instance == self.cluster.instance_generation:  # a lost instance's are no longer counted
                self.cluster.tracked.closed()

    def usable(self, connection: Connection) -> bool:
        """Whether ``connection`` still leads to a server: not closed, and its instance not lost to a fault."""
        return connection.alive and connection.instance == self.cluster.instance_generation

    def query(self, connection: Connection, cost: float):
        """Run one statement on ``connection``; a connection the cluster closed fails at once ("gone away")."""
        if not self.usable(connection):
            raise Failure(DROPPED, facts.GONE_AWAY_ERROR[self.config.engine])
        connection.busy = True
        try:
            code = yield self.cluster.submit(cost)
        finally:
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

    def _data_api_call(self, cost: float):
        """One ExecuteStatement call, cut at the Data API's 45-second limit. A call that waited for a resume (still
        waiting, or queued behind the calls the resume released) is cut with the resume error, any other with
        StatementTimeoutException: a model assumption, as AWS documents neither."""
        call = self.env.process(self._data_api_work(cost))
        limit = self.env.timeout(facts.DATA_API_CALL_LIMIT_S)
        yield call | limit  # a Failure inside the call is raised here
        if call.triggered:
            return
        saw_resume = getattr(call, "saw_resume", False)
        call.interrupt("cut at the call limit")
        if saw_resume:
            raise Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR)
        raise Failure(DATA_API_TIMEOUT, facts.DATA_API_STATEMENT_TIMEOUT_ERROR)

    def _data_api_work(self, cost: float):
        overhead = self.strategy.overhead_s / 2  # half on the way in, half on the way out
        cluster, ticket, counted = self.cluster, None, False
        process = self.env.active_process
        try:
            yield self.env.timeout(overhead)
            if cluster.state == PAUSED:  # a v1 cluster: the call fails, and starts the resume
                cluster.request_connection()
                yield self.env.timeout(overhead)
                raise Failure(DATA_API_RESUMING, facts.DATA_API_RESUMING_ERROR)
            cluster.request_connection()
            while cluster.state in (PAUSED, RESUMING):
                process.saw_resume = True
                yield cluster.awake
            if cluster.state == FAILING_OVER:  # the service cannot reach the database (a model assumption)
                yield self.env.timeout(overhead)
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
            yield self.env.timeout(overhead)  # the answer travels back, error or not
            if code != server.NO_ERROR:
                raise self._failure_of(code)
        except simpy.Interrupt:
            if ticket is not None:
                cluster.cancel(ticket)
            if counted and instance == cluster.instance_generation:
                cluster.tracked.closed()


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
        self.env.process(self._idle_watch(connection, connection.idle_since))

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
            self.env.process(self._idle_watch(connection, connection.idle_since))
