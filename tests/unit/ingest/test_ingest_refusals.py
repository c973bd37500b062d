"""The ingest API's refusals need no services: they happen before anything is published."""

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest.app import create_app
from readmit_core.settings import Settings

TOKEN = "unit-token"


class ExplodingPublisher:
    """Fails the test if anything reaches the broker on a refused request."""

    def publish(self, events):
        raise AssertionError("a refused request must publish nothing")

    def ready(self):
        return False

    def close(self):
        pass


@pytest.fixture
def client(tmp_path):
    settings = Settings(
        ingest_tokens=TOKEN,
        max_request_bytes=2048,
        redis_url="redis://127.0.0.1:1/0",
        state_dir=tmp_path,
    )
    app = create_app(settings, publisher=ExplodingPublisher())
    with TestClient(app) as c:
        yield c


def _post(client, body, *, token=TOKEN, ctype="application/fhir+json", path="/fhir"):
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, content=body, headers=headers)


def _outcome(resp):
    assert resp.headers["content-type"].startswith("application/fhir+json")
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def test_missing_token_is_401(client):
    resp = _post(client, b"{}", token=None)
    assert resp.status_code == 401
    assert _outcome(resp)["code"] == "login"


def test_wrong_token_is_401(client):
    assert _post(client, b"{}", token="nope").status_code == 401


def test_malformed_json_is_400(client):
    resp = _post(client, b'{"resourceType": "Bundle",')
    assert resp.status_code == 400
    assert "not valid JSON" in _outcome(resp)["diagnostics"]


def test_non_fhir_json_is_400(client):
    resp = _post(client, orjson.dumps({"hello": "world"}))
    assert resp.status_code == 400
    assert _outcome(resp)["expression"] == ["resourceType"]


def test_wrong_media_type_is_415(client):
    assert _post(client, b"{}", ctype="text/plain").status_code == 415


def test_too_large_is_413(client):
    resp = _post(client, b"{" + b" " * 4096 + b"}")
    assert resp.status_code == 413


def test_base_endpoint_requires_transaction_or_batch(client):
    body = orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": []})
    resp = _post(client, body)
    assert resp.status_code == 422
    assert _outcome(resp)["expression"] == ["Bundle.type"]


def test_unsupported_type_is_404(client):
    resp = _post(client, orjson.dumps({"resourceType": "Claim"}), path="/fhir/Claim")
    assert resp.status_code == 404


def test_type_mismatch_is_400(client):
    resp = _post(client, orjson.dumps({"resourceType": "Patient"}), path="/fhir/Encounter")
    assert resp.status_code == 400


def test_capability_statement_is_public_and_truthful(client):
    resp = client.get("/fhir/metadata")
    assert resp.status_code == 200
    cap = resp.json()
    assert cap["resourceType"] == "CapabilityStatement"
    assert cap["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in cap["rest"][0]["resource"]}
    assert types == {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Procedure",
    }
    # write-only: no read/search interactions are claimed
    interactions = {i["code"] for r in cap["rest"][0]["resource"] for i in r["interaction"]}
    assert interactions == {"create", "update"}


def test_readyz_reports_dependencies_down(client):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    # the state database (SQLite here) answers; Kafka and Redis do not
    assert resp.json()["checks"] == {"kafka": False, "database": True, "redis": False}
