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
from ingest.entries import entry_problems, if_matches
from ingest.outcomes import fhir_response, outcome_response
from ingest.requests import BadRequest, read_fhir_body
from ingest.service import Accepted
from ingest.smart import Principal
from ingest.versions import Stamp, ref_of

router = APIRouter(prefix="/fhir")


def response_bundle(
    kind: str,
    doc: dict[str, Any],
    accepted: Accepted,
    stamps: dict[str, Stamp],
    failures: dict[int, FhirMappingError] | None = None,
    prefer: str | None = None,
) -> dict[str, Any]:
    """transaction-response / batch-response with one entry per request entry, in order:
    each with ``status``, ``location`` (``Type/id/_history/n``), ``etag`` and
    ``lastModified`` of the version written, and, as ``Prefer: return=`` asks, the
    resource as stored (representation) or an OperationOutcome (OperationOutcome)."""
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
        method = ((entry.get("request") or {}).get("method") or "POST").upper()
        stamp = stamps.get(ref_of(resource) or "")
        code = _status(method, stamp)
        response: dict[str, Any] = {"status": f"{code} {HTTPStatus(code).phrase}"}
        if stamp is not None:
            response.update(location=stamp.location, etag=stamp.etag, lastModified=stamp.instant)
        else:
            response["lastModified"] = accepted_at
        rid = resource.get("id")
        resent = rid in accepted.duplicates and rid not in published
        if resource.get("resourceType") == "Encounter" and resent and prefer != "minimal":
            response["outcome"] = operation_outcome(
                "This encounter version was already accepted",
                code="duplicate",
                severity="information",
            )
        answer: dict[str, Any] = {"response": response}
        if prefer == "representation":
            answer["resource"] = stamp.stamped(resource) if stamp else resource
        elif prefer == "operationoutcome" and "outcome" not in response:
            response["outcome"] = _accepted_outcome(code, stamp)
        entries.append(answer)
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": f"{kind}-response",
        "entry": entries,
    }


def _status(method: str, stamp: Stamp | None) -> int:
    """201 when the write made something new, else 200: PUT to a new id creates (201),
    to an existing one updates (200); POST creates (201) unless it resent the current
    version unchanged (200, nothing new)."""
    if stamp is None:
        return 201 if method == "POST" else 200
    if method == "PUT":
        return 201 if stamp.created else 200
    return 201 if stamp.changed else 200


def _accepted_outcome(code: int, stamp: Stamp | None) -> dict[str, Any]:
    if stamp is None:
        text = "Accepted (no id, so no version)"
    elif stamp.changed:
        text = f"{'Created' if code == 201 else 'Updated'} {stamp.location}"
    else:
        text = f"Unchanged: {stamp.location} already holds this content"
    return operation_outcome(text, code="informational", severity="information")


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
    request: Request,
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
    prefer = _return_preference(request.headers.get("prefer"))
    if doc.get("type") == "transaction":
        # atomic: the first entry the http rules refuse fails the whole transaction
        for problem in entry_problems(doc, validate=False).values():
            raise problem
        conflicts = await run_in_threadpool(ctx.versions.conflicts, if_matches(doc))
        for conflict in conflicts.values():
            raise conflict
        accepted = await _run(ctx.service.accept, doc)
        stamps = await run_in_threadpool(ctx.versions.record, _written(doc, {}))
        return fhir_response(response_bundle("transaction", doc, accepted, stamps, prefer=prefer))
    if doc.get("type") != "batch":
        raise wrong
    refused = await run_in_threadpool(ctx.versions.conflicts, if_matches(doc))
    accepted, failures = await run_in_threadpool(
        ctx.service.accept_batch, doc, {i: e for i, e in refused.items() if i is not None}
    )
    stamps = await run_in_threadpool(ctx.versions.record, _written(doc, failures))
    return fhir_response(response_bundle("batch", doc, accepted, stamps, failures, prefer))


def _written(doc: dict[str, Any], failures: dict[int, FhirMappingError]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries that were accepted (those get a version)."""
    return [
        entry["resource"]
        for index, entry in enumerate(doc.get("entry") or [])
        if index not in failures
        and isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
    ]


@router.post("/$subscription-notification")
async def notification(
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    refusal = BadRequest(422, "A subscription notification must be a Bundle", "resourceType")
    await _run(ctx.service.accept, _bundle(body, caller, refusal))
    return Response(status_code=200)


@router.post("/Bundle")
async def any_bundle(
    request: Request,
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    doc = _bundle(body, caller, BadRequest(400, "Body is not a Bundle", "resourceType"))
    accepted = await _run(ctx.service.accept, doc)
    return await _answer(ctx, "POST", doc, accepted, request.headers.get("prefer"))


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


@router.get("/{rtype}/{rid}/_history/{vid}")
@router.get("/{rtype}/{rid}/_history")
def history(rtype: str, rid: str) -> Response:
    """vread and history are declared unsupported (CapabilityStatement: readHistory
    false, no vread): answered so, not with a bare 404."""
    return outcome_response(
        f"vread/history of {rtype}/{rid} is not supported: this endpoint is write-only "
        "and keeps only each resource's version number (see /fhir/metadata)",
        status=405,
        headers={"Allow": ""},
    )


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
    if_match = request.headers.get("if-match")
    if rid is not None and if_match:
        conflicts = await run_in_threadpool(
            ctx.versions.conflicts, [(None, f"{rtype}/{rid}", if_match)]
        )
        for conflict in conflicts.values():
            raise conflict
    accepted = await _run(ctx.service.accept, doc)
    method = "POST" if rid is None else "PUT"
    return await _answer(ctx, method, doc, accepted, request.headers.get("prefer"))


async def _answer(
    ctx: IngestContext,
    method: str,
    doc: dict[str, Any],
    accepted: Accepted,
    prefer: str | None = None,
) -> Response:
    """Record the version, then answer 201/200 with ETag, Last-Modified and a versioned
    Location, the body as ``Prefer: return=`` asks (minimal: none, representation: the
    resource as stored, OperationOutcome or nothing said: an outcome)."""
    stamps = await run_in_threadpool(ctx.versions.record, [doc])
    stamp = stamps.get(ref_of(doc) or "")
    return created_response(ctx.settings.ingest_url, method, doc, accepted, stamp, prefer)


def created_response(
    ingest_url: str,
    method: str,
    doc: dict[str, Any],
    accepted: Accepted,
    stamp: Stamp | None,
    prefer: str | None,
) -> Response:
    """The answer to one create/update whose version ``stamp`` is recorded."""
    code = _status(method, stamp)
    headers = {"Last-Modified": formatdate(usegmt=True)}
    if stamp is not None:
        headers.update(
            {
                "Location": f"{ingest_url}/fhir/{stamp.location}",
                "ETag": stamp.etag,
                "Last-Modified": stamp.http_date,
            }
        )
    wanted = _return_preference(prefer)
    if wanted == "minimal":
        return Response(status_code=code, headers=headers)
    if wanted == "representation":
        return fhir_response(stamp.stamped(doc) if stamp else doc, code, headers)
    body = operation_outcome(
        f"{_accepted_outcome(code, stamp)['issue'][0]['diagnostics']}; "
        f"{len(accepted.published)} encounter(s) queued for scoring, "
        f"{len(accepted.duplicates)} already known",
        code="informational",
        severity="information",
    )
    return fhir_response(body, code, headers)


def _return_preference(prefer: str | None) -> str | None:
    """The ``return`` token of a Prefer header (RFC 7240), lower case, if any."""
    for part in (prefer or "").split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == "return":
                return value.strip().strip('"').lower()
    return None
