"""Exercise checkers: "correct", "not yet" (with a hint) or "not attempted" — never the expected value.

Each checker simulates the learner's answer and judges the run against the exercise's targets, so
a change to the model changes the right answer and the checker together.

Example:
    >>> minimum_capacity.check(None).status
    'not attempted'
    >>> minimum_capacity.check(1).status
    'not yet'
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from . import capstone, consolidation, costs, facts, scenarios
from .clients import REFUSED, RetryPolicy
from .config import ClusterConfig, ModelAssumptions
from .report import Summary, summarize
from .scenarios import DAY_START_H, OFFICE_HOURS_H, SPIKE_END_S, SPIKE_START_S, flash_sale, office_day, tour

CORRECT, NOT_YET, NOT_ATTEMPTED = "correct", "not yet", "not attempted"


@dataclass(frozen=True)
class Verdict:
    """The checker's answer; shows itself as one line of Markdown in a notebook."""

    status: str
    message: str

    def __str__(self) -> str:
        mark = {CORRECT: "✅ Correct", NOT_YET: "❌ Not yet", NOT_ATTEMPTED: "✏️ Not attempted"}[self.status]
        return f"{mark}: {self.message}"

    def _repr_markdown_(self) -> str:
        return f"**{self}**" if self.status == CORRECT else str(self)


@dataclass(frozen=True)
class Exercise:
    """A question with a checker and hints, in the style of Kaggle's learntools (``check``, ``hint``)."""

    name: str
    judge: Callable[..., Verdict]
    hints: tuple[str, ...]

    def check(self, *answer: object) -> Verdict:
        """Simulate the answer and judge it; ``None`` (the shipped placeholder) means not attempted."""
        if not answer or any(part is None for part in answer):
            return Verdict(NOT_ATTEMPTED, "replace the `None` placeholder(s) with your answer and run the cell "
                           "again.")
        try:
            return self.judge(*answer)
        except (TypeError, ValueError) as error:
            return Verdict(NOT_YET, f"that answer is not valid: {error}")

    def hint(self, number: int = 1) -> Hint:
        """Hint ``number`` (1-based); the last one is the most direct. Shows itself when it ends a cell.

        Example:
            >>> print(minimum_capacity.hint(1))
            💡 Hint 1 of 3: Move the minimum-ACU slider and watch whether scale_failed markers appear during the sale.
        """
        index = min(max(number, 1), len(self.hints))
        return Hint(index, len(self.hints), self.hints[index - 1])


@dataclass(frozen=True)
class Hint:
    """One hint, numbered; a notebook shows it as one line of Markdown in its own cell after the check."""

    number: int
    of: int
    text: str

    def __str__(self) -> str:
        return f"💡 Hint {self.number} of {self.of}: {self.text}"

    def _repr_markdown_(self) -> str:
        return str(self)


# --- notebook 02: the smallest minimum capacity that survives the flash sale ------------------------------

SALE_P95_TARGET_MS = 1000.0


def sale_summary(min_capacity: int) -> Summary:
    """The flash sale's figures for requests submitted during the sale (minutes 10 to 30)."""
    return summarize(flash_sale(min_capacity=min_capacity).run(), start_s=SPIKE_START_S, end_s=SPIKE_END_S)


def _meets_sale_target(min_capacity: int) -> bool:
    summary = sale_summary(min_capacity)
    return summary.failed == 0 and summary.p95_latency_ms <= SALE_P95_TARGET_MS


def _judge_minimum_capacity(min_capacity: int) -> Verdict:
    summary = sale_summary(min_capacity)
    if not _meets_sale_target(min_capacity):
        return Verdict(NOT_YET, f"with minimum {min_capacity} ACU, p95 latency during the sale was "
                       f"{summary.p95_latency_ms:,.0f} ms and {summary.failed:,} requests failed "
                       f"(target: p95 ≤ {SALE_P95_TARGET_MS:,.0f} ms, no failures).")
    ladder = facts.CAPACITY_LADDER["aurora-mysql"]
    smaller = [c for c in ladder if c < min_capacity]
    if smaller and _meets_sale_target(smaller[-1]):
        return Verdict(NOT_YET, f"minimum {min_capacity} ACU survives the sale, but a smaller minimum does "
                       "too — and every ACU of minimum is paid for all day.")
    return Verdict(CORRECT, f"minimum {min_capacity} ACU keeps p95 at {summary.p95_latency_ms:,.0f} ms with no "
                   "failed request, and no smaller rung does.")


minimum_capacity = Exercise(
    name="minimum_capacity",
    judge=_judge_minimum_capacity,
    hints=(
        "Move the minimum-ACU slider and watch whether scale_failed markers appear during the sale.",
        "A cluster pinned at 100 % CPU rarely finds a scaling point: the minimum must already carry most of "
        "the sale. Estimate the sale's CPU demand as requests/s × ACU-seconds per request.",
        "Compare the sale's demand in ACUs with each rung: the cluster must stay below 100 % CPU at its minimum "
        "so that it can find scaling points.",
    ),
)


# --- notebook 03: pause timeout and warm-up job for the office day ----------------------------------------

USER_WAIT_TARGET_S = 2.0
OFFICE_DAY_BUDGET_SHARE = 0.7


def _slowest_resume() -> ModelAssumptions:
    """Every cold start as slow as the model allows: a warm-up job must beat the worst case, not the typical one."""
    slowest = ModelAssumptions().resume_max_s
    return ModelAssumptions(resume_min_s=slowest, resume_median_s=slowest, resume_p95_s=slowest,
                            resume_max_s=slowest)


def _office_runs(seconds_until_auto_pause: int, prewarm_s: float) -> list:
    base = office_day(seconds_until_auto_pause=seconds_until_auto_pause, prewarm_s=prewarm_s)
    return [base.run(), base.replace(assumptions=_slowest_resume()).run()]


def _office_hours_s() -> tuple[float, float]:
    return OFFICE_HOURS_H[0][0] * 3600 - DAY_START_H * 3600, OFFICE_HOURS_H[-1][1] * 3600 - DAY_START_H * 3600


