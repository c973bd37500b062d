"""Record every read of patient data, by route: views need no change to be audited.

The routes that show a patient's data are listed once here (``AUDITED_ROUTES``); the
middleware resolves each request, and after the view answered writes one
:class:`PatientDataAccess` row with the subject taken from the URL, the query string,
the admin's alert id or (CDS Hooks) the body. Listings (worklist rows, the admin's alert
list) name no one patient: their row keeps the filter and search they answered. The live
worklist sockets record their snapshots through :func:`record_access` too. Rows go to the
database only: identifiers never reach a log.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import orjson
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException

from alerts_web.access_audit.models import Channel, PatientDataAccess
from alerts_web.alerts.models import Alert
from alerts_web.login_lockout import client_address
from readmit_core.client_address import client_address as forwarded_client
from readmit_core.settings import get_settings

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
    "wards:worklist-data": Channel.WORKLIST,
    "admin:alerts_alert_changelist": Channel.ADMIN,
    "admin:alerts_alert_change": Channel.ADMIN,
    "admin:alerts_alert_history": Channel.ADMIN,
    "admin:alerts_alert_delete": Channel.ADMIN,
}
# admin routes whose ``object_id`` is an Alert's primary key: the row names its patient
_ADMIN_ALERT_ROUTES = frozenset(r for r in AUDITED_ROUTES if r.startswith("admin:alerts_alert_"))
# listings: the row keeps what they were asked for (the subject is many patients)
_LISTINGS = frozenset({"wards:worklist-data", "admin:alerts_alert_changelist"})
_FIELD = 64
_QUERY = 200
STATIC_PREFIX = "/static/"


def _reads_body(request: HttpRequest, route: str) -> bool:
    """CDS Hooks posts: the view parses the body whatever its Content-Type, so does the audit."""
    return request.method == "POST" and AUDITED_ROUTES.get(route) is Channel.CDS


def _admin_alert(object_id: Any) -> dict[str, str]:
    if not str(object_id).isdigit():
        return {}
    found = (
        Alert.objects.filter(pk=int(object_id))
        .values_list("encounter_id", "patient_id", "ward__code")
        .first()
    )
    return dict(zip(("encounter_id", "patient_id", "ward"), found, strict=True)) if found else {}


def _subject(request: HttpRequest, route: str, kwargs: dict[str, Any]) -> dict[str, str]:
    subject = {
        "encounter_id": str(kwargs.get("encounter_id") or request.GET.get("encounter") or ""),
        "patient_id": str(kwargs.get("patient_id") or request.GET.get("patient") or ""),
        "ward": str(
            kwargs.get("ward") or kwargs.get("code") or ",".join(request.GET.getlist("ward"))
        ),
        "query": request.GET.urlencode() if route in _LISTINGS else "",
    }
    if "resource_id" in kwargs:  # a RiskAssessment id names the encounter it assesses
        subject["encounter_id"] = str(kwargs["resource_id"])
    if route in _ADMIN_ALERT_ROUTES and "object_id" in kwargs:
        subject |= _admin_alert(kwargs["object_id"])
    if _reads_body(request, route):
        try:  # as the view reads it (alerts_web.cds.views._body): orjson, any Content-Type
            context = orjson.loads(request.body or b"{}").get("context") or {}
        except (orjson.JSONDecodeError, AttributeError, RawPostDataException):
            context = {}
        if isinstance(context, dict):
            subject["patient_id"] = subject["patient_id"] or str(context.get("patientId") or "")
            subject["encounter_id"] = subject["encounter_id"] or str(
                context.get("encounterId") or ""
            )
    for ref in ("patient_id", "encounter_id"):  # FHIR references: Patient/123 -> 123
        subject[ref] = subject[ref].rsplit("/", 1)[-1]
    return subject


def _clean(subject: dict[str, str]) -> dict[str, str]:
    """Fit the columns; a NUL names nothing and PostgreSQL text cannot hold it (the read is
    still recorded)."""
    cut = {key: value[: _QUERY if key == "query" else _FIELD] for key, value in subject.items()}
    return {key: value.replace("\x00", "\ufffd") for key, value in cut.items()}


def _ip(addr: str) -> str | None:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


def record_access(
    *,
    actor: str,
    channel: Channel,
    route: str,
    remote_addr: str | None,
    status: int,
    **subject: str,
) -> None:
    """Write one audit row; a database failure is logged by route only (no identifiers)."""
    try:
        PatientDataAccess.objects.create(
            actor=actor[:150],
            channel=channel,
            route=route,
            remote_addr=remote_addr,
            status=status,
            **_clean(subject),
        )
    except DatabaseError:
        # The route only, never the subject: the log stays free of identifiers.
        log.exception("access audit row not written for %s", route)


def _actor(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.get_username())
    from alerts_web.api.auth import principal_for

    principal = principal_for(request)
    return str(principal.get_username()) if principal is not None else "anonymous"


def _remote_addr(request: HttpRequest) -> str | None:
    """The client behind the proxies, by the login lockout's rule (READMIT_LOGIN_PROXY_HOPS)."""
    return _ip(client_address(request))


def scope_address(scope: dict[str, Any]) -> str | None:
    """A WebSocket's client by the same rule: the ASGI peer and its X-Forwarded-For."""
    client = scope.get("client") or ("", 0)
    forwarded = b",".join(v for k, v in scope.get("headers", ()) if k.lower() == b"x-forwarded-for")
    return _ip(
        forwarded_client(
            str(client[0] or ""),
            forwarded.decode("latin-1"),
            get_settings().login_proxy_hops,
        )
    )


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
        # Read the body before the view consumes the stream (CDS Hooks' context).
        match = request.resolver_match
        if match is not None and _reads_body(request, match.view_name):
            _ = request.body

    @staticmethod
    def _record(
        request: HttpRequest,
        response: HttpResponse,
        channel: Channel,
        route: str,
        kwargs: dict[str, Any],
    ) -> None:
        try:  # the API key's client and the admin's alert are looked up in the database
            actor = _actor(request)
            subject = _subject(request, route, kwargs)
        except DatabaseError:
            # Database down (the answer is already the outage 503): no row can be written.
            log.exception("access audit row not written for %s", route)
            return
        record_access(
            actor=actor,
            channel=channel,
            route=route,
            remote_addr=_remote_addr(request),
            status=response.status_code,
            **subject,
        )
