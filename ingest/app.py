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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_mappings.errors import FhirMappingError
from ingest import metrics
from ingest.auth import AuthError
from ingest.context import IngestContext, software_version
from ingest.ehr_client import EhrClient
from ingest.event_log import EventLog
from ingest.history_store import DurableHistory
from ingest.notifications import NotificationHandler
from ingest.outcomes import FHIR_JSON, fhir_response, outcome_response
from ingest.publisher import EventPublisher
from ingest.requests import BadRequest, read_fhir_body
from ingest.resource_store import ResourceStore
from ingest.routers import fhir, ops
from ingest.service import IngestService
from ingest.smart import SmartAuthority
from ingest.versions import ResourceVersions
from patient_state.store import open_store
from readmit_core.errors import ServiceUnavailable
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings, get_settings

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class RequestMetrics:
    """Counts and times every HTTP request by route and status (a request that raised
    counts as the 500 it is answered with). A plain ASGI middleware: Starlette's
    ``@app.middleware("http")`` runs each request's app in a task group and streams the
    response through a memory channel, ~5 % of a saturated ingest worker's CPU."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")  # set by the router
            metrics.REQUESTS.labels(path, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(path).observe(time.perf_counter() - start)


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
    metrics_tokens = frozenset({settings.metrics_token.get_secret_value()} - {""})
    service = IngestService(
        DurableHistory(state),
        pub,
        resources,
        event_log,
        state,
        rescore_window_s=settings.rescore_window_hours * 3600,
    )
    ehr = EhrClient(settings)
    context = IngestContext(
        settings=settings,
        client=client,
        publisher=pub,
        service=service,
        versions=ResourceVersions(state),
        scores=ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds),
        authority=SmartAuthority(settings, replay_guard=client),
        read_tokens=frozenset({settings.api_token.get_secret_value()}),
        state=state,
        metrics_tokens=metrics_tokens,
        # Public: health, FHIR metadata and SMART discovery. Everything else needs a token;
        # /metrics anonymously only in the embedded demo (README "Security": the table).
        open_metrics=settings.embedded and not metrics_tokens,
        notifications=NotificationHandler(service, ehr),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pub.close()
        event_log.close()
        ehr.close()
        state.db.close()

    app = FastAPI(
        title="readmit FHIR ingest",
        version=software_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ingest = context

    app.add_middleware(RequestMetrics)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> Response:
        return outcome_response(
            exc.message, status=exc.status, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _routing(_: Request, exc: StarletteHTTPException) -> Response:
        # router-level 404/405 speak FHIR too, not {"detail": ...}
        headers = dict(exc.headers) if exc.headers else None
        return outcome_response(str(exc.detail), status=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> Response:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return outcome_response(f"{where}: {first.get('msg', 'invalid request')}", status=400)

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

    app.include_router(ops.router)
    app.include_router(fhir.router)
    return app


__all__ = ["FHIR_JSON", "BadRequest", "create_app", "read_fhir_body"]
