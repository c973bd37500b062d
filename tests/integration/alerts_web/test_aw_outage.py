"""Redis or database down: REST, FHIR and CDS answer 503 + Retry-After in their own shape;
API-key reads do not write on every request and never fail because a write failed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts_web import scores
from alerts_web.api.models import ApiClient, hash_key
from fhir_mappings import FHIR_JSON
from readmit_core.score_cache import ScoreCache

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}


@pytest.fixture
def key(api_key: Callable[..., str], wards: Any) -> str:
    return api_key("scores:read", "fhir:read", "cds")


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score reads go to a port nothing listens on (connection refused at once)."""
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(scores, "score_cache", lambda: ScoreCache(dead, "x.", 60))


def _requests(client: Client, key: str) -> dict[str, Any]:
    encounter = f"enc-{uuid.uuid4().hex[:8]}"
    hook = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "context": {"userId": "Practitioner/p1", "patientId": "p1", "encounterId": encounter},
    }
    return {
        "api": client.get(f"/api/v1/encounters/{encounter}/score", **_auth(key)),
        "fhir": client.get(f"/fhir/RiskAssessment?encounter={encounter}", **_auth(key)),
        "cds": client.post(
            "/cds-services/readmission-risk", hook, content_type="application/json", **_auth(key)
        ),
    }


def _assert_unavailable(answers: dict[str, Any], dependency: str) -> None:
    for surface, resp in answers.items():
        assert resp.status_code == 503, (surface, resp.status_code, resp.content[:200])
        assert int(resp["Retry-After"]) > 0
        assert dependency in resp.content.decode()
    assert answers["api"].json()["error"] == "unavailable"
    fhir = answers["fhir"]
    assert fhir["Content-Type"] == FHIR_JSON
    assert fhir.json()["resourceType"] == "OperationOutcome"
    assert fhir.json()["issue"][0]["code"] == "transient"
    assert "error" in answers["cds"].json()


def test_redis_down_is_503_on_every_surface(key: str, redis_down: None) -> None:
    _assert_unavailable(_requests(Client(), key), "Redis")


def test_database_down_is_503_on_every_surface(key: str) -> None:
    client = Client()

    def refuse(*_: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(refuse):
        answers = _requests(client, key)
    _assert_unavailable(answers, "database")


def _updates(queries: CaptureQueriesContext) -> int:
    return sum(
        1 for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")
    )


def test_key_use_is_written_at_most_once_a_minute(key: str) -> None:
    client = Client()
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/encounters/none/score", **_auth(key)).status_code == 404
    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/v1/encounters/none/score", **_auth(key)).status_code == 404
    assert (_updates(first), _updates(second)) == (1, 0)
    api_client = ApiClient.objects.get(key_hash=hash_key(key))
    stale = timezone.now() - timedelta(minutes=2)
    ApiClient.objects.filter(pk=api_client.pk).update(last_used_at=stale)
    with CaptureQueriesContext(connection) as later:
        client.get("/api/v1/encounters/none/score", **_auth(key))
    assert _updates(later) == 1
    assert ApiClient.objects.get(pk=api_client.pk).last_used_at > stale


def test_a_failed_use_write_does_not_fail_the_read(key: str) -> None:
    def refuse_writes(execute: Any, sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith("UPDATE"):
            raise OperationalError("database is locked")
        return execute(sql, *args)

    with connection.execute_wrapper(refuse_writes):
        resp = Client().get("/api/v1/encounters/none/score", **_auth(key))
    assert resp.status_code == 404  # the read was answered (no such score), not a 5xx
    assert ApiClient.objects.get(key_hash=hash_key(key)).last_used_at is None
