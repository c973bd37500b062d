"""Reading FHIR request bodies: media type and size enforced before any parsing.

Shared by every router (and used as a FastAPI dependency), so one body rule holds for
the transaction endpoint, per-type create/update and notifications alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from fhir_mappings.bundle import load_json
from fhir_mappings.errors import InvalidJson
from readmit_core.errors import ReadmitError

_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


class BadRequest(ReadmitError):
    """A request refused before its body is read (media type, size); status per instance."""

    issue_code = "invalid"

    def __init__(self, status: int, message: str, expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.expression = expression


async def read_fhir_body(request: Request, limit: int) -> dict[str, Any]:
    """The request body as JSON, enforcing media type and size before parsing."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _JSON_TYPES:
        raise BadRequest(
            415, f"Unsupported media type {ctype or '(none)'}; use application/fhir+json"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"Body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise BadRequest(413, f"Body exceeds the limit of {limit} bytes")
    try:  # the mapper's reader: UTF-8 BOM accepted, nesting limit (TooDeep -> 400 outcome)
        parsed = load_json(bytes(body))
    except InvalidJson as exc:
        raise BadRequest(400, exc.message[:1].upper() + exc.message[1:]) from exc
    if "resourceType" not in parsed:
        raise BadRequest(400, "Body is not a FHIR resource (no resourceType)", "resourceType")
    return parsed
