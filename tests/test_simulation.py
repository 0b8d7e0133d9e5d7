"""Unit tests of ``aurora_sim.simulation``: simulate()'s validation, the Run object and its tables' shape."""

from __future__ import annotations

import re

import pytest

from aurora_sim import ClusterConfig, ModelAssumptions, Run, Workload, simulate

WL = Workload(segments=[(0, 60, 1.0)], arrivals="regular")

BAD_SIMULATE = [
    ("duration_s", {"duration_s": 0}, "duration_s=0 must be > 0"),
    ("duration_s", {"duration_s": -60}, "duration_s=-60 must be > 0"),
    ("duration_s", {"duration_s": float("inf")}, "duration_s=inf must be a finite number"),
    ("metrics_period_s", {"duration_s": 60, "metrics_period_s": -1}, "metrics_period_s=-1 must be > 0"),
    ("metrics_period_s", {"duration_s": 60, "metrics_period_s": 0}, "metrics_period_s=0 must be > 0"),
]


@pytest.mark.parametrize(
    ("parameter", "kwargs", "message"), BAD_SIMULATE, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BAD_SIMULATE)]
)
def test_simulate_rejects(parameter, kwargs, message):
    assert message.startswith(parameter)
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate(ClusterConfig(), WL, **kwargs)


BAD_SIMULATE_TYPES = [
    ({"config": "x"}, "config='x' must be a ClusterConfig, ServerlessV2Config or ProvisionedConfig, not str"),
    ({"workload": [(0, 60, 1.0)]}, "workload=[(0, 60, 1.0)] must be a Workload, not list"),
    ({"seed": 1.5}, "seed=1.5 must be an integer, not float"),
    ({"assumptions": 1}, "assumptions=1 must be a ModelAssumptions, not int"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_SIMULATE_TYPES, ids=[next(iter(k)) for k, _ in BAD_SIMULATE_TYPES])
def test_simulate_rejects_wrong_types(kwargs, message):
    arguments = {"config": ClusterConfig(), "workload": WL, "duration_s": 60} | kwargs
    config, workload = arguments.pop("config"), arguments.pop("workload")
    with pytest.raises(TypeError, match=re.escape(message)):
        simulate(config, workload, **arguments)


def test_simulate_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'seconds'"):
        simulate(ClusterConfig(), WL, duration_s=60, seconds=60)


def test_run_repr():
    run = simulate(ClusterConfig(), WL, duration_s=60, seed=2)
    assert isinstance(run, Run)
    assert repr(run) == "Run(seed=2, duration_s=60, metrics=1, events=0, requests=60)"


def test_run_keeps_its_inputs():
    cfg, a = ClusterConfig(min_capacity=2), ModelAssumptions(scale_apply_s=1)
    run = simulate(cfg, WL, duration_s=60, seed=3, metrics_period_s=30, assumptions=a)
    assert (run.config, run.workload, run.assumptions) == (cfg, WL, a)
    assert (run.seed, run.duration_s, run.metrics_period_s) == (3, 60, 30)


DESIGN_COLUMNS = {
    "metrics": [
        "time_s",
        "state",
        "capacity_acu",
        "cpu_pct",
        "connections",
        "max_connections",
        "requests_completed",
        "requests_failed",
        "p50_latency_ms",
        "p95_latency_ms",
    ],
    "events": ["seq", "time_s", "kind", "rds_event_id", "capacity_from", "capacity_to", "message"],
    "requests": ["request_id", "client_id", "submitted_s", "finished_s", "latency_s", "attempts", "outcome", "error"],
}


@pytest.mark.parametrize("table", sorted(DESIGN_COLUMNS))
def test_tables_have_the_design_columns(table):
    run = simulate(ClusterConfig(), WL, duration_s=600, seed=1)
    columns = [row[0] for row in run.sql(f"DESCRIBE {table}").fetchall()]
    missing = [c for c in DESIGN_COLUMNS[table] if c not in columns]
    assert not missing, f"{table} lacks {missing}; has {columns}"


def test_sql_accepts_parameters():
    run = simulate(ClusterConfig(), WL, duration_s=60, seed=1)
    assert run.sql("SELECT count(*) FROM requests WHERE submitted_s < ?", params=[30]).fetchall() == [(30,)]
