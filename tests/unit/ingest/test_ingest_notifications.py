"""Subscription notifications refused before anything is fetched or published, the
settings that configure the EHR client, and our client key."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from test_ingest_refusals import ExplodingPublisher

from ingest.app import create_app
from ingest.ehr_client import EhrClient, EhrRefused
from ingest.ehr_keys import UnusableKey, generate_private_key, load_signing_key, private_pem
from ingest.notifications import read_notification
from readmit_core.settings import Settings, UnsafeSettings

TOKEN = "unit-token"
BASE = "https://ehr.example/fhir"


@pytest.fixture
def client(tmp_path):
    # a base nothing answers: any attempt to fetch would fail the test with a 503
    settings = Settings(
        ingest_tokens=TOKEN,
        redis_url="redis://127.0.0.1:1/0",
        state_dir=tmp_path,
        ehr_fhir_base_urls="http://127.0.0.1:1/fhir",
        ehr_client_id="c",
    )
    with TestClient(create_app(settings, publisher=ExplodingPublisher())) as c:
        yield c


def _status(**fields: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "SubscriptionStatus",
        "status": "active",
        "type": "event-notification",
        "subscription": {"reference": "Subscription/s"},
        **fields,
    }
    return {
        "resourceType": "Bundle",
        "type": "subscription-notification",
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource}],
    }


def _post(client, doc):
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    return client.post(
        "/fhir/$subscription-notification", content=orjson.dumps(doc), headers=headers
    )


def _patient_first() -> dict[str, Any]:
    doc = _status()
    doc["entry"][0]["resource"] = {"resourceType": "Patient", "id": "p"}
    return doc


def _wrong_bundle_type() -> dict[str, Any]:
    return {**_status(), "type": "collection"}


def _backport(parameter: dict[str, Any]) -> dict[str, Any]:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/s"}},
            {"name": "type", "valueCode": "event-notification"},
            parameter,
        ],
    }
    return {"resourceType": "Bundle", "type": "history", "entry": [{"resource": params}]}


@pytest.mark.parametrize(
    ("doc", "expression"),
    [
        (_patient_first(), "Bundle.entry[0].resource"),
        (_wrong_bundle_type(), "Bundle.type"),
        ({"resourceType": "Bundle", "type": "subscription-notification"}, "Bundle.entry"),
        (_status(type="event"), "SubscriptionStatus.type"),
        (_status(status="paused"), "SubscriptionStatus.status"),
        (_status(subscription=None), "SubscriptionStatus.subscription"),
        (_status(notificationEvent=[{"eventNumber": "one"}]), None),
        (_backport({"name": "colour", "valueCode": "blue"}), "Parameters.parameter"),
        (_backport({"name": "notification-event", "part": [{"name": "x"}]}), None),
    ],
    ids=[
        "status-missing",
        "bundle-type",
        "no-entries",
        "notification-type",
        "subscription-status",
        "no-subscription",
        "event-number",
        "backport-parameter",
        "backport-event-part",
    ],
)
def test_non_conformant_notifications_are_400(client, doc, expression):
    resp = _post(client, doc)
    assert resp.status_code == 400, resp.text
    issue = resp.json()["issue"][0]
    assert issue["severity"] == "error"
    if expression:
        assert expression in issue["expression"][0]


def test_an_unknown_status_element_is_refused_but_r5_events_in_notification_is_not(client):
    unknown = _post(client, _status(colour="blue"))
    assert unknown.status_code == 400
    assert "colour" in unknown.json()["issue"][0]["diagnostics"]
    note = read_notification(_status(eventsInNotification=1, type="heartbeat"))
    assert (note.kind, note.events_in_notification) == ("heartbeat", 1)


def test_id_only_without_configured_ehr_is_422(tmp_path):
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    doc = _status(notificationEvent=[{"eventNumber": "1", "focus": {"reference": "Encounter/e"}}])
    with TestClient(create_app(settings, publisher=ExplodingPublisher())) as c:
        resp = _post(c, doc)
    assert resp.status_code == 422
    assert "READMIT_EHR_FHIR_BASE_URLS" in resp.json()["issue"][0]["diagnostics"]


def test_unsupported_focus_type_is_422_before_any_fetch(client):
    focus = {"eventNumber": "1", "focus": {"reference": "DiagnosticReport/d"}}
    resp = _post(client, _status(notificationEvent=[focus]))
    assert resp.status_code == 422
    assert "DiagnosticReport" in resp.json()["issue"][0]["diagnostics"]


def test_payload_content_is_read_off_the_bundle():
    empty = _status(notificationEvent=[{"eventNumber": "3"}])
    assert read_notification(empty).payload == "empty"
    id_only = _status(
        notificationEvent=[{"eventNumber": "3", "focus": {"reference": "Encounter/e"}}]
    )
    assert read_notification(id_only).payload == "id-only"
    full = _status()
    full["entry"].append({"fullUrl": f"{BASE}/Patient/p", "resource": {"resourceType": "Patient"}})
    assert read_notification(full).payload == "full-resource"


def test_references_outside_the_allowlist_are_refused():
    ehr = EhrClient(Settings(ehr_fhir_base_urls=f"{BASE}/, https://other.example/r4"))
    assert ehr.bases == (BASE, "https://other.example/r4")
    assert ehr.locate(f"{BASE}/Encounter/e1/_history/2", BASE).key == "Encounter/e1"
    assert ehr.locate("Patient/p-1", BASE).key == "Patient/p-1"
    for bad in (
        "https://other.example/r4/Encounter/e1",  # allowed server, but not the notifier
        "https://ehr.example/fhirx/Encounter/e1",  # a prefix is not a base
        "Encounter/e1?_include=*",
        "Encounter/../../admin",
        "urn:uuid:5e1c",
        "#contained",
    ):
        with pytest.raises(EhrRefused):
            ehr.locate(bad, BASE)


def test_http_ehr_base_is_refused_outside_embedded(non_demo_secrets, tmp_path):
    key = tmp_path / "k.pem"
    common = {
        **non_demo_secrets,
        "embedded": False,
        "ehr_client_id": "c",
        "ehr_private_key_file": key,
    }
    with pytest.raises(UnsafeSettings, match="READMIT_EHR_FHIR_BASE_URLS"):
        Settings(ehr_fhir_base_urls="http://ehr.example/fhir", **common)
    assert Settings(ehr_fhir_base_urls=BASE, **common).ehr_base_urls == (BASE,)
    with pytest.raises(UnsafeSettings, match="READMIT_EHR_CLIENT_ID"):
        Settings(ehr_fhir_base_urls=BASE, **{**common, "ehr_client_id": ""})
    with pytest.raises(ValueError, match="base URL"):
        Settings(ehr_fhir_base_urls="ehr.example/fhir")


def _write(path: Path, key: Any) -> Path:
    path.write_bytes(private_pem(key))
    return path


def test_client_keys_sign_with_the_algorithm_smart_requires(tmp_path):
    es = load_signing_key(_write(tmp_path / "es.pem", generate_private_key("ES384")))
    assert es.algorithm == "ES384"
    jwk = es.jwks()["keys"][0]
    assert (jwk["kid"], jwk["alg"]) == (es.kid, "ES384")
    assert "d" not in jwk  # the public half only
    # the kid is the key's thumbprint: stable across loads
    assert load_signing_key(tmp_path / "es.pem").kid == es.kid
    rs = load_signing_key(_write(tmp_path / "rs.pem", generate_private_key("RS384")))
    assert (rs.algorithm, rs.jwks()["keys"][0]["kty"]) == ("RS384", "RSA")
    assert rs.kid != es.kid
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(UnusableKey, match="2048"):
        load_signing_key(_write(tmp_path / "small.pem", small))
    with pytest.raises(UnusableKey, match="P-384"):
        load_signing_key(_write(tmp_path / "p256.pem", ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(UnusableKey, match="not set"):
        load_signing_key(None)


def test_a_scope_that_cannot_write_the_focus_is_403_before_any_fetch(client):
    """The base nothing answers would make any fetch a 503: 403 shows none was tried."""
    settings = Settings()
    token = jwt.encode(
        {
            "iss": f"{settings.ingest_url}/auth/token",
            "sub": "lab-feed",
            "exp": int(time.time()) + 60,
            "scope": "system/Observation.write",
        },
        settings.access_token_secret.get_secret_value(),
        algorithm="HS256",
    )
    focus = {"eventNumber": "1", "focus": {"reference": "Encounter/e"}}
    resp = client.post(
        "/fhir/$subscription-notification",
        content=orjson.dumps(_status(notificationEvent=[focus])),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert resp.status_code == 403
    assert "Encounter" in resp.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Bundle"])
@pytest.mark.parametrize("backport", [False, True], ids=["r4b", "backport"])
def test_a_notification_posted_to_the_base_or_bundle_takes_the_notification_path(
    tmp_path, path, backport
):
    """An id-only notification posted anywhere is never accepted as an empty document: with
    no EHR configured it is the notification path's 422, not a 200 with nothing queued."""
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    if backport:
        event = {
            "name": "notification-event",
            "part": [
                {"name": "event-number", "valueString": "1"},
                {"name": "focus", "valueReference": {"reference": "Encounter/e"}},
            ],
        }
        doc = _backport(event)
    else:
        doc = _status(
            notificationEvent=[{"eventNumber": "1", "focus": {"reference": "Encounter/e"}}]
        )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    with TestClient(create_app(settings, publisher=ExplodingPublisher())) as c:
        resp = c.post(path, content=orjson.dumps(doc), headers=headers)
    assert resp.status_code == 422, resp.text
    assert "READMIT_EHR_FHIR_BASE_URLS" in resp.json()["issue"][0]["diagnostics"]