@cache
def office_day_budget_usd() -> float:
    """The most a day may cost: 70 % of the always-on day's bill (computed, so it follows the model)."""
    always_on = office_day(auto_pause=False)
    return round(summarize(always_on.run()).cost_usd * OFFICE_DAY_BUDGET_SHARE, 2)


def _judge_office_day(seconds_until_auto_pause: int, prewarm_s: float) -> Verdict:
    start, end = _office_hours_s()
    runs = _office_runs(seconds_until_auto_pause, prewarm_s)
    worst_wait = max(summarize(run, start_s=start, end_s=end).max_latency_s for run in runs)
    cost = max(summarize(run).cost_usd for run in runs)
    budget = office_day_budget_usd()
    if worst_wait > USER_WAIT_TARGET_S:
        return Verdict(NOT_YET, f"a user waited {worst_wait:.0f} s for a cold start (target: nobody waits more "
                       f"than {USER_WAIT_TARGET_S:g} s). Look at when the cluster pauses during the day.")
    if cost > budget:
        return Verdict(NOT_YET, f"nobody waited, but the day costs USD {cost:.2f} (budget USD {budget:.2f}): the "
                       "cluster stays up long after it is needed.")
    return Verdict(CORRECT, f"no user waited more than {worst_wait:.1f} s and the day costs USD {cost:.2f} "
                   f"(budget USD {budget:.2f}).")


office_day_exercise = Exercise(
    name="office_day",
    judge=_judge_office_day,
    hints=(
        "Run the panel with your settings and find every resume_started marker: who was waiting for it?",
        "The morning cold start can be paid by the warm-up job, if it runs early enough to finish resuming "
        "(cold starts reach about a minute and a half) and late enough that the cluster has not paused again.",
        "Lunch leaves the cluster idle for a while: the pause timeout decides whether the first user after "
        "lunch meets a cold start. Longer is safer, but every idle hour in the evening is billed.",
    ),
)


# --- notebook 00: read the tour's event log ---------------------------------------------------------------

RESUME_MINUTE_TOLERANCE_MIN = 0.5


def _tour_event_minute(kind: str) -> float:
    """Minute of the tour's first ``kind`` event (the tour pauses and resumes once)."""
    time_s = tour().run().sql("SELECT min(time_s) FROM events WHERE kind = $1", params=[kind]).fetchall()[0][0]
    return time_s / 60


def _judge_tour_resume_minute(minute: float) -> Verdict:
    if isinstance(minute, bool) or not isinstance(minute, numbers.Real):
        raise TypeError(f"my_resume_minute={minute!r} must be a number of minutes, such as 12.5")
    minute = float(minute)
    resumed, started = _tour_event_minute("resumed"), _tour_event_minute("resume_started")
    duration_min = tour().duration_s / 60
    if minute > duration_min:
        return Verdict(NOT_YET, f"{minute:g} is past the end of the {duration_min:g}-minute tour: did you give "
                       "seconds? `time_s` is in seconds; divide it by 60.")
    if abs(minute - started) <= RESUME_MINUTE_TOLERANCE_MIN and abs(minute - started) < abs(minute - resumed):
        return Verdict(NOT_YET, f"minute {minute:g} is when the resume began (`resume_started`). The cluster is "
                       "back in service at the `resumed` event.")
    if abs(minute - resumed) <= RESUME_MINUTE_TOLERANCE_MIN:
        return Verdict(CORRECT, f"the cluster was back at minute {minute:g}. The first request after the idle "
                       f"stage waited through a cold start of {(resumed - started) * 60:.0f} s.")
    return Verdict(NOT_YET, f"nothing resumed at minute {minute:g}. Look for `kind = 'resumed'` in the events "
                   "table, and give its time_s in minutes.")


tour_resume_minute = Exercise(
    name="tour_resume_minute",
    judge=_judge_tour_resume_minute,
    hints=(
        "The event log is the `events` table. You want the `resumed` event: the moment the cluster is back, "
        "not the moment it starts resuming.",
        "`run.sql(\"SELECT time_s / 60 FROM events WHERE kind = 'resumed'\").fetchall()` returns a list with one "
        "tuple; its first value is the minute.",
    ),
)


# --- notebook 01: a pool that survives the burst and still lets the cluster pause --------------------------

POOL_SHARE_LIMIT = facts.SCALE_UP_CONNECTIONS_PCT / 100  # a pool at 90 % of max_connections scales the cluster


def _judge_pool(min_size: int, max_size: int) -> Verdict:
    burst = scenarios.serverless_burst(connections="pool", pool_min_size=min_size, pool_max_size=max_size)
    summary = summarize(burst.run())
    limit = facts.max_connections(burst.config.engine, burst.config.min_capacity) * POOL_SHARE_LIMIT
    if summary.failed:
        return Verdict(NOT_YET, f"{summary.failed:,} requests failed or timed out during the burst.")
    if summary.pauses == 0:
        return Verdict(NOT_YET, "the burst went through, but the cluster never paused in the quiet half hour: "
                       "something keeps a connection open all night.")
    if max_size > limit:
        return Verdict(NOT_YET, f"a pool this large can hold more than {POOL_SHARE_LIMIT:.0%} of max_connections "
                       "at the minimum capacity: its connections alone would scale the cluster up.")
    return Verdict(CORRECT, f"no request failed (p95 {summary.p95_latency_ms:,.0f} ms) and the cluster paused "
                   f"{summary.pauses} time(s) once the traffic stopped.")


pool_exercise = Exercise(
    name="pool",
    judge=_judge_pool,
    hints=(
        "Try the pool in the panel: which slider decides whether the cluster can pause after minute 30?",
        "min_size connections stay open for good. And look up max_connections at 1 ACU in facts: how many of them "
        "may a pool hold before the cluster scales up just for its connections?",
    ),
)


# --- notebook 05: make the nightly report scale-friendly ---------------------------------------------------

REPORT_DEADLINE_S = 75 * 60  # the report must still be done by 07:15
RAMP_TIMES_S = (1200, 1500, 1800)  # the morning traffic does not always climb at the same minute


