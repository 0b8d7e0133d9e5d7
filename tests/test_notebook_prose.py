"""The text layer: prose lives in markdown cells, facts stated there cannot drift from `aurora_sim.facts`, code cells
stay short, `$` never turns into math, and a hint shows in a cell of its own after the check.

A markdown cell that states a documented number names it in its metadata, text → expression:

    {"facts": {"about 2 GB": "GB_PER_ACU", "15 minutes": "SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S // 60"}}

The expression is evaluated over `aurora_sim.facts` (plus `assume`, the default `ModelAssumptions`, and the modules
`scenarios`, `checks` and `clients`); the text must occur in the cell, and the value, formatted, must occur in the
text as a whole number or phrase. Change a fact and every sentence that states it fails here until it is rewritten.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from aurora_sim import checks, clients, facts, scenarios
from aurora_sim.config import ModelAssumptions
from notebook_text import NOTEBOOKS, load, markdown_cells, math_pairs, prose, source

MAX_CODE_LINES = 15
_NAMESPACE = {**{k: v for k, v in vars(facts).items() if not k.startswith("_")}, "assume": ModelAssumptions(),
              "scenarios": scenarios, "checks": checks, "clients": clients}
# Calls that would build Markdown or HTML for display out of strings in a code cell.
_BUILDS_TEXT = re.compile(r"\b(Markdown|HTML|display_markdown|display_html|Latex)\s*\(")
ids = [p.name for p in NOTEBOOKS]


def formatted(value: object) -> set[str]:
    """The ways prose may write ``value``: 1,000 or 1000; 0.06; 1, 2, 4 for a sequence; a string as it is.

    Example:
        >>> sorted(formatted(86400))
        ['86,400', '86400', '86\u202f400']
        >>> sorted(formatted((2, 4)))
        ['2, 4', '2–4']
    """
    if isinstance(value, str):
        return {value}
    if isinstance(value, bool):
        raise TypeError(f"a fact in prose must be a number, a string or a sequence, not {value!r}")
    if isinstance(value, tuple | list):
        parts = [sorted(formatted(item))[0] for item in value]
        return {", ".join(parts), "–".join(parts)} if len(parts) == 2 else {", ".join(parts)}
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return {str(value), f"{value:,}", f"{value:,}".replace(",", "\u202f")}
    if isinstance(value, float):
        return {f"{value:g}", f"{value:,g}", f"{value:.2f}", f"{value:.1f}"} - {""}
    raise TypeError(f"a fact in prose must be a number, a string or a sequence, not {type(value).__name__}")


def _occurs(needle: str, text: str) -> bool:
    """``needle`` in ``text`` as a whole: not part of a longer number or word."""
    return re.search(rf"(?<![\w.,]){re.escape(needle)}(?![\w]|[.,]\d)", text) is not None


def _flat(text: str) -> str:
    return " ".join(text.split())


def declared_facts(path: Path) -> list[tuple[int, str, str]]:
    return [(index, text, expression) for index, cell in markdown_cells(path)
            for text, expression in cell.get("metadata", {}).get("facts", {}).items()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_stated_facts_match_the_package(path: Path) -> None:
    cells = load(path)["cells"]
    problems = []
    for index, text, expression in declared_facts(path):
        if _flat(text) not in _flat(source(cells[index])):
            problems.append(f"cell {index}: declares {text!r}, which its text does not contain")
            continue
        try:
            value = eval(expression, {"__builtins__": {}}, _NAMESPACE)
        except Exception as error:
            problems.append(f"cell {index}: {expression!r} does not evaluate: {error!r}")
            continue
        if not any(_occurs(form, _flat(text)) for form in formatted(value)):
            problems.append(f"cell {index}: {text!r} should state {expression} = {sorted(formatted(value))[0]!r}")
    assert not problems, f"notebooks/{path.name}: prose disagrees with aurora_sim:\n" + "\n".join(problems)


def test_the_drift_check_bites() -> None:
    """A sentence whose number differs from the fact, or that lacks it, is caught; the right one passes."""
    assert not any(_occurs(f, "about 3 GB of memory") for f in formatted(facts.GB_PER_ACU))
    assert not any(_occurs(f, "about 20 GB of memory") for f in formatted(facts.GB_PER_ACU))
    assert any(_occurs(f, "about 2 GB of memory") for f in formatted(facts.GB_PER_ACU))
    assert any(_occurs(f, "for 15 minutes.") for f in formatted(facts.SCALE_DOWN_COOLDOWN_AFTER_SCALE_UP_S // 60))
    assert not any(_occurs(f, "0.75 s") for f in formatted(0.0145))


def test_every_notebook_declares_the_facts_it_states() -> None:
    """The mechanism is in use: every notebook's prose states some documented facts and declares them."""
    bare = [p.name for p in NOTEBOOKS if not declared_facts(p)]
    assert not bare, f"notebooks with no declared facts in their markdown metadata: {bare}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_prose_is_in_markdown_cells(path: Path) -> None:
    """No code cell builds Markdown or HTML from strings; none is over 15 lines; no placeholder in the prose."""
    problems = []
    for index, cell in enumerate(load(path)["cells"]):
        text = source(cell)
        if cell.get("cell_type") == "code":
            if _BUILDS_TEXT.search(text):
                problems.append(f"cell {index} builds text for display ({_BUILDS_TEXT.search(text).group(0)}…): "
                                "write the sentences in a markdown cell")
            lines = len(text.strip().splitlines())
            if lines > MAX_CODE_LINES:
                problems.append(f"cell {index} has {lines} lines (at most {MAX_CODE_LINES})")
        elif cell.get("cell_type") == "markdown" and re.search(r"[{}]", prose(text)):
            problems.append(f"cell {index}: a {{…}} placeholder in prose: {_flat(prose(text))[:80]!r}")
    assert not problems, f"notebooks/{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_no_dollar_math_in_markdown(path: Path) -> None:
    """`$…$` is LaTeX in JupyterLab: amounts are written USD 0.06 (or escaped as \\$)."""
    found = [f"cell {index}: {pair!r}" for index, cell in markdown_cells(path) for pair in math_pairs(source(cell))]
    assert not found, f"notebooks/{path.name}: unescaped $…$ pairs:\n" + "\n".join(found)


