"""CDS Hooks endpoints: discovery, ``POST /cds-services/readmission-risk`` and its feedback.

The EHR posts the encounter-discharge hook; we answer with a card built from the
encounter's latest cached score, once the EHR's Encounter (prefetched, or read from its
FHIR server) confirms the encounter is the context patient's. Answers follow CDS Hooks
2.0: 400 naming the malformed field, 401 for a missing or refused credential (the
EHR's signed JWT or our API key), 412 when the Encounter can be neither prefetched nor
read, 200 with no card when there is no score this caller may see (never a guess).

Only the ``Authorization`` header authenticates here, never a session cookie: the POST
endpoints are CSRF-exempt (an EHR has no CSRF token), so honouring the cookie would let
any same-site page post hooks or feedback with a signed-in user's (an admin's) session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from alerts_web.api.auth import (
    has_scope,
    key_from_header,
    may_see_ward,
    principal_for,
    remember_principal,
)
from alerts_web.api.models import Scope
from alerts_web.cds.cards import (
    SERVICE_ID,
    CdsRequestError,
    HookRequest,
    discovery,
    encounter_conflict,
    parse_request,
    prefetch_conflict,
    prefetched,
    risk_card,
)
from alerts_web.cds.client_jwt import CdsAuthError, TrustedEhr, looks_like_jwt, verify
from alerts_web.cds.ehr_fetch import allowed_servers, fetch_encounter
from alerts_web.cds.feedback import FeedbackEntry, parse_feedback
from alerts_web.cds.models import CardFeedback, IssuedCard
from alerts_web.scores import latest_score
from readmit_core.events import ScoreEvent
from readmit_core.settings import get_settings

T = TypeVar("T")


def _service_url(request: HttpRequest) -> str:
    """The URL the EHR called, as the JWT's ``aud`` must name it."""
    base = get_settings().web_public_url.rstrip("/")
    return f"{base}{request.path}" if base else request.build_absolute_uri(request.path)


def _unauthorized(detail: str) -> JsonResponse:
    resp = JsonResponse({"error": detail}, status=401)
    resp["WWW-Authenticate"] = 'Bearer realm="readmit"'
    return resp


def _authenticate(request: HttpRequest) -> tuple[Any, TrustedEhr | None, JsonResponse | None]:
    """(principal, trusted EHR or None, error): the EHR's JWT, else our API key.

    A request without a credential in its header is refused even with a valid session
    cookie (see the module docstring: these views are CSRF-exempt).
    """
    token = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    ehr: TrustedEhr | None = None
    if token is None:
        remember_principal(request, None)  # nothing later falls back to the session either
        return None, None, _unauthorized("authentication required: the EHR's JWT or an API key")
    if looks_like_jwt(token):
        try:
            principal, ehr = verify(token, _service_url(request))
        except CdsAuthError as exc:
            remember_principal(request, None)
            return None, None, _unauthorized(f"JWT refused ({exc.check}): {exc.detail}")
        remember_principal(request, principal)
    else:
        principal = principal_for(request)  # the header's key: token is not None
    if principal is None:
        return None, None, _unauthorized("authentication required")
    if not has_scope(principal, Scope.CDS.value):
        return None, None, JsonResponse({"error": "missing scope cds"}, status=403)
    return principal, ehr, None


