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
from ingest.entries import entry_problems, if_matches
from ingest.notifications import EHR_RETRY_AFTER_SECONDS
from ingest.outcomes import fhir_response, outcome_response
from ingest.requests import BadRequest, read_fhir_body
from ingest.service import Accepted, StayOutcome
from ingest.smart import Principal
from ingest.versions import Stamp, ref_of

router = APIRouter(prefix="/fhir")


def response_bundle(
    kind: str,
    doc: dict[str, Any],
    accepted: Accepted,
    stamps: dict[str, Stamp],
    failures: dict[int, FhirMappingError] | None = None,
    existing: dict[int, str] | None = None,
    prefer: str | None = None,
) -> dict[str, Any]:
    """transaction-response / batch-response with one entry per request entry, in order:
    each with ``status``, ``location`` (``Type/id/_history/n``; an Encounter's is its
    visit's canonical id), ``etag`` and ``lastModified`` of the version written, and, as
    ``Prefer: return=`` asks, the resource as stored (representation) or an
    OperationOutcome (OperationOutcome). ``existing``: entries whose ifNoneExist
    matched that resource (200 with its current version, not created); ``stamps`` by
    ``Type/id`` as sent, and of those existing resources."""
    accepted_at = datetime.now(UTC).isoformat(timespec="seconds")
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(doc.get("entry") or []):
        if existing and index in existing:
            entries.append({"response": _existing_entry(existing[index], stamps)})
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
        stamp = stamps.get(ref_of(resource) or "")
        stay = accepted.outcome_of(rid, entry.get("fullUrl")) if rtype == "Encounter" else None
        code = 200 if stay is not None and stay.outcome != "published" else _status(method, stamp)
        response: dict[str, Any] = {"status": f"{code} {HTTPStatus(code).phrase}"}
        if stamp is not None:
            response.update(location=stamp.location, etag=stamp.etag, lastModified=stamp.instant)
        else:
            response["lastModified"] = accepted_at
            if stay is not None:
                response["location"] = f"Encounter/{stay.encounter_id}"
            elif rid:
                response["location"] = f"{rtype}/{rid}"
        if stay is not None and stay.outcome != "published" and prefer != "minimal":
            response["outcome"] = _stay_outcome(stay)
        answer: dict[str, Any] = {"response": response}
        if prefer == "representation":
            answer["resource"] = stamp.stamped(resource) if stamp else resource
        elif prefer == "operationoutcome" and "outcome" not in response:
            response["outcome"] = operation_outcome(
                _accepted_text(code, stamp), code="informational", severity="information"
            )
        entries.append(answer)
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": f"{kind}-response",
        "entry": entries,
    }


