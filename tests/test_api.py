"""The public API of DESIGN §4 is exported from ``aurora_sim`` under a sorted ``__all__``."""

from __future__ import annotations

import pytest

import aurora_sim

DESIGN_NAMES = [
    "ClusterConfig",
    "ModelAssumptions",
    "Workload",
    "LongTransaction",
    "LongQuery",
    "TemporaryTable",
    "TableLock",
    "simulate",
]


@pytest.mark.parametrize("name", DESIGN_NAMES)
def test_design_name_is_exported(name):
    assert hasattr(aurora_sim, name), f"aurora_sim does not export {name}"
    assert name in aurora_sim.__all__, f"{name} is missing from aurora_sim.__all__"


def test_all_is_sorted():
    assert aurora_sim.__all__ == sorted(aurora_sim.__all__)


def test_all_names_exist_and_are_unique():
    assert len(set(aurora_sim.__all__)) == len(aurora_sim.__all__)
    for name in aurora_sim.__all__:
        assert hasattr(aurora_sim, name), f"__all__ names {name}, which aurora_sim does not define"


def test_version():
    assert isinstance(aurora_sim.__version__, str) and aurora_sim.__version__
