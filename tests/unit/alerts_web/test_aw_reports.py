"""PDF/CSV reports, the gauge, the feed's message parsing, log redaction, ops metrics."""

from __future__ import annotations

import csv
import io
import logging
import os
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from aw_fakes import score_event

from alerts_web.alerts.feed import FeedCounts, is_alerting, parse_message
from alerts_web.alerts.gauge import gauge
from alerts_web.alerts.reports import (
    CSV_COLUMNS,
    RiskReport,
    render_csv,
    render_pdf,
    report_filename,
)
from alerts_web.log_redaction import RedactRequestPath
from alerts_web.ops.status import flatten_metrics, parse_metrics
from alerts_web.scores import HistoryPoint
from readmit_core.settings import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def _report(note: str = "called family") -> RiskReport:
    event = score_event()
    history = [
        HistoryPoint(
            "enc-1001", "enc-1001:v0", datetime(2026, 11, 26, tzinfo=UTC), None, None, None
        ),
        HistoryPoint("enc-1001", "enc-1001:v1", event.computed_at, 0.62, "high", "lr-1"),
    ]
    action = SimpleNamespace(
        at=event.computed_at,
        actor="nurse",
        kind="note",
        note=note,
        intervention_code="",
        assignee=None,
        get_kind_display=lambda: "Note",
    )
    return RiskReport(event=event, history=history, actions=[action])


def test_pdf_is_a_pdf_with_content() -> None:
    pdf = render_pdf(_report())
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 2000


def test_csv_has_score_factors_interventions_history_and_actions() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_report()))))
    assert tuple(rows[0]) == CSV_COLUMNS
    sections = [r["section"] for r in rows]
    assert sections.count("factor") == 3
    assert sections.count("intervention") == 2
    assert sections.count("history") == 2
    assert sections.count("action") == 1
    score = rows[0]
    assert (score["section"], score["probability"], score["band"]) == ("score", "0.620000", "high")


def test_csv_of_a_pending_score_lists_no_advice() -> None:
    report = _report()
    pending = replace(report, event=report.event.model_copy(update={"factors_pending": True}))
    sections = [r["section"] for r in csv.DictReader(io.StringIO(render_csv(pending)))]
    assert "intervention" not in sections  # band-only advice, withdrawn with the factors
    assert "score" in sections


def test_csv_neutralises_spreadsheet_formulas_in_notes() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_report(note="=HYPERLINK(evil)")))))
    (action,) = [r for r in rows if r["section"] == "action"]
    assert action["detail"] == "'=HYPERLINK(evil)"


def test_gauge_endpoints() -> None:
    assert (gauge(0.0).needle_x, gauge(0.0).needle_y) == (20.0, 100.0)
    assert (gauge(1.0).needle_x, gauge(1.0).needle_y) == (180.0, 100.0)
    half = gauge(0.5)
    assert (half.needle_x, half.needle_y, half.percent) == (100.0, 20.0, 50)
    assert gauge(7).percent == 100


def test_feed_parses_known_versions_and_counts_the_rest() -> None:
    counts = FeedCounts()
    good = score_event().to_bytes()
    assert parse_message(good, counts) == score_event()
    assert parse_message(good.replace(b'"schema_version":1', b'"schema_version":2'), counts) is None
    assert parse_message(b"not json", counts) is None
    assert parse_message(b'{"schema_version":1}', counts) is None
    assert (counts.unknown_version, counts.invalid) == (1, 2)


def test_only_high_and_readmittable_events_alert() -> None:
    assert is_alerting(score_event())
    assert not is_alerting(score_event(band="medium"))
    assert not is_alerting(score_event(non_readmittable=True))


def test_request_log_shows_the_route_not_the_identifiers() -> None:
    request = SimpleNamespace(
        resolver_match=SimpleNamespace(route="api/v1/encounters/<str:encounter_id>/score")
    )
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("Not Found", "/api/v1/encounters/enc-SECRET/score"),
        None,
    )
    record.request = request
    assert RedactRequestPath().filter(record)
    assert "enc-SECRET" not in record.getMessage()
    assert "<str:encounter_id>" in record.getMessage()


METRICS = """# HELP readmit_scorer_events_consumed_total Feature events read from Kafka.
# TYPE readmit_scorer_events_consumed_total counter
readmit_scorer_events_consumed_total 120.0
# TYPE readmit_scorer_events_scored_total counter
readmit_scorer_events_scored_total 118.0
# TYPE readmit_scorer_dead_letters_total counter
readmit_scorer_dead_letters_total{reason="undecodable"} 2.0
readmit_scorer_dead_letters_total{reason="unscorable"} 1.0
# TYPE readmit_model_info gauge
readmit_model_info{version="lr-7"} 1.0
"""


def test_scorer_metrics_are_summed_by_name() -> None:
    sample = parse_metrics("http://s/metrics", METRICS)
    assert (sample.consumed, sample.scored, sample.dead_letters) == (120.0, 118.0, 3.0)
    assert sample.model_versions == ["lr-7"]


def test_manifest_metrics_are_flattened_two_levels() -> None:
    flat = flatten_metrics(
        {"test": {"roc_auc": 0.712345, "curve": [1, 2]}, "n": 5, "deep": {"a": {"b": 1}}}
    )
    assert flat == {"test.roc_auc": 0.7123, "n": 5}