def _judge_report(pieces: int, gap_s: float) -> Verdict:
    span = scenarios.REPORT_DURATION_S + (pieces - 1) * gap_s
    if span > REPORT_DEADLINE_S:
        return Verdict(NOT_YET, f"split like this the report ends after {span / 60:.0f} minutes; it must be done "
                       f"within {REPORT_DEADLINE_S / 60:.0f}.")
    for ramp in RAMP_TIMES_S:
        summary = summarize(scenarios.nightly_report(pieces=pieces, gap_s=gap_s, ramp_s=ramp).run())
        if summary.scale_failures or summary.aborted:
            return Verdict(NOT_YET, f"when the traffic climbs at minute {ramp / 60:g}, the cluster still fails to "
                           f"scale {summary.scale_failures} time(s) (aborted: {summary.aborted}).")
    return Verdict(CORRECT, f"whenever the morning traffic climbs, the cluster finds a scaling point between "
                   f"two of your {pieces} transactions, and the report is done within {span / 60:.0f} minutes.")


report_exercise = Exercise(
    name="report",
    judge=_judge_report,
    hints=(
        "Split the report in the panel and watch where the scaling point is found.",
        "A scaling point must come along before seconds_before_timeout runs out, wherever the scale-up request "
        "lands: how long may one transaction be at most?",
    ),
)


# --- notebook 06: a retry policy for the storm -------------------------------------------------------------

STORM_P95_TARGET_MS = 4000.0
STORM_EXTRA_ATTEMPTS_LIMIT = 90
STORM_WAVE_WINDOW_MS = 10  # retries that reach the cluster this close together arrive as one wave
STORM_WAVE_MAX_SHARE = 0.5  # of the calls refused together at the resume, at most half may retry in one window


def storm_herd() -> int:
    """How many calls the storm's cluster refuses in the same instant when it is back from its cold start.

    Example:
        >>> storm_herd() > 1
        True
    """
    run = scenarios.retry_storm().run()
    refused = facts.TOO_MANY_CONNECTIONS_ERROR[run.config.engine]
    return run.sql("SELECT count(*) FROM requests WHERE error = $1 AND finished_s = "
                   "(SELECT min(finished_s) FROM requests WHERE error = $1)", params=[refused]).fetchall()[0][0]


def retry_wave(policy: RetryPolicy, calls: int | None = None, *, seed: int = 0) -> int:
    """The most of ``calls`` calls, refused together, whose first retries under ``policy`` land within
    ``STORM_WAVE_WINDOW_MS`` of one another (``calls`` defaults to the storm's herd, ``storm_herd()``).

    Without jitter every client sleeps the same, so the whole herd comes back as one wave; 0 when the policy does
    not retry a refused connection, and no more than a retry budget's tokens can pay for.

    Example:
        >>> retry_wave(RetryPolicy("exponential"), 20), retry_wave(RetryPolicy("none"), 20)
        (20, 0)
        >>> retry_wave(RetryPolicy("full_jitter"), 20) <= 20 * STORM_WAVE_MAX_SHARE
        True
    """
    calls = storm_herd() if calls is None else calls
    if policy.budget_tokens is not None:
        calls = min(calls, int(policy.budget_tokens))
    if not policy.retries(REFUSED) or calls < 1:
        return 0
    rng = np.random.default_rng(seed)
    sleeps = np.sort([policy.delay_s(1, 0.0, rng) for _ in range(calls)])
    within = np.searchsorted(sleeps, sleeps + STORM_WAVE_WINDOW_MS / 1000, side="right")
    return int((within - np.arange(calls)).max())


def storm_figures(policy: RetryPolicy) -> dict[str, float]:
    """The storm under ``policy``: what the exercise judges, and what notebook 06's tables show.

    Example:
        >>> figures = storm_figures(RetryPolicy("none"))
        >>> figures["extra attempts"], figures["failed"] > 0
        (0, True)
    """
    run = scenarios.retry_storm(retry=policy).run()
    summary = summarize(run)
    refused = facts.TOO_MANY_CONNECTIONS_ERROR[run.config.engine]
    refused_count = run.sql("SELECT count(*) FROM requests WHERE error = $1", params=[refused]).fetchall()[0][0]
    return {"failed": summary.failed, "of which refused": refused_count, "extra attempts": summary.extra_attempts,
            "p95 latency (ms)": round(summary.p95_latency_ms), "worst wait (s)": round(summary.max_latency_s, 1),
            "largest retry wave": retry_wave(policy)}


