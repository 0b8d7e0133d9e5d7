"""Unit tests of ``aurora_sim.facts``: every documented number, text and id, and the ladder helpers."""

from __future__ import annotations

import re

import pytest

from aurora_sim import facts

MYSQL_LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256)
POSTGRESQL_LADDER = (2, 4, 8, 16, 32, 64, 192, 384)


def test_capacity_ladders_match_the_fact_sheet():
    assert facts.CAPACITY_LADDER["aurora-mysql"] == MYSQL_LADDER
    assert facts.CAPACITY_LADDER["aurora-postgresql"] == POSTGRESQL_LADDER


def test_postgresql_ladder_has_no_128_or_256_rung():
    assert 128 not in facts.CAPACITY_LADDER["aurora-postgresql"]
    assert 256 not in facts.CAPACITY_LADDER["aurora-postgresql"]


def test_engines_and_versions():
    assert facts.ENGINES == ("aurora-mysql", "aurora-postgresql")
    assert facts.ENGINE_VERSIONS["aurora-mysql"] == ("5.6", "5.7")
    assert facts.ENGINE_VERSIONS["aurora-postgresql"] == ("10", "11", "13")
    for engine in facts.ENGINES:
        assert facts.DEFAULT_ENGINE_VERSION[engine] in facts.ENGINE_VERSIONS[engine]
    assert dict(facts.DEFAULT_ENGINE_VERSION) == {"aurora-mysql": "5.7", "aurora-postgresql": "13"}


def test_engine_version_releases_name_each_v1_release():
    assert dict(facts.ENGINE_VERSION_RELEASES["aurora-postgresql"]) == {"10": "10.21", "11": "11.16", "13": "13.9"}
    assert dict(facts.ENGINE_VERSION_RELEASES["aurora-mysql"]) == {
        "5.6": "5.6 (Aurora MySQL version 1)", "5.7": "5.7 (Aurora MySQL version 2)"}
    for engine in facts.ENGINES:
        assert tuple(facts.ENGINE_VERSION_RELEASES[engine]) == facts.ENGINE_VERSIONS[engine]
    for name in ("ENGINE_VERSIONS", "ENGINE_VERSION_RELEASES"):
        source = facts.SOURCES[name]
        assert source.label == "DOC" and "Feature.ServerlessV1" in source.origin, source


@pytest.mark.parametrize(("capacity_acu", "expected"), [(1, 90), (2, 180), (4, 270), (8, 1000), (256, 6000)])
def test_documented_mysql_max_connections(capacity_acu, expected):
    got = facts.max_connections("aurora-mysql", capacity_acu)
    assert got == expected, f"MySQL {capacity_acu} ACU: documented max_connections {expected}, got {got}"


@pytest.mark.parametrize(("capacity_acu", "expected"), [(16, 2000), (32, 3000), (64, 4000), (128, 5000)])
def test_inferred_mysql_max_connections(capacity_acu, expected):
    assert facts.max_connections("aurora-mysql", capacity_acu) == expected


@pytest.mark.parametrize("engine", ["aurora-mysql", "aurora-postgresql"])
def test_paused_max_connections_is_the_lowest_rungs_value(engine):
    lowest = facts.CAPACITY_LADDER[engine][0]
    assert facts.max_connections(engine, 0) == facts.max_connections(engine, lowest)


def test_mysql_paused_max_connections_is_90():
    assert facts.max_connections("aurora-mysql", 0) == 90


@pytest.mark.parametrize("engine", ["aurora-mysql", "aurora-postgresql"])
def test_max_connections_defined_on_every_rung_and_never_decreasing(engine):
    ladder = facts.CAPACITY_LADDER[engine]
    assert set(facts.MAX_CONNECTIONS[engine]) == set(ladder)
    values = [facts.max_connections(engine, c) for c in ladder]
    assert values == sorted(values), f"{engine} max_connections should not fall as capacity rises: {values}"
    assert max(values) <= 6000


@pytest.mark.parametrize("capacity_acu", [0, 1, 2, 4, 8, 256])
def test_documented_mysql_max_connections_are_labelled_doc(capacity_acu):
    assert facts.max_connections_label("aurora-mysql", capacity_acu) == "DOC"


@pytest.mark.parametrize(("engine", "capacity_acu"), [("aurora-mysql", acu) for acu in (16, 32, 64, 128)]
                         + [("aurora-postgresql", acu) for acu in (0, *POSTGRESQL_LADDER)])
def test_inferred_max_connections_are_labelled_inf(engine, capacity_acu):
    assert facts.max_connections_label(engine, capacity_acu) == "INF"


def test_max_connections_label_rejects_a_rung_that_does_not_exist():
    with pytest.raises(KeyError):
        facts.max_connections_label("aurora-postgresql", 128)


def test_max_connections_source_is_no_longer_a_blanket_doc():
    source = facts.SOURCES["MAX_CONNECTIONS"]
    assert source.label == "INF" and "max_connections_label" in source.origin and "DOC" in source.origin


