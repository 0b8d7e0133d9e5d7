"""Named workloads the notebooks, checks and benchmarks share, so a lesson and its test see the same run.

A ``Scenario`` bundles a config, a workload and how long to run; ``run()`` simulates it (cached, since
every part is frozen and hashable).

Example:
    >>> sale = flash_sale(min_capacity=4)
    >>> sale.config.min_capacity, sale.duration_s
    (4, 3600)
    >>> sale.run().sql("SELECT count(*) FROM events WHERE kind = 'scale_failed'").fetchall()
    [(0,)]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache

from . import facts
from .actions import ClusterAction
from .clients import ConnectionPool, ConnectPerRequest, DataApi, RetryPolicy
from .config import ClusterConfig, ModelAssumptions
from .log_sessions import Session
from .simulation import Run, simulate
from .workload import (
    AdvisoryLock,
    HoldCursor,
    IdleConnection,
    Listen,
    LongQuery,
    LongTransaction,
    Notify,
    TableLock,
    TemporaryTable,
    Workload,
)

SPIKE_START_S, SPIKE_END_S = 600, 1800


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A config, a workload and a duration: everything ``simulate`` needs, with a name and a story."""

    name: str
    description: str
    config: ClusterConfig
    workload: Workload
    duration_s: float
    metrics_period_s: float = 60
    seed: int = 7
    assumptions: ModelAssumptions = field(default_factory=ModelAssumptions)
    actions: tuple[ClusterAction, ...] = ()  # scheduled faults or capacity changes (``simulate(actions=...)``)

    def run(self) -> Run:
        """Simulate the scenario (cached: the same scenario returns the same ``Run`` object)."""
        return _run(self.config, self.workload, self.duration_s, self.seed, self.metrics_period_s,
                    self.assumptions, tuple(self.actions))

    def replace(self, **changes: object) -> Scenario:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@lru_cache(maxsize=128)
def _run(config: ClusterConfig, workload: Workload, duration_s: float, seed: int, metrics_period_s: float,
         assumptions: ModelAssumptions, actions: tuple[ClusterAction, ...] = ()) -> Run:
    return simulate(config, workload, duration_s=duration_s, seed=seed, metrics_period_s=metrics_period_s,
                    assumptions=assumptions, actions=actions)


