"""The FHIR receiver: transaction/batch, per-type create/update, notifications,
CapabilityStatement and SMART discovery."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fhir_mappings.errors import FhirMappingError
from fhir_mappings.outcome import operation_outcome
from ingest.capability import ACCEPTED_TYPES, capability_statement
from ingest.context import (
    IngestContext,
    fhir_body,
    ingest_context,
    principal,
    software_version,
)
from ingest.ehr_client import EhrUnavailable
from ingest.entries import entry_problems
from ingest.notifications import EHR_RETRY_AFTER_SECONDS
from ingest.outcomes import fhir_response, outcome_response
from ingest.requests import BadRequest, read_fhir_body
from ingest.service import Accepted
from ingest.smart import Principal

router = APIRouter(prefix="/fhir")


def response_bundle(
    kind: str,
    doc: dict[str, Any],
    accepted: Accepted,
    failures: dict[int, FhirMappingError] | None = None,
) -> dict[str, Any]:
    """transaction-response / batch-response with one entry per request entry, in order."""
    published = set(accepted.published)
    accepted_at = datetime.now(UTC).isoformat(timespec="seconds")
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(doc.get("entry") or []):
        if failures and index in failures:
            failure = failures[index]
            status = f"{failure.status} {HTTPStatus(failure.status).phrase}"
            entries.append(
                {"response": {"status": status, "outcome": failure.to_operation_outcome()}}
            )
            continue
        resource = entry.get("resource") or {}
        rtype, rid = resource.get("resourceType", ""), resource.get("id")
        method = ((entry.get("request") or {}).get("method") or "POST").upper()
        status = "201 Created" if method == "POST" else "200 OK"
        response: dict[str, Any] = {"status": status, "lastModified": accepted_at}
        if rid:
            response["location"] = f"{rtype}/{rid}"
        if rtype == "Encounter" and rid in accepted.duplicates and rid not in published:
            response["status"] = "200 OK"
            response["outcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "duplicate",
                        "diagnostics": "This encounter version was already accepted",
                    }
                ],
            }
        entries.append({"response": response})
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": f"{kind}-response",
        "entry": entries,
    }


def _entry_types(doc: dict[str, Any]) -> set[str]:
    """Every resource type a Bundle writes: the token's scope must cover each one."""
    return {
        str((entry.get("resource") or {}).get("resourceType"))
        for entry in doc.get("entry") or []
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    }


async def _run(func: Callable[[dict[str, Any]], Accepted], doc: dict[str, Any]) -> Accepted:
    """Blocking work (mapping, Redis, waiting for Kafka acks) runs off the event loop."""
    return await run_in_threadpool(func, doc)


def _bundle(doc: dict[str, Any], caller: Principal, refusal: BadRequest) -> dict[str, Any]:
    """Insist on a Bundle, check the scope covers it."""
    if doc.get("resourceType") != "Bundle":
        raise refusal
    caller.require_write(_entry_types(doc))
    return doc


@router.get("/.well-known/smart-configuration")
def smart_configuration(ctx: IngestContext = Depends(ingest_context)) -> Response:
    return Response(
        orjson.dumps(ctx.authority.smart_configuration()), media_type="application/json"
    )


@router.get("/metadata")
def metadata(ctx: IngestContext = Depends(ingest_context)) -> Response:
    return fhir_response(capability_statement(ctx.settings, software_version()))


@router.post("")
async def transaction(
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    wrong = BadRequest(
        422,
        "POST [base] takes a Bundle of type transaction or batch; "
        "post other Bundles to [base]/Bundle",
        "Bundle.type",
    )
    doc = _bundle(body, caller, wrong)
    if doc.get("type") == "transaction":
        # atomic: the first entry the http rules refuse fails the whole transaction
        for problem in entry_problems(doc, validate=False).values():
            raise problem
        accepted = await _run(ctx.service.accept, doc)
        return fhir_response(response_bundle("transaction", doc, accepted))
    if doc.get("type") != "batch":
        raise wrong
    accepted, failures = await run_in_threadpool(ctx.service.accept_batch, doc)
    return fhir_response(response_bundle("batch", doc, accepted, failures))


@router.post("/$subscription-notification")
async def notification(
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    """Handshake/heartbeat acknowledged; full-resource mapped; id-only and empty fetched
    from the EHR first (ingest.notifications). An EHR that could not be read is answered
    503 + Retry-After: the EHR keeps the event and sends it again."""
    try:
        handled = await run_in_threadpool(ctx.notifications.handle, body, caller)
    except EhrUnavailable as exc:
        return outcome_response(
            f"Could not fetch from the EHR: {exc}; nothing was accepted. Retry later.",
            status=503,
            headers={"Retry-After": EHR_RETRY_AFTER_SECONDS},
        )
    return fhir_response(
        operation_outcome(handled.summary(), code="informational", severity="information")
    )


@router.post("/Bundle")
async def any_bundle(
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    doc = _bundle(body, caller, BadRequest(400, "Body is not a Bundle", "resourceType"))
    return _created(ctx, "Bundle", doc, await _run(ctx.service.accept, doc))


@router.post("/{rtype}")
async def create(
    rtype: str,
    request: Request,
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
) -> Response:
    return await _single(ctx, caller, rtype, None, request)


@router.put("/{rtype}/{rid}")
async def update(
    rtype: str,
    rid: str,
    request: Request,
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
) -> Response:
    return await _single(ctx, caller, rtype, rid, request)


async def _single(
    ctx: IngestContext, caller: Principal, rtype: str, rid: str | None, request: Request
) -> Response:
    # the type is checked before the body is read: an unknown type is 404 whatever the body
    if rtype not in ACCEPTED_TYPES:
        raise BadRequest(404, f"Resource type {rtype} is not supported here")
    doc = await read_fhir_body(request, ctx.settings.max_request_bytes)
    if doc.get("resourceType") != rtype:
        raise BadRequest(400, f"Body is a {doc.get('resourceType')}, not a {rtype}", "resourceType")
    if rid is not None and doc.get("id") != rid:
        raise BadRequest(400, f"Resource id {doc.get('id')!r} does not match URL id {rid!r}", "id")
    caller.require_write({rtype})
    accepted = await _run(ctx.service.accept, doc)
    return _created(ctx, rtype, doc, accepted, request.headers.get("prefer"))


def _created(
    ctx: IngestContext,
    rtype: str,
    doc: dict[str, Any],
    accepted: Accepted,
    prefer: str | None = None,
) -> Response:
    """201 with Location and Last-Modified; the body as ``Prefer: return=`` asks
    (minimal: none, representation: the resource as accepted, default: an outcome)."""
    headers = {"Last-Modified": formatdate(usegmt=True)}
    if doc.get("id"):
        headers["Location"] = f"{ctx.settings.ingest_url}/fhir/{rtype}/{doc['id']}"
    wanted = _return_preference(prefer)
    if wanted == "minimal":
        return Response(status_code=201, headers=headers)
    if wanted == "representation":
        return fhir_response(doc, 201, headers)
    body = operation_outcome(
        f"Accepted; {len(accepted.published)} encounter(s) queued for scoring, "
        f"{len(accepted.duplicates)} already known",
        code="informational",
        severity="information",
    )
    return fhir_response(body, 201, headers)


def _return_preference(prefer: str | None) -> str | None:
    """The ``return`` token of a Prefer header (RFC 7240), if any."""
    for part in (prefer or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower()
    return None
