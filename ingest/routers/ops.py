"""Operational endpoints: SMART token, score read-back, health, readiness, metrics."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import orjson
import redis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ingest import metrics
from ingest.auth import AuthError, require_token
from ingest.context import IngestContext, ingest_context
from ingest.outcomes import outcome_response
from readmit_core.client_address import client_address
from readmit_core.errors import ServiceUnavailable

router = APIRouter()
log = logging.getLogger(__name__)
# the only credential /scores takes (READMIT_API_TOKEN): the name its audit rows carry
READ_TOKEN_ACTOR = "api-token"


@router.post("/auth/token")
async def token(request: Request, ctx: IngestContext = Depends(ingest_context)) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    try:
        body = ctx.authority.issue(form)
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


@router.get("/scores/{encounter_id}")
def score(
    encounter_id: str, request: Request, ctx: IngestContext = Depends(ingest_context)
) -> Response:
    actor = "anonymous"
    status = 500
    try:
        require_token(request, ctx.read_tokens)
        actor = READ_TOKEN_ACTOR
        event = ctx.scores.latest(encounter_id)
        if event is None:
            status = 404
            return outcome_response(f"No score for encounter {encounter_id}", status=status)
        status = 200
        return Response(event.to_bytes(), media_type="application/json")
    except AuthError as exc:
        status = exc.status
        raise
    finally:
        _audit_read(request, ctx, actor, encounter_id, status)


def _audit_read(
    request: Request, ctx: IngestContext, actor: str, encounter_id: str, status: int
) -> None:
    """Who read which encounter's score, when, from where: a row in the state database.

    Ingest has no Django database (the web's access-audit table), and its logs must stay
    free of identifiers; the state database is the store it already depends on, so the
    trail lives there (``score_read_audit``). The address follows the proxy-hops rule
    the web's audit and login lockout use. A failed write is logged without the encounter.
    """
    peer = request.client.host if request.client is not None else ""
    remote = client_address(
        peer, request.headers.get("x-forwarded-for", ""), ctx.settings.login_proxy_hops
    )
    try:
        ctx.state.record_score_read(actor, encounter_id, remote or None, status)
    except ServiceUnavailable:
        log.exception("score read audit row not written")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: IngestContext = Depends(ingest_context)) -> Response:
    # accepting needs Kafka and the state database; Redis serves /scores and SMART
    # token replay checks only, so it is reported but does not take ingest out
    checks = {
        "kafka": ctx.publisher.ready(),
        "database": ctx.state.db.ping(),
        "redis": _redis_ok(ctx.client),
    }
    status = 200 if checks["kafka"] and checks["database"] else 503
    return Response(
        orjson.dumps({"ready": status == 200, "checks": checks}),
        status,
        media_type="application/json",
    )


@router.get("/metrics")
def prometheus(request: Request, ctx: IngestContext = Depends(ingest_context)) -> PlainTextResponse:
    if not ctx.open_metrics:
        require_token(request, ctx.metrics_tokens)
    return PlainTextResponse(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, ctx: IngestContext = Depends(ingest_context)) -> Response:
    """The API description, for integrators holding the read token (not anonymous)."""
    require_token(request, ctx.read_tokens)
    return Response(orjson.dumps(request.app.openapi()), media_type="application/json")


def _redis_ok(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
