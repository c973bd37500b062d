"""FHIR RiskAssessment endpoints and the CDS Hooks service over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment

from model_store.explain import PENDING_TEXT

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def scored(wards: Any, cache: Any, event_factory: Any) -> Any:
    event = event_factory("ward-a")
    cache.write([event])
    return event


def test_search_by_encounter_returns_a_valid_searchset(scored: Any, api_key: Any) -> None:
    key = api_key("fhir:read")
    for param in (scored.encounter_id, f"Encounter/{scored.encounter_id}"):
        response = Client().get("/fhir/RiskAssessment", {"encounter": param}, **_bearer(key))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
        bundle = Bundle.model_validate(response.json())
        assert bundle.type == "searchset"
        assert bundle.total == 1
        resource = RiskAssessment.model_validate(bundle.entry[0].resource.model_dump())
        assert float(resource.prediction[0].probabilityDecimal) == pytest.approx(scored.probability)
        assert resource.method.coding[0].code == scored.model_version


def test_search_by_patient_and_read_by_id(scored: Any, api_key: Any) -> None:
    key = api_key("fhir:read")
    bundle = (
        Client()
        .get("/fhir/RiskAssessment", {"patient": f"Patient/{scored.patient_id}"}, **_bearer(key))
        .json()
    )
    assert bundle["total"] == 1
    read = Client().get(f"/fhir/RiskAssessment/{scored.encounter_id}", **_bearer(key))
    assert read.status_code == 200
    resource = RiskAssessment.model_validate(read.json())
    assert resource.subject.reference == f"Patient/{scored.patient_id}"
    assert resource.mitigation


def test_fhir_errors_are_operation_outcomes(scored: Any, api_key: Any) -> None:
    key = api_key("fhir:read")
    cases = [
        (Client().get("/fhir/RiskAssessment", **_bearer(key)), 400),
        (Client().get("/fhir/RiskAssessment", {"subject": "x"}, **_bearer(key)), 400),
        (Client().get("/fhir/RiskAssessment/unknown-enc", **_bearer(key)), 404),
        (Client().get("/fhir/RiskAssessment/x"), 401),
        (Client().get("/fhir/RiskAssessment/x", **_bearer(api_key("scores:read"))), 403),
    ]
    for response, status in cases:
        assert response.status_code == status
        OperationOutcome.model_validate(response.json())
    empty = Client().get("/fhir/RiskAssessment", {"encounter": "nobody"}, **_bearer(key)).json()
    assert empty["total"] == 0


def test_metadata_states_exactly_what_the_fhir_base_answers(scored: Any, api_key: Any) -> None:
    from alerts_web.fhir_api.capability import SEARCH_PARAMS

    response = Client().get("/fhir/metadata")  # anonymous: read before authenticating
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert "application/fhir+json" in statement.format
    (rest,) = statement.rest
    assert rest.mode == "server"
    assert "fhir:read" in rest.security.description
    assert rest.security.cors is False
    (resource,) = rest.resource
    assert resource.type == "RiskAssessment"
    assert sorted(i.code for i in resource.interaction) == ["read", "search-type"]
    declared = {p.name for p in resource.searchParam}
    assert declared == {p for p in SEARCH_PARAMS if not p.startswith("_")}
    key = api_key("fhir:read")
    # every declared parameter is answered, an undeclared one refused, _format honest
    for name in declared:
        value = scored.encounter_id if name == "encounter" else scored.patient_id
        answer = Client().get("/fhir/RiskAssessment", {name: value}, **_bearer(key))
        assert answer.json()["total"] == 1
    for refused, status in (({"_count": "5", "patient": "p"}, 400), ({"_format": "xml"}, 406)):
        answer = Client().get("/fhir/RiskAssessment", refused, **_bearer(key))
        assert answer.status_code == status
        OperationOutcome.model_validate(answer.json())
    assert Client().get("/fhir/metadata", {"_format": "json"}).status_code == 200
    assert Client().get("/fhir/metadata", {"_format": "application/fhir+xml"}).status_code == 406
    assert Client().post("/fhir/metadata").status_code == 405


def test_fhir_respects_ward_isolation_for_nurses(
    client_a: Client, event_factory: Any, cache: Any
) -> None:
    other = event_factory("ward-b")
    cache.write([other])
    assert client_a.get(f"/fhir/RiskAssessment/{other.encounter_id}").status_code == 404


def _hook(event: Any, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "fhirServer": "https://ehr.example/fhir",
        "context": {
            "userId": "Practitioner/p1",
            "patientId": event.patient_id,
            "encounterId": event.encounter_id,
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": event.patient_id},
            "encounter": {"resourceType": "Encounter", "id": event.encounter_id},
        },
    }
    body.update(overrides)
    return body


def test_cds_discovery_and_card(scored: Any, api_key: Any) -> None:
    key = api_key("cds")
    services = Client().get("/cds-services", **_bearer(key)).json()["services"]
    assert services[0]["id"] == "readmission-risk"
    response = Client().post(
        "/cds-services/readmission-risk",
        _hook(scored),
        content_type="application/json",
        **_bearer(key),
    )
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert len(card["summary"]) <= 140
    assert card["links"][0]["url"].endswith(f"/encounters/{scored.encounter_id}/")
    assert card["links"][0]["type"] == "absolute"
    assert [s["label"] for s in card["suggestions"]] == [i.title for i in scored.interventions]


def test_cds_without_score_or_with_other_patient_gives_no_card(scored: Any, api_key: Any) -> None:
    key = api_key("cds")
    body = _hook(scored)
    body["context"]["encounterId"] = "unscored"
    body["prefetch"].pop("encounter")
    response = Client().post(
        "/cds-services/readmission-risk", body, content_type="application/json", **_bearer(key)
    )
    assert response.json() == {"cards": []}
    body = _hook(scored)
    body["context"]["patientId"] = "someone-else"
    body["prefetch"].pop("patient")
    response = Client().post(
        "/cds-services/readmission-risk", body, content_type="application/json", **_bearer(key)
    )
    assert response.json() == {"cards": []}


def test_cds_bad_requests_and_auth(scored: Any, api_key: Any) -> None:
    key = api_key("cds")
    url = "/cds-services/readmission-risk"
    bad = Client().post(
        url, _hook(scored, hook="order-sign"), content_type="application/json", **_bearer(key)
    )
    assert (bad.status_code, bad.json()["field"]) == (400, "hook")
    body = _hook(scored)
    body["prefetch"]["patient"]["id"] = "mismatch"
    conflict = Client().post(url, body, content_type="application/json", **_bearer(key))
    assert (conflict.status_code, conflict.json()["field"]) == (400, "prefetch")
    garbage = Client().post(url, b"{", content_type="application/json", **_bearer(key))
    assert garbage.status_code == 400
    assert Client().post(url, _hook(scored), content_type="application/json").status_code == 401
    assert Client().get("/cds-services").status_code == 401
    wrong = Client().post(
        url, _hook(scored), content_type="application/json", **_bearer(api_key("fhir:read"))
    )
    assert wrong.status_code == 403


def test_after_death_or_hospice_every_integration_surface_says_not_applicable(
    wards: Any, cache: Any, event_factory: Any, api_key: Any
) -> None:
    """The issue's case: band high with non_readmittable set (an event scored before the
    rule moved into the prediction still carries factors and interventions)."""
    event = event_factory("ward-a", non_readmittable=True)
    assert event.band == "high"
    assert event.interventions
    cache.write([event])
    key = api_key("cds", "fhir:read", "scores:read")
    (card,) = Client().post(
        "/cds-services/readmission-risk", _hook(event), content_type="application/json",
        **_bearer(key),
    ).json()["cards"]  # fmt: skip
    assert card["indicator"] == "info"
    assert card["suggestions"] == []
    resource = Client().get(f"/fhir/RiskAssessment/{event.encounter_id}", **_bearer(key)).json()
    assert "qualitativeRisk" not in resource["prediction"][0]
    assert "mitigation" not in resource
    assert "does not apply" in resource["note"][0]["text"]
    url = reverse("api:encounter-score", args=[event.encounter_id])
    score = Client().get(url, **_bearer(key)).json()
    assert (score["risk_applies"], score["band"], score["probability"]) == (False, None, None)
    assert score["interventions"] == []


def test_a_pending_score_is_preliminary_without_advice_until_its_factors_arrive(
    wards: Any, cache: Any, event_factory: Any, api_key: Any
) -> None:
    """FHIR says preliminary and the CDS card offers nothing while the explainer stage
    works; once it has written the factors the resource is final, its lastUpdated is the
    explanation time (a syncing client fetches it again) and the card carries the advice."""
    done = event_factory("ward-a", computed_at=datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    cache.write([done.model_copy(update={"factors": (), "factors_pending": True})])
    fhir, cds = api_key("fhir:read"), api_key("cds")
    url = f"/fhir/RiskAssessment/{done.encounter_id}"
    pending = RiskAssessment.model_validate(Client().get(url, **_bearer(fhir)).json())
    assert pending.status == "preliminary"
    assert pending.prediction[0].rationale == PENDING_TEXT
    assert pending.meta.lastUpdated == done.computed_at
    hook = {"content_type": "application/json", **_bearer(cds)}
    (card,) = Client().post("/cds-services/readmission-risk", _hook(done), **hook).json()["cards"]
    assert card["suggestions"] == []
    assert PENDING_TEXT in card["detail"]

    assert cache.add_factors([done]) == [True]
    final = RiskAssessment.model_validate(Client().get(url, **_bearer(fhir)).json())
    assert final.status == "final"
    assert final.prediction[0].rationale.startswith("Top factors:")
    assert final.meta.lastUpdated > done.computed_at
    assert final.occurrenceDateTime == done.computed_at
    (card,) = Client().post("/cds-services/readmission-risk", _hook(done), **hook).json()["cards"]
    assert [s["label"] for s in card["suggestions"]] == [i.title for i in done.interventions]