def _long_factor_report(**overrides: object) -> RiskReport:
    from readmit_core.events import Factor

    long_label = (
        "Primary diagnosis: Diabetes with other specified manifestations, type I [juvenile "
        "type], uncontrolled (ICD-9-CM 250.83)"
    )
    factors = (
        Factor(feature="diag_1", label=long_label, contribution=6.4),
        Factor(
            feature="number_inpatient",
            label="3 inpatient stays in the prior year",
            contribution=3.1,
        ),
        Factor(feature="age", label="Age 80 to 90", contribution=0.2),
    )
    event = score_event(**{"factors": factors, **overrides})
    done = SimpleNamespace(
        at=event.computed_at,
        actor="nurse.jones",
        kind="intervention_done",
        note="",
        intervention_code="med-rec",
        assignee=None,
        get_kind_display=lambda: "Intervention done",
    )
    return RiskReport(event=event, history=[], actions=[done])


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True)
    return out.stdout


def test_pdf_is_a_hand_over_document(tmp_path: Path) -> None:
    report = _long_factor_report()
    pdf = render_pdf(report)
    text = " ".join(_pdf_text(pdf, tmp_path).split())
    assert "type I [juvenile type], uncontrolled (ICD-9-CM 250.83)" in text  # never cut
    assert "+6.4 percentage points" in text
    assert "0 to 6.4 points" in text  # the bars' axis starts at 0
    assert "Done nurse.jones" in text  # who did the intervention
    assert "Not done" in text
    assert "Page 1 of 1" in text
    assert "all times UTC" in text
    assert "Intervention done: 1" in text  # audit summary
    assert "med-rec" not in text  # titles, not codes
    # rendered to PNG: the page is drawn, not blank (and looked at by a person)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", str(tmp_path / "report.pdf"), str(tmp_path / "page")],
        check=True,
    )
    (png,) = sorted(tmp_path.glob("page*.png"))
    assert png.stat().st_size > 10_000
    if os.environ.get("READMIT_UPDATE_SCREENSHOTS"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-singlefile", str(tmp_path / "report.pdf"),
             str(SCREENSHOTS / "handover-pdf")],
            check=True,
        )  # fmt: skip


def test_pdf_header_carries_the_demographics_the_fhir_input_sent(tmp_path: Path) -> None:
    from readmit_core.events import WorklistContext

    context = WorklistContext(
        patient_name="Okafor, Chidi", mrn="MRN-881", sex="female", age_years=71, bed="12B"
    )
    text = " ".join(_pdf_text(render_pdf(_long_factor_report(context=context)), tmp_path).split())
    for shown in ("Name Okafor, Chidi", "MRN MRN-881", "Age 71", "Sex female", "Bed 12B"):
        assert shown in text
    assert "Demographics not available" not in text
    bare = " ".join(_pdf_text(render_pdf(_long_factor_report()), tmp_path).split())
    assert "Demographics not available" in bare


def test_pdf_lists_the_records_gaps_as_data_quality_not_as_factors(tmp_path: Path) -> None:
    from readmit_core.features import FeatureRecord

    record = FeatureRecord(encounter_id="e1", patient_nbr="p1", age="[70-80)", diag_1="428",
                           payer_code="?", admission_type_id=6)  # fmt: skip
    text = " ".join(_pdf_text(render_pdf(_long_factor_report(record=record)), tmp_path).split())
    assert "Data quality: Admission type not recorded" in text
    assert "Payer not recorded" in text
    full = FeatureRecord(encounter_id="e1", patient_nbr="p1", age="[70-80)", diag_1="428",
                         diag_2="250", diag_3="401", payer_code="MC", admission_type_id=1,
                         admission_source_id=7, discharge_disposition_id=1,
                         medical_specialty="Cardiology")  # fmt: skip
    text = " ".join(_pdf_text(render_pdf(_long_factor_report(record=full)), tmp_path).split())
    assert "Data quality" not in text


def test_pdf_states_that_risk_does_not_apply_after_death_or_hospice(tmp_path: Path) -> None:
    text = " ".join(
        _pdf_text(render_pdf(_long_factor_report(non_readmittable=True)), tmp_path).split()
    )
    assert "risk does not apply" in text
    assert "percentage points" not in text
    assert "Recommended interventions" not in text


def test_pdf_of_a_score_still_explaining_says_so_not_no_explanation(tmp_path: Path) -> None:
    report = _long_factor_report(factors=(), factors_pending=True)
    text = " ".join(_pdf_text(render_pdf(report), tmp_path).split())
    assert "Factors still being computed" in text
    assert "No explanation available" not in text
    assert "interventions they recommend are being computed" in text
    assert "Intervention Status By When" not in text  # no band-only advice, withdrawn later
    done = " ".join(_pdf_text(render_pdf(_long_factor_report(factors=())), tmp_path).split())
    assert "No explanation available" in done
    assert "Intervention Status By When" in done


def test_report_files_are_named_by_patient_and_encounter() -> None:
    event = score_event(patient_id="pat/77", encounter_id="enc 1001")
    assert report_filename(event, "pdf") == "readmission-risk_patient-pat-77_encounter-enc-1001.pdf"


def test_ops_history_rates_come_from_neighbouring_points() -> None:
    from alerts_web.ops.history import series

    def point(
        t: float, consumed: float, dlq: float, lsum: float, lcount: float
    ) -> dict[str, float]:
        return {
            "t": t, "lag": 5.0, "events_consumed_total": consumed, "dead_letters_total": dlq,
            "latency_sum": lsum, "latency_count": lcount,
        }  # fmt: skip

    points = [point(0, 100, 1, 2.0, 10), point(10, 150, 3, 3.0, 20), point(20, 20, 3, 3.0, 20)]
    out = series(points)
    assert out["t"] == [10_000, 20_000]
    assert out["events_per_second"] == [5.0, None]  # a restarted scorer gives a gap
    assert out["dead_letters_per_min"] == [12.0, 0.0]
    assert out["latency_ms"] == [100.0, None]  # 1 s over 10 events; no events: no value
    assert out["lag"] == [5.0, 5.0]
