"""The simpy model of one Aurora Serverless v1 cluster: states, controller, scaling points, pause and resume.

Each simpy process tells one story: the controller loop, one capacity change, the pause countdown,
one blocking operation, the metrics sampler. Requests are served by ``server.QueueServer``; every
process advances it to ``env.now`` before it reads or changes the cluster.

Where nothing but pre-drawn requests moves, the controller fast-forwards (``_plan_span``): it reads the coming
steps' window samples from a ``server.Projection``, finds the first step that acts (a capacity change, a pause
countdown that would pause), plays out the countdowns that would find the cluster busy, and sleeps until then;
the sampler leaves the span's metrics samples to it. Anything that changes the cluster meanwhile
(``_notify_change``: a state, capacity, rate or blocker change, a connection request) ends the span there. While
paused, the sampler records its samples when something changes. The tables are those of stepping one by one, to
the last bits of the sums (tests/test_long_runs.py).

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
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from . import facts, scaling
from . import server as server_codes
from .config import ClusterConfig, ModelAssumptions
from .databases import DatabaseTags
from .models import capacity_policy
from .names import (
    ACTIVE,
    CONNECTION_CLOSED,
    FAILING_OVER,
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
from .server import Projection, QueueServer
from .tracked_connections import TrackedConnections
from .workload import LongTransaction, Workload, _HeldConnection

_EPS = 1e-9
FAST_FORWARD_MIN_S, FAST_FORWARD_MAX_S = 60.0, 3600.0  # how far one fast-forward of the controller looks ahead
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
        self.policy = capacity_policy(config)  # where v1, v2 and provisioned differ (models.py)
        self.capacity = self.policy.starting_capacity
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
        self._countdown_wake_s = float("inf")  # when the armed pause countdown wakes
        self._idle_since_armed = 0.0  # and the idle time it checks
        # The controller skips through quiet stretches in one step (_plan_span) when only pre-drawn requests run.
        self.fast_forward = not workload.tracked
        self._span: _Span | None = None
        self._lookahead_s = FAST_FORWARD_MIN_S
        self._metrics_period_s = metrics_period_s
        self._change = env.event()  # fires when the state, the capacity, the blockers or the rate change
        self._paused_sample: tuple | None = None  # the sample a paused cluster repeats until something changes
        self._closed_held_seconds = 0.0  # connection-seconds of blocking operations that have ended
        self._last_request_s = -1.0  # when a tracked client or blocking operation last asked for a connection
        self._last_blocker_close_s = 0.0
        self._awake = env.event()
        self._scaling_done = env.event()
        self._demand = env.event()  # fires when a tracked client asks for a connection
        self._paused_capacity = self.capacity  # what a resume comes back at
        self.instance_generation = 0  # counts DB instances lost to faults: a connection to an older one is dead
        self.dns_stale_until_s = -1.0  # after a failover, clients that resolve the endpoint still reach the old address
        self._watch_at = float("inf")  # when the ticket watch next wakes
        self._ticket_events: dict[int, simpy.Event] = {}
        self.long_query_work = 0.0
        self.capacity_seconds = 0.0  # integral of serving capacity: the denominator of CPU %
        self._accounted_to = 0.0
        self.events: list[tuple] = []  # (time_s, kind, capacity_from, capacity_to, message, database)
        self.samples: list[tuple] = []  # (time_s, state, capacity, connections, max_connections, work, capacity_s)
        self.capacity_log: list[tuple[float, str, int]] = [(0.0, ACTIVE, self.capacity)]
        self._update_rate()
        env.process(self.policy.controller(self))
        env.process(self._sampler(metrics_period_s))
        for index, op in enumerate(workload.blocking):
            self._blocker_procs[index] = env.process(self._hold(index, op))

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def max_connections(self) -> int:
        """The server's setting: what the metrics show and what the 90 % scale-up threshold counts against."""
        return self.policy.max_connections(0 if self.state in (PAUSED, RESUMING) else self.capacity)

    def _connection_limit(self) -> float:
        """How many connections the application may hold: PostgreSQL refuses a non-superuser
        ``SUPERUSER_RESERVED_CONNECTIONS`` slots before max_connections."""
        # The documented router fleet holds connection requests while the cluster resumes ("services the
        # connection requests"): none is refused until the cluster is back.
        if self.state in (PAUSED, RESUMING):
            return float("inf")
        if self.state == FAILING_OVER:  # no instance to connect to: every request is refused (faults.py)
            return 0.0
        return self.policy.connection_limit(self.capacity)

    @property
    def connections(self) -> int:
        return self.server.connections + self.tracked.open

    @property
    def awake(self) -> simpy.Event:
        """Fires when the cluster is active again after a pause or a failover."""
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
        self._notify_change()

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
            if self.state in (PAUSED, RESUMING, FAILING_OVER):  # back after a pause or a failover: a fresh window
                yield self._awake
                history = self._restart_window()
                continue
            span = self._plan_span(history)
            if span is None:
                yield self.env.timeout(period)
            else:
                yield from self._sleep_through(span, history)
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
            decision = self._decide(cpu_pct, connections, self.env.now)
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

    # --- a capacity policy's decision ------------------------------------------------------------------------

    def _decide(self, cpu_pct: float, connections: float, now_s: float) -> scaling.Decision | None:
        """The change the controller asks for after a full window (where a capacity policy plugs in)."""
        return scaling.decide(self.config, self.capacity, cpu_pct, connections, now_s, self._last_scale_up_s,
                              self._last_scale_down_s)

    def _may_decide(self, cpu_pct: np.ndarray, connections: np.ndarray) -> np.ndarray:
        """The steps at which ``_decide`` could ask for a change: a superset, so the fast-forward calls ``_decide``
        only where it might (a policy replacing ``_decide`` replaces this too)."""
        engine, capacity = self.config.engine, self.capacity
        limit = facts.max_connections(engine, capacity)
        up, down = facts.next_rung(engine, capacity, +1), facts.next_rung(engine, capacity, -1)
        wants_up = (cpu_pct > facts.SCALE_UP_CPU_PCT) | (connections > limit * facts.SCALE_UP_CONNECTIONS_PCT / 100)
        wants_down = ((cpu_pct < facts.SCALE_DOWN_CPU_PCT)
                      & (connections < limit * facts.SCALE_DOWN_CONNECTIONS_PCT / 100))
        return ((wants_up & (up is not None and up <= self.config.max_capacity))
                | (wants_down & (down is not None and down >= self.config.min_capacity)))

    # --- fast-forward: many controller steps at once ---------------------------------------------------------

    def _can_fast_forward(self) -> bool:
        """Only pre-drawn requests at a constant rate: nothing else can change what the next steps see."""
        server = self.server
        return (self.fast_forward and self.state == ACTIVE and not self._pausing and not self._applying
                and not self._blockers and not self._ticket_events and self.tracked.open == 0 and server.rate > 0
                and server.tickets == 0 and server.statement_timeout_s == 0
                and not (self._countdown_armed and self._countdown_wake_s <= self.env.now))

    def _plan_span(self, history: deque, first_decision: Callable[[_Span], int | None] | None = None
                   ) -> _Span | None:
        """The controller steps ahead that would only record their window sample (no decision, no pause), read
        from one ``server.Projection``; None when the next step needs the controller itself. A capacity policy
        with a controller of its own (models.py: v2) passes ``first_decision``, the step where it would act.

        The span ends at the first step that acts (asks for a change, or arms a pause countdown that would
        pause), before the next blocking operation starts and within a look-ahead that doubles while spans run
        to their end (up to an hour) and shrinks when they are cut short. Pause countdowns that would find the
        cluster busy are played out inside the span; one still counting at its end is started for real then.
        """
        if not self._can_fast_forward():
            return None
        now, period = self.env.now, self.assumptions.controller_period_s
        horizon = now + self._lookahead_s
        later_blocker = bisect_left(self._blocker_starts, now)  # one starting now has not asked yet
        if later_blocker < len(self._blocker_starts):
            horizon = min(horizon, self._blocker_starts[later_blocker])
        count = int((horizon - now) / period)
        if count < 2:
            return None
        # Step times as the controller's timeouts add them up, one period at a time.
        ticks = np.cumsum(np.concatenate(([now], np.full(count, period))))[1:]
        ahead = Projection(self.server, horizon)
        ticks = ticks[(ticks < horizon) & (ticks <= ahead.valid_until_s)]
        if len(ticks) < 2:
            self._lookahead_s = FAST_FORWARD_MIN_S
            return None
        span = _Span(self, ahead, ticks)
        stop = len(ticks) - 1
        decision_at = first_decision(span) if first_decision else self._first_decision(history, span)
        if decision_at is not None:
            stop = decision_at
        span.stop = self._play_countdowns(span, stop)
        if span.stop == 0:
            self._lookahead_s = FAST_FORWARD_MIN_S
            return None
        if span.stop == len(ticks) - 1:
            self._lookahead_s = min(2 * self._lookahead_s, FAST_FORWARD_MAX_S)
        return span

    def _first_decision(self, history: deque, span: _Span) -> int | None:
        """The first step of ``span`` at which the controller asks for a capacity change, if any."""
        window, period = self.assumptions.controller_window_s, self.assumptions.controller_period_s
        lag = round(window / period)
        past = np.array(history, dtype=float).reshape(-1, 4)
        times = np.concatenate((past[:, 0], span.ticks))
        work = np.concatenate((past[:, 1], span.work))
        capacity_s = np.concatenate((past[:, 2], span.capacity_s))
        connection_s = np.concatenate((past[:, 3], span.connection_s))
        end = len(past) + np.arange(len(span.ticks))
        oldest = np.maximum(end - lag, 0)  # the window history keeps lag + 1 samples
        full = span.ticks - times[oldest] >= window - _EPS
        served = capacity_s[end] - capacity_s[oldest]
        cpu_pct = np.divide(100 * (work[end] - work[oldest]), served, out=np.zeros(len(end)), where=served > 0)
        connections = (connection_s[end] - connection_s[oldest]) / window
        for index in np.flatnonzero(full & self._may_decide(cpu_pct, connections)).tolist():
            if self._decide(float(cpu_pct[index]), float(connections[index]), float(span.ticks[index])):
                return index
        return None

    def _play_countdowns(self, span: _Span, stop: int) -> int:
        """Play the pause countdowns the steps before ``stop`` would arm; returns the step where the span must
        stop instead (one whose countdown would pause the cluster: the controller arms that one itself)."""
        if not self.config.auto_pause:
            return stop
        ticks, ahead, wait = span.ticks, span.ahead, self.config.seconds_until_auto_pause
        free_from = self._countdown_wake_s if self._countdown_armed else -np.inf
        if self._countdown_armed and free_from < ticks[stop] and self._would_pause(ahead, self._idle_since_armed,
                                                                                  free_from):
            return min(stop, int(ticks.searchsorted(free_from, side="left")))
        idle = np.flatnonzero(span.connections == 0)
        earliest = 0  # the first step that may arm the next countdown
        while True:
            found = int(idle.size and max(ticks[idle].searchsorted(free_from, side="left"),
                                          idle.searchsorted(earliest, side="left")))
            if found >= idle.size or idle[found] >= stop:
                return stop
            arm = int(idle[found])
            idle_since = max(float(ahead.last_close_s(ticks[arm:arm + 1])[0]), self._last_blocker_close_s,
                             self.tracked.last_close_s)
            wake = float(ticks[arm]) + max(0.0, idle_since + wait - float(ticks[arm]))
            span.countdowns.append((arm, idle_since, wake))
            if wake >= ticks[stop]:
                return stop
            if self._would_pause(ahead, idle_since, wake):
                span.countdowns.pop()
                return arm
            # A countdown that wakes at its own step (idle for long already, but a connection was requested since)
            # ends after that step: the next may arm from the next step on (searching from ``wake`` alone found
            # the same step again, forever). One waking at the next step's time ends after that step has looked.
            free_from = wake
            earliest = arm + 2 if arm + 1 < len(ticks) and ticks[arm + 1] == wake else arm + 1

    def _would_pause(self, ahead: Projection, idle_since: float, wake_s: float) -> bool:
        """``_still_idle_since`` at ``wake_s``, read from the projection."""
        at = np.array([wake_s])
        opened = max(float(ahead.last_open_s(at)[0]), self._last_request_s)
        connections = int(ahead.connections(at)[0]) + self.tracked.open
        return connections == 0 and opened <= idle_since and not ahead.arrival_at(wake_s)

    def _sleep_through(self, span: _Span, history: deque):
        """Sleep until the span's last step, or until something changes the cluster; then record the steps and
        samples that passed and go on from the next step on the controller's grid. Returns how many steps passed."""
        self._span = span
        wake = float(span.ticks[span.stop])
        yield self.env.timeout(wake - self.env.now) | span.changed
        now = self.env.now
        interrupted = span.changed.triggered
        done = int(span.ticks.searchsorted(now, side="left")) if interrupted else span.stop
        if interrupted:
            self._lookahead_s = FAST_FORWARD_MIN_S
        self._end_span(span, done, now, include_now=not interrupted)
        lag = round(self.assumptions.controller_window_s / self.assumptions.controller_period_s)
        first = max(0, done - lag - 1)
        history.extend(zip(span.ticks[first:done].tolist(), span.work[first:done].tolist(),
                           span.capacity_s[first:done].tolist(), span.connection_s[first:done].tolist(),
                           strict=True))
        # Let the sampler (freed by the span's end) book its next sample first: stepping, a sample due at the
        # instant of a controller step comes before it (it booked earlier), so it shows the capacity before a change.
        yield self.env.timeout(0)
        if interrupted:
            yield self.env.timeout(max(0.0, float(span.ticks[done]) - now))
        return done

    def _end_span(self, span: _Span, done: int, now: float, *, include_now: bool) -> None:
        self._span = None
        self._record_span_samples(span, now, include_now=include_now)
        for arm, idle_since, wake in span.countdowns:
            if arm < done and wake > now:  # armed inside the span and still counting: start it for real
                self._start_countdown(idle_since)
        span.ended.succeed()

    def _record_span_samples(self, span: _Span, until_s: float, *, include_now: bool = False) -> None:
        """Append the metrics samples of the span's times before ``until_s`` (or at it) not recorded yet."""
        period, first = self._metrics_period_s, len(self.samples)
        last = math.floor(until_s / period)
        if last * period > until_s or (last * period == until_s and not include_now):
            last -= 1
        if last < first:
            return
        times = np.arange(first, last + 1) * period
        connections = span.ahead.connections(times) + span.tracked_open
        work = span.ahead.work_done(times) + span.long_query_work
        capacity_s = span.capacity_seconds + span.serving * (times - span.accounted_to)
        shown, limit = span.capacity, span.max_connections  # as they were during the span: it may end with a change
        self.samples.extend((t, ACTIVE, shown, c, limit, w, s) for t, c, w, s in zip(
            times.tolist(), connections.tolist(), work.tolist(), capacity_s.tolist(), strict=True))

    def _record_paused_samples(self, until_s: float) -> None:
        """The samples before ``until_s`` of a pause that lasted until now: each the same as at its start."""
        sample, self._paused_sample = self._paused_sample, None
        if sample is None:
            return
        period = self._metrics_period_s
        times = np.arange(len(self.samples), math.ceil(until_s / period)) * period
        self.samples.extend((t, *sample[1:]) for t in times[times < until_s].tolist())

    def record_samples_until(self, until_s: float) -> None:
        """At the end of a run: the samples a fast-forward or a pause in progress has not recorded yet."""
        if self._span is not None:
            self._record_span_samples(self._span, until_s)
        if self._paused_sample is not None:
            self._record_paused_samples(until_s)
            self._paused_sample = self.samples[-1]

    def _notify_change(self) -> None:
        """Something changed the cluster: a fast-forward in progress stops here, and a sampler waiting out a pause
        records the samples until now."""
        if self._change.callbacks:  # someone waits for it
            changed, self._change = self._change, self.env.event()
            changed.succeed()

    # --- one capacity change --------------------------------------------------------------------------------

    def _change_capacity(self, decision: scaling.Decision, seconds_before_timeout: int | None = None,
                         timeout_action: str | None = None):
        """One change: look for a scaling point, then apply, roll back or force it. The timeout and its action
        are the config's (autoscaling) unless a manual change (manual_capacity.py) brings its own."""
        seconds_before_timeout = seconds_before_timeout or self.config.seconds_before_timeout
        timeout_action = timeout_action or self.config.timeout_action
        capacity_from, target = self.capacity, decision.target_acu
        forced = ""  # the RDS-EVENT-0149 reason when the change is forced
        self._emit(SCALE_STARTED, capacity_from, target, reason=decision.reason)
        self._set_state(SCALING)
        deadline = self.env.now + seconds_before_timeout
        while True:
            self._sync()
            if self._scaling_point_exists():
                self._emit(SCALING_POINT_FOUND, capacity_from, target,
                           message="No queries in flight and no blocking operation open.")
                break
            if self.env.now >= deadline - _EPS:
                if timeout_action == "RollbackCapacityChange":
                    self._emit(SCALE_FAILED, capacity_from, target,
                               reason=f"no scaling point found within {seconds_before_timeout} s "
                               "(RollbackCapacityChange)")
                    self._set_state(ACTIVE)
                    self._finish_change()
                    return
                rolled_back_s = yield from self._force_through_rollbacks()
                forced = self._forced_reason(rolled_back_s, seconds_before_timeout)
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

    def _forced_reason(self, rolled_back_s: float, seconds_before_timeout: int) -> str:
        """The RDS-EVENT-0149 reason: the timeout, and how long the aborted transactions took to roll back."""
        took = f"{rolled_back_s:.0f}" if rolled_back_s >= 1 else f"{rolled_back_s:.1g}"
        rollback = f"the aborted transactions took {took} s to roll back" if rolled_back_s else "nothing to roll back"
        return f"no scaling point found within {seconds_before_timeout} s (ForceApplyCapacityChange); " \
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
            self._start_countdown(self._idle_since())

    def _start_countdown(self, idle_since: float) -> None:
        self._countdown_armed, self._idle_since_armed = True, idle_since
        self._countdown_wake_s = self.env.now + max(0.0, idle_since + self.config.seconds_until_auto_pause
                                                    - self.env.now)
        self.env.process(self._pause_countdown(idle_since))

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
        self._notify_change()
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
        yield self.env.timeout(self.policy.resume_time_s(self.assumptions, self._resume_rng))
        self._set_state(ACTIVE)
        self._emit(RESUMED, 0, capacity)
        awake, self._awake = self._awake, self.env.event()
        awake.succeed()

    # --- tracked clients (tracked.py) -------------------------------------------------------------------------

    def request_connection(self) -> None:
        """A client or blocking operation asks for a connection: cancels a pause in progress, or starts the resume
        of a paused cluster at once (the router holds the request), so no connection ever counts while paused."""
        self._last_request_s = self.env.now
        self._notify_change()
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

    # --- faults (faults.py): the DB instance lost, then replaced --------------------------------------------

    def can_fail(self) -> bool:
        """Whether a fault can take the instance now: an active cluster, not pausing (a fault that falls during a
        pause, a resume, a capacity change or another failover waits for it to end: a model simplification)."""
        return self.state == ACTIVE and not self._pausing

    @property
    def scaling_done(self) -> simpy.Event:
        """Fires when the capacity change in progress ends (completed or rolled back)."""
        return self._scaling_done

    def lose_instance(self) -> tuple[int, int]:
        """The DB instance is gone: every query in flight and every blocking operation is lost (one
        ``transaction_aborted`` each, with the client's lost-connection text), every connection dies, and new
        ones are refused until ``restore_instance``. Storage is not touched: what was committed stays. Returns
        (connections lost, transactions lost)."""
        self._sync()
        connections = self.connections
        self._set_state(FAILING_OVER)
        self.server.refusal_code = server_codes.CANNOT_CONNECT
        text = facts.LOST_CONNECTION_ERROR[self.config.engine]
        aborted = self.server.abort_all(self.env.now, server_codes.LOST_CONNECTION)
        for request in aborted:
            self._emit(TRANSACTION_ABORTED, message=text, database=self._database_of_request(request))
        for index in sorted(self._blockers):
            self._emit(TRANSACTION_ABORTED, message=text, database=self._database_of_blocker(index))
            self._blocker_procs[index].interrupt("instance lost")
        self.tracked.lose_all()
        self.instance_generation += 1
        self._update_rate()
        return connections, len(aborted) + len(self._blockers)

    def restore_instance(self, dns_ttl_s: float) -> None:
        """A new instance serves at the old capacity; clients that resolve the endpoint reach it ``dns_ttl_s``
        later (their cached address still points at the old one)."""
        self._set_state(ACTIVE)  # syncs first: the arrivals until now were refused
        self.server.refusal_code = server_codes.TOO_MANY_CONNECTIONS
        self.dns_stale_until_s = self.env.now + dns_ttl_s
        awake, self._awake = self._awake, self.env.event()
        awake.succeed()

    # --- blocking operations --------------------------------------------------------------------------------

    def _hold(self, index: int, op: _HeldConnection):
        yield self.env.timeout(op.start_s)
        while self.state == FAILING_OVER:  # its client connects once a new instance is up (a model assumption)
            yield self._awake
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
        while True:
            if self._span is not None:  # the controller is fast-forwarding: it records the span's samples itself
                yield self._span.ended
            else:
                self._sync()
                shown = 0 if self.state in (PAUSED, RESUMING) else self.capacity
                self.samples.append((self.env.now, self.state, shown, self.connections, self.max_connections(),
                                     self.total_work(), self.capacity_seconds))
                if self.state == PAUSED:  # nothing moves until something changes: record the samples then
                    self._paused_sample = self.samples[-1]
                    yield self._change
                    self._record_paused_samples(self.env.now)
            next_s = len(self.samples) * period
            if next_s >= self.env.now:
                yield self.env.timeout(next_s - self.env.now)


class _Span:
    """One fast-forward of the controller: its steps' times and window samples, read from a projection."""

    def __init__(self, cluster: Cluster, ahead: Projection, ticks: np.ndarray) -> None:
        self.ahead, self.ticks, self.stop = ahead, ticks, len(ticks) - 1
        self.serving, self.accounted_to = cluster._serving_capacity(), cluster._accounted_to
        self.capacity_seconds, self.long_query_work = cluster.capacity_seconds, cluster.long_query_work
        self.work = ahead.work_done(ticks) + cluster.long_query_work
        self.capacity_s = cluster.capacity_seconds + self.serving * (ticks - cluster._accounted_to)
        self.connection_s = (ahead.connection_seconds(ticks) + cluster._held_seconds()
                             + cluster.tracked.seconds(cluster.env.now))
        self.connections = ahead.connections(ticks) + cluster.tracked.open
        self.capacity, self.max_connections, self.tracked_open = (cluster.capacity, cluster.max_connections(),
                                                                  cluster.tracked.open)
        self.countdowns: list[tuple[int, float, float]] = []  # (step armed at, idle since, wake time)
        self.changed = cluster._change  # something changed the cluster: the span ends early
        self.ended = cluster.env.event()
