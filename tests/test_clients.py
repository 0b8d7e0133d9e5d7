"""Unit tests of ``aurora_sim.clients``: connection strategies and retry policies are validated, frozen and hashable;
``RetryPolicy.delay_s`` follows each strategy's formula and ``retries`` the default transient classes."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import aurora_sim
from aurora_sim import ConnectionPool, ConnectPerRequest, DataApi, RetryPolicy, Workload, facts
from aurora_sim.clients import ERROR_CLASSES, RETRY_STRATEGIES, TRANSIENT

STRATEGY_CLASSES = [ConnectPerRequest, ConnectionPool, DataApi, RetryPolicy]
NOT_RETRIED_BY_DEFAULT = ("statement_timeout", "idle_in_transaction", "max_execution_time", "pool_timeout")


# --- construction -------------------------------------------------------------------------------------------------


def test_connect_per_request_valid_construction():
    assert ConnectPerRequest() == ConnectPerRequest()
    assert repr(ConnectPerRequest()) == "ConnectPerRequest()"


def test_connection_pool_valid_construction_and_defaults():
    pool = ConnectionPool(min_size=2, max_size=20, acquire_timeout_s=5, idle_timeout_s=None, max_lifetime_s=None,
                          pre_ping=True)
    assert (pool.min_size, pool.max_size, pool.acquire_timeout_s) == (2, 20, 5)
    assert (pool.idle_timeout_s, pool.max_lifetime_s, pool.pre_ping) == (None, None, True)
    default = ConnectionPool()
    assert (default.min_size, default.max_size, default.acquire_timeout_s) == (1, 10, 30.0)
    assert (default.idle_timeout_s, default.max_lifetime_s, default.pre_ping) == (600.0, 3600.0, False)
    assert ConnectionPool(min_size=0).min_size == 0, "min_size=0 (a pool that lets the cluster pause) is legal"
    assert ConnectionPool(min_size=3, max_size=3).max_size == 3


def test_data_api_valid_construction():
    assert DataApi().overhead_s == facts.DATA_API_WARM_CALL_S == 0.0145, "the measured warm median, 14.5 ms"
    assert DataApi(overhead_s=0.05).overhead_s == 0.05


def test_retry_policy_valid_construction_and_defaults():
    policy = RetryPolicy()
    assert (policy.strategy, policy.base_s, policy.cap_s, policy.max_attempts) == ("none", 0.1, 20.0, 3)
    assert (policy.budget_tokens, policy.budget_deposit) == (None, 0.1)
    assert set(policy.retry_on) == {"forced_abort", "refused", "dropped", "data_api_resuming"}
    custom = RetryPolicy("decorrelated_jitter", base_s=0.5, cap_s=0.5, max_attempts=1, budget_tokens=10,
                         budget_deposit=0, retry_on=["pool_timeout", "refused", "refused"])
    assert custom.retry_on == ("pool_timeout", "refused"), "retry_on is stored sorted and without duplicates"
    assert (custom.budget_tokens, custom.budget_deposit, custom.max_attempts) == (10, 0, 1)


@pytest.mark.parametrize("strategy", RETRY_STRATEGIES)
def test_every_retry_strategy_is_accepted(strategy):
    assert RetryPolicy(strategy).strategy == strategy


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "message"),
    [
        (ConnectionPool, {"min_size": 5, "max_size": 2}, ValueError, "min_size=5 must be <= max_size=2"),
        (ConnectionPool, {"min_size": -1}, ValueError, "min_size=-1 must be >= 0"),
        (ConnectionPool, {"max_size": 0, "min_size": 0}, ValueError, "max_size=0 must be > 0"),
        (ConnectionPool, {"min_size": 1.5}, TypeError, "min_size=1.5 must be a whole number, not float"),
        (ConnectionPool, {"max_size": True}, TypeError, "max_size=True must be a whole number, not a bool"),
        (ConnectionPool, {"acquire_timeout_s": 0}, ValueError, "acquire_timeout_s=0 must be > 0"),
        (ConnectionPool, {"acquire_timeout_s": float("inf")}, ValueError,
         "acquire_timeout_s=inf must be a finite number"),
        (ConnectionPool, {"idle_timeout_s": -1}, ValueError, "idle_timeout_s=-1 must be > 0"),
        (ConnectionPool, {"idle_timeout_s": 0}, ValueError, "idle_timeout_s=0 must be > 0"),
        (ConnectionPool, {"max_lifetime_s": 0}, ValueError, "max_lifetime_s=0 must be > 0"),
        (ConnectionPool, {"max_lifetime_s": "1h"}, TypeError, "max_lifetime_s='1h' must be a number, not str"),
        (ConnectionPool, {"pre_ping": "yes"}, TypeError, "pre_ping='yes' must be True or False, not str"),
        (DataApi, {"overhead_s": 0}, ValueError, "overhead_s=0 must be > 0"),
        (DataApi, {"overhead_s": -0.1}, ValueError, "overhead_s=-0.1 must be > 0"),
        (RetryPolicy, {"strategy": "linear"}, ValueError,
         "strategy='linear' must be one of ('none', 'fixed', 'exponential', 'full_jitter', 'equal_jitter', "
         "'decorrelated_jitter')"),
        (RetryPolicy, {"base_s": 0}, ValueError, "base_s=0 must be > 0"),
        (RetryPolicy, {"cap_s": -1}, ValueError, "cap_s=-1 must be > 0"),
        (RetryPolicy, {"base_s": 30}, ValueError, "base_s=30 must be <= cap_s=20.0"),
        (RetryPolicy, {"max_attempts": 0}, ValueError, "max_attempts=0 must be > 0"),
        (RetryPolicy, {"max_attempts": 2.5}, TypeError, "max_attempts=2.5 must be a whole number, not float"),
        (RetryPolicy, {"budget_tokens": 0}, ValueError, "budget_tokens=0 must be > 0"),
        (RetryPolicy, {"budget_deposit": -0.1}, ValueError, "budget_deposit=-0.1 must be >= 0"),
        (RetryPolicy, {"retry_on": ("timeout",)}, ValueError,
         f"retry_on='timeout' must be one of {ERROR_CLASSES}"),
        (RetryPolicy, {"retry_on": "refused"}, TypeError,
         "retry_on='refused' must be a collection of error classes, not str"),
    ],
)
def test_invalid_values_name_parameter_value_and_rule(cls, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [ConnectPerRequest, ConnectionPool, DataApi, RetryPolicy])
def test_unknown_keyword_is_a_type_error(cls):
    with pytest.raises(TypeError, match="unexpected keyword argument 'size'"):
        cls(size=1)


@pytest.mark.parametrize("cls", [ConnectPerRequest, ConnectionPool, DataApi])
def test_connection_strategies_take_keywords_only(cls):
    with pytest.raises(TypeError):
        cls(1)


@pytest.mark.parametrize(
    "obj", [ConnectionPool(), DataApi(), RetryPolicy("full_jitter")], ids=["ConnectionPool", "DataApi", "RetryPolicy"]
)
def test_frozen(obj):
    name = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, getattr(obj, name))


def test_hashable_and_equal_by_value():
    cache = {
        ConnectPerRequest(): "per request",
        ConnectionPool(min_size=2): "pool",
        DataApi(): "data api",
        RetryPolicy("exponential", retry_on=["refused", "dropped"]): "retry",
    }
    assert cache[ConnectionPool(min_size=2)] == "pool"
    assert cache[RetryPolicy("exponential", retry_on=("dropped", "refused"))] == "retry"
    assert ConnectionPool(min_size=2) != ConnectionPool(min_size=3)
    assert hash(Workload(segments=[(0, 60, 1.0)], connections=DataApi(), retry=RetryPolicy("fixed"))) == hash(
        Workload(segments=[(0, 60, 1.0)], connections=DataApi(), retry=RetryPolicy("fixed"))
    )


def test_replace_revalidates():
    assert dataclasses.replace(ConnectionPool(), max_size=3).max_size == 3
    with pytest.raises(ValueError, match=re.escape("min_size=4 must be <= max_size=3")):
        dataclasses.replace(ConnectionPool(min_size=4, max_size=5), max_size=3)
    with pytest.raises(ValueError, match=re.escape("max_attempts=0 must be > 0")):
        dataclasses.replace(RetryPolicy("fixed"), max_attempts=0)


def test_reprs_are_readable():
    assert repr(ConnectionPool(min_size=2, max_size=4)) == (
        "ConnectionPool(min_size=2, max_size=4, acquire_timeout_s=30.0, idle_timeout_s=600.0, max_lifetime_s=3600.0, "
        "pre_ping=False)"
    )
    assert repr(DataApi()) == "DataApi(overhead_s=0.0145)"
    assert repr(RetryPolicy("fixed", retry_on=("refused",))) == (
        "RetryPolicy(strategy='fixed', base_s=0.1, cap_s=20.0, max_attempts=3, budget_tokens=None, "
        "budget_deposit=0.1, retry_on=('refused',))"
    )


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_is_exported(cls):
    assert cls.__name__ in aurora_sim.__all__
    assert getattr(aurora_sim, cls.__name__) is cls


# --- a workload's client settings ----------------------------------------------------------------------------------


def test_workload_rejects_a_connection_strategy_of_the_wrong_kind():
    message = "connections='pool' must be None or one of ConnectPerRequest, ConnectionPool, DataApi"
    with pytest.raises(ValueError, match=re.escape(message)):
        Workload(segments=[(0, 60, 1.0)], connections="pool")
    with pytest.raises(ValueError, match=re.escape("retry='fixed' must be None or a RetryPolicy")):
        Workload(segments=[(0, 60, 1.0)], retry="fixed")


@pytest.mark.parametrize(
    ("connections", "retry", "tracked"),
    [
        (None, None, False),
        (ConnectPerRequest(), None, True),
        (ConnectionPool(), None, True),
        (DataApi(), None, True),
        (None, RetryPolicy("full_jitter"), True),
        (None, RetryPolicy("none"), True),
    ],
)
def test_a_connection_strategy_or_a_retry_policy_makes_a_workload_tracked(connections, retry, tracked):
    assert Workload(segments=[(0, 60, 1.0)], connections=connections, retry=retry).tracked is tracked


# --- RetryPolicy.delay_s ------------------------------------------------------------------------------------------


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_fixed_sleeps_base_s_before_every_retry():
    policy = RetryPolicy("fixed", base_s=0.3, cap_s=1.0)
    assert [policy.delay_s(n, 0.0, _rng()) for n in (1, 2, 3, 10)] == [0.3, 0.3, 0.3, 0.3]


def test_exponential_doubles_from_base_times_two_and_stops_at_the_cap():
    policy = RetryPolicy("exponential", base_s=0.1, cap_s=1.0)
    delays = [policy.delay_s(n, 0.0, _rng()) for n in (1, 2, 3, 4, 5, 50, 5000)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]), f"first retry is n = 1: got {delays}"
    assert RetryPolicy("exponential", base_s=0.25, cap_s=20).delay_s(3, 0.0, _rng()) == pytest.approx(2.0)


def test_none_strategy_sleeps_nothing_and_never_retries():
    policy = RetryPolicy("none", max_attempts=5)
    assert policy.delay_s(1, 0.0, _rng()) == 0.0
    assert not any(policy.retries(error) for error in ERROR_CLASSES)


@pytest.mark.parametrize("retry", [1, 2, 3, 6, 12])
def test_full_jitter_is_uniform_below_the_exponential_ceiling(retry):
    policy = RetryPolicy("full_jitter", base_s=0.1, cap_s=2.0)
    ceiling = min(2.0, 0.1 * 2**retry)
    rng = _rng(retry)
    draws = np.array([policy.delay_s(retry, 0.0, rng) for _ in range(400)])
    assert draws.min() >= 0 and draws.max() <= ceiling, f"retry {retry}: {draws.min()}..{draws.max()} vs {ceiling}"
    assert draws.max() > 0.9 * ceiling and draws.min() < 0.1 * ceiling, "the draws should span [0, ceiling]"


@pytest.mark.parametrize("retry", [1, 2, 3, 6, 12])
def test_equal_jitter_keeps_half_the_ceiling_and_jitters_the_other_half(retry):
    policy = RetryPolicy("equal_jitter", base_s=0.1, cap_s=2.0)
    ceiling = min(2.0, 0.1 * 2**retry)
    rng = _rng(retry)
    draws = np.array([policy.delay_s(retry, 0.0, rng) for _ in range(400)])
    assert draws.min() >= ceiling / 2 and draws.max() <= ceiling, f"retry {retry}: {draws.min()}..{draws.max()}"
    assert draws.min() < 0.55 * ceiling and draws.max() > 0.95 * ceiling


def test_decorrelated_jitter_grows_from_its_previous_sleep_within_base_and_cap():
    policy = RetryPolicy("decorrelated_jitter", base_s=0.1, cap_s=2.0)
    rng = _rng(3)
    first = [policy.delay_s(1, 0.0, rng) for _ in range(300)]  # no previous sleep: the base stands in
    assert min(first) >= 0.1 and max(first) <= 0.3, f"first retry in [base, 3 base]: {min(first)}..{max(first)}"
    later = [policy.delay_s(4, 0.5, rng) for _ in range(300)]
    assert min(later) >= 0.1 and max(later) <= 1.5, f"after 0.5 s: within [base, 3 x 0.5]: {min(later)}..{max(later)}"
    capped = [policy.delay_s(9, 5.0, rng) for _ in range(300)]
    assert max(capped) <= 2.0 and min(capped) >= 0.1
    previous, chain = 0.0, []
    for n in range(1, 30):
        previous = policy.delay_s(n, previous, rng)
        chain.append(previous)
    assert all(0.1 <= d <= 2.0 for d in chain), chain


@pytest.mark.parametrize("strategy", ["full_jitter", "equal_jitter", "decorrelated_jitter"])
def test_jitter_depends_only_on_the_generator(strategy):
    policy = RetryPolicy(strategy, base_s=0.1, cap_s=5.0)
    first = [policy.delay_s(n, 0.2, _rng(11)) for n in range(1, 6)]
    again = [policy.delay_s(n, 0.2, _rng(11)) for n in range(1, 6)]
    assert first == again


# --- RetryPolicy.retries ------------------------------------------------------------------------------------------


def test_default_retry_on_is_exactly_the_transient_classes():
    assert set(TRANSIENT) == {"forced_abort", "refused", "dropped", "data_api_resuming"}
    assert RetryPolicy("exponential").retry_on == tuple(sorted(TRANSIENT))


@pytest.mark.parametrize("strategy", [s for s in RETRY_STRATEGIES if s != "none"])
@pytest.mark.parametrize("error_class", ERROR_CLASSES)
def test_retries_by_default_only_transient_errors(strategy, error_class):
    policy = RetryPolicy(strategy)
    expected = error_class in ("forced_abort", "refused", "dropped", "data_api_resuming")
    assert policy.retries(error_class) is expected, f"{strategy} retries {error_class}: expected {expected}"


@pytest.mark.parametrize("error_class", NOT_RETRIED_BY_DEFAULT)
def test_timeouts_are_not_retried_by_default_but_can_be_opted_in(error_class):
    assert not RetryPolicy("full_jitter").retries(error_class)
    assert RetryPolicy("full_jitter", retry_on=(error_class,)).retries(error_class)
    assert not RetryPolicy("full_jitter", retry_on=(error_class,)).retries("refused"), "retry_on replaces the default"


def test_a_single_attempt_is_never_retried():
    policy = RetryPolicy("exponential", max_attempts=1)
    assert not any(policy.retries(error) for error in ERROR_CLASSES)
    assert RetryPolicy("exponential", max_attempts=2).retries("refused")