def storm_table(**policies: RetryPolicy) -> pd.DataFrame:
    """``storm_figures`` of several policies, one row each, labelled by keyword.

    Example:
        >>> int(storm_table(no_retry=RetryPolicy("none")).loc["no_retry", "extra attempts"])
        0
    """
    rows = {label: storm_figures(policy) for label, policy in policies.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("policy")


def _judge_retry(strategy: str, max_attempts: int) -> Verdict:
    policy = RetryPolicy(strategy, max_attempts=max_attempts)
    figures = storm_figures(policy)
    if figures["failed"]:
        return Verdict(NOT_YET, f"{figures['failed']} requests still failed.")
    if figures["extra attempts"] > STORM_EXTRA_ATTEMPTS_LIMIT:
        return Verdict(NOT_YET, f"no request failed, but the clients made {figures['extra attempts']} extra attempts "
                       f"(limit {STORM_EXTRA_ATTEMPTS_LIMIT}): retries are work the cluster has to do.")
    if figures["p95 latency (ms)"] > STORM_P95_TARGET_MS:
        return Verdict(NOT_YET, f"p95 latency was {figures['p95 latency (ms)']:,.0f} ms (target "
                       f"{STORM_P95_TARGET_MS:,.0f} ms).")
    herd = storm_herd()
    if figures["largest retry wave"] > herd * STORM_WAVE_MAX_SHARE:
        return Verdict(NOT_YET, f"no request failed, but {figures['largest retry wave']} of the {herd} calls refused "
                       f"together at the resume retried within the same {STORM_WAVE_WINDOW_MS} ms (at most "
                       f"{STORM_WAVE_MAX_SHARE:.0%} of them may): the herd comes back together at every retry.")
    return Verdict(CORRECT, f"no request failed, with {figures['extra attempts']} extra attempts, p95 "
                   f"{figures['p95 latency (ms)']:,.0f} ms, and the calls refused together came back spread out (at "
                   f"most {figures['largest retry wave']} of them in any {STORM_WAVE_WINDOW_MS} ms).")


retry_exercise = Exercise(
    name="retry",
    judge=_judge_retry,
    hints=(
        "Watch the refusals right after the resume in the panel: how many attempts does a refused call need, and "
        "how far apart should they be, to get a connection once the crowd has thinned?",
        "Backoff gives the crowd time to drain; run storm_table with a few candidates and compare the columns, "
        "the largest retry wave too.",
        "A strategy without jitter sends every refused call back in the same instant. Pick a jittered strategy "
        "and give it enough attempts to outlast the crowd after the cold start.",
    ),
)


# --- notebook 08: a retry that rides out a slow resume through the Data API ---------------------------------

DATA_API_RESUME_S = 60.0  # a slow cold start, near the measured p95 (facts.MEASURED_RESUME_S)
DATA_API_TIME_SCALE = 20.0  # the checker's endpoint runs 20x faster: the resume takes 3 s, the call limit 2.25 s
DATA_API_MAX_ATTEMPTS = 3
DATA_API_SEEDS = 200  # jittered sleeps are drawn this many times: a policy must work every time, not by luck


def _first_call_after_a_pause(policy: RetryPolicy) -> tuple[str | None, int]:
    """Run ``execute_with_retry`` with ``policy`` against a paused v1 endpoint whose resume takes
    ``DATA_API_RESUME_S``: (why the call failed, or None; the attempts it made)."""
    import boto3  # here, not at import time: checks is imported by every notebook
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from .data_api import serve
    from .data_api.client import execute_with_retry

    scale = DATA_API_TIME_SCALE
    with serve(flavour="v1", auto_pause_s=DATA_API_RESUME_S, resume_s=DATA_API_RESUME_S, time_scale=scale) as endpoint:
        client = boto3.client("rds-data", config=Config(retries={"max_attempts": 1}), **endpoint.client_kwargs())
        endpoint.gate.pause()
        started = time.monotonic()
        try:
            _, log = execute_with_retry(client, policy, rng=np.random.default_rng(0),
                                        sleep=lambda seconds: time.sleep(seconds / scale),
                                        resourceArn=endpoint.resource_arn, secretArn=endpoint.secret_arn,
                                        database=endpoint.database, sql="SELECT count(*) FROM Customer")
        except ClientError as error:
            details = error.response.get("Error", {})
            took = (time.monotonic() - started) * scale
            tried = sum(line.startswith("attempt") for line in getattr(error, "attempt_log", ()))
            return (f"the call failed after {tried} attempt(s) and about {took:.0f} model seconds, with "
                    f"{details.get('Code')}: {str(details.get('Message', '')).splitlines()[0]}", tried)
    return None, sum(line.startswith("attempt") for line in log)


def _early_first_retries(policy: RetryPolicy) -> int:
    """In how many of ``DATA_API_SEEDS`` draws the first retry comes so early that it waits out the whole call
    limit while the cluster still resumes (and then fails again with the resume error)."""
    earliest_s = DATA_API_RESUME_S - facts.DATA_API_CALL_LIMIT_S
    if not policy.retries("data_api_resuming"):
        return 0
    return sum(policy.delay_s(1, 0.0, np.random.default_rng(seed)) < earliest_s for seed in range(DATA_API_SEEDS))


def _judge_data_api_retry(strategy: str, max_attempts: int, base_s: float) -> Verdict:
    policy = RetryPolicy(strategy, max_attempts=max_attempts, base_s=base_s)
    if max_attempts > DATA_API_MAX_ATTEMPTS:
        return Verdict(NOT_YET, f"{max_attempts} attempts is more than the {DATA_API_MAX_ATTEMPTS} allowed.")
    failure, attempts = _first_call_after_a_pause(policy)
    if failure:
        return Verdict(NOT_YET, failure)
    early = _early_first_retries(policy)
    limit = facts.DATA_API_CALL_LIMIT_S
    if early == DATA_API_SEEDS:
        return Verdict(NOT_YET, f"the call got through, but only on attempt {attempts}: the first retry came so early "
                       f"that it waited out the whole {limit} s call limit while the cluster was still resuming, "
                       "then failed again. A function billed by the second paid for that wait.")
    if early:
        return Verdict(NOT_YET, f"it worked this time ({attempts} attempts), but in {early} of {DATA_API_SEEDS} "
                       "draws the first retry came so early that it would wait out the whole call limit and fail "
                       "again. A policy must work every time, not only when the dice are kind.")
    return Verdict(CORRECT, f"the call succeeded on attempt {attempts}: the first retry waited long enough that the "
                   f"rest of the resume fit within the {limit} s call limit, whatever the draw.")


data_api_retry_exercise = Exercise(
    name="data_api_retry",
    judge=_judge_data_api_retry,
    hints=(
        "On v1 only the call that finds the cluster paused fails at once; the next call waits for the resume — "
        "for at most the Data API's call limit (facts.DATA_API_CALL_LIMIT_S), then it fails with the resume "
        "error again.",
        "The resume takes checks.DATA_API_RESUME_S seconds. How long after the first failure may the retry "
        "arrive at the earliest, so that the rest of the resume fits within the call limit?",
        "Jitter can draw a sleep near zero: look at the smallest sleep each strategy can give for the first retry "
        "(RetryPolicy.delay_s(1, 0.0, rng)), and keep base_s within the default cap_s.",
    ),
)


# --- notebook 07: port the MySQL cluster to PostgreSQL -------------------------------------------------------

PORT_P95_TARGET_MS = 1000.0


def port_scenario(max_capacity: int, parameters: Mapping[str, int]) -> scenarios.Scenario:
    """The MySQL cluster of ``scenarios.mysql_to_port()`` ported to Aurora PostgreSQL with ``max_capacity`` and
    ``parameters``, everything else kept: its month-end peak and its runaway query.

    Example:
        >>> port_scenario(192, {}).config.engine, port_scenario(192, {}).config.min_capacity
        ('aurora-postgresql', 16)
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(f"my_parameters={parameters!r} must be a dict of parameter name to milliseconds, "
                        "like {'some_parameter': 1_000}")
    source = scenarios.mysql_to_port().config
    return scenarios.month_end_peak(engine="aurora-postgresql", min_capacity=source.min_capacity,
                                    max_capacity=max_capacity, runaway_query=True, parameters=dict(parameters))


def _runaway_end_s(run) -> float:
    """When the runaway query ended: cancelled by a timeout parameter, or at the end of its planned run."""
    cancelled = run.sql("SELECT min(time_s) FROM events WHERE kind = 'transaction_aborted' AND time_s >= $1",
                        params=[scenarios.RUNAWAY_START_S]).fetchall()[0][0]
    return cancelled if cancelled is not None else scenarios.RUNAWAY_START_S + scenarios.RUNAWAY_DURATION_S


def port_problem(run) -> str | None:
    """Why a run of the ported cluster misses the exercise's targets (no failed scaling, no failed request, p95 at
    most ``PORT_P95_TARGET_MS``), or None when it meets them. The MySQL original meets them too.

    Example:
        >>> port_problem(scenarios.mysql_to_port().run()) is None
        True
    """
    summary = summarize(run)
    if summary.scale_failures:  # the root cause first: a held scaling point also makes requests queue and time out
        first_failure_s = run.sql("SELECT min(time_s) FROM events WHERE kind = 'scale_failed'").fetchall()[0][0]
        if _runaway_end_s(run) > first_failure_s - run.config.seconds_before_timeout:
            return (f"the cluster failed to scale {summary.scale_failures} time(s) while the traffic climbed: the "
                    "runaway dashboard query held the scaling point. Which parameter ends a long SELECT on this "
                    "engine, and how soon must it end it?")
    cancelled = run.sql("SELECT count(*) FROM requests WHERE error = $1",
                        params=[facts.STATEMENT_TIMEOUT_ERROR]).fetchall()[0][0]
    if cancelled:
        return (f"{cancelled:,} ordinary requests were cancelled by your statement_timeout: a limit for every "
                "statement of the cluster must leave the ordinary queries room.")
    if summary.scale_failures:
        return (f"the cluster failed to scale {summary.scale_failures} time(s) while the traffic climbed, too busy "
                "to find a scaling point.")
    if summary.failed or summary.p95_latency_ms > PORT_P95_TARGET_MS:
        failed = f"{summary.failed:,} requests failed" if summary.failed else "the requests queued"
        return (f"with at most {run.config.max_capacity} ACU, p95 latency was {summary.p95_latency_ms / 1000:,.1f} s "
                f"and {failed} (target: p95 ≤ {PORT_P95_TARGET_MS / 1000:g} s, no failures): the peak needs more "
                "capacity than that.")
    return None


def _judge_port(max_capacity: int, parameters: Mapping[str, int]) -> Verdict:
    scenario = port_scenario(max_capacity, parameters)
    problem = port_problem(scenario.run())
    if problem:
        return Verdict(NOT_YET, problem)
    lower = [rung for rung in scenario.config.ladder if rung < max_capacity]
    if lower and port_problem(port_scenario(lower[-1], parameters).run()) is None:
        return Verdict(NOT_YET, f"at most {max_capacity} ACU carries the peak, but so does a lower maximum: the "
                       "maximum is also the most the cluster can bill for, should the traffic or a bug run away.")
    summary, source = summarize(scenario.run()), summarize(scenarios.mysql_to_port().run())
    return Verdict(CORRECT, f"at most {max_capacity} ACU carries the peak (p95 {summary.p95_latency_ms:,.0f} ms, no "
                   "failed request or scaling) and your parameters end the runaway query before the climb. The "
                   f"PostgreSQL cluster costs USD {summary.cost_usd:.2f} for the run, the MySQL one "
                   f"USD {source.cost_usd:.2f}.")


port_exercise = Exercise(
    name="port",
    judge=_judge_port,
    hints=(
        "Two settings cannot be copied: look for the MySQL maximum on the PostgreSQL ladder "
        "(facts.CAPACITY_LADDER), and for max_execution_time in facts.ENGINE_PARAMETERS.",
        "Run the panel at the default peak with each PostgreSQL maximum near the MySQL one: which is the lowest "
        "that keeps p95 low?",
        "On PostgreSQL the limit on one statement is statement_timeout, in milliseconds; it applies to every "
        "statement, so it must end the runaway query before the climb without cutting the ordinary ones short.",
    ),
)


# --- notebook 11: which job blocked scaling at night, and an alarm that pages for it -------------------------

NIGHT_MINUTE_TOLERANCE_S = 60  # an answer within a minute of the event counts: logs and events show seconds


def night_clock(time_s: float) -> str:
    """The wall-clock time ("HH:MM") of the night run's ``time_s`` (time 0 is midnight).

    Example:
        >>> night_clock(2 * 3600 + 5 * 60 + 56)
        '02:05'
    """
    minutes = int((scenarios.NIGHT_START_H * 3600 + time_s) // 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _night_seconds(clock: object) -> float:
    """ "HH:MM" or "HH:MM:SS" on the night's clock, as the run's seconds."""
    if not isinstance(clock, str) or not 2 <= len(clock.split(":")) <= 3:
        raise TypeError(f"my_first_failure={clock!r} must be a time of the night as text, such as \"03:10\"")
    try:
        parts = [int(part) for part in clock.split(":")]
    except ValueError:
        raise ValueError(f"my_first_failure={clock!r} must be hours and minutes as digits, such as \"03:10\"") from None
    seconds = parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)
    return seconds - scenarios.NIGHT_START_H * 3600


def night_scaling_events() -> pd.DataFrame:
    """The night's scale_started and scale_failed events (``time_s``, ``kind``), in order."""
    return scenarios.night_shift().run().sql(
        "SELECT time_s, kind FROM events WHERE kind IN ('scale_started', 'scale_failed') ORDER BY seq").df()


