"""Record every read of patient data, by route: views need no change to be audited.

The routes that show a patient's data are listed once here (``AUDITED_ROUTES``); the
middleware resolves each request, and after the view answered writes one
:class:`PatientDataAccess` row with the subject taken from the URL, the query string or
(CDS Hooks) the JSON body. Rows go to the database only: identifiers never reach a log.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException

from alerts_web.access_audit.models import Channel, PatientDataAccess

log = logging.getLogger(__name__)

# view name -> channel; a new patient-data route is audited by adding one line here.
AUDITED_ROUTES: dict[str, Channel] = {
    "alerts:encounter": Channel.PAGE,
    "alerts:encounter-pdf": Channel.PDF,
    "alerts:encounter-csv": Channel.CSV,
    "api:encounter-score": Channel.REST,
    "api:patient-scores": Channel.REST,
    "api:ward-alerts": Channel.REST,
    "fhir:riskassessment-search": Channel.FHIR,
    "fhir:riskassessment-read": Channel.FHIR,
    "cds:readmission-risk": Channel.CDS,
    "cds:feedback": Channel.CDS,
    "wards:dashboard": Channel.WARD,
}
_FIELD = 64
STATIC_PREFIX = "/static/"


def _subject(request: HttpRequest, kwargs: dict[str, Any]) -> dict[str, str]:
    subject = {
        "encounter_id": str(kwargs.get("encounter_id") or request.GET.get("encounter") or ""),
        "patient_id": str(kwargs.get("patient_id") or request.GET.get("patient") or ""),
        "ward": str(kwargs.get("ward") or kwargs.get("code") or ""),
    }
    if "resource_id" in kwargs:  # a RiskAssessment id names the encounter it assesses
        subject["encounter_id"] = str(kwargs["resource_id"])
    if request.method == "POST" and request.content_type == "application/json":
        try:
            context = json.loads(request.body or b"{}").get("context") or {}
        except (ValueError, AttributeError, RawPostDataException):
            context = {}
        if isinstance(context, dict):
            subject["patient_id"] = subject["patient_id"] or str(context.get("patientId") or "")
            subject["encounter_id"] = subject["encounter_id"] or str(
                context.get("encounterId") or ""
            )
    for ref in ("patient_id", "encounter_id"):  # FHIR references: Patient/123 -> 123
        subject[ref] = subject[ref].rsplit("/", 1)[-1][:_FIELD]
    subject["ward"] = subject["ward"][:_FIELD]
    # a NUL names nothing and PostgreSQL text cannot hold it: the read is still recorded
    subject = {key: value.replace("\x00", "\ufffd") for key, value in subject.items()}
    return subject


def _actor(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.get_username())[:150]
    from alerts_web.api.auth import principal_for

    principal = principal_for(request)
    return str(principal.get_username())[:150] if principal is not None else "anonymous"


def _remote_addr(request: HttpRequest) -> str | None:
    """REMOTE_ADDR as the server saw it (the proxy's X-Forwarded-For is not trusted here)."""
    addr = request.META.get("REMOTE_ADDR") or ""
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


class AccessAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(STATIC_PREFIX) and "Cache-Control" not in response:
            # Every page, export and API answer may carry patient data: no browser or
            # proxy cache keeps a copy (the back button after logout shows nothing).
            response["Cache-Control"] = "no-store"
        match = request.resolver_match
        channel = AUDITED_ROUTES.get(match.view_name) if match is not None else None
        if channel is not None and match is not None:
            self._record(request, response, channel, match.view_name, match.kwargs)
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        # Read a JSON body before the view consumes the stream (CDS Hooks' context).
        match = request.resolver_match
        audited = match is not None and match.view_name in AUDITED_ROUTES
        if audited and request.method == "POST" and request.content_type == "application/json":
            _ = request.body

    @staticmethod
    def _record(
        request: HttpRequest,
        response: HttpResponse,
        channel: Channel,
        route: str,
        kwargs: dict[str, Any],
    ) -> None:
        try:
            PatientDataAccess.objects.create(
                actor=_actor(request),
                channel=channel,
                route=route,
                remote_addr=_remote_addr(request),
                status=response.status_code,
                **_subject(request, kwargs),
            )
        except DatabaseError:
            # The route only, never the subject: the log stays free of identifiers.
            log.exception("access audit row not written for %s", route)
