"""CDS Hooks 2.0 as the spec says: the EHR's signed JWT, 412, fhirServer reads, feedback.

The EHR is played by a key pair made here and a real HTTP server on 127.0.0.1 that
serves its JWK Set and its FHIR Encounter (no internet); Redis (the jti replay guard)
and PostgreSQL are the session's real ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.test import Client

from alerts_web.access_audit.models import PatientDataAccess
from alerts_web.cds import client_jwt
from alerts_web.cds.models import CardFeedback, IssuedCard
from readmit_core.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SERVICE = "/cds-services/readmission-risk"
AUD = f"http://testserver{SERVICE}"
ISS = "https://ehr.test"
FHIR_AUTH = {
    "access_token": "ehr-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/Encounter.read",
    "subject": "readmit",
}


class FakeEhr:
    """The EHR's JWKS and FHIR server: routes a test may change, requests it may count."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ehr.requests.append((self.path, self.headers.get("Authorization", "")))
                status, body = ehr.routes.get(self.path, (404, {"error": "not found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _jwk(private: Any, kid: str) -> dict[str, Any]:
    algo = (
        jwt.algorithms.ECAlgorithm
        if isinstance(private, ec.EllipticCurvePrivateKey)
        else (jwt.algorithms.RSAAlgorithm)
    )
    public = algo.to_jwk(private.public_key(), as_dict=True)
    return {**public, "kid": kid, "use": "sig"}


@pytest.fixture
def ehr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    server = FakeEhr()
    key = _ec_key()
    server.routes["/jwks.json"] = (200, {"keys": [_jwk(key, "k1")]})
    clients = {
        ISS: {
            "jku": [f"{server.base}/jwks.json"],
            "sub": ["ehr-client"],
            "fhir_servers": [f"{server.base}/fhir"],
        }
    }
    path = tmp_path / "cds-clients.json"
    path.write_text(json.dumps(clients))
    monkeypatch.setenv("READMIT_CDS_CLIENTS_FILE", str(path))
    get_settings.cache_clear()
    client_jwt.JWKS.entries.clear()
    yield {"server": server, "key": key, "path": path, "clients": clients}
    server.close()
    client_jwt.JWKS.entries.clear()
    monkeypatch.delenv("READMIT_CDS_CLIENTS_FILE")
    get_settings.cache_clear()


def _token(
    key: Any,
    *,
    kid: str | None = "k1",
    alg: str = "ES384",
    jku: str | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "iss": ISS,
        "sub": "ehr-client",
        "aud": AUD,
        "exp": now + 120,
        "iat": now,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    headers: dict[str, Any] = {"typ": "JWT"}
    if kid is not None:
        headers["kid"] = kid
    if jku is not None:
        headers["jku"] = jku
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def _hook(event: Any, *, encounter: bool = True, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "context": {
            "userId": "Practitioner/p1",
            "patientId": event.patient_id,
            "encounterId": event.encounter_id,
        },
        "prefetch": {},
    }
    if encounter:
        body["prefetch"]["encounter"] = {
            "resourceType": "Encounter",
            "id": event.encounter_id,
            "subject": {"reference": f"Patient/{event.patient_id}"},
        }
    body.update(overrides)
    return body


def _post(body: Any, token: str, url: str = SERVICE) -> Any:
    return Client().post(
        url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


@pytest.fixture
def scored(cache: Any, event_factory: Any) -> Any:
    # a Location no ward row names: keys and EHRs see it by scope all the same
    event = event_factory("loc-5east")
    cache.write([event])
    return event


def test_the_ehrs_signed_jwt_gets_the_card_and_is_audited_as_the_ehr(
    ehr: dict[str, Any], scored: Any
) -> None:
    response = _post(_hook(scored), _token(ehr["key"]))
    assert response.status_code == 200, response.content
    (card,) = response.json()["cards"]
    issued = IssuedCard.objects.get(uuid=card["uuid"])
    assert (issued.encounter_id, issued.ward) == (scored.encounter_id, "loc-5east")
    assert issued.last_issued_to == f"ehr:{ISS}#ehr-client"
    row = PatientDataAccess.objects.get(route="cds:readmission-risk")
    assert (row.actor, row.status, row.encounter_id) == (
        f"ehr:{ISS}#ehr-client",
        200,
        scored.encounter_id,
    )


def test_discovery_accepts_the_jwt_addressed_to_it(ehr: dict[str, Any]) -> None:
    token = _token(ehr["key"], aud="http://testserver/cds-services")
    response = Client().get("/cds-services", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["services"][0]["id"] == "readmission-risk"


@pytest.mark.parametrize(
    ("make", "check"),
    [
        (lambda k, base: _token(k, aud="https://other.example/cds-services/x"), "aud"),
        (lambda k, base: _token(k, iss="https://evil.test"), "iss"),
        (lambda k, base: _token(k, sub="someone-else"), "sub"),
        (lambda k, base: _token(k, kid=None), "kid"),
        (lambda k, base: _token(k, kid="unknown"), "kid"),
        (lambda k, base: _token(k, jku=f"{base}/other-jwks.json"), "jku"),
        (lambda k, base: _token(k, jku="https://attacker.example/jwks.json"), "jku"),
        (lambda k, base: _token(k, exp=int(time.time()) - 120), "exp"),
        (lambda k, base: _token(k, exp=int(time.time()) + 3600), "exp"),
        (lambda k, base: _token(k, jti=None), "jti"),
        (lambda k, base: _token(k, iat=None), "iat"),
        (lambda k, base: _token(_ec_key()), "signature"),
        (lambda k, base: _token("shared-secret-of-32-bytes-or-more!!", alg="HS256"), "alg"),
    ],
)
def test_a_jwt_failing_any_check_is_refused_with_401_naming_it(
    ehr: dict[str, Any], scored: Any, make: Any, check: str
) -> None:
    response = _post(_hook(scored), make(ehr["key"], ehr["server"].base))
    assert response.status_code == 401
    assert f"({check})" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not IssuedCard.objects.exists()


def test_a_replayed_jwt_is_refused(ehr: dict[str, Any], scored: Any) -> None:
    token = _token(ehr["key"])
    assert _post(_hook(scored), token).status_code == 200
    again = _post(_hook(scored), token)
    assert again.status_code == 401
    assert "(jti)" in again.json()["error"]


def test_an_allowlisted_jku_and_a_rotated_rsa_key_are_fetched(
    ehr: dict[str, Any], scored: Any
) -> None:
    server = ehr["server"]
    assert (
        _post(_hook(scored), _token(ehr["key"], jku=f"{server.base}/jwks.json")).status_code == 200
    )
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.routes["/jwks.json"] = (200, {"keys": [_jwk(ehr["key"], "k1"), _jwk(rotated, "k2")]})
    client_jwt.JWKS.entries[f"{server.base}/jwks.json"].fetched -= client_jwt.JWKS_REFETCH_MIN_S
    response = _post(_hook(scored), _token(rotated, kid="k2", alg="RS384"))
    assert response.status_code == 200, response.content
    assert [p for p, _ in server.requests].count("/jwks.json") == 2


def test_api_keys_still_work_beside_jwts(ehr: dict[str, Any], scored: Any, api_key: Any) -> None:
    response = _post(_hook(scored), api_key("cds"))
    assert response.status_code == 200
    assert len(response.json()["cards"]) == 1


def test_without_the_encounter_prefetched_or_readable_the_answer_is_412(
    ehr: dict[str, Any], scored: Any
) -> None:
    for prefetch in ({}, {"encounter": None}, {"encounter": {"resourceType": "OperationOutcome"}}):
        body = _hook(scored, encounter=False, prefetch=prefetch)
        response = _post(body, _token(ehr["key"]))
        assert response.status_code == 412
        assert response.json()["field"] == "prefetch.encounter"
    # a FHIR server no trusted EHR lists is never called
    body = _hook(
        scored, encounter=False, fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization=FHIR_AUTH
    )
    assert _post(body, _token(ehr["key"])).status_code == 412
    # no score: nothing is needed, so no 412 either
    unscored = _hook(scored, encounter=False)
    unscored["context"]["encounterId"] = "never-scored"
    response = _post(unscored, _token(ehr["key"]))
    assert (response.status_code, response.json()) == (200, {"cards": []})


def test_the_encounter_is_read_from_the_trusted_fhir_server(
    ehr: dict[str, Any], scored: Any
) -> None:
    server = ehr["server"]
    path = f"/fhir/Encounter/{scored.encounter_id}"
    server.routes[path] = (
        200,
        {
            "resourceType": "Encounter",
            "id": scored.encounter_id,
            "subject": {"reference": f"Patient/{scored.patient_id}"},
        },
    )
    body = _hook(
        scored, encounter=False, fhirServer=f"{server.base}/fhir", fhirAuthorization=FHIR_AUTH
    )
    response = _post(body, _token(ehr["key"]))
    assert response.status_code == 200, response.content
    assert len(response.json()["cards"]) == 1
    assert (path, "Bearer ehr-token") in server.requests
    # the EHR now says the encounter is another patient's: refused, no card
    server.routes[path] = (
        200,
        {
            "resourceType": "Encounter",
            "id": scored.encounter_id,
            "subject": {"reference": "Patient/x"},
        },
    )
    response = _post(body, _token(ehr["key"]))
    assert response.status_code == 400
    assert response.json()["field"] == "fhirServer Encounter"
    server.routes[path] = (404, {"resourceType": "OperationOutcome"})
    assert _post(body, _token(ehr["key"])).status_code == 412


def test_the_fhir_server_fetch_logs_no_identifier(
    ehr: dict[str, Any], scored: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs each request's URL at INFO ("GET .../Encounter/<id>"): the web's LOGGING
    keeps it at WARNING, so the fetch leaves no encounter id (or token) in the log."""
    server = ehr["server"]
    path = f"/fhir/Encounter/{scored.encounter_id}"
    server.routes[path] = (
        200,
        {
            "resourceType": "Encounter",
            "id": scored.encounter_id,
            "subject": {"reference": f"Patient/{scored.patient_id}"},
        },
    )
    body = _hook(
        scored, encounter=False, fhirServer=f"{server.base}/fhir", fhirAuthorization=FHIR_AUTH
    )
    with caplog.at_level(logging.DEBUG):
        response = _post(body, _token(ehr["key"]))
    assert response.status_code == 200, response.content
    assert (path, "Bearer ehr-token") in server.requests  # the fetch did happen
    for secret in (scored.encounter_id, scored.patient_id, "ehr-token"):
        assert secret not in caplog.text


def test_context_errors_name_the_field(ehr: dict[str, Any], scored: Any) -> None:
    cases = [
        ({"userId": None}, "context.userId"),
        ({"patientId": f"Patient/{scored.patient_id}"}, "context.patientId"),
        ({"encounterId": None}, "context.encounterId"),
    ]
    for change, field in cases:
        body = _hook(scored)
        body["context"].update(change)
        body["context"] = {k: v for k, v in body["context"].items() if v is not None}
        response = _post(body, _token(ehr["key"]))
        assert (response.status_code, response.json()["field"]) == (400, field)
    auth_only = _hook(scored, fhirAuthorization={"access_token": "t"})
    response = _post(auth_only, _token(ehr["key"]))
    assert (response.status_code, response.json()["field"]) == (400, "fhirServer")


def _feedback(card: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-12-02T01:30:00Z",
    }
    entry.update(overrides)
    return {"feedback": [entry]}


def test_feedback_on_an_issued_card_is_stored_and_audited(ehr: dict[str, Any], scored: Any) -> None:
    (card,) = _post(_hook(scored), _token(ehr["key"])).json()["cards"]
    url = f"{SERVICE}/feedback"
    response = _post(_feedback(card), _token(ehr["key"], aud=f"http://testserver{url}"), url)
    assert (response.status_code, response.json()) == (200, {})
    stored = CardFeedback.objects.get()
    assert (str(stored.card_id), stored.outcome, stored.actor) == (
        card["uuid"],
        "accepted",
        f"ehr:{ISS}#ehr-client",
    )
    assert stored.accepted_suggestions == [card["suggestions"][0]["uuid"]]
    audit = PatientDataAccess.objects.filter(route="cds:feedback").get()
    assert (audit.actor, audit.status) == (f"ehr:{ISS}#ehr-client", 200)


def test_feedback_on_an_unknown_card_or_suggestion_is_refused_and_nothing_stored(
    ehr: dict[str, Any], scored: Any, api_key: Any
) -> None:
    key = api_key("cds")
    (card,) = _post(_hook(scored), key).json()["cards"]
    url = f"{SERVICE}/feedback"
    unknown = _post(_feedback({**card, "uuid": str(uuid.uuid4())}), key, url)
    assert (unknown.status_code, unknown.json()["field"]) == (404, "feedback[0].card")
    body = _feedback(card, acceptedSuggestions=[{"id": str(uuid.uuid4())}])
    foreign = _post(body, key, url)
    assert (foreign.status_code, foreign.json()["field"]) == (
        400,
        "feedback[0].acceptedSuggestions",
    )
    malformed = _post(_feedback(card, outcome="maybe"), key, url)
    assert (malformed.status_code, malformed.json()["field"]) == (400, "feedback[0].outcome")
    assert _post(_feedback(card), key, "/cds-services/other/feedback").status_code == 404
    assert Client().post(url, _feedback(card), content_type="application/json").status_code == 401
    assert not CardFeedback.objects.exists()
    overridden = _feedback(
        card,
        outcome="overridden",
        acceptedSuggestions=None,
        overrideReason={"userComment": "follow-up already booked"},
    )
    assert _post(overridden, key, url).status_code == 200
    assert CardFeedback.objects.get().user_comment == "follow-up already booked"


def test_a_ward_restricted_key_cannot_send_feedback_on_another_wards_card(
    ehr: dict[str, Any], scored: Any, api_key: Any, wards: Any
) -> None:
    from alerts_web.api.models import ApiClient

    (card,) = _post(_hook(scored), api_key("cds")).json()["cards"]
    restricted = api_key("cds", name="ward-a-only")
    ApiClient.objects.get(name="ward-a-only").wards.add(wards[0])
    response = _post(_feedback(card), restricted, f"{SERVICE}/feedback")
    assert response.status_code == 404


def test_a_session_cookie_is_never_a_cds_credential(
    ehr: dict[str, Any], scored: Any, api_key: Any, staff: Any
) -> None:
    """The endpoints are CSRF-exempt, so an admin's cookie riding on a same-site page's POST
    must get nothing: only the JWT or an API key in the header authenticates."""
    (card,) = _post(_hook(scored), api_key("cds")).json()["cards"]
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert browser.get("/").status_code in (200, 302)  # the session itself is valid
    hook = browser.post(SERVICE, _hook(scored), content_type="application/json")
    assert hook.status_code == 401
    assert hook["WWW-Authenticate"].startswith("Bearer")
    feedback = browser.post(f"{SERVICE}/feedback", _feedback(card), content_type="text/plain")
    assert feedback.status_code == 401
    assert browser.get("/cds-services").status_code == 401
    assert not CardFeedback.objects.exists()
