"""Exercise checkers: 'not attempted' as shipped, 'correct' for the reference solution, never the answer."""

from __future__ import annotations

import pytest

from aurora_sim import checks, facts

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