def night_blocked_window() -> tuple[float, float]:
    """From the first scale-up request that ended in a failure to the last failure, in run seconds.

    Example:
        >>> start, end = night_blocked_window()
        >>> scenarios.NIGHT_IMPORT_S[0] < start < end
        True
    """
    events = night_scaling_events()
    failed = events.loc[events["kind"] == "scale_failed", "time_s"]
    first_failed = float(failed.min())
    started = events.loc[(events["kind"] == "scale_started") & (events["time_s"] < first_failed), "time_s"]
    return float(started.max()), float(failed.max())


def _night_culprits() -> set[str]:
    """Names and users of the jobs whose session was open for the whole first failed search."""
    start, _ = night_blocked_window()
    first_failed = float(night_scaling_events().query("kind == 'scale_failed'")["time_s"].min())
    return {label for name, (session, op) in scenarios.NIGHT_JOBS.items()
            if op.start_s <= start and op.end_s >= first_failed for label in (name, session.user)}


def _judge_night_culprit(job: str, first_failure: str) -> Verdict:
    if not isinstance(job, str):
        raise TypeError(f"my_job={job!r} must be text: the job's name or database user, as the logs show it")
    known = {label for name, (session, _) in scenarios.NIGHT_JOBS.items() for label in (name, session.user)}
    job = job.strip().lower()
    if job not in known:
        return Verdict(NOT_YET, f"no session called {job!r} ran tonight. Give the job as the logs name it: its "
                       "database user (User@Host in the slow query log, Connect in the general log).")
    if job not in _night_culprits():
        return Verdict(NOT_YET, f"{job} was not holding anything open while the cluster searched for a scaling "
                       "point. Compare when each session began and ended with the failed scalings.")
    answer_s = _night_seconds(first_failure)
    events = night_scaling_events()
    failed = events.loc[events["kind"] == "scale_failed", "time_s"]
    started = events.loc[events["kind"] == "scale_started", "time_s"]
    if abs(answer_s - failed.min()) <= NIGHT_MINUTE_TOLERANCE_S:
        return Verdict(CORRECT, f"{job} kept a transaction open across the night's import, and the cluster's first "
                       f"search for a scaling point failed at {night_clock(failed.min())}; {len(failed) - 1} more "
                       "failed after it.")
    if (abs(started - answer_s) <= NIGHT_MINUTE_TOLERANCE_S).any():
        return Verdict(NOT_YET, f"the job is right. At {first_failure} the cluster *asked* to scale "
                       f"({facts.RDS_EVENT_IDS['scale_started']}); the question is when that first failed "
                       f"({facts.RDS_EVENT_IDS['scale_failed']}).")
    if (abs(failed - answer_s) <= NIGHT_MINUTE_TOLERANCE_S).any():
        return Verdict(NOT_YET, f"the job is right, and a scaling did fail at {first_failure}, but not the first.")
    return Verdict(NOT_YET, f"the job is right, but no scaling failed at {first_failure}. Look for "
                   f"{facts.RDS_EVENT_IDS['scale_failed']} in the events table (time_s is seconds after midnight).")