def test_math_pairs_finds_amounts_but_not_code() -> None:
    assert math_pairs("costs $1.92 instead of $0.90")
    assert not math_pairs("costs USD 1.92 instead of \\$0.90 and `$1 $2` in code")
    assert not math_pairs("one $ here\n\nand one $ there")


def _calls(text: str, method: str) -> bool:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method
               for node in ast.walk(tree))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_hints_follow_the_check_in_their_own_cell(path: Path) -> None:
    """A hint uncommented above `check()` in the same cell printed nothing; so hints live below, alone."""
    cells = [(i, source(c)) for i, c in enumerate(load(path)["cells"]) if c.get("cell_type") == "code"]
    checks_at = [i for i, text in cells if _calls(text, "check")]
    assert checks_at, f"notebooks/{path.name}: no cell calls a checker's .check(...)"
    for index, text in cells:
        uncommented = "\n".join(line.lstrip("# ") if ".hint(" in line else line for line in text.splitlines())
        if ".hint(" not in text:
            continue
        assert not _calls(text, "check"), f"notebooks/{path.name}: cell {index} mixes check() and hint()"
        assert any(i < index for i in checks_at), f"notebooks/{path.name}: hint cell {index} comes before the check"
        tree = ast.parse(uncommented)
        last = tree.body[-1] if tree.body else None
        assert isinstance(last, ast.Expr), (
            f"notebooks/{path.name}: cell {index}: once uncommented, a hint must be the cell's last expression "
            "so that it shows")
