"""Redis or database outages answered as 503 + Retry-After, in each surface's own shape.

Views read cached scores from Redis and wards, keys and alerts from the database;
when either is down the request cannot be answered *now*, which is a 503 the client
may retry, not a 500 bug page. One middleware turns those exceptions into:

* ``/api/…`` — the REST API's JSON error (``{"error": "unavailable", "detail": …}``),
* ``/fhir/…`` — an OperationOutcome (``transient``) as ``application/fhir+json``,
* ``/cds-services…`` — JSON ``{"error": …}`` as the CDS Hooks views answer errors,
* anything else (pages) — a short plain-text 503,

each with ``Retry-After`` and ``Cache-Control: no-store``. What failed is logged by
kind (never the path: it carries patient identifiers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from alerts_web.fhir_api.resources import operation_outcome
from fhir_mappings import FHIR_JSON
from readmit_core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    OperationalError,
    InterfaceError,
    ServiceUnavailable,
)


def _dependency(exc: BaseException) -> str:
    if isinstance(exc, redis.RedisError):
        return "score cache (Redis)"
    if isinstance(exc, ServiceUnavailable):
        return exc.service
    return "database"


def outage_response(request: HttpRequest, dependency: str) -> HttpResponse:
    """The 503 for ``request``'s surface."""
    detail = f"The {dependency} is unavailable; retry in {RETRY_AFTER_SECONDS} s."
    path = request.path
    response: HttpResponse
    if path.startswith("/api/"):
        response = JsonResponse({"error": "unavailable", "detail": detail}, status=503)
    elif path.startswith("/fhir/"):
        body = operation_outcome("transient", detail)
        response = HttpResponse(orjson.dumps(body), status=503, content_type=FHIR_JSON)
    elif path.startswith("/cds-services"):
        response = JsonResponse({"error": detail}, status=503)
    else:
        response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    """Catches outage exceptions raised by views (DRF re-raises what it does not handle)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OUTAGE_ERRORS):
            return None
        dependency = _dependency(exception)
        log.warning(
            "dependency unavailable; answered 503",
            extra={"dependency": dependency, "error": type(exception).__name__},
        )
        return outage_response(request, dependency)
