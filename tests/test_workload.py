"""Unit tests of ``aurora_sim.workload``: Workload and the blocking operations are validated, frozen, hashable."""

from __future__ import annotations

import dataclasses
import re

import pytest

from aurora_sim import IdleConnection, LongQuery, LongTransaction, TableLock, TemporaryTable, Workload

OPERATIONS = [LongTransaction, LongQuery, TemporaryTable, TableLock, IdleConnection]


def test_workload_valid_construction():
    wl = Workload(
        segments=[(0, 600, 5.0), (600, 1800, 120.0)],
        arrivals="regular",
        query_cpu_s=0.05,
        blocking=[LongTransaction(start_s=700, duration_s=900), IdleConnection(start_s=0, duration_s=10)],
    )
    assert wl.segments == ((0, 600, 5.0), (600, 1800, 120.0))
    assert isinstance(wl.segments, tuple) and isinstance(wl.blocking, tuple)
    assert (wl.arrivals, wl.query_cpu_s) == ("regular", 0.05)
    assert wl.expected_requests == 600 * 5.0 + 1200 * 120.0
    assert wl.end_s == 1800
    assert (wl.rate_at(0), wl.rate_at(599.9), wl.rate_at(600), wl.rate_at(1800)) == (5.0, 5.0, 120.0, 0.0)


def test_workload_defaults():
    wl = Workload(segments=[(0, 60, 1.0)])
    assert (wl.arrivals, wl.query_cpu_s, wl.blocking) == ("poisson", 0.02, ())


def test_segments_given_as_lists_become_tuples():
    wl = Workload(segments=[[0, 60, 1.0]])
    assert wl.segments == ((0, 60, 1.0),)
    hash(wl)


def test_segments_may_leave_gaps():
    wl = Workload(segments=[(0, 10, 1.0), (100, 110, 2.0)])
    assert wl.rate_at(50) == 0.0


@pytest.mark.parametrize("kind", OPERATIONS)
def test_blocking_operation_valid_construction(kind):
    op = kind(start_s=10, duration_s=90.5)
    assert (op.start_s, op.duration_s, op.end_s) == (10, 90.5, 100.5)


def test_which_operations_block_scaling_points():
    assert [kind.blocks_scaling for kind in OPERATIONS] == [True, True, True, True, False]


def test_what_forced_scaling_does_to_each_operation():
    assert [kind.on_force for kind in OPERATIONS] == ["abort", "abort", "drop", "drop", "keep"]


def test_only_a_long_query_uses_cpu():
    assert [kind.uses_cpu for kind in OPERATIONS] == [False, True, False, False, False]


@pytest.mark.parametrize(
    "obj",
    [Workload(segments=[(0, 60, 1.0)]), *(k(start_s=0, duration_s=1) for k in OPERATIONS)],
    ids=["Workload", *(k.__name__ for k in OPERATIONS)],
)
def test_frozen(obj):
    name = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, getattr(obj, name))


def test_hashable_and_equal_by_value():
    a = Workload(segments=[(0, 60, 1.0)], blocking=[TableLock(start_s=1, duration_s=2)])
    b = Workload(segments=((0, 60, 1.0),), blocking=(TableLock(start_s=1, duration_s=2),))
    assert a == b and hash(a) == hash(b)
    assert LongQuery(start_s=1, duration_s=2) != LongTransaction(start_s=1, duration_s=2)


def test_replace_revalidates():
    wl = Workload(segments=[(0, 60, 1.0)])
    assert dataclasses.replace(wl, query_cpu_s=0.5).query_cpu_s == 0.5
    with pytest.raises(ValueError, match=re.escape("query_cpu_s=0 must be > 0")):
        dataclasses.replace(wl, query_cpu_s=0)
    with pytest.raises(ValueError, match=re.escape("duration_s=-1 must be > 0")):
        dataclasses.replace(LongTransaction(start_s=0, duration_s=1), duration_s=-1)


@pytest.mark.parametrize("cls", [Workload, *OPERATIONS])
def test_unknown_keyword_is_a_type_error(cls):
    with pytest.raises(TypeError, match="unexpected keyword argument 'rate'"):
        cls(segments=[(0, 1, 1.0)], rate=1) if cls is Workload else cls(start_s=0, duration_s=1, rate=1)


