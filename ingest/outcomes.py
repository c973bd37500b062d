"""FHIR OperationOutcome and error responses: the only way the ingest API says no.

Every refusal is an OperationOutcome with ``application/fhir+json``, so an EHR
interface engine can log and route it like any FHIR server's answer.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from fhir_mappings import FHIR_JSON
from fhir_mappings.outcome import operation_outcome as fhir_outcome

# the FHIR http spec: FHIR JSON with an explicit charset
FHIR_JSON_UTF8 = f"{FHIR_JSON}; charset=utf-8"

_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    503: "transient",
}


def operation_outcome(
    diagnostics: str,
    *,
    status: int,
    expression: str | None = None,
    severity: str = "error",
) -> dict[str, Any]:
    """The shared OperationOutcome, its IssueType chosen from the HTTP status."""
    return fhir_outcome(
        diagnostics, code=_CODES.get(status, "exception"), expression=expression, severity=severity
    )


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type=FHIR_JSON_UTF8, headers=headers
    )


def outcome_response(
    diagnostics: str,
    *,
    status: int,
    expression: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return fhir_response(
        operation_outcome(diagnostics, status=status, expression=expression), status, headers
    )