night_culprit = Exercise(
    name="night_culprit",
    judge=_judge_night_culprit,
    hints=(
        f"Start from the RDS events: which event says a scaling failed ({facts.RDS_EVENT_IDS['scale_failed']}), "
        "and when is the first one? Then look for a session that was open across it.",
        "The slow query log shows statements that ran longer than long_query_time. An open transaction that sits "
        "idle is not a slow statement: publish the logs again with general_log on and read log_general.",
        "In log_general a session's BEGIN and COMMIT (or Connect and Quit) bound what it held open. Give the user "
        "of the one that spans the first failure, and that failure's time as \"HH:MM\".",
    ),
)


def _judge_night_alarm(alarm: object) -> Verdict:
    from .alarms import ALARM, Alarm, evaluate

    if not isinstance(alarm, Alarm):
        raise TypeError(f"my_alarm={alarm!r} must be an Alarm, e.g. Alarm(metric_name=..., threshold=...)")
    run = scenarios.night_shift().run()
    evaluation = evaluate(alarm, run, start_h=scenarios.NIGHT_START_H)
    start, end = night_blocked_window()
    if not evaluation.fired_between(start, end):
        return Verdict(NOT_YET, "your alarm never went to ALARM while the import's scale-up was blocked: it would "
                       "not have paged anyone when it mattered.")
    busy_start, busy_end = scenarios.NIGHT_BUSY_HOUR_S
    states = evaluation.states
    in_alarm = states[states["state"] == ALARM]
    if evaluation.fired_between(busy_start, busy_end):
        first = in_alarm[in_alarm["time_s"] >= busy_start]["time_s"].min()
        return Verdict(NOT_YET, f"it also fires at {night_clock(first)}, in the busy hour, where the cluster scaled "
                       "up within a minute: an ordinary busy hour must not page anyone.")
    elsewhere = in_alarm[(in_alarm["time_s"] < start) | (in_alarm["time_s"] > end + alarm.period_s)]
    if len(elsewhere):
        first = float(elsewhere["time_s"].min())
        paused = evaluation.datapoints.set_index("time_s")["value"].get(first - alarm.period_s)
        why = " while the cluster was paused and published no CPU" if paused is None or pd.isna(paused) else ""
        return Verdict(NOT_YET, f"it also goes to ALARM at {night_clock(first)}{why}: a page nobody should get.")
    fired = float(in_alarm[in_alarm["time_s"] >= start]["time_s"].min())
    return Verdict(CORRECT, f"your alarm went to ALARM at {night_clock(fired)}, {(fired - start) / 60:.0f} min after "
                   "the blocked scale-up began, and stayed quiet through the pauses and the busy hour.")


