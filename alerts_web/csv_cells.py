"""Spreadsheet-safe CSV cells (formula injection, OWASP "CSV Injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel, LibreOffice and Sheets when the file is opened. Ward names come from
the EHR's ``Location.display`` and identifiers from the Bundle, so any cell may be
hostile: every cell of an export goes through :func:`escape_cell`. Numbers (a negative
contribution, ``-0.12``) are left as they are: they cannot be formulas and must stay
numbers in the spreadsheet.

A trigger right after a field separator inside the cell (``semi;=1+1``) is a formula
too where the spreadsheet splits on that separator (Excel in a semicolon locale reads
our comma file by ``;``, a paste splits on tabs and newlines). Quoting the cell does
not help there: the quote is not at a field boundary of *that* split, so the raw text
after the ``;`` is what the spreadsheet sees. So the apostrophe goes before every
trigger that starts a field under any of these splits: at the start of the cell and
after each separator (double quotes in between included, since a quoted field starting
with ``=`` is still a formula).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# What some spreadsheet splits a line into fields on: the start of a field in any of them
FIELD_SEPARATORS = (",", ";", "\t", "\r", "\n")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FIELD_START_FORMULA = re.compile(
    "(?:^|(?<=[" + re.escape("".join(FIELD_SEPARATORS)) + "]))"
    '(?="*[' + re.escape("".join(FORMULA_TRIGGERS)) + "])"
)


def escape_cell(value: Any) -> Any:
    """The cell with an apostrophe before each formula a spreadsheet could evaluate:
    at the start and after any field separator (see the module docstring)."""
    if not isinstance(value, str) or _NUMBER.match(value):
        return value
    return _FIELD_START_FORMULA.sub("'", value)


class _Writer(Protocol):
    def writerow(self, row: Iterable[Any], /) -> Any: ...


class FormulaSafeWriter:
    """``csv.writer`` whose every cell is escaped: call sites cannot forget one."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self._writer: _Writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([escape_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
