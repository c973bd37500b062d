"""The FHIR R4 ingestion API (FastAPI): EHRs push discharge data here.

It behaves like a write-only FHIR server: ``application/fhir+json`` in and out, a
transaction/batch endpoint answering with response Bundles, per-type create/update,
a Subscription notification endpoint, a truthful CapabilityStatement, and every
refusal as an OperationOutcome with the right status. Nothing is answered 2xx unless
its feature events were acknowledged by Kafka.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qsl

import orjson
import redis
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from fhir_mappings.bundle import load_json
from fhir_mappings.errors import FhirMappingError, InvalidJson
from ingest import metrics
from ingest.auth import AuthError, bearer_token, require_token
from ingest.capability import ACCEPTED_TYPES, capability_statement
from ingest.event_log import EventLog
from ingest.history_store import DurableHistory
from ingest.outcomes import FHIR_JSON, fhir_response, outcome_response
from ingest.publisher import EventPublisher
from ingest.resource_store import ResourceStore
from ingest.service import Accepted, IngestService
from ingest.smart import SmartAuthority
from patient_state.store import open_store
from readmit.errors import ServiceUnavailable
from readmit.settings import Settings, get_settings
from scorer.cache import ScoreCache

log = logging.getLogger(__name__)

_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
RETRY_AFTER_SECONDS = "5"


class BadRequest(Exception):
    def __init__(self, status: int, message: str, expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.expression = expression


def _software_version() -> str:
    try:
        return version("readmit")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+source"


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


def response_bundle(
    kind: str,
    doc: dict[str, Any],
    accepted: Accepted,
    failures: dict[int, FhirMappingError] | None = None,
) -> dict[str, Any]:
    """transaction-response / batch-response with one entry per request entry, in order."""
    published = set(accepted.published)
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(doc.get("entry") or []):
        if failures and index in failures:
            failure = failures[index]
            status = "400 Bad Request" if failure.status == 400 else "422 Unprocessable Entity"
            entries.append(
                {"response": {"status": status, "outcome": failure.to_operation_outcome()}}
            )
            continue
        resource = entry.get("resource") or {}
        rtype, rid = resource.get("resourceType", ""), resource.get("id")
        method = ((entry.get("request") or {}).get("method") or "POST").upper()
        status = "201 Created" if method == "POST" else "200 OK"
        response: dict[str, Any] = {"status": status}
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


def create_app(
    settings: Settings | None = None,
    *,
    publisher: EventPublisher | None = None,
    redis_client: redis.Redis | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    client = redis_client or redis.Redis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2
    )
    pub = publisher or EventPublisher(settings)
    state = open_store(settings.database_url, settings.state_dir, settings.topic_prefix)
    resources = ResourceStore(state, settings.score_ttl_seconds, settings.history_ttl_seconds)
    event_log = EventLog(settings)
    service = IngestService(DurableHistory(state), pub, resources, event_log)
    scores = ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds)
    authority = SmartAuthority(settings, replay_guard=client)
    read_tokens = frozenset({settings.api_token.get_secret_value()})
    metrics_tokens = frozenset({settings.metrics_token.get_secret_value()} - {""})
    # Public: health, FHIR metadata and SMART discovery. Everything else needs a token;
    # /metrics anonymously only in the embedded demo (README "Security": the table).
    open_metrics = settings.embedded and not metrics_tokens

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pub.close()
        event_log.close()
        state.db.close()

    app = FastAPI(
        title="readmit FHIR ingest",
        version=_software_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.REQUESTS.labels(path, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(path).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> Response:
        return outcome_response(
            exc.message, status=exc.status, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest) -> Response:
        return outcome_response(exc.message, status=exc.status, expression=exc.expression)

    @app.exception_handler(FhirMappingError)
    async def _mapping(_: Request, exc: FhirMappingError) -> Response:
        return fhir_response(exc.to_operation_outcome(), exc.status)

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(_: Request, exc: ServiceUnavailable) -> Response:
        metrics.PUBLISH_FAILURES.inc()
        log.warning("dependency unavailable", extra={"service": exc.service})
        return outcome_response(
            f"{exc.service} is unavailable; nothing was accepted. Retry later.",
            status=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    @app.exception_handler(redis.RedisError)
    async def _redis_down(_: Request, exc: redis.RedisError) -> Response:
        metrics.REDIS_FAILURES.inc()
        log.warning("redis unavailable", extra={"error": type(exc).__name__})
        return outcome_response(
            "Redis (score cache, token replay guard) is unavailable. Retry later.",
            status=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    @app.post("/auth/token")
    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        try:
            body = authority.issue(form)
        except AuthError as exc:
            error = "invalid_client" if exc.status == 401 else "invalid_request"
            if exc.status == 403:
                error = "invalid_scope"
            status = 400 if exc.status in (400, 403) else 401
            return Response(
                orjson.dumps({"error": error, "error_description": exc.message}),
                status,
                media_type="application/json",
            )
        return Response(
            orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    @app.get("/fhir/.well-known/smart-configuration")
    def smart_configuration() -> Response:
        return Response(
            orjson.dumps(authority.smart_configuration()), media_type="application/json"
        )

    @app.get("/fhir/metadata")
    def metadata() -> Response:
        return fhir_response(capability_statement(settings, _software_version()))

    async def authorized_bundle(request: Request, refusal: BadRequest) -> dict[str, Any]:
        """Authenticate, read the body, insist on a Bundle, check the scope covers it."""
        principal = authority.authenticate(bearer_token(request))
        doc = await read_fhir_body(request, settings.max_request_bytes)
        if doc.get("resourceType") != "Bundle":
            raise refusal
        principal.require_write(_entry_types(doc))
        return doc

    @app.post("/fhir")
    async def transaction(request: Request) -> Response:
        wrong = BadRequest(
            422,
            "POST [base] takes a Bundle of type transaction or batch; "
            "post other Bundles to [base]/Bundle",
            "Bundle.type",
        )
        doc = await authorized_bundle(request, wrong)
        if doc.get("type") == "transaction":
            accepted = await _run(service.accept, doc)
            return fhir_response(response_bundle("transaction", doc, accepted))
        if doc.get("type") != "batch":
            raise wrong
        accepted, failures = await run_in_threadpool(service.accept_batch, doc)
        return fhir_response(response_bundle("batch", doc, accepted, failures))

    @app.post("/fhir/$subscription-notification")
    async def notification(request: Request) -> Response:
        refusal = BadRequest(422, "A subscription notification must be a Bundle", "resourceType")
        await _run(service.accept, await authorized_bundle(request, refusal))
        return Response(status_code=200)

    @app.post("/fhir/Bundle")
    async def any_bundle(request: Request) -> Response:
        doc = await authorized_bundle(
            request, BadRequest(400, "Body is not a Bundle", "resourceType")
        )
        return _created("Bundle", doc, await _run(service.accept, doc))

    @app.post("/fhir/{rtype}")
    async def create(rtype: str, request: Request) -> Response:
        return await _single(rtype, None, request)

    @app.put("/fhir/{rtype}/{rid}")
    async def update(rtype: str, rid: str, request: Request) -> Response:
        return await _single(rtype, rid, request)

    async def _single(rtype: str, rid: str | None, request: Request) -> Response:
        principal = authority.authenticate(bearer_token(request))
        if rtype not in ACCEPTED_TYPES:
            raise BadRequest(404, f"Resource type {rtype} is not supported here")
        doc = await read_fhir_body(request, settings.max_request_bytes)
        if doc.get("resourceType") != rtype:
            raise BadRequest(
                400, f"Body is a {doc.get('resourceType')}, not a {rtype}", "resourceType"
            )
        if rid is not None and doc.get("id") != rid:
            raise BadRequest(
                400, f"Resource id {doc.get('id')!r} does not match URL id {rid!r}", "id"
            )
        principal.require_write({rtype})
        accepted = await _run(service.accept, doc)
        return _created(rtype, doc, accepted)

    def _created(rtype: str, doc: dict[str, Any], accepted: Accepted) -> Response:
        headers = (
            {"Location": f"{settings.ingest_url}/fhir/{rtype}/{doc['id']}"} if doc.get("id") else {}
        )
        body = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": (
                        f"Accepted; {len(accepted.published)} encounter(s) queued for scoring, "
                        f"{len(accepted.duplicates)} already known"
                    ),
                }
            ],
        }
        return fhir_response(body, 201, headers)

    @app.get("/scores/{encounter_id}")
    def score(encounter_id: str, request: Request) -> Response:
        require_token(request, read_tokens)
        event = scores.latest(encounter_id)
        if event is None:
            return outcome_response(f"No score for encounter {encounter_id}", status=404)
        return Response(event.to_bytes(), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Response:
        # accepting needs Kafka and the state database; Redis serves /scores and SMART
        # token replay checks only, so it is reported but does not take ingest out
        checks = {"kafka": pub.ready(), "database": state.db.ping(), "redis": _redis_ok(client)}
        status = 200 if checks["kafka"] and checks["database"] else 503
        return Response(
            orjson.dumps({"ready": status == 200, "checks": checks}),
            status,
            media_type="application/json",
        )

    @app.get("/metrics")
    def prometheus(request: Request) -> PlainTextResponse:
        if not open_metrics:
            require_token(request, metrics_tokens)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> Response:
        """The API description, for integrators holding the read token (not anonymous)."""
        require_token(request, read_tokens)
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    return app


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


def _redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


__all__ = ["FHIR_JSON", "create_app"]