night_alarm = Exercise(
    name="night_alarm",
    judge=_judge_night_alarm,
    hints=(
        "Try settings in the panel: for how many minutes does CPU stay above 70 % in the busy hour, and for how "
        "many while the import is blocked?",
        "evaluation_periods × period_s is how long the alarm looks back; datapoints_to_alarm is how many of those "
        "periods must breach. Choose them so that one hot minute is not enough.",
        "The cluster pauses at night and publishes no CPU then: with treat_missing_data='breaching' every pause "
        "pages you. Keep the default, or choose 'notBreaching'.",
    ),
)


# --- notebook 04: group three databases into clusters, each with its range, at the lowest cost -------------------

GROUPING_P95_TARGET_MS = 1000.0
INTERACTIVE_DATABASES = ("shop", "tool")  # people wait on these; the report is a batch job (no failure all the same)
GROUPING_SEED = 7


def _checked_plan(plan: object) -> tuple[tuple[tuple[str, ...], int, int], ...]:
    """The learner's plan as a tuple of (databases, min_capacity, max_capacity); TypeError naming a bad entry."""
    if not isinstance(plan, (list, tuple)) or not plan:
        raise TypeError(f"my_plan={plan!r} must be a list of (databases, min_capacity, max_capacity)")
    checked = []
    for index, entry in enumerate(plan):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3 or not isinstance(entry[0], (list, tuple)):
            raise TypeError(f"my_plan[{index}]={entry!r} must be (databases, min_capacity, max_capacity), "
                            "e.g. (('shop',), 2, 8)")
        checked.append((tuple(entry[0]), entry[1], entry[2]))
    return tuple(checked)


@cache
def _grouping_runs(plan: tuple[tuple[tuple[str, ...], int, int], ...]) -> dict:
    clusters = {" + ".join(names): (names, ClusterConfig(min_capacity=low, max_capacity=high))
                for names, low, high in plan}
    return consolidation.run_plan(clusters, scenarios.three_databases(), duration_s=scenarios.EVENING_S,
                                  seed=GROUPING_SEED)


def grouping_runs(plan: object) -> dict:
    """Simulate a plan for notebook 04's three databases: one run per cluster, named after what it hosts.

    Example:
        >>> list(grouping_runs([(("shop", "tool"), 2, 8), (("reports",), 1, 2)]))
        ['shop + tool', 'reports']
    """
    return _grouping_runs(_checked_plan(plan))


def grouping_problem(runs: Mapping) -> str | None:
    """Why a plan's runs miss the targets (a failed request anywhere; p95 over ``GROUPING_P95_TARGET_MS`` for the
    shop or the tool), or None when they meet them."""
    figures = consolidation.database_figures(runs)
    failed = figures[figures["failed"] > 0]
    if len(failed):
        where = ", ".join(f"{name} {int(count):,}" for name, count in failed["failed"].items())
        return (f"requests failed ({where}): a database shares its cluster's connections and scaling points with "
                "every other database on it, and a cluster's maximum caps them all.")
    slow = figures.loc[list(INTERACTIVE_DATABASES)]
    slow = slow[slow["p95_ms"] > GROUPING_P95_TARGET_MS]
    if len(slow):
        where = ", ".join(f"{name} {p95:,.0f} ms" for name, p95 in slow["p95_ms"].items())
        return (f"p95 latency was too high ({where}; target: p95 ≤ {GROUPING_P95_TARGET_MS:,.0f} ms for the shop "
                "and the tool).")
    return None


def _plan_cost_usd(runs: Mapping) -> float:
    return sum(costs.bill(run).cost_usd for run in runs.values())


_REFERENCE_GROUPING = ((("shop",), 2, 4), (("reports",), 1, 1), (("tool",), 1, 1))


def _judge_grouping(plan: object) -> Verdict:
    runs = grouping_runs(plan)
    problem = grouping_problem(runs)
    if problem:
        return Verdict(NOT_YET, problem)
    cost = _plan_cost_usd(runs)
    if cost > _plan_cost_usd(grouping_runs(_REFERENCE_GROUPING)) * 1.01:
        return Verdict(NOT_YET, f"your plan meets the targets for USD {cost:.2f}, but a cheaper plan meets them "
                       "too: look for ACUs no database uses (a minimum above what a cluster needs, a database "
                       "that lifts a shared cluster to the next rung, a cluster that could pause).")
    return Verdict(CORRECT, f"no request failed, the shop and the tool kept p95 within "
                   f"{GROUPING_P95_TARGET_MS / 1000:g} s, and the evening costs USD {cost:.2f}: no cheaper plan "
                   "meets the targets.")


grouping_exercise = Exercise(
    name="grouping",
    judge=_judge_grouping,
    hints=(
        "Start from the panel: which database's operation blocks the others' scaling, and which database is "
        "idle for part of the evening?",
        "A cluster bills its capacity whatever it hosts: put two databases together only if their sum stays on the "
        "same rung, and give a database that goes quiet a cluster that can pause.",
        "Size each cluster from its own peak: the CPU it asks for (requests/s × ACU-seconds per request) must stay "
        "under 70 % of its maximum, and its minimum should carry its ordinary traffic, no more.",
    ),
)


# --- notebook 12: the capstone ------------------------------------------------------------------------------------

CAPSTONE_COST_MARGIN = 1.10  # a plan within 10 % of the cheapest one found is as good as it


def _judge_capstone(dev_test: object, shop: object, new_app: object) -> Verdict:
    """Simulate each plan for its week; correct when every plan meets its goal within 10 % of the cheapest found."""
    problems, costs_usd = [], []
    for name, answer in zip(capstone.WORKLOADS, (dev_test, shop, new_app), strict=True):
        result = capstone.evaluate(name, answer)
        best_usd = capstone.best_found_cost_usd(name)
        costs_usd.append(result.cost_usd)
        if not result.meets_goal:
            problems.append(f"{name}: {'; '.join(result.misses)}")
        elif result.cost_usd > best_usd * CAPSTONE_COST_MARGIN:
            problems.append(f"{name}: meets the goal for USD {result.cost_usd:.2f} a week, but the best plan found "
                            f"costs USD {best_usd:.2f}")
    if problems:
        return Verdict(NOT_YET, " · ".join(problems))
    return Verdict(CORRECT, f"all three weeks meet their goals, for USD {sum(costs_usd):.2f} in all: each within "
                   f"{CAPSTONE_COST_MARGIN - 1:.0%} of the cheapest plan found.")


