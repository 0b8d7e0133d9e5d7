"""Every notebook follows the DESIGN §5 skeleton and is stored clean (no outputs, no widget state)."""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
REQUIRED = ("00_start_here.ipynb", "02_minimum_capacity.ipynb", "03_pause_and_resume.ipynb")

# The §5 skeleton, in order: (name used in messages, pattern the heading text must start with).
SECTIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("Learning objectives", r"learning objectives\b"),
        ("Set-up", r"set[- ]?up\b"),
        ("Concept", r"concepts?\b"),
        ("Predict", r"predict"),
        ("Interactive demo", r"interactive demo\b"),
        ("Exercise", r"exercises?\b"),
        ("Check", r"check\b"),
        ("Key points", r"key points\b"),
        ("What's next", r"what's next\b"),
    )
)
_EXERCISE = SECTIONS[5][1]
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^ {0,1}(?:[-*+]|\d+[.)])\s+(.*)$")
# "(10 min)", "(~10 min)", "(5–10 minutes)"
_MINUTES = re.compile(r"\(\s*~?\s*\d+(?:\s*[-–]\s*\d+)?\s*min(?:ute)?s?\.?\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class Heading:
    cell: int
    line: int
    level: int
    text: str  # leading numbering, emoji and emphasis removed


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _headings(cells: list[dict]) -> list[Heading]:
    """Markdown headings in document order, skipping fenced code blocks."""
    found = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        fenced = False
        for number, line in enumerate(_source(cell).splitlines()):
            if _FENCE.match(line):
                fenced = not fenced
                continue
            match = None if fenced else _HEADING.match(line)
            if match:
                text = re.sub(r"^[^A-Za-z]+", "", match.group(2)).replace("’", "'")
                found.append(Heading(index, number, len(match.group(1)), text))
    return found


def _skeleton(name: str, cells: list[dict]) -> dict[str, Heading]:
    """Match the §5 sections in order; fail naming the first one missing or out of place."""
    headings = _headings(cells)
    assert headings, f"{name}: no markdown headings at all"
    assert headings[0].level == 1, (
        f"{name}: the first heading (cell {headings[0].cell}: {headings[0].text!r}) must be the `# ` title"
    )
    matched: dict[str, Heading] = {}
    position = 1
    for section, pattern in SECTIONS:
        for k in range(position, len(headings)):
            h = headings[k]
            if h.level in (2, 3) and pattern.match(h.text):
                matched[section] = h
                position = k + 1
                break
        else:
            after = f" after {list(matched)[-1]!r}" if matched else ""
            present = [h.text for h in headings[1:] if h.level in (2, 3)]
            raise AssertionError(
                f"{name}: no ## or ### heading starting with {section!r}{after}; "
                f"the §5 order is {[s for s, _ in SECTIONS]}, headings found: {present}"
            )
    return matched


def _section_of(cell: int, skeleton: dict[str, Heading]) -> str | None:
    """The §5 section a cell sits in (the last matched heading at or before it)."""
    current = None
    for section, heading in skeleton.items():
        if heading.cell <= cell:
            current = section
    return current


def _markdown_lines_between(cells: list[dict], start: Heading, end: Heading) -> list[str]:
    """Markdown lines after `start` and before `end` (a section may share a cell with its neighbours)."""
    lines = []
    for index in range(start.cell, end.cell + 1):
        if cells[index].get("cell_type") != "markdown":
            continue
        for number, line in enumerate(_source(cells[index]).splitlines()):
            if (start.cell, start.line) < (index, number) < (end.cell, end.line):
                lines.append(line)
    return lines


def _cells_in(section: str, cells: list[dict], skeleton: dict[str, Heading]) -> list[int]:
    return [i for i in range(len(cells)) if _section_of(i, skeleton) == section]


def _defines_function(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics; fall back to the text
        return re.search(r"^\s*(async\s+)?def\s", source, re.MULTILINE) is not None
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def _non_import(source: str) -> str | None:
    """The first line that is not an import statement, or None when the cell holds only imports."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return f"line {error.lineno} does not parse as Python"
    if not tree.body:
        return "the cell is empty"
    for node in tree.body:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            return f"line {node.lineno}: {source.splitlines()[node.lineno - 1].strip()[:60]!r}"
    return None


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return repr(lines[0][:60]) if lines else "(empty)"


def test_required_notebooks_exist() -> None:
    missing = [n for n in REQUIRED if not (NOTEBOOK_DIR / n).is_file()]
    assert not missing, f"missing from notebooks/: {', '.join(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_clean(path: Path) -> None:
    """Outputs stripped, no execution counts, kernelspec python3, no saved widget state."""
    nb = _load(path)
    name = f"notebooks/{path.name}"
    dirty = [
        f"cell {i} ({len(c.get('outputs', []))} outputs, execution_count={c.get('execution_count')})"
        for i, c in enumerate(nb["cells"])
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{name}: strip outputs and execution counts: {', '.join(dirty)}"
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{name}: kernelspec name is {kernel!r}, must be 'python3'"
    assert "widgets" not in nb.get("metadata", {}), (
        f"{name}: notebook metadata holds saved widget state ('widgets'); save without widget state"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_valid_nbformat_with_cell_ids(path: Path) -> None:
    """nbformat 4.5 validates it and every cell has an id (future nbformat versions make a missing id an error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbformat.validate(nbformat.read(path, as_version=4))
    missing = [i for i, cell in enumerate(_load(path)["cells"]) if not cell.get("id")]
    assert not missing, f"notebooks/{path.name}: cells without an id: {missing} (run nbformat's normalize)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_skeleton(path: Path) -> None:
    """Title, then the §5 sections in order; objectives 2–4 with minutes; one import-only set-up cell."""
    cells = _load(path)["cells"]
    name = f"notebooks/{path.name}"
    skeleton = _skeleton(name, cells)

    objectives = [
        match.group(1)
        for line in _markdown_lines_between(cells, skeleton["Learning objectives"], skeleton["Set-up"])
        if (match := _BULLET.match(line))
    ]
    assert 2 <= len(objectives) <= 4, (
        f"{name}: 'Learning objectives' needs 2–4 bullet items, found {len(objectives)}: {objectives}"
    )
    untimed = [o for o in objectives if not _MINUTES.search(o)]
    assert not untimed, f"{name}: learning objectives without minutes such as '(10 min)': {untimed}"

    setup = [i for i in _cells_in("Set-up", cells, skeleton) if cells[i].get("cell_type") == "code"]
    assert len(setup) == 1, f"{name}: 'Set-up' must hold exactly one code cell, found cells {setup}"
    problem = _non_import(_source(cells[setup[0]]))
    assert problem is None, f"{name}: cell {setup[0]} (the Set-up cell) must contain only import statements; {problem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_functions_outside_exercises(path: Path) -> None:
    """Logic lives in aurora_sim; only a learner's exercise may define a function."""
    cells = _load(path)["cells"]
    name = f"notebooks/{path.name}"
    skeleton = _skeleton(name, cells)
    headings = _headings(cells)
    offenders = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or not _defines_function(_source(cell)):
            continue
        # Under the Exercise section, or under any heading of its own that starts with "Exercise"
        # (bonus exercises after the main flow).
        nearest = [h for h in headings if h.cell <= i]
        in_exercise = _section_of(i, skeleton) == "Exercise" or (
            nearest and _EXERCISE.match(nearest[-1].text) is not None
        )
        if not in_exercise:
            offenders.append(f"cell {i} (under {_section_of(i, skeleton)!r}, starts {_first_line(_source(cell))})")
    assert not offenders, f"{name}: `def` outside an Exercise section: {'; '.join(offenders)}"