def flash_sale(*, min_capacity: int = 1, max_capacity: int = 16, spike_rps: float = 48.0, base_rps: float = 2.0,
               ramp_s: float = 0, timeout_action: str = "RollbackCapacityChange", query_cpu_s: float = 0.05,
               engine: str = "aurora-mysql") -> Scenario:
    """Notebook 02: a quiet shop, then a 20-minute sale at ``spike_rps`` from minute 10 to minute 30.

    With the defaults the sale asks for 2.4 ACUs of CPU: a 1-ACU cluster is pinned at 100 % and too busy to
    find a scaling point. ``ramp_s`` > 0 lets the load climb in 60-s steps instead of jumping.
    """
    segments = [(0, SPIKE_START_S, base_rps)]
    steps = int(ramp_s // 60)
    for k in range(steps):
        rate = base_rps + (spike_rps - base_rps) * (k + 1) / (steps + 1)
        segments.append((SPIKE_START_S + 60 * k, SPIKE_START_S + 60 * (k + 1), rate))
    segments += [(SPIKE_START_S + 60 * steps, SPIKE_END_S, spike_rps), (SPIKE_END_S, 3600, base_rps)]
    return Scenario(
        name="flash_sale",
        description=f"{base_rps:g} req/s, then {spike_rps:g} req/s from minute 10 to 30",
        config=ClusterConfig(engine=engine, min_capacity=min_capacity, max_capacity=max_capacity,
                             timeout_action=timeout_action),
        workload=Workload(segments=segments, query_cpu_s=query_cpu_s),
        duration_s=3600,
    )


DAY_START_H, DAY_END_H = 6, 22
OFFICE_HOURS_H = ((9.0, 12.0), (12.75, 17.0))  # users at work, with a 45-minute lunch break


def office_clock(time_s: float) -> str:
    """The wall-clock time ("HH:MM") of an office-day run's ``time_s`` (time 0 is 06:00).

    Example:
        >>> office_clock(3 * 3600 + 90)
        '09:01'
    """
    minutes = int((DAY_START_H * 3600 + time_s) // 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def office_day(*, seconds_until_auto_pause: int = 300, auto_pause: bool = True, prewarm_s: float = 0,
               monitoring_agent: bool = False, rps: float = 0.5, min_capacity: int = 2) -> Scenario:
    """Notebook 03: an internal app used 09:00–12:00 and 12:45–17:00, simulated from 06:00 to 22:00.

    Time 0 is 06:00. ``prewarm_s`` > 0 runs a scheduled warm-up job (connect, ``SELECT 1``, disconnect)
    that long before 09:00, so the cold start happens before anyone is waiting. ``monitoring_agent``
    holds one idle connection all day, which keeps the cluster from ever pausing.
    """
    day_start_s = DAY_START_H * 3600
    segments = [(a * 3600 - day_start_s, b * 3600 - day_start_s, rps) for a, b in OFFICE_HOURS_H]
    duration_s = (DAY_END_H - DAY_START_H) * 3600
    blocking = []
    if prewarm_s > 0:
        blocking.append(IdleConnection(start_s=segments[0][0] - prewarm_s, duration_s=1.0))
    if monitoring_agent:
        blocking.append(IdleConnection(start_s=0, duration_s=duration_s))
    return Scenario(
        name="office_day",
        description=f"{rps:g} req/s during office hours, 06:00–22:00",
        config=ClusterConfig(min_capacity=min_capacity, max_capacity=16, auto_pause=auto_pause,
                             seconds_until_auto_pause=seconds_until_auto_pause),
        workload=Workload(segments=segments, query_cpu_s=0.02, blocking=blocking),
        duration_s=duration_s,
    )


def tour() -> Scenario:
    """Notebook 00: one hour of quiet, busy and busier (scale up), quiet (scale down), idle (pause), and back."""
    return Scenario(
        name="tour",
        description="quiet, busy, busier, quiet, idle, back again",
        config=ClusterConfig(min_capacity=1, max_capacity=8),
        workload=Workload(segments=[(0, 300, 5.0), (300, 480, 25.0), (480, 1200, 35.0), (1200, 2100, 5.0),
                                    (3000, 3600, 5.0)], query_cpu_s=0.03),
        duration_s=3600,
    )


def week_with_auto_pause(*, rps: float = 2.0) -> Scenario:
    """The benchmark's 7-day run: office hours every day, idle (and paused) at night."""
    segments = [(day * 86_400 + 8 * 3600, day * 86_400 + 18 * 3600, rps) for day in range(7)]
    return Scenario(
        name="week_with_auto_pause",
        description=f"{rps:g} req/s from 08:00 to 18:00 for seven days",
        config=ClusterConfig(),
        workload=Workload(segments=segments),
        duration_s=7 * 86_400,
        metrics_period_s=300,
    )


OFFICE_OPEN_H, OFFICE_CLOSE_H = 8, 18  # office_week's users: 08:00–18:00 on weekdays


def office_week(*, days: int = 7, rps: float = 20.0) -> Scenario:
    """A long run for the engine's speed budget (DESIGN §8): an office application busy 08:00–18:00 on weekdays at
    ``rps`` requests/s of 0.02 ACU-s each, idle (and paused) at night and at weekends, metrics every minute.

    Day 0 is a Monday; the default week asks for about 3.6 million requests.

    Example:
        >>> week = office_week()
        >>> len(week.workload.segments), week.duration_s, week.metrics_period_s
        (5, 604800, 60)
    """
    segments = [(day * 86_400 + OFFICE_OPEN_H * 3600, day * 86_400 + OFFICE_CLOSE_H * 3600, rps)
                for day in range(days) if day % 7 < 5]
    return Scenario(
        name="office_week",
        description=f"{rps:g} req/s from 08:00 to 18:00 on weekdays, for {days} days",
        config=ClusterConfig(),
        workload=Workload(segments=segments, query_cpu_s=0.02),
        duration_s=days * 86_400,
    )


def office_month(*, rps: float = 20.0) -> Scenario:
    """``office_week`` over 30 days (22 working days, about 16 million requests): the memory budget's run."""
    return office_week(days=30, rps=rps).replace(name="office_month")


PRESETS = {"tour": tour, "flash sale": flash_sale, "office day": office_day}


def preset(name: str, *, intensity: float = 1.0, **config: object) -> Scenario:
    """A named preset with its request rates multiplied by ``intensity`` and some cluster settings changed.

    Example:
        >>> busy = preset("flash sale", intensity=2.0, min_capacity=2)
        >>> busy.workload.segments[1][2], busy.config.min_capacity
        (96.0, 2)
    """
    if name not in PRESETS:
        raise ValueError(f"name={name!r} must be one of {tuple(PRESETS)}")
    base = PRESETS[name]()
    segments = tuple((start, end, rate * intensity) for start, end, rate in base.workload.segments)
    return base.replace(workload=dataclasses.replace(base.workload, segments=segments),
                        config=dataclasses.replace(base.config, **config))


# --- notebook 01: connection management ---------------------------------------------------------------------

BURST_START_S, BURST_END_S = 600, 630
CONNECTION_CHOICES = ("per request", "pool", "Data API", "none (one free connection per request)")


def connection_strategy(name: str, *, pool_min_size: int = 2, pool_max_size: int = 20, acquire_timeout_s: float = 10,
                        max_lifetime_s: float | None = 3600, pre_ping: bool = False,
                        data_api_call_s: float | None = None):
    """The ``Workload.connections`` value for a strategy's display name (see ``CONNECTION_CHOICES``);
    ``data_api_call_s`` sets the Data API's time per call (``None``: ``DataApi``'s default, the warm median).

    Example:
        >>> connection_strategy("Data API", data_api_call_s=facts.DATA_API_FIRST_CALL_S).overhead_s
        0.75
    """
    if name not in CONNECTION_CHOICES:
        raise ValueError(f"name={name!r} must be one of {CONNECTION_CHOICES}")
    data_api = DataApi() if data_api_call_s is None else DataApi(overhead_s=data_api_call_s)
    return {"per request": ConnectPerRequest(),
            "pool": ConnectionPool(min_size=pool_min_size, max_size=pool_max_size, acquire_timeout_s=acquire_timeout_s,
                                   max_lifetime_s=max_lifetime_s, pre_ping=pre_ping),
            "Data API": data_api, "none (one free connection per request)": None}[name]


def serverless_burst(*, connections: str = "per request", burst_rps: float = 80.0, pool_min_size: int = 2,
                     pool_max_size: int = 20, base_rps: float = 0.25, retry: RetryPolicy | None = None,
                     data_api_call_s: float | None = None) -> Scenario:
    """Notebook 01: a trickle of requests, a 30-second burst of serverless invocations at minute 10, the trickle
    again, then a quiet half hour in which the cluster may pause. Every request is simulated individually.
    ``data_api_call_s`` prices each Data API call (e.g. ``facts.DATA_API_FIRST_CALL_S``: every call a first call)."""
    segments = [(0, BURST_START_S, base_rps), (BURST_START_S, BURST_END_S, burst_rps), (BURST_END_S, 1800, base_rps)]
    strategy = connection_strategy(connections, pool_min_size=pool_min_size, pool_max_size=pool_max_size,
                                   data_api_call_s=data_api_call_s)
    if strategy is None and retry is None:
        retry = RetryPolicy("none")  # still simulated request by request, like the others
    return Scenario(
        name="serverless_burst",
        description=f"{base_rps:g} req/s, a {burst_rps:g} req/s burst at minute 10, quiet after minute 30",
        config=ClusterConfig(min_capacity=1, max_capacity=8),
        workload=Workload(segments=segments, query_cpu_s=0.01, connections=strategy, retry=retry),
        duration_s=3600,
        metrics_period_s=5,  # a 30-second burst needs finer samples than a minute to show its connections
    )


def oversized_pool(*, min_size: int = 85) -> Scenario:
    """Notebook 01: a pool whose idle connections alone pass 90 % of max_connections at 1 ACU (CPU stays low)."""
    return Scenario(
        name="oversized_pool",
        description=f"1 req/s through a pool that keeps {min_size} connections open",
        config=ClusterConfig(min_capacity=1, max_capacity=8),
        workload=Workload(segments=[(0, 3600, 1.0)], query_cpu_s=0.01,
                          connections=ConnectionPool(min_size=min_size, max_size=max(min_size, 100))),
        duration_s=3600,
    )


def long_lived_pool(*, max_lifetime_s: float | None = None, pre_ping: bool = False) -> Scenario:
    """Notebook 01: two days through a small pool; the cluster closes each connection at 24 hours."""
    return Scenario(
        name="long_lived_pool",
        description="one request every two minutes for two days through a pool of two connections",
        config=ClusterConfig(min_capacity=1, max_capacity=4),
        workload=Workload(segments=[(0, 2 * 86_400, 1 / 120)], arrivals="regular", query_cpu_s=0.01,
                          connections=ConnectionPool(min_size=2, max_size=2, idle_timeout_s=None,
                                                     max_lifetime_s=max_lifetime_s, pre_ping=pre_ping)),
        duration_s=2 * 86_400,
        metrics_period_s=600,
    )


# --- notebook 05: scale-blocking operations -----------------------------------------------------------------

REPORT_START_S, REPORT_DURATION_S, MORNING_RAMP_S = 0, 3600, 1200
BLOCKERS = {"long transaction": LongTransaction, "long query": LongQuery, "temporary table": TemporaryTable,
            "table lock": TableLock, "none": None}
# Aurora PostgreSQL only (the simulator refuses them on MySQL); only NOTIFY is documented as preventing scaling.
POSTGRESQL_BLOCKERS = {"advisory lock": AdvisoryLock, "LISTEN": Listen, "NOTIFY": Notify,
                       "cursor WITH HOLD": HoldCursor}


def nightly_report(*, blocker: str = "long transaction", pieces: int = 1, gap_s: float = 60,
                   timeout_action: str = "RollbackCapacityChange", seconds_before_timeout: int = 300,
                   parameters: dict | None = None, engine: str = "aurora-mysql",
                   ramp_s: float = MORNING_RAMP_S) -> Scenario:
    """Notebook 05: a one-hour report job from 06:00 while the morning traffic climbs at 06:20 to 80 % of one
    ACU, so the cluster wants to scale up while the report holds its scaling point. ``pieces`` > 1 runs the
    report as that many short transactions with ``gap_s`` between them ("narrow the transaction"). ``blocker`` may
    also name one of ``POSTGRESQL_BLOCKERS``; ``run()`` then refuses it on Aurora MySQL, as the engine would.

    Example:
        >>> nightly_report(blocker="NOTIFY", engine="aurora-postgresql").workload.blocking[0].holds
        'a pending NOTIFY'
    """
    kinds = {**BLOCKERS, **POSTGRESQL_BLOCKERS}
    if blocker not in kinds:
        raise ValueError(f"blocker={blocker!r} must be one of {tuple(kinds)}")
    kind = kinds[blocker]
    lowest = facts.CAPACITY_LADDER[engine][0]  # the traffic asks for 80 % of the engine's smallest rung
    report = () if kind is None else (kind(start_s=REPORT_START_S, duration_s=REPORT_DURATION_S),)
    if pieces > 1 and kind is LongTransaction:
        report = report[0].split(pieces, gap_s)
    return Scenario(
        name="nightly_report",
        description=f"a one-hour report ({blocker}) while traffic climbs at minute {ramp_s / 60:g}",
        config=ClusterConfig(engine=engine, min_capacity=lowest, max_capacity=8,
                             timeout_action=timeout_action, seconds_before_timeout=seconds_before_timeout,
                             parameters=parameters or {}),
        workload=Workload(segments=[(0, ramp_s, 1.0 * lowest), (ramp_s, 7200, 9.0 * lowest)], query_cpu_s=0.09,
                          blocking=report),
        duration_s=7200,
    )


# --- notebook 06: retries -----------------------------------------------------------------------------------

def retry_storm(*, retry: RetryPolicy | None = None, quiet_rps: float = 3.0, busy_rps: float = 8.0) -> Scenario:
    """Notebook 06: Data API clients meet a cold start at minute 7 (the call that finds the cluster paused
    fails, and the calls held during the resume then connect all at once), then, at minute 12, more traffic
    wants a scale-up while a report holds the scaling point: after 60 s the change is forced and the statements
    in flight are aborted. What does a retry policy make of both?"""
    return Scenario(
        name="retry_storm",
        description=f"Data API calls from minute 7 ({quiet_rps:g}/s, then {busy_rps:g}/s from minute 12); "
                    "a report blocks scaling, forced after 60 s",
        config=ClusterConfig(min_capacity=1, max_capacity=8, timeout_action="ForceApplyCapacityChange",
                             seconds_before_timeout=60),
        workload=Workload(segments=[(STORM_START_S, STORM_BUSY_S, quiet_rps), (STORM_BUSY_S, STORM_END_S, busy_rps)],
                          query_cpu_s=0.1, blocking=(LongTransaction(start_s=STORM_BUSY_S - 40, duration_s=600),),
                          connections=DataApi(), retry=retry or RetryPolicy("none")),
        duration_s=STORM_END_S,
        metrics_period_s=5,  # the herd after the resume lasts seconds; minute samples miss its connections
    )


STORM_START_S, STORM_BUSY_S, STORM_END_S = 420, 720, 960


# --- notebook 09: resilience -----------------------------------------------------------------------------------

FAULT_CHOICES = ("AZ outage", "instance failure", "none")
# The fault strikes at minute 2 of a 7-minute run: the default AZ outage (180 s) leaves 2 minutes to watch the
# clients come back. A longer outage (capacity_wait_s) lengthens the run to keep those 2 minutes.
SHOP_FAULT_S, SHOP_END_S, SHOP_AFTER_S = 120, 420, 120
# An order is 0.1 ACU-seconds of CPU: the crowd of retries that comes back after the outage then needs more
# than a pool of 2 can serve within 1 s (a pool too small shows), and the panel simulates one order a second.
SHOP_ORDER_CPU_S = 0.1
SHOP_REPORT_S = (SHOP_FAULT_S - 60, 600.0)  # a report's transaction, open when the fault strikes: (start, duration)
SHOP_POOL = ConnectionPool(min_size=2, max_size=10, acquire_timeout_s=10, max_lifetime_s=None)  # no pre-ping


def shop_fault(fault: str, *, capacity_wait_s: float | None = None) -> tuple:
    """The ``actions`` of ``shop_failover`` for a fault's display name (see ``FAULT_CHOICES``).

    Example:
        >>> shop_fault("AZ outage")[0].outage_s, shop_fault("none")
        (180.0, ())
    """
    from .faults import AzOutage, InstanceFailure  # faults imports the engine; scenarios only needs it here

    if fault not in FAULT_CHOICES:
        raise ValueError(f"fault={fault!r} must be one of {FAULT_CHOICES}")
    if fault == "none":
        return ()
    if fault == "instance failure":
        return (InstanceFailure(at_s=SHOP_FAULT_S),)
    return (AzOutage(at_s=SHOP_FAULT_S, capacity_wait_s=capacity_wait_s),)


def shop_failover(*, fault: str = "AZ outage", connections: str = "pool", pool: ConnectionPool | None = None,
                  retry: RetryPolicy | None = None, discovery: str = "aurora prefix", orders_per_s: float = 1.0,
                  capacity_wait_s: float | None = None) -> Scenario:
    """Notebook 09: a shop takes ``orders_per_s`` orders through ``connections`` (a pool without pre-ping or
    max_lifetime by default, ``SHOP_POOL``); at minute 2 ``fault`` takes the DB instance, while a report's
    transaction is open. ``discovery`` is how the driver finds the instance ("dns scan" adds
    ``FaultAssumptions.dns_scan_s`` to every new connection; "aurora prefix" does not)."""
    from .faults import connect_assumptions

    if connections not in ("pool", "per request", "Data API"):
        raise ValueError(f"connections={connections!r} must be one of ('pool', 'per request', 'Data API')")
    strategy = {"pool": pool or SHOP_POOL, "per request": ConnectPerRequest(), "Data API": DataApi()}[connections]
    report = LongTransaction(start_s=SHOP_REPORT_S[0], duration_s=SHOP_REPORT_S[1])
    actions = shop_fault(fault, capacity_wait_s=capacity_wait_s)
    end_s = max(SHOP_END_S, SHOP_FAULT_S + sum(action.outage_s for action in actions) + SHOP_AFTER_S)
    return Scenario(
        name="shop_failover",
        description=f"{orders_per_s:g} orders/s through {connections}; {fault} at minute {SHOP_FAULT_S // 60}",
        config=ClusterConfig(min_capacity=2, max_capacity=8, auto_pause=False),
        workload=Workload(segments=[(0, end_s, orders_per_s)], query_cpu_s=SHOP_ORDER_CPU_S, blocking=(report,),
                          connections=strategy, retry=retry or RetryPolicy("none")),
        duration_s=end_s,
        metrics_period_s=5,  # the outage lasts minutes, its edges seconds
        assumptions=connect_assumptions(discovery),
        actions=actions,
    )


# --- notebook 07: MySQL vs PostgreSQL -----------------------------------------------------------------------

# The month-end peak: report queries of 2 ACU-seconds each, quiet at 8 ACUs of CPU (half the 16-ACU floor), then
# doubling every 4 minutes to the peak, 5 minutes there, and quiet again. A query is an eighth of a second of the
# floor's CPU, so the cluster finds scaling points all the way up (checked over seeds 1-8, peaks 40-150 ACU); at an
# 8-ACU floor a quarter-second query made the first scale-up fail under some seeds.
MONTH_END_FLOOR_ACU, MONTH_END_QUIET_ACU, MONTH_END_QUERY_CPU_S = 16, 8.0, 2.0
MONTH_END_RAMP_START_S, MONTH_END_DOUBLING_S, MONTH_END_PEAK_HOLD_S, MONTH_END_TAIL_S = 300, 240, 300, 1200
RUNAWAY_START_S, RUNAWAY_DURATION_S = 120, 1800  # a dashboard's forgotten query, long before the climb
PEAK_ACU_OPTIONS = (40.0, 60.0, 80.0, 100.0, 120.0, 150.0)


def month_end_segments(peak_acu: float) -> tuple[tuple[float, float, float], ...]:
    """The month-end traffic as segments: quiet, a climb in one-minute steps (doubling every
    ``MONTH_END_DOUBLING_S``) up to ``peak_acu`` ACUs of CPU, the peak, quiet again.

    Example:
        >>> segments = month_end_segments(80.0)
        >>> segments[0][2] * MONTH_END_QUERY_CPU_S, max(rate for _, _, rate in segments) * MONTH_END_QUERY_CPU_S
        (8.0, 80.0)
    """
    if not MONTH_END_QUIET_ACU < peak_acu <= 1000:
        raise ValueError(f"peak_acu={peak_acu!r} must be above the quiet {MONTH_END_QUIET_ACU:g} ACU and at most 1000")
    start = float(MONTH_END_RAMP_START_S)
    segments, level = [(0.0, start, MONTH_END_QUIET_ACU)], MONTH_END_QUIET_ACU
    while level < peak_acu:
        level = min(peak_acu, level * 2 ** (60 / MONTH_END_DOUBLING_S))
        segments.append((start, start + 60, level))
        start += 60
    segments.append((start, start + MONTH_END_PEAK_HOLD_S, peak_acu))
    start += MONTH_END_PEAK_HOLD_S
    segments.append((start, start + MONTH_END_TAIL_S, MONTH_END_QUIET_ACU))
    return tuple((a, b, acu / MONTH_END_QUERY_CPU_S) for a, b, acu in segments)


def month_end_peak(*, engine: str = "aurora-mysql", peak_acu: float = 80.0, min_capacity: int = MONTH_END_FLOOR_ACU,
                   max_capacity: int | None = None, runaway_query: bool = False,
                   parameters: dict | None = None) -> Scenario:
    """Notebook 07: a reporting cluster's month-end peak on either engine; the same traffic for both.

    ``max_capacity`` None is the rung above 64 on the engine's ladder: 128 on MySQL, 192 on PostgreSQL.
    ``runaway_query`` adds a dashboard's one-hour ``SELECT`` from minute 2, which holds the scaling point
    unless a timeout parameter ends it.

    Example:
        >>> month_end_peak().config.max_capacity, month_end_peak(engine="aurora-postgresql").config.max_capacity
        (128, 192)
    """
    top = facts.next_rung(engine, 64, +1) if max_capacity is None else max_capacity
    blocking = (LongQuery(start_s=RUNAWAY_START_S, duration_s=RUNAWAY_DURATION_S),) if runaway_query else ()
    segments = month_end_segments(peak_acu)
    return Scenario(
        name="month_end_peak",
        description=f"report queries climbing to {peak_acu:g} ACUs of CPU and back",
        config=ClusterConfig(engine=engine, min_capacity=min_capacity, max_capacity=top, parameters=parameters or {}),
        workload=Workload(segments=segments, query_cpu_s=MONTH_END_QUERY_CPU_S, blocking=blocking),
        duration_s=segments[-1][1],
    )


DEV_SESSIONS_H = ((10.0, 10.5), (14.0, 15.0), (16.5, 17.0))  # a developer's day with the database


def idle_dev_database(*, engine: str = "aurora-mysql", auto_pause: bool = True,
                      min_capacity: int | None = None) -> Scenario:
    """Notebook 07: a development database for one day (time 0 is midnight): three short sessions of light
    queries, idle the rest of the day, at the engine's lowest capacity unless ``min_capacity`` says otherwise.

    Example:
        >>> idle_dev_database(engine="aurora-postgresql").config.min_capacity
        2
    """
    segments = [(start_h * 3600, end_h * 3600, 0.5) for start_h, end_h in DEV_SESSIONS_H]
    return Scenario(
        name="idle_dev_database",
        description="three short sessions of light queries in a day",
        config=ClusterConfig(engine=engine, min_capacity=min_capacity, max_capacity=4, auto_pause=auto_pause),
        workload=Workload(segments=segments, query_cpu_s=0.02),
        duration_s=86_400,
        metrics_period_s=300,
    )


RUSH_START_S, RUSH_END_S = 300, 360


def connection_rush(*, engine: str = "aurora-mysql", rush_rps: float = 100.0) -> Scenario:
    """Notebook 07: a minute's rush of requests at five minutes, on a cluster at its engine's lowest capacity:
    each request holds its connection while it waits, so connections pile up to the engine's limit.

    Example:
        >>> connection_rush(engine="aurora-postgresql").config.min_capacity
        2
    """
    segments = [(0, RUSH_START_S, 1.0), (RUSH_START_S, RUSH_END_S, rush_rps), (RUSH_END_S, 1200, 1.0)]
    return Scenario(
        name="connection_rush",
        description=f"1 req/s, then {rush_rps:g} req/s for a minute at minute 5",
        config=ClusterConfig(engine=engine, max_capacity=8),
        workload=Workload(segments=segments, query_cpu_s=0.05),
        duration_s=1200,
        metrics_period_s=10,
    )


# --- notebook 11: monitoring and logs -----------------------------------------------------------------------

NIGHT_START_H = 0  # the night run starts at midnight: time_s 3600 is 01:00
NIGHT_IMPORT_S = (2 * 3600, 2 * 3600 + 45 * 60)  # the warehouse import: 02:00–02:45
NIGHT_BUSY_HOUR_S = (4 * 3600 + 30 * 60, 6 * 3600)  # the early shoppers: 04:30–06:00, an ordinary busy hour
NIGHT_JOBS = {  # name → (the job's session, its blocking operation): what the logs and the run share
    "backup": (Session(user="backup", statement="SELECT * FROM orders ORDER BY order_id", uses_index=False,
                       rows_sent=2_400_000, rows_examined=2_400_000),
               LongQuery(start_s=20 * 60, duration_s=30 * 60)),
    "reporting": (Session(user="reporting", statement="INSERT INTO daily_sales SELECT date(created), sum(total) "
                          "FROM orders WHERE created >= current_date - 1 GROUP BY 1", statement_s=2.5,
                          uses_index=False, rows_sent=0, rows_examined=80_000, locks="daily_sales"),
                  LongTransaction(start_s=105 * 60, duration_s=90 * 60)),
    "cleanup": (Session(user="cleanup", statement="LOCK TABLES daily_sales WRITE", locks="daily_sales",
                        rows_sent=0, rows_examined=0),
                TableLock(start_s=180 * 60, duration_s=20 * 60)),
    "cache_refresh": (Session(user="cache", statement="CREATE TEMPORARY TABLE hot_products AS SELECT product_id, "
                              "count(*) AS sold FROM order_items GROUP BY product_id", statement_s=4.0,
                              uses_index=False, rows_sent=0, rows_examined=300_000),
                      TemporaryTable(start_s=210 * 60, duration_s=15 * 60)),
}
NIGHT_LOG_PARAMETERS = {"slow_query_log": 1, "long_query_time": 10.0}  # what the night's MySQL cluster publishes


def night_sessions(engine: str = "aurora-mysql") -> tuple[Session, ...]:
    """The night jobs' sessions, in the order of ``night_shift().workload.blocking``; the table lock in the
    engine's SQL.

    Example:
        >>> night_sessions("aurora-postgresql")[2].statement
        'LOCK TABLE daily_sales IN ACCESS EXCLUSIVE MODE'
    """
    sessions = []
    for session, op in NIGHT_JOBS.values():
        if isinstance(op, TableLock) and engine == "aurora-postgresql":
            session = dataclasses.replace(session, statement=f"LOCK TABLE {session.locks} IN ACCESS EXCLUSIVE MODE")
        sessions.append(session)
    return tuple(sessions)


def night_shift(*, engine: str = "aurora-mysql", seconds_before_timeout: int = 300) -> Scenario:
    """Notebook 11: a shop's night from 00:00 to 06:00 with four jobs (``NIGHT_JOBS``), a warehouse import at
    02:00 that wants more capacity, pauses in between, and the early shoppers from 04:30. On Aurora PostgreSQL
    (lowest rung 2 ACU) each request costs twice the CPU, to tell the same story with as many log lines.

    Example:
        >>> [op.start_s // 60 for op in night_shift().workload.blocking]
        [20, 105, 180, 210]
    """
    lowest = facts.CAPACITY_LADDER[engine][0]
    segments = [(0, 3600, 0.5), (*NIGHT_IMPORT_S, 4.5), (4 * 3600, NIGHT_BUSY_HOUR_S[0], 0.5),
                (*NIGHT_BUSY_HOUR_S, 5.0)]
    return Scenario(
        name="night_shift",
        description="a shop's night: backup, report, import, cleanup, cache refresh, early shoppers",
        config=ClusterConfig(engine=engine, min_capacity=lowest, max_capacity=8,
                             seconds_before_timeout=seconds_before_timeout),
        workload=Workload(segments=segments, query_cpu_s=0.18 * lowest,
                          blocking=tuple(op for _, op in NIGHT_JOBS.values())),
        duration_s=6 * 3600,
    )


RUNAWAY_LIMIT_MS = 120_000  # the MySQL cluster's max_execution_time: the runaway SELECT ends 2 minutes in


def mysql_to_port() -> Scenario:
    """Notebook 07's exercise: the Aurora MySQL 5.7 cluster to port, at its month-end peak with the runaway
    dashboard query, which its ``max_execution_time`` ends long before the climb.

    Example:
        >>> config = mysql_to_port().config
        >>> config.engine, config.min_capacity, config.max_capacity, config.parameters
        ('aurora-mysql', 16, 128, (('max_execution_time', 120000),))
    """
    return month_end_peak(runaway_query=True, parameters={"max_execution_time": RUNAWAY_LIMIT_MS})


# --- notebook 04: three databases, on one cluster or on one each ---------------------------------------------

EVENING_S = 2 * 3600  # the run: two evening hours
SHOP_SPIKE_S = (3600, 4800)  # the shop's evening peak (the ramp's first 5 minutes included)
SHOP_BASE_RPS, SHOP_PEAK_RPS, SHOP_QUERY_CPU_S = 10.0, 32.0, 0.1
EVENING_REPORT_DURATION_S = 1800  # the nightly report's transaction: half an hour
EVENING_REPORT_START_S = 3300  # by default it begins five minutes before the peak
TOOL_END_S = 5400  # the internal tool's users go home after 90 minutes


def three_databases(report_start_s: float = EVENING_REPORT_START_S) -> dict[str, Workload]:
    """Notebook 04's databases: a shop with an evening peak, a nightly report (one long transaction and its
    queries), and an internal tool used for the first 90 minutes.

    Example:
        >>> {name: wl.rate_at(4000) for name, wl in three_databases().items()}
        {'shop': 32.0, 'reports': 2.0, 'tool': 5.0}
    """
    ramp_s = SHOP_SPIKE_S[0] + 300
    shop = Workload(segments=[(0, SHOP_SPIKE_S[0], SHOP_BASE_RPS), (SHOP_SPIKE_S[0], ramp_s, SHOP_PEAK_RPS / 2),
                              (ramp_s, SHOP_SPIKE_S[1], SHOP_PEAK_RPS), (SHOP_SPIKE_S[1], EVENING_S, SHOP_BASE_RPS)],
                    query_cpu_s=SHOP_QUERY_CPU_S)
    report_end_s = report_start_s + EVENING_REPORT_DURATION_S
    reports = Workload(segments=[(report_start_s, report_end_s, 2.0)], query_cpu_s=0.25,
                       blocking=[LongTransaction(start_s=report_start_s, duration_s=EVENING_REPORT_DURATION_S)])
    tool = Workload(segments=[(0, TOOL_END_S, 5.0)], query_cpu_s=0.1)
    return {"shop": shop, "reports": reports, "tool": tool}


SHARED_CLUSTER = ClusterConfig(min_capacity=2, max_capacity=8)  # notebook 04's one cluster for all three
SEPARATE_CLUSTERS = {"shop": ClusterConfig(min_capacity=2, max_capacity=8),
                     "reports": ClusterConfig(min_capacity=1, max_capacity=2),
                     "tool": ClusterConfig(min_capacity=1, max_capacity=2)}  # and one each, sized for its database
