"""Tests for aurora_sim.backoff: the retry formulas and the contended-write experiment of Brooker's 2015 post."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from aurora_sim.backoff import (
    BASE_MS,
    CAP_MS,
    STRATEGIES,
    STRATEGY_STREAMS,
    SWEEP_COLUMNS,
    backoff_ms,
    contended_write_experiment,
    sweep,
)

JITTERED = ("full_jitter", "equal_jitter", "decorrelated_jitter")
ATTEMPTS = range(1, 13)  # 5 * 2**9 = 2560 > 2000, so the cap binds from attempt 9 on

# Means of aws-samples/aws-arch-backoff-simulator src/backoff_simulator.py (commit 095a0760), run unchanged but
# for plotting, 1000 runs at 100 clients: (writes per run, completion ms).
PUBLISHED_100_CLIENTS = {
    "none": (2425.3, 2029.7),
    "exponential": (1855.1, 63430.1),
    "full_jitter": (795.8, 4906.1),
    "equal_jitter": (812.3, 6592.6),
    "decorrelated_jitter": (1003.1, 4602.9),
}


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, int], dict[str, float]]:
    """Every strategy at 10 and 50 clients, 50 runs each (about 0.1 s)."""
    return {(s, n): contended_write_experiment(s, n, runs=50) for s in STRATEGIES for n in (10, 50)}


# --- the formulas ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [*ATTEMPTS, 40, 5000])
def test_exponential_is_exact(attempt):
    expected = min(CAP_MS, BASE_MS * 2**attempt)
    got = backoff_ms("exponential", attempt, BASE_MS, np.random.default_rng(0))
    assert got == expected, f"attempt {attempt}: expected {expected} ms, got {got}"


def test_no_backoff_retries_at_once():
    rng = np.random.default_rng(0)
    assert {backoff_ms("none", n, BASE_MS, rng) for n in ATTEMPTS} == {0.0}


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_full_jitter_stays_within_zero_and_the_exponential_sleep(attempt):
    rng = np.random.default_rng(attempt)
    ceiling = min(CAP_MS, BASE_MS * 2**attempt)
    draws = [backoff_ms("full_jitter", attempt, BASE_MS, rng) for _ in range(2000)]
    assert min(draws) >= 0 and max(draws) <= ceiling, f"attempt {attempt}: {min(draws)}..{max(draws)} ms"
    assert max(draws) > 0.9 * ceiling and min(draws) < 0.1 * ceiling, "draws should spread over the whole range"


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_equal_jitter_stays_within_half_and_all_of_the_exponential_sleep(attempt):
    rng = np.random.default_rng(attempt)
    ceiling = min(CAP_MS, BASE_MS * 2**attempt)
    draws = [backoff_ms("equal_jitter", attempt, BASE_MS, rng) for _ in range(2000)]
    assert min(draws) >= ceiling / 2 and max(draws) <= ceiling, f"attempt {attempt}: {min(draws)}..{max(draws)} ms"


def test_decorrelated_jitter_stays_within_base_and_cap_and_ignores_the_attempt():
    rng = np.random.default_rng(1)
    sleep, draws = BASE_MS, []
    for _ in range(5000):
        sleep = backoff_ms("decorrelated_jitter", 1, sleep, rng)
        draws.append(sleep)
    assert min(draws) >= BASE_MS and max(draws) <= CAP_MS, f"{min(draws)}..{max(draws)} ms"
    assert max(draws) == CAP_MS, "a chain of 5000 sleeps should reach the cap"
    first = [backoff_ms("decorrelated_jitter", n, 100.0, np.random.default_rng(7)) for n in (1, 5, 50)]
    assert len(set(first)) == 1, f"the attempt number changed the sleep: {first}"


def test_formulas_take_another_base_and_cap():
    rng = np.random.default_rng(0)
    assert backoff_ms("exponential", 3, 100.0, rng, base_ms=100.0, cap_ms=500.0) == 500.0
    assert backoff_ms("exponential", 2, 100.0, rng, base_ms=100.0, cap_ms=500.0) == 400.0
    assert 100.0 <= backoff_ms("decorrelated_jitter", 1, 100.0, rng, base_ms=100.0, cap_ms=500.0) <= 300.0


# --- the experiment ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_client_writes_once_after_four_one_way_delays(strategy):
    means = contended_write_experiment(strategy, clients=1, runs=200)
    assert means["calls"] == 1.0, f"{strategy}: {means['calls']} writes, expected exactly 1"
    assert 39 < means["completion_ms"] < 41, f"{strategy}: {means['completion_ms']:.2f} ms, expected about 4 x 10 ms"


def test_every_client_writes_at_least_once(results):
    for (strategy, clients), means in results.items():
        assert means["calls"] >= clients, f"{strategy} at {clients} clients: {means['calls']} writes"


@pytest.mark.parametrize("clients", [10, 50])
def test_no_backoff_finishes_first_when_the_server_never_queues(results, clients):
    fastest = results["none", clients]["completion_ms"]
    for strategy in STRATEGIES[1:]:
        other = results[strategy, clients]["completion_ms"]
        assert fastest < other, f"{clients} clients: none {fastest:.0f} ms, {strategy} {other:.0f} ms"


@pytest.mark.parametrize("clients", [10, 50])
def test_full_jitter_writes_less_than_plain_exponential(results, clients):
    jitter, plain = results["full_jitter", clients]["calls"], results["exponential", clients]["calls"]
    assert jitter < plain, f"{clients} clients: full jitter {jitter} writes, exponential {plain}"


@pytest.mark.parametrize("strategy", ["equal_jitter", "decorrelated_jitter"])
def test_other_jitters_write_less_than_plain_exponential_at_50_clients(results, strategy):
    jitter, plain = results[strategy, 50]["calls"], results["exponential", 50]["calls"]
    assert jitter < plain, f"50 clients: {strategy} {jitter} writes, exponential {plain}"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_the_published_simulator_within_5_percent_at_100_clients(strategy):
    means = contended_write_experiment(strategy, clients=100, runs=100)
    for value, published, what in zip(means.values(), PUBLISHED_100_CLIENTS[strategy], means, strict=True):
        assert abs(value / published - 1) < 0.05, f"{strategy} {what}: ours {value:.1f}, published {published}"


def test_returns_unrounded_floats(results):
    means = results["full_jitter", 10]
    assert list(means) == ["calls", "completion_ms"]
    assert all(type(v) is float for v in means.values()), means
    assert means["completion_ms"] != round(means["completion_ms"], 3)


def test_same_seed_gives_identical_results_and_another_seed_differs():
    first = contended_write_experiment("equal_jitter", 20, runs=10, seed=3)
    assert contended_write_experiment("equal_jitter", 20, runs=10, seed=3) == first
    assert contended_write_experiment("equal_jitter", 20, runs=10, seed=4) != first


def test_stream_ids_are_append_only():
    assert STRATEGY_STREAMS == {
        "none": 0,
        "exponential": 1,
        "full_jitter": 2,
        "equal_jitter": 3,
        "decorrelated_jitter": 4,
    }
    assert tuple(STRATEGY_STREAMS) == STRATEGIES


def test_sweep_has_one_row_per_strategy_and_client_count():
    table = sweep([5, 10], strategies=("none", "decorrelated_jitter"), runs=5, seed=2)
    assert isinstance(table, pd.DataFrame)
    assert tuple(table.columns) == SWEEP_COLUMNS == ("strategy", "clients", "calls", "completion_ms")
    assert list(zip(table["strategy"], table["clients"], strict=True)) == [
        ("none", 5),
        ("none", 10),
        ("decorrelated_jitter", 5),
        ("decorrelated_jitter", 10),
    ]
    row = table.iloc[3]
    assert (row["calls"], row["completion_ms"]) == tuple(
        contended_write_experiment("decorrelated_jitter", 10, runs=5, seed=2).values()
    )


# --- validation --------------------------------------------------------------------------------------------------

ALLOWED = "('none', 'exponential', 'full_jitter', 'equal_jitter', 'decorrelated_jitter')"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "linear"}, f"strategy='linear' must be one of {ALLOWED}"),
        ({"clients": 0}, "clients=0 must be >= 1"),
        ({"runs": 0}, "runs=0 must be >= 1"),
        ({"seed": -1}, "seed=-1 must be >= 0"),
    ],
)
def test_experiment_rejects_bad_values(kwargs, message):
    args = {"strategy": "none", "clients": 2, "runs": 1, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        contended_write_experiment(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": 2.5}, "clients=2.5 must be an integer, not float"),
        ({"runs": True}, "runs=True must be an integer, not a bool"),
    ],
)
def test_experiment_rejects_bad_types(kwargs, message):
    args = {"strategy": "none", "clients": 2, "runs": 1} | kwargs
    with pytest.raises(TypeError, match=re.escape(message)):
        contended_write_experiment(**args)


def test_backoff_rejects_unknown_strategy_and_attempt_zero():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=re.escape(f"strategy='linear' must be one of {ALLOWED}")):
        backoff_ms("linear", 1, BASE_MS, rng)
    with pytest.raises(ValueError, match=re.escape("attempt=0 must be >= 1 (the first retry is attempt 1)")):
        backoff_ms("full_jitter", 0, BASE_MS, rng)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_counts": []}, "client_counts=() must name at least one value"),
        ({"strategies": ()}, "strategies=() must name at least one value"),
        ({"strategies": ("none", "retry")}, f"strategy='retry' must be one of {ALLOWED}"),
        ({"client_counts": [10, 0]}, "clients=0 must be >= 1"),
    ],
)
def test_sweep_rejects_bad_values(kwargs, message):
    args = {"client_counts": [2], "runs": 1} | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        sweep(**args)


# --- the sleep table of notebook 06 ---------------------------------------------------------------------------------


def test_sleep_table_has_one_row_per_policy_and_the_exact_exponential_sleeps() -> None:
    from aurora_sim.backoff import sleep_table
    from aurora_sim.clients import RETRY_STRATEGIES, RetryPolicy

    table = sleep_table({name: RetryPolicy(name) for name in RETRY_STRATEGIES[1:]}, retries=6, seed=6)
    assert list(table.index) == list(RETRY_STRATEGIES[1:])
    assert list(table.columns) == [f"retry {n}" for n in range(1, 7)]
    assert table.loc["exponential"].tolist() == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4]
    assert table.loc["fixed"].tolist() == [0.1] * 6
    ceiling = [0.2, 0.4, 0.8, 1.6, 3.2, 6.4]
    assert all(0 <= s <= c for s, c in zip(table.loc["full_jitter"], ceiling, strict=True))
    assert all(c / 2 <= s <= c for s, c in zip(table.loc["equal_jitter"], ceiling, strict=True))
    assert sleep_table({"x": RetryPolicy("full_jitter")}, seed=6).equals(sleep_table({"x": RetryPolicy("full_jitter")},
                                                                                      seed=6))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"policies": {}}, "policies={} must name at least one policy"),
    ({"retries": 0}, "retries=0 must be >= 1"),
])
def test_sleep_table_rejects_bad_values(kwargs, message) -> None:
    from aurora_sim.backoff import sleep_table
    from aurora_sim.clients import RetryPolicy

    arguments = {"policies": {"fixed": RetryPolicy("fixed")}, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        sleep_table(**arguments)
