"""Keeps a notebook's first figure fast by skipping a grammar compile that a workbook kernel never uses.

plotly's widget module imports nbformat, which imports jsonschema, which — when the optional package
rfc3987-syntax is installed (JupyterLab's jupyter-events pulls it in) — compiles 39 lark grammars to check
the "iri" string format: 2 to 7 s in a kernel before the first FigureWidget appears (measured here). No
workbook code validates IRIs, so the module is marked absent and jsonschema skips that one format check,
exactly as it does wherever the package is not installed. ``AURORA_SIM_KEEP_IRI_CHECKS=1`` keeps it.

Example:
    >>> skip_unused_grammar_compile()  # a no-op once jsonschema is imported
"""

from __future__ import annotations

import os
import sys


def skip_unused_grammar_compile() -> None:
    """Mark rfc3987_syntax absent unless jsonschema is already loaded or the user asked to keep it."""
    if os.environ.get("AURORA_SIM_KEEP_IRI_CHECKS") or "jsonschema" in sys.modules:
        return
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


skip_unused_grammar_compile()
