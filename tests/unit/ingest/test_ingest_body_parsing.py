"""Request-body parsing of the ingest API: real input tolerated, hostile input refused
with an OperationOutcome (never a 500 or a plain-text error), before anything is
published."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.testclient import TestClient
from test_ingest_refusals import ExplodingPublisher

from fhir_mappings.bundle import MAX_JSON_DEPTH
from ingest.app import create_app
from readmit_core.settings import Settings

TOKEN = "unit-token"


@pytest.fixture
def client():
    settings = Settings(
        ingest_tokens=TOKEN, max_request_bytes=200_000, redis_url="redis://127.0.0.1:1/0"
    )
    with TestClient(create_app(settings, publisher=ExplodingPublisher())) as c:
        yield c


def _post(client, body: bytes):
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}
    resp = client.post("/fhir", content=body, headers=headers)
    assert resp.headers["content-type"].startswith("application/fhir+json")
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return resp.status_code, outcome["issue"][0]


def _nested_extensions(depth: int) -> dict:
    ext: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        ext = {"url": "http://example.org/node", "extension": [ext]}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f1c2b9e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "extension": [ext]},
         "request": {"method": "POST", "url": "Patient"}}]}  # fmt: skip


def test_150_nested_extensions_are_a_400_outcome_not_a_500(client):
    # stdlib json: orjson itself refuses to serialise more than 255 levels
    status, issue = _post(client, json.dumps(_nested_extensions(150)).encode())
    assert status == 400
    assert issue["code"] == "too-costly"
    assert str(MAX_JSON_DEPTH) in issue["diagnostics"]


def test_deeper_than_json_parsers_allow_is_still_an_outcome(client):
    body = b'{"resourceType":"Bundle","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    status, issue = _post(client, body)
    assert status == 400
    assert issue["code"] == "too-costly"


def test_a_byte_order_mark_is_not_a_json_error(client):
    body = b"\xef\xbb\xbf" + orjson.dumps({"hello": "world"})
    status, issue = _post(client, body)
    assert status == 400
    assert issue["expression"] == ["resourceType"]  # parsed: refused only for not being FHIR