BAD_WORKLOADS = [
    ("segments", {"segments": [(-1, 5, 1.0)]}, "segments[0].start_s=-1 must be >= 0"),
    ("segments", {"segments": [(0, 5, -1.0)]}, "segments[0].requests_per_second=-1.0 must be >= 0"),
    ("segments", {"segments": [(5, 5, 1.0)]}, "segments[0]=(5, 5, 1.0) must have start_s < end_s"),
    ("segments", {"segments": [(0, 60, 1.0), (10, 5, 1.0)]}, "segments[1]=(10, 5, 1.0) must have start_s < end_s"),
    (
        "segments",
        {"segments": [(0, 10, 1.0), (5, 20, 1.0)]},
        "segments[1]=(5, 20, 1.0) starts before the previous segment ends at 10",
    ),
    (
        "segments",
        {"segments": []},
        "segments=() is empty: give at least one (start_s, end_s, requests_per_second), "
        "e.g. (0, 3600, 0.0) for an idle hour",
    ),
    ("segments", {"segments": [(0, 5)]}, "segments[0]=(0, 5) must be a (start_s, end_s, requests_per_second) triple"),
    (
        "arrivals",
        {"segments": [(0, 5, 1.0)], "arrivals": "burst"},
        "arrivals='burst' must be one of ('poisson', 'regular')",
    ),
    ("query_cpu_s", {"segments": [(0, 5, 1.0)], "query_cpu_s": 0}, "query_cpu_s=0 must be > 0"),
    ("query_cpu_s", {"segments": [(0, 5, 1.0)], "query_cpu_s": -0.1}, "query_cpu_s=-0.1 must be > 0"),
    (
        "blocking",
        {"segments": [(0, 5, 1.0)], "blocking": ["BEGIN"]},
        "blocking[0]='BEGIN' must be one of LongTransaction, LongQuery, TemporaryTable, TableLock, AdvisoryLock, "
        "Listen, Notify, HoldCursor, IdleConnection",
    ),
]


@pytest.mark.parametrize(
    ("parameter", "kwargs", "message"), BAD_WORKLOADS, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BAD_WORKLOADS)]
)
def test_workload_rejects(parameter, kwargs, message):
    assert message.startswith(parameter)
    with pytest.raises(ValueError, match=re.escape(message)):
        Workload(**kwargs)


def test_workload_rejects_a_single_operation_instead_of_a_list():
    op = LongQuery(start_s=0, duration_s=1)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "blocking=LongQuery(start_s=0, duration_s=1, internal_temp_table=True) must be a list of blocking "
            "operations, not LongQuery"
        ),
    ):
        Workload(segments=[(0, 5, 1.0)], blocking=op)


BAD_OPERATIONS = [
    (LongTransaction, {"start_s": 0, "duration_s": -5}, "duration_s=-5 must be > 0"),
    (LongQuery, {"start_s": -1, "duration_s": 5}, "start_s=-1 must be >= 0"),
    (TemporaryTable, {"start_s": 0, "duration_s": float("inf")}, "duration_s=inf must be a finite number"),
    (TableLock, {"start_s": 0, "duration_s": 0}, "duration_s=0 must be > 0"),
    (IdleConnection, {"start_s": 5, "duration_s": -0.5}, "duration_s=-0.5 must be > 0"),
]


@pytest.mark.parametrize(("cls", "kwargs", "message"), BAD_OPERATIONS, ids=[c.__name__ for c, _, _ in BAD_OPERATIONS])
def test_blocking_operation_rejects(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**kwargs)


def test_blocking_operation_rejects_a_string_start():
    with pytest.raises(TypeError, match=re.escape("start_s='a' must be a number, not str")):
        LongTransaction(start_s="a", duration_s=1)


def test_workload_repr():
    wl = Workload(segments=[(0, 5, 1.0)], blocking=[LongQuery(start_s=0, duration_s=1)])
    assert repr(wl) == (
        "Workload(segments=((0, 5, 1.0),), arrivals='poisson', query_cpu_s=0.02, "
        "blocking=(LongQuery(start_s=0, duration_s=1, internal_temp_table=True),), connections=None, retry=None)"
    )


@pytest.mark.parametrize("kind", OPERATIONS)
def test_blocking_operation_repr(kind):
    extra = ", internal_temp_table=True" if kind is LongQuery else ""
    assert repr(kind(start_s=1, duration_s=2)) == f"{kind.__name__}(start_s=1, duration_s=2{extra})"
