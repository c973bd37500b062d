"""FHIR OperationOutcome and error responses: the only way the ingest API says no.

Every refusal is an OperationOutcome with ``application/fhir+json``, so an EHR
interface engine can log and route it like any FHIR server's answer.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from fhir_mappings import FHIR_JSON

_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
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
    issue: dict[str, Any] = {
        "severity": severity,
        "code": _CODES.get(status, "exception"),
        "diagnostics": diagnostics,
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


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
