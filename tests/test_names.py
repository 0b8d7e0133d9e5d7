"""The run's vocabulary is listed once (names.py): every event kind a module emits is one of names.EVENT_KINDS, and
every kind and state has its style in the plots, so event_log, event_kinds and the timeline know them all."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from aurora_sim import names, report
from aurora_sim.plots._style import EVENT_STYLE, STATE_STYLE

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aurora_sim"
# ``_emit(kind, …)`` calls whose kind is a variable, and the kinds it can hold (read at the site named).
DYNAMIC_KINDS = {("cluster.py", "kind"): (names.TRANSACTION_ABORTED, names.CONNECTION_CLOSED)}  # _blocker_lifetime


def _emitted() -> list[tuple[str, str, object]]:
    """(module file, the kind argument's source, its value or None) of every ``_emit(...)`` call in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == "_emit" and node.args]
        if not calls:
            continue
        module = importlib.import_module("aurora_sim." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for call in calls:
            argument = call.args[0]
            if isinstance(argument, ast.Constant):
                found.append((path.name, repr(argument.value), argument.value))
            elif isinstance(argument, ast.Name) and argument.id.isupper():
                found.append((path.name, argument.id, getattr(module, argument.id)))
            else:
                found.append((path.name, ast.unparse(argument), None))
    return found


def test_every_emitted_event_kind_is_in_event_kinds() -> None:
    emitted = _emitted()
    assert {file for file, _, _ in emitted} >= {"cluster.py", "faults.py", "maintenance.py", "tracked.py"}
    unknown = [(file, source, value) for file, source, value in emitted
               if value is not None and value not in names.EVENT_KINDS]
    assert not unknown, f"emitted but not in names.EVENT_KINDS: {unknown}"
    dynamic = {(file, source) for file, source, value in emitted if value is None}
    assert dynamic <= set(DYNAMIC_KINDS), f"_emit with a kind this test cannot read: {dynamic - set(DYNAMIC_KINDS)}"
    assert all(kind in names.EVENT_KINDS for kinds in DYNAMIC_KINDS.values() for kind in kinds)


def test_the_modules_use_the_names_of_names_py() -> None:
    from aurora_sim import faults, maintenance

    assert (faults.INSTANCE_FAILED, faults.FAILING_OVER) == (names.INSTANCE_FAILED, names.FAILING_OVER)
    assert (maintenance.MAINTENANCE_PENDING, maintenance.MAINTENANCE_APPLIED) == (
        names.MAINTENANCE_PENDING, names.MAINTENANCE_APPLIED)


@pytest.mark.parametrize("kind", names.EVENT_KINDS)
def test_every_event_kind_has_a_style_and_a_row_in_event_kinds(kind: str) -> None:
    colour, symbol, legend = EVENT_STYLE[kind]
    assert colour and symbol and legend
    assert kind in report.event_kinds().index


def test_every_state_but_active_has_a_band_style() -> None:
    assert set(STATE_STYLE) == set(names.STATES) - {names.ACTIVE}


def test_event_log_accepts_the_fault_and_maintenance_kinds() -> None:
    from aurora_sim.scenarios import shop_failover

    kinds = [names.INSTANCE_FAILED, names.FAILOVER_STARTED, names.ENDPOINT_MOVED, names.FAILOVER_COMPLETED,
             names.MAINTENANCE_PENDING, names.MAINTENANCE_APPLIED]
    log = report.event_log(shop_failover().run(), kinds=kinds)
    assert log["kind"].tolist() == kinds[:4]
