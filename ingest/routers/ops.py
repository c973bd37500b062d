"""Operational endpoints: SMART token, score read-back, health, readiness, metrics."""

from __future__ import annotations

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

router = APIRouter()


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
    require_token(request, ctx.read_tokens)
    event = ctx.scores.latest(encounter_id)
    if event is None:
        return outcome_response(f"No score for encounter {encounter_id}", status=404)
    return Response(event.to_bytes(), media_type="application/json")


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
