"""Unit tests of ``aurora_sim.config``: ClusterConfig and ModelAssumptions are validated, frozen and hashable."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from aurora_sim import ClusterConfig, ModelAssumptions
from aurora_sim.config import ALLOWED


def test_cluster_config_valid_construction():
    cfg = ClusterConfig(
        engine="aurora-mysql",
        engine_version="5.6",
        min_capacity=2,
        max_capacity=64,
        auto_pause=False,
        seconds_until_auto_pause=600,
        timeout_action="ForceApplyCapacityChange",
        seconds_before_timeout=120,
    )
    assert (cfg.engine, cfg.engine_version, cfg.min_capacity, cfg.max_capacity) == ("aurora-mysql", "5.6", 2, 64)
    assert (cfg.auto_pause, cfg.seconds_until_auto_pause) == (False, 600)
    assert (cfg.timeout_action, cfg.seconds_before_timeout) == ("ForceApplyCapacityChange", 120)
    assert cfg.ladder == (2, 4, 8, 16, 32, 64)


def test_cluster_config_defaults():
    cfg = ClusterConfig()
    assert (cfg.engine, cfg.engine_version, cfg.min_capacity, cfg.max_capacity) == ("aurora-mysql", "5.7", 1, 16)
    assert (cfg.auto_pause, cfg.seconds_until_auto_pause) == (True, 300)
    assert (cfg.timeout_action, cfg.seconds_before_timeout) == ("RollbackCapacityChange", 300)


def test_postgresql_defaults_to_its_lowest_rung_and_newest_version():
    cfg = ClusterConfig(engine="aurora-postgresql", max_capacity=384)
    assert (cfg.min_capacity, cfg.engine_version) == (2, "13")
    assert cfg.ladder == (2, 4, 8, 16, 32, 64, 192, 384)


@pytest.mark.parametrize("version", ["10", "11", "13"])
def test_every_postgresql_version_that_ran_on_v1_is_accepted(version):
    assert ClusterConfig(engine="aurora-postgresql", engine_version=version).engine_version == version


@pytest.mark.parametrize("cfg", [ClusterConfig(), ModelAssumptions()], ids=["ClusterConfig", "ModelAssumptions"])
def test_frozen(cfg):
    name = dataclasses.fields(cfg)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, name, getattr(cfg, name))


def test_hashable_and_equal_by_value():
    assert hash(ClusterConfig(min_capacity=2)) == hash(ClusterConfig(min_capacity=2))
    assert ClusterConfig(min_capacity=2) == ClusterConfig(min_capacity=2)
    assert ClusterConfig(min_capacity=2) != ClusterConfig(min_capacity=4)
    assert hash(ModelAssumptions(scale_apply_s=1)) == hash(ModelAssumptions(scale_apply_s=1))
    cache = {ClusterConfig(): "a", ModelAssumptions(): "b"}
    assert cache[ClusterConfig()] == "a" and cache[ModelAssumptions()] == "b"


def test_replace_revalidates_cluster_config():
    cfg = ClusterConfig()
    assert dataclasses.replace(cfg, min_capacity=2).min_capacity == 2
    with pytest.raises(
        ValueError,
        match=re.escape("min_capacity=3 is not on the aurora-mysql ladder (1, 2, 4, 8, 16, 32, 64, 128, 256)"),
    ):
        dataclasses.replace(cfg, min_capacity=3)


def test_replace_revalidates_model_assumptions():
    with pytest.raises(ValueError, match=re.escape("scale_apply_s=-1 must be >= 0")):
        dataclasses.replace(ModelAssumptions(), scale_apply_s=-1)


@pytest.mark.parametrize("cls", [ClusterConfig, ModelAssumptions])
def test_unknown_keyword_is_a_type_error(cls):
    with pytest.raises(TypeError, match="unexpected keyword argument 'min_acu'"):
        cls(min_acu=1)


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        ClusterConfig("aurora-mysql")  # type: ignore[misc]


BAD_CLUSTER_CONFIGS = [
    (
        "min_capacity",
        {"min_capacity": 3},
        "min_capacity=3 is not on the aurora-mysql ladder (1, 2, 4, 8, 16, 32, 64, 128, 256)",
    ),
    (
        "max_capacity",
        {"engine": "aurora-postgresql", "max_capacity": 128},
        "max_capacity=128 is not on the aurora-postgresql ladder (2, 4, 8, 16, 32, 64, 192, 384)",
    ),
    (
        "max_capacity",
        {"max_capacity": 512},
        "max_capacity=512 is not on the aurora-mysql ladder (1, 2, 4, 8, 16, 32, 64, 128, 256)",
    ),
    ("min_capacity", {"min_capacity": 32, "max_capacity": 16}, "min_capacity=32 must be <= max_capacity=16"),
    (
        "min_capacity",
        {"engine": "aurora-postgresql", "min_capacity": 1},
        "min_capacity=1 is not on the aurora-postgresql ladder (2, 4, 8, 16, 32, 64, 192, 384)",
    ),
    (
        "seconds_until_auto_pause",
        {"seconds_until_auto_pause": 299},
        "seconds_until_auto_pause=299 is outside 300..86400 (seconds)",
    ),
    (
        "seconds_until_auto_pause",
        {"seconds_until_auto_pause": 86401},
        "seconds_until_auto_pause=86401 is outside 300..86400 (seconds)",
    ),
    (
        "seconds_until_auto_pause",
        {"auto_pause": False, "seconds_until_auto_pause": 299},
        "seconds_until_auto_pause=299 is outside 300..86400 (seconds)",
    ),
    (
        "seconds_until_auto_pause",
        {"auto_pause": False, "seconds_until_auto_pause": 86401},
        "seconds_until_auto_pause=86401 is outside 300..86400 (seconds)",
    ),
    (
        "seconds_before_timeout",
        {"seconds_before_timeout": 59},
        "seconds_before_timeout=59 is outside 60..600 (seconds)",
    ),
    (
        "seconds_before_timeout",
        {"seconds_before_timeout": 601},
        "seconds_before_timeout=601 is outside 60..600 (seconds)",
    ),
    (
        "timeout_action",
        {"timeout_action": "Force"},
        "timeout_action='Force' must be one of ('RollbackCapacityChange', 'ForceApplyCapacityChange')",
    ),
    (
        "engine",
        {"engine": "aurora-postgres"},
        "engine='aurora-postgres' must be one of ('aurora-mysql', 'aurora-postgresql')",
    ),
    ("engine_version", {"engine_version": "8.0"}, "engine_version='8.0' must be one of ('5.6', '5.7')"),
    (
        "engine_version",
        {"engine": "aurora-postgresql", "engine_version": "5.7"},
        "engine_version='5.7' must be one of ('10', '11', '13')",
    ),
    (
        "engine_version",
        {"engine": "aurora-postgresql", "engine_version": "14"},
        "engine_version='14' must be one of ('10', '11', '13')",
    ),
]


@pytest.mark.parametrize(
    ("parameter", "kwargs", "message"),
    BAD_CLUSTER_CONFIGS,
    ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BAD_CLUSTER_CONFIGS)],
)
def test_cluster_config_rejects(parameter, kwargs, message):
    assert message.startswith(parameter)
    with pytest.raises(ValueError, match=re.escape(message)):
        ClusterConfig(**kwargs)


BAD_CLUSTER_TYPES = [
    ({"min_capacity": True}, "min_capacity=True must be an integer number of ACUs, not a bool"),
    ({"max_capacity": 16.0}, "max_capacity=16.0 must be an integer number of ACUs, not float"),
    ({"auto_pause": 1}, "auto_pause=1 must be True or False, not int"),
    (
        {"seconds_until_auto_pause": 300.5},
        "seconds_until_auto_pause=300.5 must be a whole number of seconds, not float",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_CLUSTER_TYPES, ids=[next(iter(k)) for k, _ in BAD_CLUSTER_TYPES])
def test_cluster_config_rejects_wrong_types(kwargs, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        ClusterConfig(**kwargs)


def test_model_assumptions_defaults_come_from_the_fact_sheet():
    a = ModelAssumptions()
    assert (a.resume_median_s, a.resume_p95_s, a.resume_min_s, a.resume_max_s) == (43.2, 58.6, 12.6, 92.6)


def test_rollback_ratio_defaults_to_half_and_may_be_zero_or_ten():
    assert ModelAssumptions().rollback_s_per_transaction_s == 0.5
    assert ModelAssumptions(rollback_s_per_transaction_s=0).rollback_s_per_transaction_s == 0
    assert ModelAssumptions(rollback_s_per_transaction_s=10).rollback_s_per_transaction_s == 10


def test_model_assumptions_valid_construction():
    a = ModelAssumptions(
        controller_window_s=30,
        controller_period_s=10,
        scale_apply_s=0,
        pause_transition_s=0,
        resume_median_s=40,
        resume_p95_s=40,
        query_cost_cv=0,
        long_query_acu=0,
    )
    assert (a.controller_window_s, a.controller_period_s, a.resume_median_s) == (30, 10, 40)


def test_every_model_assumption_has_a_line_in_the_docs():
    page = (Path(__file__).resolve().parents[1] / "docs" / "model-assumptions.md").read_text()
    missing = [name for name, _, _ in ModelAssumptions.describe() if f"`{name}`" not in page]
    assert not missing, f"docs/model-assumptions.md does not explain {missing}"


def test_model_assumptions_describe_lists_every_field_with_a_reason():
    described = ModelAssumptions.describe()
    assert [name for name, _, _ in described] == [f.name for f in dataclasses.fields(ModelAssumptions)]
    for name, default, why in described:
        assert why.strip(), f"{name} (default {default}) has no reason"
        assert getattr(ModelAssumptions(), name) == default


BAD_ASSUMPTIONS = [
    ("scale_apply_s", {"scale_apply_s": -1}, "scale_apply_s=-1 must be >= 0"),
    ("controller_window_s", {"controller_window_s": 0}, "controller_window_s=0 must be > 0"),
    ("controller_period_s", {"controller_period_s": -5}, "controller_period_s=-5 must be > 0"),
    (
        "controller_window_s",
        {"controller_window_s": 60, "controller_period_s": 7},
        "controller_window_s=60 must be a whole multiple of controller_period_s=7",
    ),
    ("resume_median_s", {"resume_median_s": 60, "resume_p95_s": 50}, "resume_median_s=60 must be <= resume_p95_s=50"),
    ("resume_min_s", {"resume_min_s": 50}, "resume_min_s=50 must be <= resume_median_s=43.2"),
    ("resume_p95_s", {"resume_max_s": 50}, "resume_p95_s=58.6 must be <= resume_max_s=50"),
    ("query_cost_cv", {"query_cost_cv": float("nan")}, "query_cost_cv=nan must be a finite number"),
    (
        "rollback_s_per_transaction_s",
        {"rollback_s_per_transaction_s": -0.5},
        "rollback_s_per_transaction_s=-0.5 must be >= 0",
    ),
    (
        "rollback_s_per_transaction_s",
        {"rollback_s_per_transaction_s": 11},
        "rollback_s_per_transaction_s=11 is outside 0..10.0 (seconds of rollback per second of transaction)",
    ),
]


@pytest.mark.parametrize(
    ("parameter", "kwargs", "message"), BAD_ASSUMPTIONS, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BAD_ASSUMPTIONS)]
)
def test_model_assumptions_rejects(parameter, kwargs, message):
    assert message.startswith(parameter)
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelAssumptions(**kwargs)


def test_model_assumptions_rejects_a_bool():
    with pytest.raises(TypeError, match=re.escape("scale_apply_s=True must be a number, not a bool")):
        ModelAssumptions(scale_apply_s=True)


def test_cluster_config_repr():
    assert repr(ClusterConfig()) == (
        "ClusterConfig(engine='aurora-mysql', engine_version='5.7', min_capacity=1, max_capacity=16, "
        "auto_pause=True, seconds_until_auto_pause=300, timeout_action='RollbackCapacityChange', "
        "seconds_before_timeout=300, parameters=())"
    )


def test_model_assumptions_repr():
    text = repr(ModelAssumptions())
    assert text.startswith("ModelAssumptions(controller_window_s=60.0, controller_period_s=5.0, ")
    assert "resume_median_s=43.2" in text and "0x" not in text


def test_every_assumption_has_an_allowed_range_that_holds_its_default():
    names = [f.name for f in dataclasses.fields(ModelAssumptions)]
    assert sorted(ALLOWED) == sorted(names), "ALLOWED and the fields disagree"
    for name, default, _ in ModelAssumptions.describe():
        low, high, unit = ALLOWED[name]
        assert low <= default <= high and unit, f"{name}: default {default} outside {low}..{high}"
        with pytest.raises(ValueError, match=re.escape(f"{name}=")):
            ModelAssumptions(**{name: high * 2 + 1})
