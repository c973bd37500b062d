"""The patient risk hand-over as PDF (reportlab) and CSV, from the same data as the page.

Free text (notes, labels) enters the PDF through reportlab ``Paragraph`` markup, so it
is escaped there; the CSV neutralises spreadsheet formulas.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Final
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.graphics.shapes import Drawing, Line, Rect
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from alerts_web.csv_cells import FormulaSafeWriter
from alerts_web.scores import HistoryPoint
from model_store.explain import (
    NOT_APPLICABLE_TEXT,
    PENDING_TEXT,
    contribution_text,
    record_data_quality,
)
from readmit_core.events import ScoreEvent


@dataclass(frozen=True)
class RiskReport:
    event: ScoreEvent
    history: list[HistoryPoint]
    actions: list[Any]  # AlertAction rows, oldest first


# Demographics the score event carries once the worklist's fields are merged; each is
# shown when present, so the report degrades to identifiers alone.
_DEMOGRAPHICS: Final = (
    ("patient_name", "Name"),
    ("mrn", "MRN"),
    ("age_years", "Age"),
    ("sex", "Sex"),
    ("unit", "Unit"),
    ("bed", "Bed"),
    ("disposition", "Disposition"),
)
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_BAR_WIDTH: Final = 60 * mm
_RED: Final = colors.HexColor("#dc3545")


def report_filename(event: ScoreEvent, extension: str) -> str:
    """``readmission-risk_patient-<id>_encounter-<id>.pdf``: one file per stay, safe on disk."""
    patient = _SAFE_NAME.sub("-", str(getattr(event, "mrn", None) or event.patient_id))[:64]
    encounter = _SAFE_NAME.sub("-", event.encounter_id)[:64]
    return f"readmission-risk_patient-{patient}_encounter-{encounter}.{extension}"


def _zone() -> str:
    return timezone.get_current_timezone_name()


def _when(at: datetime | None) -> str:
    """A time as every line of the report writes it, in the site's zone (named)."""
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M} {_zone()}" if at is not None else "—"