def _bad(field: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def _body(request: HttpRequest, parse: Callable[[Any], T]) -> T | JsonResponse:
    """The JSON body through ``parse``, or the 400 naming what is malformed."""
    try:
        return parse(orjson.loads(request.body or b"null"))
    except orjson.JSONDecodeError:
        return _bad("body", "invalid JSON")
    except CdsRequestError as exc:
        return _bad(exc.field, exc.message)


@require_GET
def services(request: HttpRequest) -> HttpResponse:
    _, _, error = _authenticate(request)
    return error or JsonResponse(discovery())


def _encounter(hook: HookRequest, ehr: TrustedEhr | None) -> tuple[dict[str, Any] | None, str]:
    """The EHR's Encounter and where it came from (prefetch or the FHIR server)."""
    found = prefetched(hook.prefetch, "encounter")
    if found is not None:
        return found, "prefetch.encounter"
    if hook.fhir_server is None or hook.fhir_authorization is None:
        return None, ""
    fetched = fetch_encounter(
        hook.fhir_server, hook.fhir_authorization, hook.encounter_id, allowed_servers(ehr)
    )
    return fetched, "fhirServer Encounter"


def _issue(event: ScoreEvent, card: dict[str, Any], actor: str) -> None:
    IssuedCard.objects.update_or_create(
        uuid=card["uuid"],
        defaults={
            "service": SERVICE_ID,
            "encounter_id": event.encounter_id[:64],
            "patient_id": event.patient_id[:64],
            "ward": event.ward[:64],
            "input_key": event.input_key[:255],
            "suggestion_uuids": [s["uuid"] for s in card["suggestions"]],
            "last_issued_at": timezone.now(),
            "last_issued_to": actor[:150],
        },
    )


@csrf_exempt  # machine-to-machine: _authenticate takes the JWT or key, never the cookie
@require_POST
def readmission_risk(request: HttpRequest) -> HttpResponse:
    principal, ehr, error = _authenticate(request)
    if error is not None:
        return error
    hook = _body(request, parse_request)
    if isinstance(hook, JsonResponse):
        return hook
    conflict = prefetch_conflict(hook.prefetch, hook.patient_id, hook.encounter_id)
    if conflict is not None:
        return _bad("prefetch", conflict)
    event = latest_score(hook.encounter_id)
    if (
        event is None
        or event.patient_id != hook.patient_id
        or not may_see_ward(principal, event.ward)
    ):
        return JsonResponse({"cards": []})
    encounter, source = _encounter(hook, ehr)
    if encounter is None:
        return _bad(
            "prefetch.encounter",
            "the Encounter was neither prefetched nor readable from fhirServer "
            "(give prefetch.encounter, or fhirServer + fhirAuthorization of a trusted EHR)",
            412,
        )
    conflict = encounter_conflict(encounter, hook.patient_id, hook.encounter_id, source)
    if conflict is not None:
        return _bad(source, conflict)
    url = request.build_absolute_uri(reverse("alerts:encounter", args=[hook.encounter_id]))
    card = risk_card(event, url)
    _issue(event, card, principal.get_username())
    return JsonResponse({"cards": [card]})


def _store(entries: list[FeedbackEntry], cards: dict[str, IssuedCard], actor: str) -> None:
    with transaction.atomic():
        CardFeedback.objects.bulk_create(
            CardFeedback(
                card=cards[e.card],
                outcome=e.outcome,
                accepted_suggestions=list(e.accepted_suggestions),
                override_reason=e.override_reason,
                user_comment=e.user_comment,
                outcome_at=e.outcome_at,
                actor=actor[:150],
            )
            for e in entries
        )


@csrf_exempt  # as readmission_risk: never authenticated by the cookie
@require_POST
def feedback(request: HttpRequest, service_id: str) -> HttpResponse:
    """``POST /cds-services/{id}/feedback``: every entry valid and about a card we issued
    to someone allowed to see it, or nothing is stored (400/404 naming the entry)."""
    if service_id != SERVICE_ID:
        return _bad("service", "no such CDS service", 404)
    principal, _, error = _authenticate(request)
    if error is not None:
        return error
    entries = _body(request, parse_feedback)
    if isinstance(entries, JsonResponse):
        return entries
    cards = {str(c.uuid): c for c in IssuedCard.objects.filter(uuid__in={e.card for e in entries})}
    for i, entry in enumerate(entries):
        card = cards.get(entry.card)
        if card is None or card.service != service_id or not may_see_ward(principal, card.ward):
            return _bad(f"feedback[{i}].card", "no card with this uuid was issued", 404)
        unknown = set(entry.accepted_suggestions) - set(card.suggestion_uuids)
        if unknown:
            return _bad(f"feedback[{i}].acceptedSuggestions", "not a suggestion of this card")
    _store(entries, cards, principal.get_username())
    return JsonResponse({}, status=200)
