"""CDS Hooks 2.0 shapes: the discovery document and the readmission-risk card.

Pure functions (no Django) so the exact shapes are unit-tested against the spec:
https://cds-hooks.hl7.org/2.0/ — card ``summary`` ≤ 140 characters, ``indicator``
one of info/warning/critical, ``source.label`` required, suggestions with uuids.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from model_store.explain import NOT_APPLICABLE_TEXT, factor_text
from readmit_core.errors import ReadmitError
from readmit_core.events import ScoreEvent

SERVICE_ID: Final = "readmission-risk"
HOOK: Final = "encounter-discharge"
SUMMARY_MAX: Final = 140
BAND_INDICATOR: Final = {"low": "info", "medium": "warning", "high": "critical"}
SOURCE_LABEL: Final = "readmit 30-day readmission risk"


class CdsRequestError(ReadmitError, ValueError):
    """The hook request is malformed; ``field`` names what is wrong."""

    status = 400
    issue_code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def discovery() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "30-day readmission risk at discharge",
                "description": "Shows the patient's predicted risk of unplanned readmission "
                "within 30 days, the factors behind it and recommended transitional-care "
                "interventions.",
                "prefetch": {
                    "patient": "Patient/{{context.patientId}}",
                    "encounter": "Encounter/{{context.encounterId}}",
                },
                "usageRequirements": "Requires an API key with scope `cds` as Bearer token.",
            }
        ]
    }


def parse_request(body: Any) -> tuple[str, str, dict[str, Any]]:
    """(patientId, encounterId, prefetch) of a valid encounter-discharge request."""
    if not isinstance(body, dict):
        raise CdsRequestError("body", "expected a JSON object")
    if body.get("hook") != HOOK:
        raise CdsRequestError("hook", f"this service answers {HOOK!r}")
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        raise CdsRequestError("hookInstance", "required")
    context = body.get("context")
    if not isinstance(context, dict):
        raise CdsRequestError("context", "required")
    ids = []
    for key in ("patientId", "encounterId"):
        value = context.get(key)
        if not isinstance(value, str) or not value:
            raise CdsRequestError(f"context.{key}", "required")
        ids.append(value)
    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise CdsRequestError("prefetch", "expected an object")
    return ids[0], ids[1], prefetch


def prefetch_conflict(prefetch: dict[str, Any], patient_id: str, encounter_id: str) -> str | None:
    """Why the prefetched resources do not match the context (None when consistent)."""
    patient = prefetch.get("patient")
    if isinstance(patient, dict):
        if patient.get("resourceType") != "Patient":
            return "prefetch.patient is not a Patient"
        if patient.get("id") not in (None, patient_id):
            return "prefetch.patient.id differs from context.patientId"
    encounter = prefetch.get("encounter")
    if isinstance(encounter, dict):
        if encounter.get("resourceType") != "Encounter":
            return "prefetch.encounter is not an Encounter"
        if encounter.get("id") not in (None, encounter_id):
            return "prefetch.encounter.id differs from context.encounterId"
    return None


def _summary(event: ScoreEvent) -> str:
    if event.non_readmittable:
        return "30-day readmission risk does not apply (death or hospice)"
    text = f"{event.band.capitalize()} 30-day readmission risk: {event.probability:.0%}"
    if event.factors:
        text += f" — top factor: {event.factors[0].label}"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _detail(event: ScoreEvent) -> str:
    if event.non_readmittable:
        return f"{NOT_APPLICABLE_TEXT}\n\nModel version `{event.model_version}`."
    lines = [f"**Predicted probability:** {event.probability:.1%} ({event.band})", ""]
    if event.factors:
        lines.append("**Top contributing factors** (percentage points of risk)")
        lines += [f"- {factor_text(f)}" for f in event.factors[:5]]
    lines += ["", f"Model version `{event.model_version}`."]
    return "\n".join(lines)


def _suggestion(event: ScoreEvent, intervention: Any) -> dict[str, Any]:
    return {
        "label": intervention.title[:140],
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.input_key}/{intervention.code}")),
        "isRecommended": event.band == "high",
        "actions": [
            {
                "type": "create",
                "description": f"Order: {intervention.title}",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "draft",
                    "intent": "proposal",
                    "code": {"text": intervention.title},
                    "subject": {"reference": f"Patient/{event.patient_id}"},
                    "encounter": {"reference": f"Encounter/{event.encounter_id}"},
                    "reasonCode": [{"text": intervention.rationale[:500]}],
                },
            }
        ],
    }


def risk_card(event: ScoreEvent, patient_page_url: str) -> dict[str, Any]:
    """The card; an *info* card without suggestions when the risk does not apply."""
    applies = not event.non_readmittable
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"readmit-card/{event.input_key}")),
        "summary": _summary(event),
        "detail": _detail(event),
        "indicator": BAND_INDICATOR[event.band] if applies else "info",
        "source": {"label": SOURCE_LABEL, "topic": {"code": "readmission-risk"}},
        "suggestions": [_suggestion(event, i) for i in event.interventions] if applies else [],
        "selectionBehavior": "any",
        "links": [
            {"label": "Open readmission risk page", "url": patient_page_url, "type": "absolute"}
        ],
    }
