"""What the ingest API shows anonymous callers (README "Security", the exposure table)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ingest.app import create_app
from readmit_core.settings import Settings

READ = "r" * 30
SCRAPE = "s" * 30
PRODUCTION = {
    "embedded": False,
    "access_token_secret": "a" * 40,
    "django_secret_key": "k" * 60,
    "api_token": READ,
    "ingest_tokens": "i" * 30,
    "web_allowed_hosts": "readmit.example.org",
    "model_verify_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "redis_url": "redis://127.0.0.1:1/0",
}


class IdlePublisher:
    def publish(self, events: object) -> None:
        raise AssertionError("nothing is published here")

    def ready(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _client(**overrides: object) -> Iterator[TestClient]:
    app = create_app(Settings(**{**PRODUCTION, **overrides}), publisher=IdlePublisher())
    with TestClient(app) as client:
        yield client


@pytest.fixture
def production() -> Iterator[TestClient]:
    yield from _client(metrics_token=SCRAPE)


@pytest.mark.parametrize(
    "path", ["/healthz", "/fhir/metadata", "/fhir/.well-known/smart-configuration"]
)
def test_public_endpoints_answer_anyone(production: TestClient, path: str) -> None:
    assert production.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/scores/enc-1"])
def test_private_endpoints_refuse_anonymous_callers(production: TestClient, path: str) -> None:
    assert production.get(path).status_code == 401


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_no_interactive_docs(production: TestClient, path: str) -> None:
    assert production.get(path).status_code == 404


def test_metrics_take_only_the_scrape_token(production: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {SCRAPE}"}
    assert production.get("/metrics", headers=bearer).status_code == 200
    read = {"Authorization": f"Bearer {READ}"}
    assert production.get("/metrics", headers=read).status_code == 401


def test_openapi_takes_the_read_token(production: TestClient) -> None:
    resp = production.get("/openapi.json", headers={"Authorization": f"Bearer {READ}"})
    assert resp.status_code == 200
    assert resp.json()["info"]["title"] == "readmit FHIR ingest"


def test_without_a_scrape_token_metrics_are_closed_outside_the_demo() -> None:
    for client in _client():
        assert client.get("/metrics").status_code == 401
