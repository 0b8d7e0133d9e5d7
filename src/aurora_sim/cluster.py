"""The simpy model of one Aurora Serverless v1 cluster: states, controller, scaling points, pause and resume.

Each simpy process tells one story: the controller loop, one capacity change, the pause countdown,
one blocking operation, the metrics sampler. Requests are served by ``server.QueueServer``; every
process advances it to ``env.now`` before it reads or changes the cluster.

Example:
    >>> import simpy
    >>> from aurora_sim.config import ClusterConfig, ModelAssumptions
    >>> from aurora_sim.workload import Workload
    >>> env = simpy.Environment()
    >>> cluster = Cluster(env, ClusterConfig(), Workload(segments=[(0, 60, 0.0)]), ModelAssumptions(),
    ...                   np.empty(0), np.empty(0), np.random.default_rng(0), metrics_period_s=60)
    >>> env.run(until=400)
    >>> [e[1] for e in cluster.events]
    ['pause_started', 'paused']
"""

from __future__ import annotations

import contextlib
from collections import deque

import numpy as np
import simpy

from . import facts, scaling
from .config import ClusterConfig, ModelAssumptions
from .databases import DatabaseTags
from .names import (
    ACTIVE,
    CONNECTION_CLOSED,
    PAUSE_CANCELLED,
    PAUSE_STARTED,
    PAUSED,
    PAUSED_EVENT,
    RESUME_STARTED,
    RESUMED,
    RESUMING,
    SCALE_COMPLETED,
    SCALE_FAILED,
    SCALE_FORCED,
    SCALE_STARTED,
    SCALING,
    SCALING_POINT_FOUND,
    TRANSACTION_ABORTED,
)
from .server import QueueServer
from .tracked_connections import TrackedConnections
from .workload import LongTransaction, Workload, _HeldConnection

_EPS = 1e-9
CONNECTION_AGE_LIMIT_MESSAGE = ("Connection closed by the cluster: open for 24 hours (Aurora Serverless v1 closes "
                                "connections held open longer than one day).")


