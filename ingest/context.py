"""The ingest app's collaborators, built once per app and handed to routers as a
FastAPI dependency (``app.state.ingest``), so routers hold no globals."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import redis
from fastapi import Request

from ingest.auth import bearer_token
from ingest.notifications import NotificationHandler
from ingest.publisher import EventPublisher
from ingest.requests import read_fhir_body
from ingest.service import IngestService
from ingest.smart import Principal, SmartAuthority
from ingest.versions import ResourceVersions
from patient_state.store import PatientStateStore
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings


@dataclass(frozen=True)
class IngestContext:
    settings: Settings
    client: redis.Redis
    publisher: EventPublisher
    service: IngestService
    versions: ResourceVersions
    scores: ScoreCache
    authority: SmartAuthority
    read_tokens: frozenset[str]
    state: PatientStateStore
    metrics_tokens: frozenset[str]
    open_metrics: bool
    notifications: NotificationHandler


def software_version() -> str:
    try:
        return version("readmit")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+source"


def _context(request: Request) -> IngestContext:
    ctx: IngestContext = request.app.state.ingest
    return ctx


async def ingest_context(request: Request) -> IngestContext:
    """Dependency: the app's collaborators. Async, like :func:`principal`: FastAPI runs a
    plain ``def`` dependency in the thread pool, a hand-off per dependency per request
    for work of microseconds."""
    return _context(request)


async def principal(request: Request) -> Principal:
    """Dependency: the authenticated caller (401/403 OperationOutcome otherwise); a
    constant-time compare or one HMAC JWT check, no I/O, so on the event loop."""
    return _context(request).authority.authenticate(bearer_token(request))


async def fhir_body(request: Request) -> dict[str, Any]:
    """Dependency: the request body as a FHIR JSON object (415/413/400 otherwise)."""
    return await read_fhir_body(request, _context(request).settings.max_request_bytes)
