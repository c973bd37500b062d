"""``GET /fhir/RiskAssessment?encounter=…|patient=…``, ``GET /fhir/RiskAssessment/{id}``
and ``GET /fhir/metadata`` (the CapabilityStatement, public as FHIR expects).

Errors are OperationOutcome resources with the matching HTTP status, as FHIR
clients expect; the body type is ``application/fhir+json``. Keys see every scored
encounter their scope covers (:func:`alerts_web.api.auth.may_see_ward`), whether or
not a ward row names its Location yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from alerts_web.api.auth import has_scope, may_see_ward, principal_for
from alerts_web.api.models import Scope
from alerts_web.fhir_api.capability import FORMATS, SEARCH_PARAMS, capability_statement
from alerts_web.fhir_api.resources import operation_outcome, risk_assessment, searchset
from alerts_web.scores import latest_explained, patient_history
from fhir_mappings import FHIR_JSON
from fhir_mappings.references import search_id
from readmit_core.events import ScoreEvent


def fhir_response(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        orjson.dumps(body), status=status, content_type=f"{FHIR_JSON}; charset=utf-8"
    )


def _format_refused(request: HttpRequest) -> HttpResponse | None:
    """406 for a ``_format`` other than JSON (XML and Turtle are not served)."""
    wanted = request.GET.get("_format")
    if wanted is None or wanted.split(";")[0].strip() in FORMATS:
        return None
    return fhir_response(
        operation_outcome("not-supported", "Only JSON is served.", expression="_format"), 406
    )


def _denied(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    principal = principal_for(request)
    if principal is None:
        resp = fhir_response(operation_outcome("login", "Authentication required."), 401)
        resp["WWW-Authenticate"] = 'Bearer realm="readmit"'
        return None, resp
    if not has_scope(principal, Scope.FHIR_READ.value):
        return None, fhir_response(operation_outcome("forbidden", "Missing scope fhir:read."), 403)
    return principal, None


Explained = tuple[ScoreEvent, datetime | None]  # a score and when its factors were added


def _visible(principal: Any, found: Explained | None) -> Explained | None:
    return found if found is not None and may_see_ward(principal, found[0].ward) else None


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir").rstrip("/")


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    principal, denied = _denied(request)
    if denied is not None:
        return denied
    refused = _format_refused(request)
    if refused is not None:
        return refused
    unknown = sorted(set(request.GET) - SEARCH_PARAMS)
    if unknown:
        return fhir_response(
            operation_outcome(
                "not-supported",
                f"Unsupported search parameter {unknown[0]}.",
                expression=unknown[0],
            ),
            400,
        )
    encounter = request.GET.get("encounter", "").strip()
    patient = request.GET.get("patient", "").strip()
    if not encounter and not patient:
        return fhir_response(
            operation_outcome(
                "required", "Search by encounter or patient.", expression="encounter"
            ),
            400,
        )
    events: list[Explained] = []
    if encounter:
        ev = _visible(principal, latest_explained(search_id(encounter, "Encounter")))
        events = [ev] if ev is not None else []
    else:
        seen: set[str] = set()
        for point in patient_history(search_id(patient, "Patient")):
            if point.encounter_id in seen:
                continue
            seen.add(point.encounter_id)
            ev = _visible(principal, latest_explained(point.encounter_id))
            if ev is not None:
                events.append(ev)
    if patient and encounter:
        events = [e for e in events if e[0].patient_id == search_id(patient, "Patient")]
    return fhir_response(searchset([risk_assessment(*e) for e in events], _base_url(request)))


@require_GET
def read(request: HttpRequest, resource_id: str) -> HttpResponse:
    principal, denied = _denied(request)
    if denied is not None:
        return denied
    refused = _format_refused(request)
    if refused is not None:
        return refused
    found = _visible(principal, latest_explained(resource_id))
    if found is None:
        return fhir_response(
            operation_outcome("not-found", "RiskAssessment not found.", expression="id"), 404
        )
    return fhir_response(risk_assessment(*found))


@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    """The CapabilityStatement; anonymous, as a client reads it before it authenticates."""
    refused = _format_refused(request)
    return refused or fhir_response(capability_statement(_base_url(request)))