class _NumberedCanvas(canvas.Canvas):
    """Draws "page N of M" and the time zone on every page (M known after the last page)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._footer = str(kwargs.pop("footer", ""))
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont("Helvetica", 7)
            self.setFillColor(colors.grey)
            self.drawString(18 * mm, 10 * mm, self._footer)
            self.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


def _factor_table(event: ScoreEvent, styles: Any) -> Any:
    """Factors as rows: full label (wrapped, never cut), a bar from 0, the points."""
    factors = list(event.factors[:8])
    if not factors and event.factors_pending:  # the explainer stage has yet to add them
        return Paragraph(
            "Factors still being computed when this report was made (usually within a "
            "second): download it again for them.",
            styles["Normal"],
        )
    if not factors:
        return Paragraph("No explanation available for this score.", styles["Normal"])
    top = max(max(f.contribution for f in factors), 0.1)
    rows: list[list[Any]] = [["Factor", f"Raises the risk by (0 to {top:.1f} points)", ""]]
    for f in factors:
        bar = Drawing(_BAR_WIDTH, 8)
        bar.add(Line(0, 0, 0, 8, strokeColor=colors.black, strokeWidth=0.5))  # the 0 axis
        width = max(f.contribution, 0.0) / top * _BAR_WIDTH
        bar.add(Rect(0, 1, width, 6, fillColor=_RED, strokeColor=None))
        rows.append(
            [Paragraph(escape(f.label), styles["Normal"]), bar, contribution_text(f.contribution)]
        )
    table = Table(rows, colWidths=[75 * mm, _BAR_WIDTH + 2 * mm, 32 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
            ]
        )
    )
    return table


def _header(report: RiskReport, styles: Any) -> list[Any]:
    ev = report.event
    present = [(label, getattr(ev.context, attr, None)) for attr, label in _DEMOGRAPHICS]
    people = " · ".join(f"{label} {value}" for label, value in present if value not in (None, ""))
    stay = (
        f"Encounter {ev.encounter_id} · patient {ev.patient_id} · ward {ev.ward} · "
        f"discharged {_when(ev.discharged_at)}"
    )
    return [
        Paragraph("30-day readmission risk — hand-over", styles["Title"]),
        Paragraph(escape(people) or "Demographics not available in this record.", styles["Normal"]),
        Paragraph(escape(stay), styles["Normal"]),
        Spacer(1, 4 * mm),
    ]


def _score(report: RiskReport, styles: Any) -> list[Any]:
    ev = report.event
    model = escape(f"model {ev.model_version}, scored {_when(ev.computed_at)}")
    if ev.non_readmittable:
        return [
            Paragraph(f"<b>{NOT_APPLICABLE_TEXT}</b>", styles["Heading2"]),
            Paragraph(f"No risk band, factors or interventions apply ({model}).", styles["Normal"]),
        ]
    return [
        Paragraph(
            f"<b>Risk {ev.probability:.0%}</b> — band <b>{ev.band}</b> ({model})",
            styles["Heading2"],
        ),
        Paragraph("Top contributing factors (percentage points of risk)", styles["Heading3"]),
        _factor_table(ev, styles),
        Paragraph("Recommended interventions", styles["Heading3"]),
        _interventions_table(report, styles),
        *_data_quality(ev, styles),
    ]


def _data_quality(ev: ScoreEvent, styles: Any) -> list[Any]:
    notes = record_data_quality(ev.record)
    if not notes:
        return []
    return [Paragraph(escape("Data quality: " + "; ".join(notes) + "."), styles["Normal"])]


def _interventions_table(report: RiskReport, styles: Any) -> Any:
    if report.event.factors_pending:  # advice follows with the factors, never before
        return Paragraph(
            escape(PENDING_TEXT + " Download the report again for them."), styles["Normal"]
        )
    items = report.event.interventions
    if not items:
        return Paragraph("None recommended.", styles["Normal"])
    done = {a.intervention_code: a for a in report.actions if a.kind == "intervention_done"}
    rows: list[list[Any]] = [["Intervention", "Status", "By", "When"]]
    for item in items:
        act = done.get(item.code)
        rows.append(
            [
                Paragraph(
                    f"<b>{escape(item.title)}</b><br/>{escape(item.rationale)}", styles["Normal"]
                ),
                "Done" if act else "Not done",
                act.actor if act else "",
                _when(act.at) if act else "",
            ]
        )
    return _table(rows, [100 * mm, 18 * mm, 22 * mm, 34 * mm])


def render_pdf(report: RiskReport) -> bytes:
    ev = report.event
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, title="Readmission risk hand-over", bottomMargin=20 * mm
    )
    story: list[Any] = [*_header(report, styles), *_score(report, styles)]
    story += [Paragraph("Score history", styles["Heading3"]), _history_table(report.history)]
    story += [Paragraph("Audit summary", styles["Heading3"]), *_audit(report, styles)]
    footer = f"Encounter {ev.encounter_id} · printed {_when(timezone.now())} · all times {_zone()}"
    doc.build(story, canvasmaker=partial(_NumberedCanvas, footer=footer))
    return buffer.getvalue()


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    return table


def _history_table(history: list[HistoryPoint]) -> Table:
    rows = [[f"Time ({_zone()})", "Encounter", "Risk", "Band", "Model"]]
    for p in history:
        prob = f"{p.probability:.1%}" if p.probability is not None else "(superseded)"
        rows.append([_when(p.at), p.encounter_id, prob, p.band or "", p.model_version or ""])
    if not history:
        rows.append(["No history cached.", "", "", "", ""])
    return _table(rows, [34 * mm, 36 * mm, 22 * mm, 18 * mm, 64 * mm])


def _audit(report: RiskReport, styles: Any) -> list[Any]:
    if not report.actions:
        return [Paragraph("No actions recorded.", styles["Normal"])]
    counts = Counter(str(a.get_kind_display()) for a in report.actions)
    summary = ", ".join(f"{kind}: {n}" for kind, n in counts.items())
    rows: list[list[Any]] = [[f"Time ({_zone()})", "User", "Action", "Detail"]]
    titles = {i.code: i.title for i in report.event.interventions}
    for a in report.actions[-15:]:
        done = titles.get(a.intervention_code, a.intervention_code)
        detail = a.note or done or (a.assignee.get_username() if a.assignee else "")
        rows.append(
            [
                _when(a.at),
                a.actor,
                a.get_kind_display(),
                Paragraph(escape(detail), styles["Normal"]),
            ]
        )
    shown = "" if len(report.actions) <= 15 else f" (latest 15 of {len(report.actions)} shown)"
    return [
        Paragraph(summary + shown, styles["Normal"]),
        _table(rows, [34 * mm, 25 * mm, 30 * mm, 85 * mm]),
    ]


CSV_COLUMNS = (
    "section",
    "encounter_id",
    "patient_id",
    "ward",
    "time",
    "probability",
    "band",
    "model_version",
    "item",
    "value",
    "detail",
)


def _safe(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(report: RiskReport) -> str:
    """One tidy table: the score, its factors, interventions, history and audit trail."""
    ev = report.event
    out = io.StringIO()
    writer = FormulaSafeWriter(out)
    writer.writerow(CSV_COLUMNS)
    base = [ev.encounter_id, ev.patient_id, ev.ward]
    stamp = ev.computed_at.isoformat()
    if ev.non_readmittable:
        writer.writerow(
            [
                "score",
                *base,
                stamp,
                "",
                "",
                ev.model_version,
                "not_applicable",
                "",
                NOT_APPLICABLE_TEXT,
            ]
        )
    else:
        writer.writerow(
            ["score", *base, stamp, f"{ev.probability:.6f}", ev.band, ev.model_version, "", "", ""]
        )
    for f in () if ev.non_readmittable else ev.factors:
        writer.writerow(
            [
                "factor",
                *base,
                stamp,
                "",
                "",
                ev.model_version,
                _safe(f.label),
                f"{f.contribution:.6f}",
                f.feature,
            ]
        )
    for i in () if ev.non_readmittable or ev.factors_pending else ev.interventions:
        writer.writerow(
            [
                "intervention",
                *base,
                stamp,
                "",
                "",
                ev.model_version,
                i.code,
                _safe(i.title),
                _safe(i.rationale),
            ]
        )
    for p in report.history:
        prob = f"{p.probability:.6f}" if p.probability is not None else ""
        writer.writerow(
            [
                "history",
                p.encounter_id,
                ev.patient_id,
                "",
                p.at.isoformat(),
                prob,
                p.band or "",
                p.model_version or "",
                p.input_key,
                "",
                "",
            ]
        )
    for a in report.actions:
        writer.writerow(
            [
                "action",
                *base,
                a.at.isoformat(),
                "",
                "",
                "",
                a.kind,
                a.actor,
                _safe(a.note or a.intervention_code),
            ]
        )
    return out.getvalue()
