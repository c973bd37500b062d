"""ScoreEvent → FHIR R4 RiskAssessment, and the OperationOutcome of every FHIR error.

Pure functions over plain dicts, so tests validate them with fhir.resources without
Django. The prediction's outcome is SNOMED CT 417005 "Hospital re-admission" within
30 days; qualitativeRisk uses HL7's risk-probability code system.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from fhir_mappings.outcome import operation_outcome as fhir_outcome
from model_store.explain import NOT_APPLICABLE_TEXT, PENDING_TEXT, factor_text
from readmit_core.events import ScoreEvent

FHIR_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
RISK_PROBABILITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/risk-probability"
BAND_TO_RISK: Final = {"low": "low", "medium": "moderate", "high": "high"}
MODEL_SYSTEM: Final = "urn:readmit:model-version"
INTERVENTION_SYSTEM: Final = "urn:readmit:intervention"


def resource_id(encounter_id: str) -> str | None:
    """The RiskAssessment id of an encounter's latest score (None if not a valid FHIR id)."""
    return encounter_id if FHIR_ID.match(encounter_id) else None


def risk_assessment(event: ScoreEvent, explained_at: datetime | None = None) -> dict[str, Any]:
    """The resource; ``explained_at`` (when the explainer stage added the factors) is its
    lastUpdated, so a client syncing on it fetches the explained copy again."""
    rid = resource_id(event.encounter_id)
    updated = explained_at if explained_at and not event.factors_pending else event.computed_at
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "meta": {"lastUpdated": updated.isoformat()},
        "identifier": [{"system": "urn:readmit:score-input", "value": event.input_key}],
        # R4 ObservationStatus: preliminary until the explainer stage adds the factors
        "status": "preliminary" if event.factors_pending else "final",
        "code": {"text": "30-day hospital readmission risk"},
        "method": {
            "coding": [{"system": MODEL_SYSTEM, "code": event.model_version}],
            "text": f"readmit model {event.model_version}",
        },
        "subject": {"reference": f"Patient/{event.patient_id}"},
        "encounter": {"reference": f"Encounter/{event.encounter_id}"},
        "occurrenceDateTime": event.computed_at.isoformat(),
        "basis": [
            {"reference": f"Encounter/{event.encounter_id}"},
            {"reference": f"Patient/{event.patient_id}"},
        ],
        "prediction": [_prediction(event)],
    }
    if rid is not None:
        resource["id"] = rid
    if event.input_version is not None:  # the stay's input version this score came from
        resource["meta"]["versionId"] = str(event.input_version)
    if event.interventions and not event.non_readmittable:
        resource["mitigation"] = " | ".join(
            f"{i.title} [{INTERVENTION_SYSTEM}#{i.code}]: {i.rationale}"
            for i in event.interventions
        )
    if event.non_readmittable:
        resource["note"] = [{"text": NOT_APPLICABLE_TEXT}]
    return resource


_OUTCOME: Final = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "417005", "display": "Hospital re-admission"}
    ],
    "text": "Unplanned readmission within 30 days of discharge",
}
_WITHIN_30_DAYS: Final = {
    "high": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
}


def _prediction(event: ScoreEvent) -> dict[str, Any]:
    """The prediction; without probability or qualitativeRisk when the risk does not apply."""
    if event.non_readmittable:
        return {"outcome": _OUTCOME, "whenRange": _WITHIN_30_DAYS, "rationale": NOT_APPLICABLE_TEXT}
    risk_code = BAND_TO_RISK[event.band]
    factors = "; ".join(factor_text(f) for f in event.factors)
    return {
        "outcome": _OUTCOME,
        "probabilityDecimal": round(event.probability, 6),
        "qualitativeRisk": {
            "coding": [
                {
                    "system": RISK_PROBABILITY_SYSTEM,
                    "code": risk_code,
                    "display": risk_code.capitalize() + " likelihood",
                }
            ],
            "text": event.band,
        },
        "whenRange": _WITHIN_30_DAYS,
        "rationale": _rationale(event, factors),
    }


def _rationale(event: ScoreEvent, factors: str) -> str:
    if factors:
        return f"Top factors: {factors}"
    return PENDING_TEXT if event.factors_pending else "No explanation available"


def searchset(resources: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [_entry(r, base_url) for r in resources],
    }


def _entry(resource: dict[str, Any], base_url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "search": {"mode": "match"}}
    if "id" in resource:
        entry["fullUrl"] = f"{base_url}/RiskAssessment/{resource['id']}"
    return entry


def operation_outcome(
    code: str, diagnostics: str, *, expression: str | None = None
) -> dict[str, Any]:
    return fhir_outcome(diagnostics, code=code, expression=expression)
