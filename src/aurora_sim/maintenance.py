"""Maintenance on a v1 cluster: a patch that needs a scaling point, held back by the blocking operations of notebook 05.

The User Guide: maintenance needs a scaling point; v1 looks for one "for up to seven days"
(``facts.MAINTENANCE_SEARCH_DAYS``), creates an event at the end of each day it finds none, and meanwhile "behaves
according to its TimeoutAction": each search lasts ``SecondsBeforeTimeout``, then ``RollbackCapacityChange`` gives up
until the next search and ``ForceApplyCapacityChange`` forces the patch through. After the seven days the patch is
applied "with the ForceApplyCapacityChange timeout action … regardless of the ScalingConfiguration settings"
(``facts.MAINTENANCE_FORCE_QUOTE``). A forced patch aborts what holds the scaling point exactly as a forced scaling
does (notebook 05), rollback wait included.

Where AWS is silent, the model's rules: a new search starts as soon as the last one gave up (the cluster "continues
looking"); the patch itself is applied at the scaling point and costs nothing more (AWS: "nondisruptive"); a paused
cluster has nothing in flight, so it is patched at once.

Example:
    >>> from aurora_sim import ClusterConfig, LongTransaction, Workload, simulate
    >>> report = Workload(segments=[(0, 7200, 1.0)], blocking=[LongTransaction(start_s=0, duration_s=3600)])
    >>> run = simulate(ClusterConfig(auto_pause=False), report, duration_s=7200,
    ...                actions=[PendingMaintenance(at_s=600)])
    >>> run.sql("SELECT kind, time_s FROM events WHERE kind LIKE 'maintenance%' ORDER BY seq").fetchall()[-1][0]
    'maintenance_applied'
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import facts
from .actions import ClusterAction
from .config import ClusterConfig, ModelAssumptions
from .names import MAINTENANCE_APPLIED, MAINTENANCE_PENDING
from .workload import LongTransaction, Workload

DAY_S = 86_400
SEARCH_S = facts.MAINTENANCE_SEARCH_DAYS * DAY_S


@dataclass(frozen=True, kw_only=True)
class PendingMaintenance(ClusterAction):
    """A patch AWS schedules at ``at_s``; it waits for a scaling point as v1 maintenance does (module docstring)."""

    def start(self, cluster) -> None:
        cluster.env.process(self._patch(cluster))

    def _patch(self, cluster):
        env, config = cluster.env, cluster.config
        yield env.timeout(max(0.0, self.at_s - env.now))
        first_s = env.now
        force_by_s, next_notice_s = first_s + SEARCH_S, first_s + DAY_S
        cluster._emit(MAINTENANCE_PENDING, message="Maintenance pending: looking for a scaling point to apply it.")
        while True:
            deadline = env.now + config.seconds_before_timeout
            while True:  # one search for a scaling point
                cluster._sync()
                if cluster._scaling_point_exists():
                    cluster._emit(MAINTENANCE_APPLIED, message="Maintenance applied at a scaling point.")
                    return
                if env.now >= next_notice_s:
                    cluster._emit(MAINTENANCE_PENDING, message=_daily_notice(env.now, first_s, force_by_s))
                    next_notice_s += DAY_S
                if env.now >= deadline:
                    break
                wake_s = max(env.now + cluster.assumptions.scaling_point_poll_s, _earliest_release_s(cluster))
                yield env.timeout(min(wake_s, deadline, next_notice_s) - env.now)
            if config.timeout_action == "ForceApplyCapacityChange" or env.now >= force_by_s:
                why = ("ForceApplyCapacityChange" if env.now < force_by_s else
                       f"{facts.MAINTENANCE_SEARCH_DAYS} days without a scaling point")
                rolled_back_s = yield from cluster._force_through_rollbacks()
                cluster._emit(MAINTENANCE_APPLIED, message=f"Maintenance forced ({why}): what held the scaling point "
                              f"was aborted or dropped; rolling back took {rolled_back_s:.0f} s.")
                return


def _earliest_release_s(cluster) -> float:
    """When the first open blocking operation ends (its duration, or an engine timeout): no scaling point comes before
    then, so a search need not look (a week of 5-s polls cost 3.4 s of a 7-s run; this wakes twice per transaction).
    A blocking operation that a forced scaling ends sooner is noticed at this wake-up."""
    if not cluster._blocked():
        return cluster.env.now
    return min(op.start_s + cluster._blocker_lifetime(op)[0] for op in cluster._blockers.values() if op.blocks_scaling)


def _daily_notice(now_s: float, first_s: float, force_by_s: float) -> str:
    """The end-of-day event: no scaling point yet, and when the patch will be forced.

    Example:
        >>> _daily_notice(86_400, 0, SEARCH_S)
        'No scaling point found on day 1 of the maintenance search: it will be forced on day 7 (at 604800 s).'
    """
    day = round((now_s - first_s) / DAY_S)
    return (f"No scaling point found on day {day} of the maintenance search: it will be forced on day "
            f"{facts.MAINTENANCE_SEARCH_DAYS} (at {force_by_s:.0f} s).")


# ---------------------------------------------------------------- notebook 10's scenario


def always_in_a_transaction(days: float, *, workers: int = 2, transaction_s: float = 1200.0,
                            gap_s: float = 0.0) -> Workload:
    """Light traffic plus queue workers that each hold one transaction after another for ``days``: with two or more
    workers staggered and no gap, some transaction is open at every moment, so no scaling point ever comes.

    Example:
        >>> len(always_in_a_transaction(1).blocking)
        144
    """
    duration_s = days * DAY_S
    each = int(duration_s // (transaction_s + gap_s)) + 1
    blocking = [LongTransaction(start_s=float(w * transaction_s / workers + k * (transaction_s + gap_s)),
                                duration_s=transaction_s)
                for w in range(workers) for k in range(each)
                if w * transaction_s / workers + k * (transaction_s + gap_s) < duration_s]
    return Workload(segments=[(0, duration_s, 0.05)], blocking=blocking)


PATCH_AT_S = 3600
PATCH_CASES = (  # label, timeout action, the workers' shape (always_in_a_transaction)
    ("two workers, always a transaction open, Rollback", "RollbackCapacityChange", {"workers": 2}),
    ("two workers, always a transaction open, Force", "ForceApplyCapacityChange", {"workers": 2}),
    ("one worker, 60 s between transactions, Rollback", "RollbackCapacityChange", {"workers": 1, "gap_s": 60.0}),
)


def patch_runs(**settings: object) -> dict[str, object]:
    """The patch under each timeout action against workers that are always in a transaction, and against workers
    that commit with a gap between transactions: name → ``Run``. ``settings`` go to ``always_in_a_transaction``."""
    from .simulation import simulate  # simulation imports actions, which this module builds on: import late

    days = facts.MAINTENANCE_SEARCH_DAYS + 1
    # A week of light traffic never asks to scale: a coarser controller changes nothing here and saves seconds.
    coarse = ModelAssumptions(controller_period_s=60)
    runs = {}
    for label, timeout_action, shape in PATCH_CASES:
        workload = always_in_a_transaction(days, **{**shape, **settings})
        config = ClusterConfig(auto_pause=False, timeout_action=timeout_action)
        runs[label] = simulate(config, workload, duration_s=days * DAY_S, seed=10, metrics_period_s=3600,
                               assumptions=coarse, actions=[PendingMaintenance(at_s=PATCH_AT_S)])
    return runs


def waited(seconds: float) -> str:
    """A wait as a person says it.

    Example:
        >>> waited(7 * DAY_S + 300), waited(420), waited(7200)
        ('7 days 0 h 5 min', '7 min', '2 h 0 min')
    """
    days, rest = divmod(round(seconds / 60) * 60, DAY_S)
    hours, minutes = divmod(rest // 60, 60)
    if days:
        return f"{days:.0f} days {hours:.0f} h {minutes:.0f} min"
    return f"{hours:.0f} h {minutes:.0f} min" if hours else f"{minutes:.0f} min"


def patch_outcomes(runs: dict[str, object]) -> pd.DataFrame:
    """When each run's patch was applied, how, and what it cost: one row per run.

    Example:
        >>> patch_outcomes({}).columns.tolist()
        ['patch applied after', 'how', 'daily notices', 'transactions aborted']
    """
    rows = {}
    for label, run in runs.items():
        events = run.sql("SELECT time_s, kind, message FROM events ORDER BY seq").df()
        pending = events[events["kind"] == MAINTENANCE_PENDING]
        applied = events[events["kind"] == MAINTENANCE_APPLIED]
        start_s = float(pending["time_s"].min())
        done = applied.iloc[0] if len(applied) else None
        aborted = events[(events["kind"] == "transaction_aborted") & (events["time_s"] >= start_s)]
        rows[label] = ("—" if done is None else waited(done["time_s"] - start_s),
                       "not yet" if done is None else "forced" if "forced" in done["message"] else "at a scaling point",
                       len(pending) - 1, len(aborted))
    columns = ["patch applied after", "how", "daily notices", "transactions aborted"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("workers")