def test_postgresql_max_connections_follow_the_provisioned_formula_capped_at_5000():
    for acu in POSTGRESQL_LADDER:
        expected = min(acu * 2 * 1024**3 // 9_531_392, 5000)
        assert facts.max_connections("aurora-postgresql", acu) == expected


def test_scaling_thresholds():
    assert facts.SCALE_UP_CPU_PCT == 70
    assert facts.SCALE_UP_CONNECTIONS_PCT == 90
    assert facts.SCALE_DOWN_CPU_PCT == 30
    assert facts.SCALE_DOWN_CONNECTIONS_PCT == 40


def test_scale_down_cooldowns():
    assert facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S == 900
    assert facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_DOWN_S == 310


def test_timeout_and_pause_ranges_and_defaults():
    assert facts.SECONDS_BEFORE_TIMEOUT_RANGE_S == (60, 600)
    assert facts.DEFAULT_SECONDS_BEFORE_TIMEOUT_S == 300
    assert facts.SECONDS_UNTIL_AUTO_PAUSE_RANGE_S == (300, 86_400)
    assert facts.DEFAULT_SECONDS_UNTIL_AUTO_PAUSE_S == 300
    assert facts.TIMEOUT_ACTIONS == ("RollbackCapacityChange", "ForceApplyCapacityChange")
    assert facts.DEFAULT_TIMEOUT_ACTION == "RollbackCapacityChange"
    assert facts.MAX_CONNECTION_AGE_S == 86_400


def test_measured_resume_times():
    assert dict(facts.MEASURED_RESUME_S) == {"median": 43.2, "p5": 30.7, "p95": 58.6, "min": 12.6, "max": 92.6}


def test_forced_scaling_error_mysql_56_verbatim():
    assert facts.FORCED_SCALING_ERROR[("aurora-mysql", "5.6")] == (
        "ERROR 1105 (HY000): The last transaction was aborted due to an unknown error. Please retry."
    )


def test_forced_scaling_error_mysql_57_verbatim():
    assert facts.FORCED_SCALING_ERROR[("aurora-mysql", "5.7")] == (
        "ERROR 1105 (HY000): The last transaction was aborted due to Seamless Scaling. Please retry."
    )


def test_forced_scaling_error_exists_for_every_engine_version():
    for engine in facts.ENGINES:
        for version in facts.ENGINE_VERSIONS[engine]:
            assert facts.FORCED_SCALING_ERROR[(engine, version)], f"no forced-scaling text for {engine} {version}"


def test_postgresql_forced_scaling_text_is_labelled_inferred():
    assert "INF" in facts.SOURCES["FORCED_SCALING_ERROR"].origin
    assert "PostgreSQL" in facts.SOURCES["FORCED_SCALING_ERROR"].origin


def test_too_many_connections_texts():
    assert facts.TOO_MANY_CONNECTIONS_ERROR["aurora-mysql"] == "ERROR 1040 (HY000): Too many connections"
    assert facts.TOO_MANY_CONNECTIONS_ERROR["aurora-postgresql"] == (
        "FATAL: remaining connection slots are reserved for non-replication superuser connections")
    assert facts.POSTGRESQL_TOO_MANY_CLIENTS_ERROR == "FATAL: sorry, too many clients already"
    assert facts.SUPERUSER_RESERVED_CONNECTIONS == 3
    assert facts.SOURCES["SUPERUSER_RESERVED_CONNECTIONS"].label == "DOC"
    assert "PostgreSQL manual" in facts.SOURCES["SUPERUSER_RESERVED_CONNECTIONS"].origin


@pytest.mark.parametrize("acu", POSTGRESQL_LADDER)
def test_an_application_on_postgresql_gets_three_slots_fewer_than_max_connections(acu):
    assert facts.connection_limit("aurora-postgresql", acu) == facts.max_connections("aurora-postgresql", acu) - 3


@pytest.mark.parametrize("acu", MYSQL_LADDER)
def test_an_application_on_mysql_gets_every_slot(acu):
    assert facts.connection_limit("aurora-mysql", acu) == facts.max_connections("aurora-mysql", acu)


def test_only_notify_is_documented_as_blocking_scaling_on_postgresql():
    assert facts.DOCUMENTED_POSTGRESQL_BLOCKERS == ("Notify",)
    assert set(facts.DOCUMENTED_POSTGRESQL_BLOCKERS) <= set(facts.POSTGRESQL_ONLY_BLOCKERS)
    assert facts.SOURCES["DOCUMENTED_POSTGRESQL_BLOCKERS"].label == "DOC"
    assert facts.SOURCES["POSTGRESQL_ONLY_BLOCKERS"].label == "INF"


def test_data_api_call_costs_are_the_measured_warm_median_and_first_call():
    assert facts.DATA_API_WARM_CALL_S == 0.0145
    assert facts.DATA_API_WARM_CALL_RANGE_S == (0.0108, 0.0265)
    low, high = facts.DATA_API_WARM_CALL_RANGE_S
    assert low < facts.DATA_API_WARM_CALL_S < high < facts.DATA_API_FIRST_CALL_S == 0.75
    for name in ("DATA_API_WARM_CALL_S", "DATA_API_WARM_CALL_RANGE_S", "DATA_API_FIRST_CALL_S"):
        source = facts.SOURCES[name]
        assert source.label == "3P" and "agostbiro/aurora-serverless-latencies" in source.origin, name
    assert "selects.csv" in facts.SOURCES["DATA_API_WARM_CALL_S"].origin
    assert "cold_starts.csv" in facts.SOURCES["DATA_API_FIRST_CALL_S"].origin


def test_seed_quotes_verbatim_with_their_source():
    assert facts.RESUME_SEED_QUOTE == (
        "Resuming the cluster takes a few seconds and in some cases can be longer based on variables such as your "
        "ACU, storage size, and more")
    assert facts.FORCED_SCALING_ROLLBACK_QUOTE == (
        "you must complete a proper rollback first, which can take significant time")
    for name in ("RESUME_SEED_QUOTE", "FORCED_SCALING_ROLLBACK_QUOTE"):
        assert facts.SOURCES[name] == facts.Source(
            "DOC", "AWS Database Blog, Best practices for working with Amazon Aurora Serverless (the seed)")


def test_forced_scaling_event_gives_its_reason():
    message = facts.RDS_EVENT_MESSAGES["scale_forced"].format(capacity_from=1, capacity_to=2, reason="a reason")
    assert message == ("The DB cluster has scaled from 1 capacity units to 2 capacity units, but scaling wasn't "
                       "seamless for this reason: a reason.")


def test_rds_event_ids_0141_to_0149():
    assert dict(facts.RDS_EVENT_IDS) == {
        "scale_started": "RDS-EVENT-0141",
        "scale_completed": "RDS-EVENT-0142",
        "scale_failed": "RDS-EVENT-0143",
        "pause_started": "RDS-EVENT-0144",
        "paused": "RDS-EVENT-0145",
        "pause_cancelled": "RDS-EVENT-0146",
        "resume_started": "RDS-EVENT-0147",
        "resumed": "RDS-EVENT-0148",
        "scale_forced": "RDS-EVENT-0149",
    }


def test_every_event_with_an_id_has_a_message_template():
    assert set(facts.RDS_EVENT_MESSAGES) == set(facts.RDS_EVENT_IDS)


def test_prices():
    assert facts.PRICE_PER_ACU_HOUR_USD == 0.06
    assert facts.PRICE_PER_ACU_HOUR_V2_USD == 0.12
    assert facts.MIN_BILLED_S_PER_ACTIVATION == 300


def _public_constants() -> list[str]:
    not_facts = {"SOURCES", "TYPE_CHECKING"}  # the table of sources itself, and typing's flag
    return [name for name in vars(facts) if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and name not in not_facts]


def test_every_constant_has_a_source():
    missing = sorted(set(_public_constants()) - set(facts.SOURCES))
    assert not missing, f"constants without a SOURCES entry: {missing}"


def test_every_source_names_an_existing_constant():
    unknown = sorted(set(facts.SOURCES) - set(_public_constants()))
    assert not unknown, f"SOURCES entries for no constant: {unknown}"


@pytest.mark.parametrize("name", sorted(facts.SOURCES))
def test_every_source_has_a_known_label_and_an_origin(name):
    source = facts.SOURCES[name]
    assert source.label in ("DOC", "API", "3P", "INF"), f"{name}: label {source.label!r}"
    assert source.origin.strip(), f"{name}: empty origin"


@pytest.mark.parametrize(
    ("engine", "capacity", "direction", "expected"),
    [
        ("aurora-mysql", 1, +1, 2),
        ("aurora-mysql", 2, +1, 4),
        ("aurora-mysql", 128, +1, 256),
        ("aurora-mysql", 256, +1, None),
        ("aurora-mysql", 256, -1, 128),
        ("aurora-mysql", 2, -1, 1),
        ("aurora-mysql", 1, -1, None),
        ("aurora-postgresql", 2, -1, None),
        ("aurora-postgresql", 2, +1, 4),
        ("aurora-postgresql", 64, +1, 192),
        ("aurora-postgresql", 192, +1, 384),
        ("aurora-postgresql", 192, -1, 64),
        ("aurora-postgresql", 384, +1, None),
        ("aurora-postgresql", 384, -1, 192),
    ],
)
def test_next_rung(engine, capacity, direction, expected):
    got = facts.next_rung(engine, capacity, direction)
    assert got == expected, f"next_rung({engine!r}, {capacity}, {direction:+d}): expected {expected}, got {got}"


@pytest.mark.parametrize("engine", ["aurora-mysql", "aurora-postgresql"])
def test_next_rung_up_then_down_returns(engine):
    ladder = facts.CAPACITY_LADDER[engine]
    for capacity in ladder[:-1]:
        assert facts.next_rung(engine, facts.next_rung(engine, capacity, +1), -1) == capacity


def test_facts_cannot_be_mutated():
    with pytest.raises(TypeError):
        facts.CAPACITY_LADDER["aurora-mysql"] = (1,)  # type: ignore[index]
    with pytest.raises(TypeError):
        facts.MAX_CONNECTIONS["aurora-mysql"][1] = 1  # type: ignore[index]
