"""Spreadsheet-safe CSV cells (formula injection, OWASP "CSV Injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula by Excel, LibreOffice and Sheets when the file is opened. Ward names come from
the EHR's ``Location.display`` and identifiers from the Bundle, so any cell may be
hostile: every cell of an export goes through :func:`escape_cell`. Numbers (a negative
contribution, ``-0.12``) are left as they are: they cannot be formulas and must stay
numbers in the spreadsheet.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: Any) -> Any:
    """The cell with a leading apostrophe if a spreadsheet would evaluate it."""
    if not isinstance(value, str) or not value.startswith(FORMULA_TRIGGERS):
        return value
    if _NUMBER.match(value):
        return value
    return "'" + value


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