class Cluster:
    """One cluster's state and processes; ``events``, ``samples`` and ``capacity_log`` are its record."""

    def __init__(self, env: simpy.Environment, config: ClusterConfig, workload: Workload,
                 assumptions: ModelAssumptions, arrival_s: np.ndarray, cost_acu_s: np.ndarray,
                 resume_rng: np.random.Generator, *, metrics_period_s: float,
                 databases: DatabaseTags | None = None) -> None:
        self.env, self.config, self.assumptions = env, config, assumptions
        self.databases = databases  # which database each request and blocking operation is (several on one cluster)
        self.state = ACTIVE
        self.capacity = config.min_capacity
        timeout_ms = config.parameter("statement_timeout") if config.engine == "aurora-postgresql" else 0
        self.server = QueueServer(arrival_s, cost_acu_s, self._connection_limit, statement_timeout_s=timeout_ms / 1000,
                                  on_ticket_end=self._ticket_ended)
        self.tracked = TrackedConnections(env)
        self._resume_rng = resume_rng
        self._pausing = False
        self._applying = False
        self._blockers: dict[int, _HeldConnection] = {}
        self._blocker_procs: dict[int, simpy.Process] = {}
        self._blocker_starts = sorted(op.start_s for op in workload.blocking)
        self._last_scale_up_s: float | None = None
        self._last_scale_down_s: float | None = None
        self._countdown_armed = False
        self._closed_held_seconds = 0.0  # connection-seconds of blocking operations that have ended
        self._last_request_s = -1.0  # when a tracked client or blocking operation last asked for a connection
        self._last_blocker_close_s = 0.0
        self._awake = env.event()
        self._scaling_done = env.event()
        self._demand = env.event()  # fires when a tracked client asks for a connection
        self._paused_capacity = self.capacity  # what a resume comes back at
        self._watch_at = float("inf")  # when the ticket watch next wakes
        self._ticket_events: dict[int, simpy.Event] = {}
        self.long_query_work = 0.0
        self.capacity_seconds = 0.0  # integral of serving capacity: the denominator of CPU %
        self._accounted_to = 0.0
        self.events: list[tuple] = []  # (time_s, kind, capacity_from, capacity_to, message, database)
        self.samples: list[tuple] = []  # (time_s, state, capacity, connections, max_connections, work, capacity_s)
        self.capacity_log: list[tuple[float, str, int]] = [(0.0, ACTIVE, self.capacity)]
        self._update_rate()
        env.process(self._controller())
        env.process(self._sampler(metrics_period_s))
        for index, op in enumerate(workload.blocking):
            self._blocker_procs[index] = env.process(self._hold(index, op))

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def max_connections(self) -> int:
        """The server's setting: what the metrics show and what the 90 % scale-up threshold counts against."""
        return facts.max_connections(self.config.engine, 0 if self.state in (PAUSED, RESUMING) else self.capacity)

    def _connection_limit(self) -> float:
        """How many connections the application may hold: PostgreSQL refuses a non-superuser
        ``SUPERUSER_RESERVED_CONNECTIONS`` slots before max_connections."""
        # The documented router fleet holds connection requests while the cluster resumes ("services the
        # connection requests"): none is refused until the cluster is back.
        if self.state in (PAUSED, RESUMING):
            return float("inf")
        return facts.connection_limit(self.config.engine, self.capacity)

    @property
    def connections(self) -> int:
        return self.server.connections + self.tracked.open

    @property
    def awake(self) -> simpy.Event:
        """Fires when the cluster is active again after a pause."""
        return self._awake

    def _emit(self, kind: str, capacity_from: int | None = None, capacity_to: int | None = None,
              message: str = "", database: str | None = None, **fields: object) -> None:
        template = facts.RDS_EVENT_MESSAGES.get(kind)
        if template:
            message = template.format(capacity_from=capacity_from, capacity_to=capacity_to, **fields)
        self.events.append((self.env.now, kind, capacity_from, capacity_to, message, database))

    def _database_of_request(self, request: int) -> str | None:
        return self.databases.of_request(request) if self.databases else None

    def _database_of_blocker(self, index: int) -> str | None:
        return self.databases.of_blocker(index) if self.databases else None

    def _serving_capacity(self) -> float:
        return float(self.capacity) if self.state in (ACTIVE, SCALING) and not self._applying else 0.0

    def _long_query_load(self) -> float:
        if not self._blockers:  # the common case, at every sync and controller step
            return 0.0
        busy = sum(op.uses_cpu for op in self._blockers.values()) * self.assumptions.long_query_acu
        return min(busy, self._serving_capacity())

    def _sync(self) -> None:
        """Advance the server and the CPU accounting to now."""
        now = self.env.now
        self.server.advance(now)
        elapsed = now - self._accounted_to
        if elapsed > 0:
            self.capacity_seconds += self._serving_capacity() * elapsed
            self.long_query_work += self._long_query_load() * elapsed
            self._accounted_to = now

    def _update_rate(self) -> None:
        """Call after any change of state, capacity or blockers (the server is synced first)."""
        self._sync()
        self.server.set_rate(self.env.now, self._serving_capacity() - self._long_query_load())
        self._watch_tickets()

    def _set_state(self, state: str, capacity: int | None = None) -> None:
        self._sync()
        self.state = state
        if capacity is not None:
            self.capacity = capacity
        self._update_rate()
        shown = 0 if state in (PAUSED, RESUMING) else self.capacity
        self.capacity_log.append((self.env.now, state, shown))

    def total_work(self) -> float:
        return self.server.work_done + self.long_query_work

    def next_demand_s(self) -> float:
        """When the next connection is requested: a request or a blocking operation starting."""
        now = self.env.now
        starts = [s for s in self._blocker_starts if s >= now]
        return min(self.server.next_arrival_s(), starts[0] if starts else float("inf"))

    # --- the controller -------------------------------------------------------------------------------------

    def _controller(self):
        period, window = self.assumptions.controller_period_s, self.assumptions.controller_window_s
        history = self._restart_window()
        while True:
            if self.state in (PAUSED, RESUMING):
                yield self._awake
                history = self._restart_window()
                continue
            yield self.env.timeout(period)
            if self.state != ACTIVE:
                continue
            self._sync()
            history.append(self._window_sample())
            self._arm_pause_countdown()
            if self._pausing or self.env.now - history[0][0] < window - _EPS:
                continue
            start = history[-1 - round(window / period)]
            end = history[-1]
            capacity_s = end[2] - start[2]
            cpu_pct = 100 * (end[1] - start[1]) / capacity_s if capacity_s > 0 else 0.0
            connections = (end[3] - start[3]) / window
            decision = scaling.decide(self.config, self.capacity, cpu_pct, connections, self.env.now,
                                      self._last_scale_up_s, self._last_scale_down_s)
            if decision is not None:
                yield self.env.process(self._change_capacity(decision))
                history = self._restart_window()

    def _window_sample(self) -> tuple[float, float, float, float]:
        held_seconds = self._held_seconds()
        return (self.env.now, self.total_work(), self.capacity_seconds,
                self.server.connection_seconds + held_seconds + self.tracked.seconds(self.env.now))

    def _held_seconds(self) -> float:
        if not self._blockers:
            return self._closed_held_seconds
        now = self.env.now
        return sum(now - op.start_s for op in self._blockers.values()) + self._closed_held_seconds

    def _restart_window(self) -> deque:
        """A fresh window history holding only what the window needs (one sample per period, plus its start), so
        memory stays flat over simulated time (an idle year with auto_pause=False: 1.6 GB → flat)."""
        self._sync()
        periods = round(self.assumptions.controller_window_s / self.assumptions.controller_period_s)
        return deque([self._window_sample()], maxlen=periods + 1)

    # --- one capacity change --------------------------------------------------------------------------------

    def _change_capacity(self, decision: scaling.Decision):
        capacity_from, target = self.capacity, decision.target_acu
        forced = ""  # the RDS-EVENT-0149 reason when the change is forced
        self._emit(SCALE_STARTED, capacity_from, target, reason=decision.reason)
        self._set_state(SCALING)
        deadline = self.env.now + self.config.seconds_before_timeout
        while True:
            self._sync()
            if self._scaling_point_exists():
                self._emit(SCALING_POINT_FOUND, capacity_from, target,
                           message="No queries in flight and no blocking operation open.")
                break
            if self.env.now >= deadline - _EPS:
                if self.config.timeout_action == "RollbackCapacityChange":
                    self._emit(SCALE_FAILED, capacity_from, target,
                               reason=f"no scaling point found within {self.config.seconds_before_timeout} s "
                               "(RollbackCapacityChange)")
                    self._set_state(ACTIVE)
                    self._finish_change()
                    return
                rolled_back_s = yield from self._force_through_rollbacks()
                forced = self._forced_reason(rolled_back_s)
                break
            yield self.env.timeout(min(self.assumptions.scaling_point_poll_s, deadline - self.env.now))
        drain = self.server.backlog_s()
        if drain > 0:
            yield self.env.timeout(drain)
        self._applying = True
        self._update_rate()
        yield self.env.timeout(self.assumptions.scale_apply_s)
        self._applying = False
        self._set_state(ACTIVE, target)
        if forced:
            self._emit(SCALE_FORCED, capacity_from, target, reason=forced)
        self._emit(SCALE_COMPLETED, capacity_from, target)
        if target > capacity_from:
            self._last_scale_up_s = self.env.now
        else:
            self._last_scale_down_s = self.env.now
        self._finish_change()

    def _finish_change(self) -> None:
        done, self._scaling_done = self._scaling_done, self.env.event()
        done.succeed()

    def _scaling_point_exists(self) -> bool:
        return not self._blocked() and self.server.backlog_s() <= self.assumptions.scaling_point_drain_s

    def _blocked(self) -> bool:
        """Whether a blocking operation (open transaction, long query, temporary table, lock, …) is open."""
        return any(op.blocks_scaling for op in self._blockers.values())

    def _forced_reason(self, rolled_back_s: float) -> str:
        """The RDS-EVENT-0149 reason: the timeout, and how long the aborted transactions took to roll back."""
        took = f"{rolled_back_s:.0f}" if rolled_back_s >= 1 else f"{rolled_back_s:.1g}"
        rollback = f"the aborted transactions took {took} s to roll back" if rolled_back_s else "nothing to roll back"
        return f"no scaling point found within {self.config.seconds_before_timeout} s (ForceApplyCapacityChange); " \
            + rollback

    def _force_through_rollbacks(self):
        """ForceApplyCapacityChange at the timeout: abort what holds the scaling point at once, then keep the old
        capacity while the aborted transactions roll back ("you must complete a proper rollback first"). Queries
        that arrive meanwhile are served as usual and drain before the change applies, like at a scaling point;
        a blocking operation that began during the rollback is forced out the same way. Returns the seconds spent
        rolling back."""
        waited = 0.0
        rollback_s = self._force()
        while rollback_s > 0:
            yield self.env.timeout(rollback_s)
            waited += rollback_s
            self._sync()
            if not self._blocked():
                break
            rollback_s = self._force()
        return waited

    def _force(self) -> float:
        """Abort what is in process, drop temporary tables and locks; returns how long the longest aborted
        transaction takes to roll back (``rollback_s_per_transaction_s`` × its age)."""
        text = facts.FORCED_SCALING_ERROR[(self.config.engine, self.config.engine_version)]
        for request in self.server.abort_all(self.env.now):
            self._emit(TRANSACTION_ABORTED, message=text, database=self._database_of_request(request))
        rollback_s = 0.0
        for index, op in sorted(self._blockers.items()):
            database = self._database_of_blocker(index)
            if op.on_force == "abort":
                self._emit(TRANSACTION_ABORTED, message=text, database=database)
                rollback_s = max(rollback_s, self._rollback_s(op))
            elif op.on_force == "drop":
                self._emit(CONNECTION_CLOSED, message=f"Connection dropped by ForceApplyCapacityChange: "
                           f"it held {op.holds} ({type(op).__name__} started at {op.start_s:g} s).",
                           database=database)
            else:
                continue
            self._blocker_procs[index].interrupt("forced scaling")
        self._update_rate()
        return rollback_s

    def _rollback_s(self, op: _HeldConnection) -> float:
        """How long undoing ``op`` takes. Only a transaction has changes to undo: a ``LongQuery`` is a read-only
        SELECT, and the ordinary requests in flight are short statements."""
        if not isinstance(op, LongTransaction):
            return 0.0
        return self.assumptions.rollback_s_per_transaction_s * (self.env.now - op.start_s)

    # --- pause and resume -----------------------------------------------------------------------------------

    def _arm_pause_countdown(self) -> None:
        if (self.config.auto_pause and not self._countdown_armed and not self._pausing
                and self.connections == 0):
            self._countdown_armed = True
            self.env.process(self._pause_countdown(self._idle_since()))

    def _idle_since(self) -> float:
        return max(self.server.last_close_s, self._last_blocker_close_s, self.tracked.last_close_s)

    def _still_idle_since(self, idle_since: float) -> bool:
        self._sync()
        opened = max(self.server.last_open_s, self._last_request_s)
        # A connection requested at this very instant wins over the pause timer.
        requested_now = self.next_demand_s() <= self.env.now
        return self.connections == 0 and opened <= idle_since and not self._pausing and not requested_now

    def _pause_countdown(self, idle_since: float):
        yield self.env.timeout(max(0.0, idle_since + self.config.seconds_until_auto_pause - self.env.now))
        while self.state == SCALING:
            yield self._scaling_done
        self._countdown_armed = False
        if self.state == ACTIVE and self._still_idle_since(idle_since):
            yield from self._pause_and_resume()

    def _pause_and_resume(self):
        self._pausing = True
        self._emit(PAUSE_STARTED, self.capacity, 0)
        demand = self.next_demand_s()
        transition = self.env.timeout(self.assumptions.pause_transition_s)
        if demand < self.env.now + self.assumptions.pause_transition_s:
            transition = self.env.timeout(demand - self.env.now)
        requested = self._demand
        yield transition | requested
        if requested.triggered or (demand < float("inf") and self.env.now >= demand):
            self._emit(PAUSE_CANCELLED, self.capacity, self.capacity)
            self._pausing = False
            return
        capacity = self._paused_capacity = self.capacity
        self._pausing = False
        self._set_state(PAUSED)
        self._emit(PAUSED_EVENT, capacity, 0)
        demand = self.next_demand_s()
        requested = self._demand
        if demand == float("inf"):
            yield requested
        else:
            yield self.env.timeout(demand - self.env.now) | requested
        self._begin_resume()  # unless a connection request already began it
        yield self.env.timeout(scaling.resume_time_s(self.assumptions, self._resume_rng))
        self._set_state(ACTIVE)
        self._emit(RESUMED, 0, capacity)
        awake, self._awake = self._awake, self.env.event()
        awake.succeed()

    # --- tracked clients (tracked.py) -------------------------------------------------------------------------

    def request_connection(self) -> None:
        """A client or blocking operation asks for a connection: cancels a pause in progress, or starts the resume
        of a paused cluster at once (the router holds the request), so no connection ever counts while paused."""
        self._last_request_s = self.env.now
        self._begin_resume()
        requested, self._demand = self._demand, self.env.event()
        requested.succeed()

    def _begin_resume(self) -> None:
        if self.state == PAUSED:
            self._set_state(RESUMING)
            self._emit(RESUME_STARTED, 0, self._paused_capacity)

    def accepts_connection(self) -> bool:
        """Whether one more application connection fits right now (under max_connections, less PostgreSQL's
        superuser-reserved slots)."""
        return self.state not in (PAUSED, RESUMING) and self.connections < self._connection_limit()

    def submit(self, cost_acu_s: float) -> simpy.Event:
        """Queue a tracked query; the event's value is its server error code (0 = done, see ``server``)."""
        self._sync()
        ticket = self.server.submit(self.env.now, cost_acu_s)
        event = self._ticket_events[ticket] = self.env.event()
        event.ticket = ticket
        self._watch_tickets()
        return event

    def cancel(self, event: simpy.Event) -> None:
        """Withdraw a tracked query its client gave up on (a Data API call cut at its limit)."""
        if not event.triggered:
            self._sync()
            self.server.cancel(self.env.now, event.ticket)
            self._ticket_events.pop(event.ticket, None)
            self._watch_tickets()

    def _ticket_ended(self, ticket: int, time_s: float, code: int) -> None:
        event = self._ticket_events.pop(ticket, None)
        if event is not None:
            event.succeed(code)

    def _watch_tickets(self) -> None:
        """Make sure the cluster wakes at the next tracked query's end, so its client resumes at exactly that
        time. A plain timeout with a callback, not a process: a wake made stale by a later change just syncs
        (a process waiting on "timeout or change" cost two extra events per query: 2.4 s → 1.5 s for 20 k)."""
        if not self._ticket_events:
            return
        next_end = self.server.next_end_s()
        if next_end < self._watch_at:
            self._watch_at = next_end
            self.env.timeout(max(0.0, next_end - self.env.now)).callbacks.append(self._on_watch)

    def _on_watch(self, _event: simpy.Event) -> None:
        if self.env.now >= self._watch_at:
            self._watch_at = float("inf")
        self._sync()
        self._watch_tickets()

    # --- blocking operations --------------------------------------------------------------------------------

    def _hold(self, index: int, op: _HeldConnection):
        yield self.env.timeout(op.start_s)
        self._sync()
        self.request_connection()
        self._blockers[index] = op
        self.server.held += 1
        self._update_rate()
        lifetime_s, ending = self._blocker_lifetime(op)
        with contextlib.suppress(simpy.Interrupt):  # forced scaling ends it early
            yield self.env.timeout(lifetime_s)
            for kind, message in ending:  # an engine timeout ended it, freeing the scaling point
                self._emit(kind, message=message, database=self._database_of_blocker(index))
        self._sync()
        self._closed_held_seconds += self.env.now - op.start_s
        del self._blockers[index]
        self.server.held -= 1
        self._last_blocker_close_s = max(self._last_blocker_close_s, self.env.now)
        self._update_rate()

    def _blocker_lifetime(self, op: _HeldConnection) -> tuple[float, tuple[tuple[str, str], ...]]:
        """How long ``op`` lasts under the cluster's timeout parameters and its 24-hour connection cap, and the
        events that end it early."""
        lifetime_s, ending = self._blocker_timeout(op)
        if lifetime_s > facts.MAX_CONNECTION_AGE_S:
            return facts.MAX_CONNECTION_AGE_S, ((CONNECTION_CLOSED, CONNECTION_AGE_LIMIT_MESSAGE),)
        return lifetime_s, ending

    def _blocker_timeout(self, op: _HeldConnection) -> tuple[float, tuple[tuple[str, str], ...]]:
        config, name = self.config, type(op).__name__
        if name == "LongQuery":
            limit = "statement_timeout" if config.engine == "aurora-postgresql" else "max_execution_time"
            text = facts.STATEMENT_TIMEOUT_ERROR if limit == "statement_timeout" else facts.MAX_EXECUTION_TIME_ERROR
            ending = ((TRANSACTION_ABORTED, text),)
        elif name == "LongTransaction" and config.engine == "aurora-postgresql":
            limit = "idle_in_transaction_session_timeout"
            ending = ((TRANSACTION_ABORTED, facts.IDLE_IN_TRANSACTION_TIMEOUT_ERROR),
                      (CONNECTION_CLOSED, f"Session terminated by {limit}={config.parameter(limit)} ms: it sat idle "
                       f"in an open transaction (LongTransaction started at {op.start_s:g} s)."))
        else:
            return op.duration_s, ()
        timeout_s = config.parameter(limit) / 1000
        if 0 < timeout_s < op.duration_s:
            return timeout_s, ending
        return op.duration_s, ()

    # --- metrics --------------------------------------------------------------------------------------------

    def _sampler(self, period: float):
        k = 0
        while True:
            self._sync()
            shown = 0 if self.state in (PAUSED, RESUMING) else self.capacity
            self.samples.append((self.env.now, self.state, shown, self.connections, self.max_connections(),
                                 self.total_work(), self.capacity_seconds))
            k += 1
            yield self.env.timeout(k * period - self.env.now)
