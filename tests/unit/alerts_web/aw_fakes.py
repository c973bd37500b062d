"""Shared builders for alerts_web unit tests (no services)."""

from __future__ import annotations

from datetime import UTC, datetime

from readmit_core.events import Factor, Intervention, ScoreEvent


def score_event(**overrides: object) -> ScoreEvent:
    values: dict[str, object] = {
        "encounter_id": "enc-1001",
        "patient_id": "pat-77",
        "ward": "ward-card",
        "input_key": "enc-1001:v1",
        "probability": 0.62,
        "band": "high",
        "model_version": "lr-20261127-01",
        "factors": (
            Factor(
                feature="number_inpatient", label="3 inpatient stays last year", contribution=0.41
            ),
            Factor(feature="age", label="Age 80-90", contribution=0.12),
            Factor(feature="A1Cresult", label="A1C normal", contribution=-0.05),
        ),
        "interventions": (
            Intervention(
                code="med-rec",
                title="Medication reconciliation before discharge",
                rationale="Polypharmacy raises readmission risk.",
                source="AHRQ Project RED",
            ),
            Intervention(
                code="follow-up-7d",
                title="Follow-up visit within 7 days",
                rationale="Early follow-up lowers 30-day readmissions.",
                source="Hernandez et al., JAMA 2010",
            ),
        ),
        "computed_at": datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return ScoreEvent.model_validate(values)
