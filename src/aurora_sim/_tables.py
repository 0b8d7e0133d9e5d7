"""A DataFrame that a notebook shows whole: every row, and the full text of every cell.

pandas cuts a cell after 50 characters and hides the middle rows of a table longer than 60 when a notebook shows
it. Reference tables (facts and their sources, model assumptions) and event logs hold long texts a learner must
read whole (error messages, event messages, where a fact comes from), so the package returns them as
``WholeTable``: an ordinary DataFrame whose display leaves nothing out.

Example:
    >>> table = WholeTable({"message": ["x" * 80]})
    >>> "x" * 80 in table._repr_html_()
    True
"""

from __future__ import annotations

import re

import pandas as pd

_SHOW_EVERYTHING = ("display.max_colwidth", None, "display.max_rows", None, "display.max_columns", None)


class WholeTable(pd.DataFrame):
    """A DataFrame displayed without cut cells or hidden rows (its slices and copies stay WholeTables)."""

    @property
    def _constructor(self) -> type[WholeTable]:
        return WholeTable

    def _repr_html_(self) -> str | None:
        with pd.option_context(*_SHOW_EVERYTHING):
            return super()._repr_html_()

    def __repr__(self) -> str:
        with pd.option_context(*_SHOW_EVERYTHING):
            return super().__repr__()


_FIELD = re.compile(r"\{(\w+)[^{}]*\}")


def as_template(text: str) -> str:
    """``text`` with each ``{field}`` written ``<field>``, as the User Guide prints what a message fills in.

    Example:
        >>> as_template("after {seconds:.2f} sec, for this reason: {reason}")
        'after <seconds> sec, for this reason: <reason>'
    """
    return _FIELD.sub(r"<\1>", text)
