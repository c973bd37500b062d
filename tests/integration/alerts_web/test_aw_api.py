"""REST API v1: API keys with scopes, ward isolation, errors naming fields, pagination."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from alerts_web.alerts.feed import store_event
from alerts_web.api.throttling import PerClientRateThrottle

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _auth(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}


@pytest.fixture
def scored(wards: Any, cache: Any, event_factory: Any) -> dict[str, Any]:
    """Two scored encounters of one patient on ward A, one high on ward B; alerts stored."""
    patient = f"pat-{uuid.uuid4().hex[:8]}"
    a1 = event_factory("ward-a", patient_id=patient, band="medium", probability=0.2)
    a2 = event_factory("ward-a", patient_id=patient)
    b1 = event_factory("ward-b")
    cache.write([a1, a2, b1])
    for ev in (a1, a2, b1):
        store_event(ev)
    return {"a1": a1, "a2": a2, "b1": b1, "patient": patient}


def _endpoints(scored: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("get", reverse("api:encounter-score", args=[scored["a2"].encounter_id])),
        ("get", reverse("api:patient-scores", args=[scored["patient"]])),
        ("get", reverse("api:ward-alerts", args=["ward-a"])),
        ("post", reverse("api:predict")),
        ("get", reverse("api:schema")),
    ]


def test_anonymous_and_bad_keys_are_refused_everywhere(scored: dict[str, Any]) -> None:
    client = Client()
    for method, url in _endpoints(scored):
        assert getattr(client, method)(url).status_code == 401, url
        response = getattr(client, method)(url, **_auth("rk_not-a-key"))
        assert response.status_code == 401, url
        if response["Content-Type"] == "application/json":
            assert response.json()["error"] == "authentication_failed"
    assert client.get(reverse("api:docs")).status_code in (401, 403)


def test_encounter_score(scored: dict[str, Any], api_key: Any) -> None:
    key = api_key("scores:read")
    ev = scored["a2"]
    body = Client().get(reverse("api:encounter-score", args=[ev.encounter_id]), **_auth(key)).json()
    assert body["encounter_id"] == ev.encounter_id
    assert body["probability"] == pytest.approx(ev.probability)
    assert body["band"] == "high"
    assert body["factors"][0]["label"] == "2 inpatient stays"
    assert body["interventions"][0]["code"] == "med-rec"
    assert body["factors_pending"] is False
    missing = Client().get(reverse("api:encounter-score", args=["nope"]), **_auth(key))
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "No score for this encounter."}


def test_a_pending_score_says_so(wards: Any, cache: Any, event_factory: Any, api_key: Any) -> None:
    ev = event_factory("ward-a", factors=(), interventions=(), factors_pending=True)
    cache.write([ev])
    store_event(ev)
    key = api_key("scores:read", "alerts:read")
    body = Client().get(reverse("api:encounter-score", args=[ev.encounter_id]), **_auth(key)).json()
    assert (body["factors"], body["interventions"], body["factors_pending"]) == ([], [], True)
    alerts = Client().get(reverse("api:ward-alerts", args=["ward-a"]), **_auth(key)).json()
    (alert,) = [a for a in alerts["results"] if a["encounter_id"] == ev.encounter_id]
    assert alert["factors_pending"] is True


def test_wrong_scope_is_refused(scored: dict[str, Any], api_key: Any) -> None:
    key = api_key("alerts:read")
    url = reverse("api:encounter-score", args=[scored["a2"].encounter_id])
    response = Client().get(url, **_auth(key))
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert Client().post(reverse("api:predict"), {}, **_auth(key)).status_code == 403


def test_patient_history_is_paginated(scored: dict[str, Any], api_key: Any) -> None:
    key = api_key("scores:read")
    url = reverse("api:patient-scores", args=[scored["patient"]])
    page = Client().get(url, {"page_size": 1}, **_auth(key)).json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    assert page["next"]
    full = Client().get(url, **_auth(key)).json()
    assert [r["encounter_id"] for r in full["results"]] == [
        scored["a1"].encounter_id,
        scored["a2"].encounter_id,
    ]
    assert Client().get(reverse("api:patient-scores", args=["x"]), **_auth(key)).status_code == 404


def test_ward_alerts_with_status_filter_and_bad_status(
    scored: dict[str, Any], api_key: Any
) -> None:
    key = api_key("alerts:read")
    url = reverse("api:ward-alerts", args=["ward-a"])
    body = Client().get(url, {"status": "open"}, **_auth(key)).json()
    # medium-risk discharges are listed too (the worklist shows them on demand), by band
    assert [(a["encounter_id"], a["band"]) for a in body["results"]] == [
        (scored["a2"].encounter_id, "high"),
        (scored["a1"].encounter_id, "medium"),
    ]
    assert Client().get(url, {"status": "acknowledged"}, **_auth(key)).json()["count"] == 0
    bad = Client().get(url, {"status": "whatever"}, **_auth(key))
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"status"}
    unknown = Client().get(reverse("api:ward-alerts", args=["ward-zz"]), **_auth(key))
    assert unknown.status_code == 404


def test_nurse_session_sees_only_her_wards_through_the_api(
    client_a: Client, scored: dict[str, Any]
) -> None:
    assert client_a.get(reverse("api:ward-alerts", args=["ward-a"])).status_code == 200
    assert client_a.get(reverse("api:ward-alerts", args=["ward-b"])).status_code == 404
    b1 = scored["b1"]
    assert client_a.get(reverse("api:encounter-score", args=[b1.encounter_id])).status_code == 404
    assert client_a.get(reverse("api:patient-scores", args=[b1.patient_id])).status_code == 404


def test_key_restricted_to_a_ward(scored: dict[str, Any], api_key: Any, wards: Any) -> None:
    from alerts_web.api.models import ApiClient

    key = api_key("alerts:read", "scores:read", name="ward-a-only")
    ApiClient.objects.get(name="ward-a-only").wards.add(wards[0])
    assert (
        Client().get(reverse("api:ward-alerts", args=["ward-b"]), **_auth(key)).status_code == 404
    )
    url = reverse("api:encounter-score", args=[scored["b1"].encounter_id])
    assert Client().get(url, **_auth(key)).status_code == 404


def test_predict_with_the_real_model(api_key: Any, real_model: Any) -> None:
    key = api_key("predict")
    record = {
        "age": "[70-80)",
        "number_inpatient": 4,
        "glyburide-metformin": "Steady",
        "diag_1": "38",  # the dataset's own spelling of 038 septicaemia
        "number_diagnoses": 6,
    }
    response = Client().post(
        reverse("api:predict"), record, content_type="application/json", **_auth(key)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert 0 <= body["probability"] <= 1
    assert body["band"] in ("low", "medium", "high")
    assert body["model_version"]
    assert body["factors"]
    assert body["risk_applies"] is True
    assert "Payer not recorded" in body["data_quality"]
    assert all("not recorded" not in f["label"] for f in body["factors"])


def test_predict_refuses_a_record_too_empty_to_score(api_key: Any, real_model: Any) -> None:
    key = api_key("predict")
    response = Client().post(
        reverse("api:predict"), {}, content_type="application/json", **_auth(key)
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"age", "diag_1", "number_diagnoses"}


def test_predict_after_death_says_the_risk_does_not_apply(api_key: Any, real_model: Any) -> None:
    key = api_key("predict")
    record = {
        "age": "[70-80)",
        "diag_1": "428",
        "number_diagnoses": 9,
        "discharge_disposition_id": "11",
    }
    response = Client().post(
        reverse("api:predict"), record, content_type="application/json", **_auth(key)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["risk_applies"] is False
    assert (body["probability"], body["band"]) == (None, None)
    assert body["factors"] == body["interventions"] == []
    assert "does not apply" in body["statement"]


def test_predict_bad_input_names_the_fields(api_key: Any) -> None:
    key = api_key("predict")
    response = Client().post(
        reverse("api:predict"),
        {"age": "ancient", "num_medications": -4, "shoe_size": 9},
        content_type="application/json",
        **_auth(key),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert "shoe_size" in body["fields"]
    response = Client().post(
        reverse("api:predict"),
        {"age": "ancient", "num_medications": -4},
        content_type="application/json",
        **_auth(key),
    )
    assert set(response.json()["fields"]) == {"age", "num_medications"}
    not_json = Client().post(
        reverse("api:predict"), b"{", content_type="application/json", **_auth(key)
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "parse_error"


def test_throttling_is_per_client(
    scored: dict[str, Any], api_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PerClientRateThrottle, "THROTTLE_RATES", {"client": "3/min"})
    first, second = api_key("scores:read"), api_key("scores:read")
    url = reverse("api:encounter-score", args=[scored["a2"].encounter_id])
    codes = [Client().get(url, **_auth(first)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert Client().get(url, **_auth(second)).status_code == 200


def test_openapi_schema_and_docs(api_key: Any, client_a: Client) -> None:
    key = api_key("scores:read")
    schema = Client().get(reverse("api:schema"), {"format": "json"}, **_auth(key)).json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/encounters/{encounter_id}/score",
        "/api/v1/patients/{patient_id}/scores",
        "/api/v1/wards/{ward}/alerts",
        "/api/v1/predict",
    } <= paths
    assert "factors_pending" in schema["components"]["schemas"]["Score"]["properties"]
    docs = client_a.get(reverse("api:docs")).content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()