def _existing_entry(ref: str, stamps: dict[str, Stamp]) -> dict[str, Any]:
    """The response entry of an ifNoneExist that matched ``ref``: 200, its current
    version when it has one (it was accepted before versions were kept: none)."""
    stamp = stamps.get(ref)
    if stamp is None:
        return {"status": "200 OK", "location": ref}
    return {
        "status": "200 OK",
        "location": stamp.location,
        "etag": stamp.etag,
        "lastModified": stamp.instant,
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


def _status(method: str, stamp: Stamp | None) -> int:
    """201 when the write made something new, else 200: PUT to a new id creates (201),
    to an existing one updates (200); POST creates (201) unless it resent the current
    version unchanged (200, nothing new)."""
    if stamp is None:
        return 201 if method == "POST" else 200
    if method == "PUT":
        return 201 if stamp.created else 200
    return 201 if stamp.changed else 200


def _accepted_text(code: int, stamp: Stamp | None) -> str:
    """What a write did to the resource's version, in one sentence."""
    if stamp is None:
        return "Accepted (no id, so no version)"
    if stamp.changed:
        return f"{'Created' if code == 201 else 'Updated'} {stamp.location}"
    return f"Unchanged: {stamp.location} already holds this content"


def _canonical(doc: dict[str, Any], accepted: Accepted) -> dict[str, str]:
    """``Encounter/<id as sent>`` -> ``Encounter/<visit's canonical id>`` where they
    differ: a visit resent under a new id is versioned (and located) as the visit."""
    out: dict[str, str] = {}
    entries = doc.get("entry") if doc.get("resourceType") == "Bundle" else [{"resource": doc}]
    for entry in entries or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        if resource.get("resourceType") != "Encounter":
            continue
        full_url = entry.get("fullUrl")
        stay = accepted.outcome_of(
            resource.get("id"), full_url if isinstance(full_url, str) else None
        )
        ref = ref_of(resource)
        if stay is not None and ref is not None and stay.encounter_id != resource.get("id"):
            out[ref] = f"Encounter/{stay.encounter_id}"
    return out


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
    if body.get("resourceType") == "Bundle" and is_notification(body):
        return await _notify(ctx, body, caller)  # the handler checks the caller's scopes
    doc = _bundle(body, caller, wrong)
    prefer = _return_preference(request.headers.get("prefer"))
    if doc.get("type") == "transaction":
        # atomic: the first entry the http rules refuse fails the whole transaction
        for problem in entry_problems(doc, validate=False).values():
            raise problem
        accepted, failures, existing, stamps = await run_in_threadpool(
            _write_bundle, ctx, doc, atomic=True
        )
        return fhir_response(
            response_bundle("transaction", doc, accepted, stamps, None, existing, prefer)
        )
    if doc.get("type") != "batch":
        raise wrong
    accepted, failures, existing, stamps = await run_in_threadpool(
        _write_bundle, ctx, doc, atomic=False
    )
    return fhir_response(
        response_bundle("batch", doc, accepted, stamps, failures, existing, prefer)
    )


def _write_bundle(
    ctx: IngestContext, doc: dict[str, Any], *, atomic: bool
) -> tuple[Accepted, dict[int, FhirMappingError], dict[int, str], dict[str, Stamp]]:
    """A transaction's or batch's blocking work in one thread-pool hand-off (each one
    costs a thread switch and event-loop wakeups): its ifMatch checks (a transaction
    fails whole on the first conflict, a batch refuses that entry), acceptance, then
    the versions of what was written."""
    conflicts = ctx.versions.conflicts(if_matches(doc))
    if atomic:
        for conflict in conflicts.values():
            raise conflict
    refused = {i: e for i, e in conflicts.items() if i is not None}
    accepted, failures, existing = ctx.service.accept_conditional(
        doc, atomic=atomic, refused=None if atomic else refused
    )
    return accepted, failures, existing, _stamps(ctx, doc, accepted, failures, existing)


def _stamps(
    ctx: IngestContext,
    doc: dict[str, Any],
    accepted: Accepted,
    failures: dict[int, FhirMappingError],
    existing: dict[int, str],
) -> dict[str, Stamp]:
    """Record the versions of a Bundle's accepted entries (not the refused ones, nor
    those whose ifNoneExist matched: nothing was written) and read the matched ones'."""
    written = [
        entry["resource"]
        for index, entry in enumerate(doc.get("entry") or [])
        if index not in failures
        and index not in existing
        and isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
    ]
    aliases = _canonical(doc, accepted)
    older = {r for r in map(ref_of, written) if r and accepted.is_stale(r)}
    fresh = [r for r in written if ref_of(r) not in older]
    stamps = ctx.versions.record(fresh, aliases)
    held = [*existing.values(), *(aliases.get(r, r) for r in older)]
    if held:  # matched an existing resource, or older than it: its current version
        current = ctx.versions.current(held)
        current.update(
            {r: current[aliases.get(r, r)] for r in older if aliases.get(r, r) in current}
        )
        stamps = {**current, **stamps}
    return stamps


@router.post("/$subscription-notification")
async def notification(
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    """Handshake/heartbeat acknowledged; full-resource mapped; id-only and empty fetched
    from the EHR first (ingest.notifications)."""
    return await _notify(ctx, body, caller)


def is_notification(doc: dict[str, Any]) -> bool:
    """A subscription notification, whichever address it was posted to: an R4B/R5
    ``subscription-notification`` Bundle, or an R4 backport ``history`` Bundle whose
    first entry is its Parameters status. Posted to [base] or [base]/Bundle it takes the
    notification path too, so an id-only one is fetched, never accepted empty."""
    if doc.get("type") == "subscription-notification":
        return True
    entries = doc.get("entry")
    if doc.get("type") != "history" or not isinstance(entries, list) or not entries:
        return False
    first = entries[0].get("resource") if isinstance(entries[0], dict) else None
    return isinstance(first, dict) and first.get("resourceType") == "Parameters"


async def _notify(ctx: IngestContext, body: dict[str, Any], caller: Principal) -> Response:
    """An EHR that could not be read is answered 503 + Retry-After: the EHR keeps the
    event and sends it again; nothing that was not fetched is answered 2xx."""
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
    request: Request,
    ctx: IngestContext = Depends(ingest_context),
    caller: Principal = Depends(principal),
    body: dict[str, Any] = Depends(fhir_body),
) -> Response:
    if body.get("resourceType") == "Bundle" and is_notification(body):
        return await _notify(ctx, body, caller)  # the handler checks the caller's scopes
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
    condition = request.headers.get("if-none-exist")
    if rid is None and condition:  # conditional create: search and create under one lock
        created, found = await run_in_threadpool(
            ctx.service.create_conditional, doc, rtype, condition
        )
        if len(found) > 1:
            raise MultipleMatches(
                f"If-None-Exist: {len(found)} {rtype} resources match; nothing was created",
                element="If-None-Exist",
            )
        if created is None:
            return await _existing(ctx, f"{rtype}/{next(iter(found))}")
        accepted = created
    else:
        accepted = await _run(ctx.service.accept, doc)
    method = "POST" if rid is None else "PUT"
    return await _answer(ctx, method, doc, accepted, request.headers.get("prefer"))


async def _existing(ctx: IngestContext, ref: str) -> Response:
    """A conditional create that matched: 200, the existing (versioned) location,
    nothing created or scored."""
    body = operation_outcome(
        f"{ref} already exists (If-None-Exist matched); nothing was created or scored",
        code="duplicate",
        severity="information",
    )
    stamp = (await run_in_threadpool(ctx.versions.current, [ref])).get(ref)
    headers = {"Location": f"{ctx.settings.ingest_url}/fhir/{stamp.location if stamp else ref}"}
    if stamp is not None:
        headers.update({"ETag": stamp.etag, "Last-Modified": stamp.http_date})
    return fhir_response(body, 200, headers)


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
    ref = ref_of(doc) or ""
    aliases = _canonical(doc, accepted)
    if accepted.is_stale(ref):  # older than what we have: its version is not recorded
        target = aliases.get(ref, ref)
        stamp = (await run_in_threadpool(ctx.versions.current, [target])).get(target)
    else:
        stamps = await run_in_threadpool(ctx.versions.record, [doc], aliases)
        stamp = stamps.get(ref)
    return created_response(ctx.settings.ingest_url, method, doc, accepted, stamp, prefer)


def created_response(
    ingest_url: str,
    method: str,
    doc: dict[str, Any],
    accepted: Accepted,
    stamp: Stamp | None,
    prefer: str | None,
) -> Response:
    """The answer to one create/update whose version ``stamp`` is recorded. An
    Encounter is located at its visit's canonical id; a visit already accepted with
    the same features is 200 (nothing new to score)."""
    rtype = doc.get("resourceType")
    stay = accepted.outcome_of(doc.get("id"), None) if rtype == "Encounter" else None
    unchanged = stay is not None and stay.outcome == "duplicate"
    code = 200 if unchanged or accepted.is_stale(ref_of(doc)) else _status(method, stamp)
    headers = {"Last-Modified": formatdate(usegmt=True)}
    if stamp is not None:
        headers.update(
            {
                "Location": f"{ingest_url}/fhir/{stamp.location}",
                "ETag": stamp.etag,
                "Last-Modified": stamp.http_date,
            }
        )
    elif stay is not None:
        headers["Location"] = f"{ingest_url}/fhir/Encounter/{stay.encounter_id}"
    elif doc.get("id"):
        headers["Location"] = f"{ingest_url}/fhir/{rtype}/{doc['id']}"
    wanted = _return_preference(prefer)
    if wanted == "minimal":
        return Response(status_code=code, headers=headers)
    if wanted == "representation":
        return fhir_response(stamp.stamped(doc) if stamp else doc, code, headers)
    done = _accepted_text(code, stamp)
    if accepted.is_stale(ref_of(doc)):
        done = f"Not stored: {stamp.location if stamp else doc.get('id')} is the newer version"
    body = operation_outcome(
        f"{done}; {accepted.summary()}",
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
