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
from ingest.conditional import MultipleMatches
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
from ingest.service import Accepted, StayOutcome
from ingest.smart import Principal

router = APIRouter(prefix="/fhir")


def response_bundle(
    kind: str,
    doc: dict[str, Any],
    accepted: Accepted,
    failures: dict[int, FhirMappingError] | None = None,
    existing: dict[int, str] | None = None,
) -> dict[str, Any]:
    """transaction-response / batch-response with one entry per request entry, in order;
    ``existing``: entries whose ifNoneExist matched that resource (200, not created)."""
    accepted_at = datetime.now(UTC).isoformat(timespec="seconds")
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(doc.get("entry") or []):
        if existing and index in existing:
            entries.append({"response": {"status": "200 OK", "location": existing[index]}})
            continue
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
        stay = accepted.outcome_of(rid, entry.get("fullUrl")) if rtype == "Encounter" else None
        if stay is not None:
            response["location"] = f"Encounter/{stay.encounter_id}"
            if stay.outcome != "published":
                response["status"] = "200 OK"
                response["outcome"] = _stay_outcome(stay)
        entries.append({"response": response})
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": f"{kind}-response",
        "entry": entries,
    }


def _stay_outcome(stay: StayOutcome) -> dict[str, Any]:
    """Why a stay was not (re-)scored, as an information issue."""
    if stay.outcome == "duplicate":
        text = (
            f"This visit (encounter {stay.encounter_id}) was already accepted with the same "
            "features; not scored again"
        )
        return operation_outcome(text, code="duplicate", severity="information")
    return operation_outcome(
        f"Encounter {stay.encounter_id} not re-scored: {stay.reason}",
        code="informational",
        severity="information",
    )


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
        accepted, _, existing = await run_in_threadpool(
            ctx.service.accept_conditional, doc, atomic=True
        )
        return fhir_response(response_bundle("transaction", doc, accepted, None, existing))
    if doc.get("type") != "batch":
        raise wrong
    accepted, failures, existing = await run_in_threadpool(
        ctx.service.accept_conditional, doc, atomic=False
    )
    return fhir_response(response_bundle("batch", doc, accepted, failures, existing))


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
    condition = request.headers.get("if-none-exist")
    if rid is None and condition:  # conditional create
        found = await run_in_threadpool(ctx.service.existing, rtype, condition, "If-None-Exist")
        if len(found) > 1:
            raise MultipleMatches(
                f"If-None-Exist: {len(found)} {rtype} resources match; nothing was created",
                element="If-None-Exist",
            )
        if found:
            return _existing(ctx, rtype, next(iter(found)))
    accepted = await _run(ctx.service.accept, doc)
    return _created(ctx, rtype, doc, accepted, request.headers.get("prefer"))


def _existing(ctx: IngestContext, rtype: str, rid: str) -> Response:
    """A conditional create that matched: 200, the existing location, nothing created."""
    body = operation_outcome(
        f"{rtype}/{rid} already exists (If-None-Exist matched); nothing was created or scored",
        code="duplicate",
        severity="information",
    )
    return fhir_response(body, 200, {"Location": f"{ctx.settings.ingest_url}/fhir/{rtype}/{rid}"})


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
    status = 201
    if doc.get("id"):
        headers["Location"] = f"{ctx.settings.ingest_url}/fhir/{rtype}/{doc['id']}"
    stay = accepted.outcome_of(doc.get("id"), None) if rtype == "Encounter" else None
    if stay is not None:  # the visit's id, which a resend under a new id does not change
        headers["Location"] = f"{ctx.settings.ingest_url}/fhir/Encounter/{stay.encounter_id}"
        status = 200 if stay.outcome == "duplicate" else 201
    wanted = _return_preference(prefer)
    if wanted == "minimal":
        return Response(status_code=status, headers=headers)
    if wanted == "representation":
        return fhir_response(doc, status, headers)
    body = operation_outcome(accepted.summary(), code="informational", severity="information")
    return fhir_response(body, status, headers)


def _return_preference(prefer: str | None) -> str | None:
    """The ``return`` token of a Prefer header (RFC 7240), if any."""
    for part in (prefer or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"').lower()
    return None
