"""Exercise checkers: 'not attempted' as shipped, 'correct' for the reference solution, never the answer."""

from __future__ import annotations

import pytest

from aurora_sim import ConnectionPool, RetryPolicy, checks, facts

# Reference solutions, found by simulation (the checker recomputes them; these pin the lesson's story).
MINIMUM_CAPACITY_SOLUTION = 4
OFFICE_DAY_SOLUTION = (3600, 120)


@pytest.mark.parametrize("exercise", [checks.minimum_capacity, checks.office_day_exercise], ids=lambda e: e.name)
def test_placeholder_is_not_attempted(exercise: checks.Exercise) -> None:
    verdict = exercise.check(None) if exercise.name == "minimum_capacity" else exercise.check(None, None)
    assert verdict.status == checks.NOT_ATTEMPTED
    assert "Not attempted" in str(verdict)


def test_minimum_capacity_reference_solution_is_correct() -> None:
    verdict = checks.minimum_capacity.check(MINIMUM_CAPACITY_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize("answer", [c for c in facts.CAPACITY_LADDER["aurora-mysql"] if c != 4][:5])
def test_minimum_capacity_other_rungs_are_not_yet_and_do_not_reveal_the_answer(answer: int) -> None:
    verdict = checks.minimum_capacity.check(answer)
    assert verdict.status == checks.NOT_YET
    assert f"{MINIMUM_CAPACITY_SOLUTION} ACU" not in verdict.message


def test_minimum_capacity_invalid_answer_is_not_yet_with_the_rule() -> None:
    verdict = checks.minimum_capacity.check(3)
    assert verdict.status == checks.NOT_YET
    assert "not on the aurora-mysql ladder" in verdict.message


def test_office_day_reference_solution_is_correct() -> None:
    verdict = checks.office_day_exercise.check(*OFFICE_DAY_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("pause_s", "prewarm_s", "why"), [
    (300, 0, "waited"),        # the default: users meet cold starts
    (300, 120, "waited"),      # the warm-up helps the morning, but lunch still pauses
    (86_400, 120, "costs"),    # never pauses after work: over budget
])
def test_office_day_wrong_answers_say_why(pause_s: int, prewarm_s: int, why: str) -> None:
    verdict = checks.office_day_exercise.check(pause_s, prewarm_s)
    assert verdict.status == checks.NOT_YET
    assert why in verdict.message


def test_hints_go_from_gentle_to_direct() -> None:
    for exercise in (checks.minimum_capacity, checks.office_day_exercise):
        assert exercise.hint(1) != exercise.hint(len(exercise.hints))
        last = exercise.hint(99)  # past the end: the most direct hint, numbered as the last
        assert (last.text, last.number, last.of) == (exercise.hints[-1], len(exercise.hints), len(exercise.hints))
        assert exercise.hints[-1] in last._repr_markdown_(), "a hint ending a cell must show its text"


def test_verdict_renders_as_markdown() -> None:
    assert checks.Verdict(checks.CORRECT, "well done")._repr_markdown_() == "**✅ Correct: well done**"


def test_tour_resume_minute_reads_the_event_log() -> None:
    from aurora_sim import scenarios

    events = scenarios.tour().run().sql("SELECT kind, time_s / 60 FROM events WHERE kind LIKE 'resum%'").fetchall()
    minutes = dict(events)
    assert checks.tour_resume_minute.check(None).status == checks.NOT_ATTEMPTED
    assert checks.tour_resume_minute.check(minutes["resumed"]).status == checks.CORRECT
    began = checks.tour_resume_minute.check(minutes["resume_started"])
    assert began.status == checks.NOT_YET and "resume began" in began.message
    assert checks.tour_resume_minute.check(minutes["resumed"] * 60).status == checks.NOT_YET
    assert checks.tour_resume_minute.check("soon").status == checks.NOT_YET


@pytest.mark.parametrize(("exercise", "solution", "wrong"), [
    (checks.pool_exercise, (0, 20), [((2, 20), "never paused"), ((0, 100), "scale the cluster up")]),
    (checks.report_exercise, (12, 30), [((1, 60), "fails to scale"), ((12, 120), "must be done within")]),
    (checks.retry_exercise, ("full_jitter", 8), [(("none", 1), "still failed"), (("fixed", 40), "extra attempts"),
                                                 (("exponential", 8), "retried within the same")]),
], ids=lambda value: getattr(value, "name", ""))
def test_client_exercises_accept_the_reference_and_explain_wrong_answers(exercise, solution, wrong) -> None:
    placeholders = (None,) * len(solution)
    assert exercise.check(*placeholders).status == checks.NOT_ATTEMPTED
    verdict = exercise.check(*solution)
    assert verdict.status == checks.CORRECT, verdict.message
    for answer, why in wrong:
        verdict = exercise.check(*answer)
        assert verdict.status == checks.NOT_YET and why in verdict.message, (answer, verdict.message)


def test_retry_exercise_rewards_jitter_not_plain_exponential() -> None:
    """Plain exponential backoff meets the storm's failure, work and p95 targets, but every call refused at the
    resume sleeps the same and retries in the same instant: the checker never accepts it; jittered policies pass."""
    from aurora_sim.clients import RetryPolicy

    herd = checks.storm_herd()
    assert checks.retry_wave(RetryPolicy("exponential")) == herd > 1
    for attempts in range(1, 11):
        verdict = checks.retry_exercise.check("exponential", attempts)
        assert verdict.status == checks.NOT_YET, (attempts, verdict.message)
    jittered = ("full_jitter", "equal_jitter", "decorrelated_jitter")
    assert all(checks.retry_wave(RetryPolicy(name)) <= herd * checks.STORM_WAVE_MAX_SHARE for name in jittered)
    assert any(checks.retry_exercise.check(name, 10).status == checks.CORRECT for name in jittered[1:])


# --- notebook 07: port the MySQL cluster to PostgreSQL ------------------------------------------------------------

PORT_SOLUTION = (192, {"statement_timeout": 120_000})


def test_port_placeholder_is_not_attempted() -> None:
    assert checks.port_exercise.check(None, None).status == checks.NOT_ATTEMPTED
    assert checks.port_exercise.check(192, None).status == checks.NOT_ATTEMPTED


def test_port_reference_solution_is_correct() -> None:
    verdict = checks.port_exercise.check(*PORT_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("answer", "why"), [
    ((128, {"statement_timeout": 120_000}), "not on the aurora-postgresql ladder"),   # MySQL's maximum, copied
    ((192, {"max_execution_time": 120_000}), "it is an aurora-mysql parameter"),      # MySQL's parameter, copied
    ((64, {"statement_timeout": 120_000}), "needs more capacity"),                     # the rung below: the peak waits
    ((192, {}), "runaway dashboard query held the scaling point"),                     # no limit at all
    ((192, {"idle_in_transaction_session_timeout": 120_000}), "held the scaling point"),  # the wrong limit
    ((192, {"statement_timeout": 1_800_000}), "held the scaling point"),               # a limit that fires too late
    ((192, {"statement_timeout": 1_000}), "cancelled by your statement_timeout"),      # a limit too tight
    ((384, {"statement_timeout": 120_000}), "so does a lower maximum"),                # a ceiling higher than needed
    ((192, 120_000), "must be a dict"),
])
def test_port_wrong_answers_say_why_without_the_answer(answer: tuple, why: str) -> None:
    verdict = checks.port_exercise.check(*answer)
    assert verdict.status == checks.NOT_YET, verdict.message
    assert why in verdict.message
    limit = PORT_SOLUTION[1]["statement_timeout"]
    for value, texts in ((PORT_SOLUTION[0], [f"{PORT_SOLUTION[0]} ACU"]), (limit, [f"{limit:,}", str(limit)])):
        if str(value) not in repr(answer):  # the checker may repeat the learner's own value, never the expected one
            assert not any(text in verdict.message for text in texts), verdict.message


# --- notebook 11: the job that blocked scaling at night, and an alarm for it -------------------------------------

NIGHT_CULPRIT_SOLUTION = ("reporting", "02:05")  # the first RDS-EVENT-0143 of the night shift


def _night_alarm_solution():
    from aurora_sim.alarms import Alarm

    return Alarm(metric_name="CPUUtilization", threshold=70, evaluation_periods=5)


def test_night_placeholders_are_not_attempted() -> None:
    assert checks.night_culprit.check(None, None).status == checks.NOT_ATTEMPTED
    assert checks.night_culprit.check("reporting", None).status == checks.NOT_ATTEMPTED
    assert checks.night_alarm.check(None).status == checks.NOT_ATTEMPTED


def test_night_culprit_reference_solution_is_correct() -> None:
    verdict = checks.night_culprit.check(*NIGHT_CULPRIT_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message
    assert checks.night_culprit.check("REPORTING ", "2:06").status == checks.CORRECT, "case, spaces, a minute off"


@pytest.mark.parametrize(("answer", "why"), [
    (("backup", "02:05"), "was not holding anything open"),      # the slow log's red herring
    (("cleanup", "02:05"), "was not holding anything open"),     # waited on the culprit, later
    (("bob", "02:05"), "no session called 'bob'"),
    (("reporting", "02:00"), "*asked* to scale"),                # RDS-EVENT-0141, not 0143
    (("reporting", "02:23"), "but not the first"),
    (("reporting", "03:00"), "no scaling failed at 03:00"),
    (("reporting", 205), "must be a time of the night as text"),
])
def test_night_culprit_wrong_answers_say_why_without_the_answer(answer: tuple, why: str) -> None:
    verdict = checks.night_culprit.check(*answer)
    assert verdict.status == checks.NOT_YET, verdict.message
    assert why in verdict.message
    if answer[0] != "reporting":
        assert "reporting" not in verdict.message
    assert "02:05" not in verdict.message


def test_night_alarm_reference_solution_is_correct() -> None:
    verdict = checks.night_alarm.check(_night_alarm_solution())
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("changes", "why"), [
    ({"evaluation_periods": 1, "datapoints_to_alarm": 1}, "in the busy hour"),  # one hot minute pages
    ({"treat_missing_data": "breaching"}, "while the cluster was paused"),  # every pause pages
    ({"threshold": 95}, "never went to ALARM"),                             # too high to notice
    ({"metric_name": "DatabaseConnections"}, "never went to ALARM"),        # the wrong metric
])
def test_night_alarm_wrong_answers_say_why(changes: dict, why: str) -> None:
    import dataclasses

    verdict = checks.night_alarm.check(dataclasses.replace(_night_alarm_solution(), **changes))
    assert verdict.status == checks.NOT_YET, verdict.message
    assert why in verdict.message


def test_night_alarm_refuses_what_is_not_an_alarm() -> None:
    verdict = checks.night_alarm.check({"metric_name": "CPUUtilization"})
    assert verdict.status == checks.NOT_YET and "must be an Alarm" in verdict.message


# --- notebook 04: the grouping of three databases, and each cluster's range ------------------------------------------

GROUPING_SOLUTION = [(("shop",), 2, 4), (("reports",), 1, 1), (("tool",), 1, 1)]  # one each, each at its own size


def test_grouping_placeholder_is_not_attempted() -> None:
    assert checks.grouping_exercise.check(None).status == checks.NOT_ATTEMPTED


def test_grouping_reference_solution_is_correct() -> None:
    verdict = checks.grouping_exercise.check(GROUPING_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("answer", "why"), [
    ([(("shop", "reports", "tool"), 2, 8)], "requests failed"),  # the report holds the peak's scale-up
    ([(("shop",), 2, 8), (("reports",), 1, 1), (("tool",), 1, 1)], "a cheaper plan"),  # a maximum never needed
    ([(("shop", "tool"), 2, 4), (("reports",), 1, 1)], "a cheaper plan"),  # the tool lifts the shop's rung
    ([(("shop",), 1, 4), (("reports",), 1, 1), (("tool",), 1, 1)], "requests failed"),  # the shop's minimum too low
    ([(("shop",), 2, 4)], "on no cluster"),
    ([("shop", 2, 4)], "must be (databases, min_capacity, max_capacity)"),
])
def test_grouping_wrong_answers_say_why_without_the_answer(answer: list, why: str) -> None:
    verdict = checks.grouping_exercise.check(answer)
    assert verdict.status == checks.NOT_YET, verdict.message
    assert why in verdict.message
    assert str(GROUPING_SOLUTION) not in verdict.message and "2–4" not in verdict.message


# --- notebook 10: for each threat, the setting that stops it -------------------------------------------------------

THREATS_SOLUTION = ("verify-full", "own-kms-key", "secret-policy")


def test_threats_placeholder_is_not_attempted() -> None:
    assert checks.threat_exercise.check(None, None, None).status == checks.NOT_ATTEMPTED
    assert checks.threat_exercise.check("verify-full", None, None).status == checks.NOT_ATTEMPTED


def test_threats_reference_solution_is_correct() -> None:
    verdict = checks.threat_exercise.check(*THREATS_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("answer", "why"), [
    (("require", "own-kms-key", "secret-policy"), "accepts any certificate"),
    (("verify-ca", "own-kms-key", "secret-policy"), "not whose it is"),
    (("prefer", "own-kms-key", "secret-policy"), "falls back to plain text"),
    (("verify-full", "aws-managed-key", "secret-policy"), "cannot be copied or shared"),
    (("verify-full", "verify-full", "secret-policy"), "data at rest"),
    (("verify-full", "own-kms-key", "rotate-password"), "who may read it"),
    (("verify-full", "own-kms-key", "own-kms-key"), "only a name"),
    (("verify-full", "own-kms-key", "firewall"), "allowed: prefer"),
])
def test_threats_wrong_answers_say_why_without_the_answer(answer: tuple, why: str) -> None:
    verdict = checks.threat_exercise.check(*answer)
    assert verdict.status == checks.NOT_YET, verdict.message
    assert why in verdict.message
    if why.startswith("allowed:"):
        return  # a name outside the menu: the message lists the whole menu, which the notebook shows anyway
    for expected, given in zip(THREATS_SOLUTION, answer, strict=True):
        if expected != given and expected not in answer:  # the checker may repeat the learner's value, never the answer
            assert expected not in verdict.message, verdict.message


# --- notebook 09: ride out a failover ---------------------------------------------------------------------------

FAILOVER_SOLUTION = (RetryPolicy("full_jitter", base_s=1, cap_s=10, max_attempts=60),
                     ConnectionPool(min_size=2, max_size=10, acquire_timeout_s=10, pre_ping=True))


def test_failover_placeholders_are_not_attempted() -> None:
    assert checks.failover_exercise.check(None, None).status == checks.NOT_ATTEMPTED


def test_failover_reference_solution_is_correct() -> None:
    verdict = checks.failover_exercise.check(*FAILOVER_SOLUTION)
    assert verdict.status == checks.CORRECT, verdict.message


@pytest.mark.parametrize(("retry", "pool", "why"), [
    (RetryPolicy("full_jitter"), ConnectionPool(), "orders still failed"),  # three attempts end in the outage
    (RetryPolicy("full_jitter", base_s=1, cap_s=60, max_attempts=60), ConnectionPool(), "beyond the outage"),
    (RetryPolicy("full_jitter", base_s=1, cap_s=10, max_attempts=60), ConnectionPool(max_size=2, acquire_timeout_s=1),
     "PoolTimeout"),
    ("full_jitter", ConnectionPool(), "must be a RetryPolicy"),
])
def test_failover_wrong_answers_say_why_without_the_answer(retry, pool, why: str) -> None:
    verdict = checks.failover_exercise.check(retry, pool)
    assert verdict.status == checks.NOT_YET
    assert why in verdict.message
    assert "max_attempts=60" not in verdict.message
