"""CDS Hooks 2.0 shapes: the discovery document and the readmission-risk card.

Pure functions (no Django) so the exact shapes are unit-tested against the spec:
https://cds-hooks.hl7.org/2.0/ — card ``summary`` ≤ 140 characters, ``indicator``
one of info/warning/critical, ``source.label`` required, suggestions with uuids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from alerts_web.fhir_api.resources import FHIR_ID
from model_store.explain import NOT_APPLICABLE_TEXT, PENDING_TEXT, factor_text
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


# context ids are FHIR ``id``s (the hook's field types), userId a "Type/id" reference
USER_TYPES: Final = ("Practitioner", "PractitionerRole")
FHIR_AUTHORIZATION_FIELDS: Final = ("access_token", "token_type", "expires_in", "scope", "subject")


@dataclass(frozen=True)
class HookRequest:
    """A valid encounter-discharge call: its context, prefetch and FHIR access."""

    hook_instance: str
    user_id: str
    patient_id: str
    encounter_id: str
    prefetch: dict[str, Any]
    fhir_server: str | None = None
    fhir_authorization: dict[str, Any] | None = None


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
                "prefetch": {"encounter": "Encounter/{{context.encounterId}}"},
                "usageRequirements": "Authenticate with the EHR's signed JWT (a trusted iss, "
                "aud = this service's URL) or an API key with scope `cds` as Bearer token. "
                "The card needs the Encounter (prefetched, or read from fhirServer with "
                "fhirAuthorization) to confirm it belongs to context.patientId; without it "
                "the call is answered 412. Feedback: POST {service URL}/feedback.",
            }
        ]
    }


def _bare_id(context: dict[str, Any], key: str, resource_type: str) -> str:
    value = context.get(key)
    if not isinstance(value, str) or not value:
        raise CdsRequestError(f"context.{key}", "required")
    if value.startswith(f"{resource_type}/"):
        # the hook defines an ``id``, not a reference: refused rather than guessed, so an
        # EHR sending references learns it at once instead of losing its cards silently
        raise CdsRequestError(
            f"context.{key}", f"must be the bare {resource_type}.id, not a reference"
        )
    if not FHIR_ID.match(value):
        raise CdsRequestError(f"context.{key}", "is not a FHIR id")
    return value


def _user_id(context: dict[str, Any]) -> str:
    value = context.get("userId")
    if not isinstance(value, str) or not value:
        raise CdsRequestError("context.userId", "required")
    kind, _, ident = value.partition("/")
    if kind not in USER_TYPES or not FHIR_ID.match(ident):
        raise CdsRequestError("context.userId", f"must be {' or '.join(USER_TYPES)}/<id>")
    return value


def _fhir_access(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    server = body.get("fhirServer")
    if server is not None:
        parts = urlsplit(server) if isinstance(server, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise CdsRequestError("fhirServer", "must be the FHIR server's base URL")
    auth = body.get("fhirAuthorization")
    if auth is None:
        return server, None
    if server is None:
        raise CdsRequestError("fhirServer", "required when fhirAuthorization is given")
    if not isinstance(auth, dict):
        raise CdsRequestError("fhirAuthorization", "expected an object")
    for key in FHIR_AUTHORIZATION_FIELDS:
        if auth.get(key) in (None, ""):
            raise CdsRequestError(f"fhirAuthorization.{key}", "required")
    if str(auth["token_type"]).lower() != "bearer":
        raise CdsRequestError("fhirAuthorization.token_type", "must be Bearer")
    if not isinstance(auth["expires_in"], int) or isinstance(auth["expires_in"], bool):
        raise CdsRequestError("fhirAuthorization.expires_in", "must be an integer")
    return server, auth


def parse_request(body: Any) -> HookRequest:
    """The call, validated as CDS Hooks 2.0 and the encounter-discharge hook define it."""
    if not isinstance(body, dict):
        raise CdsRequestError("body", "expected a JSON object")
    if body.get("hook") != HOOK:
        raise CdsRequestError("hook", f"this service answers {HOOK!r}")
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not instance:
        raise CdsRequestError("hookInstance", "required")
    try:
        uuid.UUID(instance)
    except ValueError as exc:
        raise CdsRequestError("hookInstance", "must be a UUID") from exc
    context = body.get("context")
    if not isinstance(context, dict):
        raise CdsRequestError("context", "required")
    user_id = _user_id(context)
    patient_id = _bare_id(context, "patientId", "Patient")
    encounter_id = _bare_id(context, "encounterId", "Encounter")
    server, auth = _fhir_access(body)
    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise CdsRequestError("prefetch", "expected an object")
    return HookRequest(instance, user_id, patient_id, encounter_id, prefetch, server, auth)


def prefetched(prefetch: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A prefetch value the client could fill: null or an OperationOutcome (2.0: the
    client's prefetch failed) or nothing at all means the service has to find it."""
    value = prefetch.get(key)
    if not isinstance(value, dict) or value.get("resourceType") == "OperationOutcome":
        return None
    return value


def _subject_id(encounter: dict[str, Any]) -> str | None:
    reference = (encounter.get("subject") or {}).get("reference")
    if not isinstance(reference, str) or not reference.startswith("Patient/"):
        return None
    return reference.rsplit("/", 1)[-1]


def prefetch_conflict(prefetch: dict[str, Any], patient_id: str, encounter_id: str) -> str | None:
    """Why the prefetched resources do not match the context (None when consistent)."""
    patient = prefetched(prefetch, "patient")
    if patient is not None:
        if patient.get("resourceType") != "Patient":
            return "prefetch.patient is not a Patient"
        if patient.get("id") not in (None, patient_id):
            return "prefetch.patient.id differs from context.patientId"
    encounter = prefetched(prefetch, "encounter")
    if encounter is not None:
        return encounter_conflict(encounter, patient_id, encounter_id, "prefetch.encounter")
    return None


def encounter_conflict(
    encounter: dict[str, Any], patient_id: str, encounter_id: str, where: str
) -> str | None:
    """Why the EHR's Encounter is not the context's (another id, or another patient's)."""
    if encounter.get("resourceType") != "Encounter":
        return f"{where} is not an Encounter"
    if encounter.get("id") not in (None, encounter_id):
        return f"{where}.id differs from context.encounterId"
    subject = _subject_id(encounter)
    if subject is not None and subject != patient_id:
        return f"{where}.subject is not context.patientId"
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
    elif event.factors_pending:
        lines.append(f"**{PENDING_TEXT}**")
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
    """The card; an *info* card without suggestions when the risk does not apply. While
    the factors are pending it offers no suggestions either, and has a uuid of its own:
    the suggestions of one card uuid never change once issued."""
    applies = not event.non_readmittable
    advises = applies and not event.factors_pending
    name = f"readmit-card/{event.input_key}" + ("/pending" if event.factors_pending else "")
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "summary": _summary(event),
        "detail": _detail(event),
        "indicator": BAND_INDICATOR[event.band] if applies else "info",
        "source": {"label": SOURCE_LABEL, "topic": {"code": "readmission-risk"}},
        "suggestions": [_suggestion(event, i) for i in event.interventions] if advises else [],
        "selectionBehavior": "any",
        "links": [
            {"label": "Open readmission risk page", "url": patient_page_url, "type": "absolute"}
        ],
    }