capstone_exercise = Exercise(
    name="capstone",
    judge=_judge_capstone,
    hints=(
        "Read each goal first: how long may a request wait (a cold start counts), and may any request fail? Then "
        "ask of each workload: how many hours a week is it busy, and does anyone know when?",
        "A database idle most of the week wants a model that pauses and resumes quickly; a peak you know the time "
        "of can be met by pre-warming a v1 cluster; a peak nobody can predict needs a model that scales without a "
        "scaling point.",
        "Try ServerlessV2Config(min_capacity=0, ...) for the dev/test database and the new app; for the shop, "
        "either v2 or a v1 cluster that does not pause, pre-warmed with capstone.prewarm(...) before the sale.",
    ),
)


# --- notebook 10: for each threat, the setting that stops it -------------------------------------------------------


def _judge_threats(network_path: object, snapshot: object, secret_arn: object) -> Verdict:
    from .security import THREATS, threat_misses  # security pulls in psycopg and boto3: only this exercise needs it

    answers = dict(zip(THREATS, (network_path, snapshot, secret_arn), strict=True))
    misses = threat_misses(answers)
    if misses:
        right = len(THREATS) - len(misses)
        why = " ".join(f"{threat}: {reason}" for threat, reason in misses.items())
        return Verdict(NOT_YET, f"{right} of {len(THREATS)} threats stopped. {why}")
    return Verdict(CORRECT, "each threat meets the setting that stops it: the certificate and the host name checked "
                   "against the CA you trust, a key whose policy you write, and IAM deciding who may use a secret "
                   "whose ARN is only a name.")


threat_exercise = Exercise(
    name="threats",
    judge=_judge_threats,
    hints=(
        "Sort the threats first: which is about data moving on the network, which about data at rest, and which "
        "about who may use a credential? Only settings of the same kind can stop each.",
        "On the network, look at the matrix: which mode refused in every column where someone else answered? For "
        "the snapshot, the User Guide asks for something of your own. A secret's ARN is only its name.",
        "One answer per threat: the strictest TLS mode, the KMS key whose policy you control, and the IAM policy "
        "on the secret.",
    ),
)


# --- notebook 09: a retry policy and a pool that ride out a failover -----------------------------------------------

FAILOVER_WAIT_LIMIT_S = 30.0  # no user may wait longer than this beyond the outage
FAILOVER_SEEDS = (7, 8)  # jittered sleeps differ from seed to seed: an answer must work for both, not by luck


def failover_figures(retry: RetryPolicy, pool: object, *, seed: int = FAILOVER_SEEDS[0]) -> dict[str, object]:
    """The shop's AZ outage (``scenarios.shop_failover``) with ``retry`` and ``pool``: what the exercise judges.

    Example:
        >>> from aurora_sim.clients import ConnectionPool
        >>> figures = failover_figures(RetryPolicy("none"), ConnectionPool())
        >>> figures["failed orders"] > 0, figures["committed orders lost"]
        (True, 0)
    """
    from .faults import longest_wait_beyond_outage_s, losses

    run = scenarios.shop_failover(retry=retry, pool=pool).replace(seed=seed).run()
    lost = losses(run)
    errors = run.sql("SELECT error, count(*) FROM requests WHERE outcome <> 'ok' GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return {"failed orders": sum(count for _, count in errors),
            "committed orders lost": int(lost["committed lost"].sum()),
            "longest wait beyond the outage (s)": round(longest_wait_beyond_outage_s(run), 1),
            "extra attempts": summarize(run).extra_attempts, "most common error": errors[0][0] if errors else ""}


def failover_table(**answers: tuple[RetryPolicy, object]) -> pd.DataFrame:
    """``failover_figures`` of several (retry, pool) pairs, one row each, labelled by keyword.

    Example:
        >>> from aurora_sim.clients import ConnectionPool
        >>> int(failover_table(none=(RetryPolicy("none"), ConnectionPool())).loc["none", "extra attempts"])
        0
    """
    rows = {label: failover_figures(retry, pool) for label, (retry, pool) in answers.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("answer")


def _judge_failover(retry: object, pool: object) -> Verdict:
    from .clients import ConnectionPool

    if not isinstance(retry, RetryPolicy):
        raise TypeError(f"my_retry={retry!r} must be a RetryPolicy(...)")
    if not isinstance(pool, ConnectionPool):
        raise TypeError(f"my_pool={pool!r} must be a ConnectionPool(...)")
    for seed in FAILOVER_SEEDS:
        figures = failover_figures(retry, pool, seed=seed)
        if figures["failed orders"]:
            return Verdict(NOT_YET, f"{figures['failed orders']} orders still failed (seed {seed}); the most common "
                           f"error: {figures['most common error']}")
        waited = figures["longest wait beyond the outage (s)"]
        if waited > FAILOVER_WAIT_LIMIT_S:
            return Verdict(NOT_YET, f"no order failed, but a user waited {waited:g} s beyond the outage (limit "
                           f"{FAILOVER_WAIT_LIMIT_S:g} s, seed {seed}): the last sleeps are too long.")
    return Verdict(CORRECT, f"no order failed and nobody waited more than {FAILOVER_WAIT_LIMIT_S:g} s beyond the "
                   f"outage, under {len(FAILOVER_SEEDS)} different draws of the jitter.")


failover_exercise = Exercise(
    name="failover",
    judge=_judge_failover,
    hints=(
        "Look at the errors of the run without retries: which error classes are they, and does the default "
        "RetryPolicy retry them? Then ask how long the retries must keep going.",
        "Add up the sleeps: with full jitter a retry sleeps on average half of min(cap_s, base_s·2ⁿ). The retries "
        "must outlast the whole outage, and the longest single sleep bounds how long a user waits after it.",
        "Use a jittered strategy with cap_s around 10 s and enough max_attempts to cover three minutes of outage "
        "(dozens), and keep the pool's acquire timeout long enough for the crowd that comes back at once.",
    ),
)
