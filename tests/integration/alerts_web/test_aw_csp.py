"""Content-Security-Policy on every answer: pages, downloads, the API and its docs."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REQUIRED = (
    "script-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
)


def _directives(response: Any) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    parts = (p.strip() for p in header.split(";") if p.strip())
    return {p.split(" ", 1)[0]: p for p in parts}


def _assert_policy(response: Any) -> None:
    directives = _directives(response)
    for required in REQUIRED:
        assert directives[required.split(" ", 1)[0]] == required
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]


@pytest.fixture
def scored(wards: Any, cache: Any, event_factory: Any) -> Any:
    event = event_factory("ward-a")
    cache.write([event])
    return event


def test_pages_and_downloads_carry_the_policy(scored: Any, client_a: Client) -> None:
    paths = [
        "/",
        "/wards/ward-a/",
        f"/encounters/{scored.encounter_id}/",
        f"/encounters/{scored.encounter_id}/report.pdf",
        f"/encounters/{scored.encounter_id}/report.csv",
        "/api/docs/",
    ]
    for path in paths:
        response = client_a.get(path)
        assert response.status_code == 200, path
        _assert_policy(response)


def test_login_api_and_refusals_carry_the_policy(scored: Any, api_key: Any) -> None:
    anonymous = Client()
    _assert_policy(anonymous.get("/accounts/login/"))
    _assert_policy(anonymous.get("/api/v1/encounters/x/score"))  # 401/403 too
    key = api_key("scores:read")
    response = anonymous.get(
        f"/api/v1/encounters/{scored.encounter_id}/score", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    assert response.status_code == 200
    _assert_policy(response)


def test_api_docs_run_no_inline_script(client_a: Client) -> None:
    page = client_a.get("/api/docs/").content.decode()
    assert '<script src="/static/alerts_web/swagger-init.js">' in page
    assert '<script id="swagger-config" type="application/json">' in page
    assert "<style" not in page
    assert "SwaggerUIBundle(" not in page  # the init code lives in the static file
