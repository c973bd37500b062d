"""CDS Hooks endpoints: ``GET /cds-services`` and ``POST /cds-services/readmission-risk``.

The EHR posts the encounter-discharge hook; we answer with a card built from the
encounter's latest cached score. No score (or a prefetch that names another patient)
→ no card, never a guess.
"""

from __future__ import annotations

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from alerts_web.api.auth import has_scope, may_see_ward, principal_for
from alerts_web.api.models import Scope
from alerts_web.cds.cards import (
    CdsRequestError,
    discovery,
    parse_request,
    prefetch_conflict,
    risk_card,
)
from alerts_web.scores import latest_score


def _auth_error(request: HttpRequest) -> tuple[object, JsonResponse | None]:
    principal = principal_for(request)
    if principal is None:
        resp = JsonResponse({"error": "authentication required"}, status=401)
        resp["WWW-Authenticate"] = 'Bearer realm="readmit"'
        return None, resp
    if not has_scope(principal, Scope.CDS.value):
        return None, JsonResponse({"error": "missing scope cds"}, status=403)
    return principal, None


@require_GET
def services(request: HttpRequest) -> HttpResponse:
    _, error = _auth_error(request)
    return error or JsonResponse(discovery())


@csrf_exempt  # machine-to-machine: authenticated by bearer key, never by cookie
@require_POST
def readmission_risk(request: HttpRequest) -> HttpResponse:
    principal, error = _auth_error(request)
    if error is not None:
        return error
    try:
        body = orjson.loads(request.body or b"null")
        patient_id, encounter_id, prefetch = parse_request(body)
    except orjson.JSONDecodeError:
        return JsonResponse({"error": "invalid JSON", "field": "body"}, status=400)
    except CdsRequestError as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=400)
    conflict = prefetch_conflict(prefetch, patient_id, encounter_id)
    if conflict is not None:
        return JsonResponse({"error": conflict, "field": "prefetch"}, status=400)
    event = latest_score(encounter_id)
    if event is None or event.patient_id != patient_id or not may_see_ward(principal, event.ward):
        return JsonResponse({"cards": []})
    url = request.build_absolute_uri(reverse("alerts:encounter", args=[encounter_id]))
    return JsonResponse({"cards": [risk_card(event, url)]})
