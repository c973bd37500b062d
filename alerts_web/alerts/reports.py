"""The patient risk report as PDF (reportlab) and CSV, from the same data as the page."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from alerts_web.csv_cells import FormulaSafeWriter
from alerts_web.scores import HistoryPoint
from readmit.events import ScoreEvent


@dataclass(frozen=True)
class RiskReport:
    event: ScoreEvent
    history: list[HistoryPoint]
    actions: list[Any]  # AlertAction rows, oldest first


def _factor_chart(event: ScoreEvent) -> Drawing:
    factors = list(event.factors[:8])[::-1]
    drawing = Drawing(170 * mm, max(40, 12 * len(factors) + 20))
    if not factors:
        drawing.add(String(0, 10, "No explanation available for this score."))
        return drawing
    chart = HorizontalBarChart()
    chart.x, chart.y = 60 * mm, 10
    chart.width, chart.height = 100 * mm, 12 * len(factors)
    chart.data = [[f.contribution for f in factors]]
    chart.categoryAxis.categoryNames = [f.label[:40] for f in factors]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = colors.HexColor("#dc3545")
    drawing.add(chart)
    return drawing


def render_pdf(report: RiskReport) -> bytes:
    ev = report.event
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title="Readmission risk report")
    story: list[Any] = [
        Paragraph("30-day readmission risk report", styles["Title"]),
        Paragraph(
            f"Encounter {ev.encounter_id} · patient {ev.patient_id} · ward {ev.ward}",
            styles["Normal"],
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            f"<b>Probability {ev.probability:.1%}</b> — band <b>{ev.band}</b> "
            f"(model {ev.model_version}, scored {ev.computed_at:%Y-%m-%d %H:%M} UTC)",
            styles["Heading2"],
        ),
        Paragraph("Top contributing factors", styles["Heading3"]),
        _factor_chart(ev),
        Paragraph("Recommended interventions", styles["Heading3"]),
    ]
    for item in ev.interventions:
        story.append(
            Paragraph(
                f"<b>{item.title}</b>: {item.rationale} <i>({item.source})</i>", styles["Normal"]
            )
        )
    if not ev.interventions:
        story.append(Paragraph("None recommended.", styles["Normal"]))
    story += [Paragraph("Score history", styles["Heading3"]), _history_table(report.history)]
    if report.actions:
        story += [Paragraph("Audit trail", styles["Heading3"]), _actions_table(report.actions)]
    doc.build(story)
    return buffer.getvalue()


def _table(rows: list[list[str]]) -> Table:
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    return table


def _history_table(history: list[HistoryPoint]) -> Table:
    rows = [["Time (UTC)", "Encounter", "Probability", "Band", "Model"]]
    for p in history:
        prob = f"{p.probability:.1%}" if p.probability is not None else "(superseded)"
        rows.append(
            [f"{p.at:%Y-%m-%d %H:%M}", p.encounter_id, prob, p.band or "", p.model_version or ""]
        )
    return _table(rows)


def _actions_table(actions: list[Any]) -> Table:
    rows = [["Time (UTC)", "User", "Action", "Detail"]]
    for a in actions:
        detail = a.note or a.intervention_code or (a.assignee.get_username() if a.assignee else "")
        rows.append([f"{a.at:%Y-%m-%d %H:%M}", a.actor, a.get_kind_display(), detail[:80]])
    return _table(rows)


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
    writer.writerow(
        ["score", *base, stamp, f"{ev.probability:.6f}", ev.band, ev.model_version, "", "", ""]
    )
    for f in ev.factors:
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
    for i in ev.interventions:
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
