"""Reading the text of notebooks: markdown without its code, `$` pairs that JupyterLab would typeset as math,
and the facts a markdown cell declares in its metadata. Shared by the prose test and the site test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

_FENCED = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def prose(markdown: str) -> str:
    """``markdown`` without fenced code blocks, inline code spans and HTML tags: the words a reader sees as text."""
    return _HTML_TAG.sub(" ", _INLINE_CODE.sub(" ", _FENCED.sub("\n", markdown)))


def math_pairs(markdown: str) -> list[str]:
    """Paragraphs in which two unescaped ``$`` would start and end inline math (JupyterLab, MathJax in myst)."""
    found = []
    for paragraph in re.split(r"\n\s*\n", prose(markdown)):
        if len(_UNESCAPED_DOLLAR.findall(paragraph)) >= 2:
            found.append(" ".join(paragraph.split())[:120])
    return found


def markdown_cells(path: Path) -> Iterator[tuple[int, dict]]:
    for index, cell in enumerate(load(path)["cells"]):
        if cell.get("cell_type") == "markdown":
            yield index, cell


def markdown_outputs(notebook: dict) -> Iterator[tuple[int, str]]:
    """Every ``text/markdown`` output of an executed notebook, with its cell index."""
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown")
            if text is not None:
                yield index, "".join(text) if isinstance(text, list) else text
