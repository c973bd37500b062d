"""CDS Hooks 2.0 shapes: discovery, request parsing and the risk card."""

from __future__ import annotations

import uuid

import pytest
from aw_fakes import score_event
from hypothesis import given
from hypothesis import strategies as st

from alerts_web.cds.cards import (
    SUMMARY_MAX,
    CdsRequestError,
    discovery,
    encounter_conflict,
    parse_request,
    prefetch_conflict,
    prefetched,
    risk_card,
)
from model_store.explain import PENDING_TEXT
from readmit_core.events import Factor


def test_discovery_lists_the_service_with_prefetch_templates() -> None:
    (service,) = discovery()["services"]
    assert service["hook"] == "encounter-discharge"
    assert service["id"] == "readmission-risk"
    # only what the service uses: the Encounter confirms the visit is the patient's
    assert service["prefetch"] == {"encounter": "Encounter/{{context.encounterId}}"}
    assert service["description"]
    assert service["title"]


def _request(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "context": {"userId": "Practitioner/1", "patientId": "pat-77", "encounterId": "enc-1001"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "pat-77"}},
    }
    body.update(overrides)
    return body


def test_parse_request_returns_ids_and_prefetch() -> None:
    hook = parse_request(_request())
    assert (hook.patient_id, hook.encounter_id) == ("pat-77", "enc-1001")
    assert hook.user_id == "Practitioner/1"
    assert hook.prefetch["patient"]["id"] == "pat-77"
    assert (hook.fhir_server, hook.fhir_authorization) == (None, None)


_CTX = {"userId": "Practitioner/1", "patientId": "pat-77", "encounterId": "enc-1001"}
_AUTH = {
    "access_token": "t",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/Encounter.read",
    "subject": "cds-service",
}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hook": "patient-view"}, "hook"),
        ({"hookInstance": ""}, "hookInstance"),
        ({"hookInstance": "not-a-uuid"}, "hookInstance"),
        ({"context": {"patientId": "p", "userId": "Practitioner/1"}}, "context.encounterId"),
        ({"context": "x"}, "context"),
        ({"prefetch": []}, "prefetch"),
        ({"context": {**_CTX, "userId": None}}, "context.userId"),
        ({"context": {k: v for k, v in _CTX.items() if k != "userId"}}, "context.userId"),
        ({"context": {**_CTX, "userId": "Device/1"}}, "context.userId"),
        ({"context": {**_CTX, "userId": "p1"}}, "context.userId"),
        ({"context": {k: v for k, v in _CTX.items() if k != "patientId"}}, "context.patientId"),
        ({"context": {**_CTX, "patientId": "Patient/pat-77"}}, "context.patientId"),
        ({"context": {**_CTX, "patientId": "pat 77"}}, "context.patientId"),
        ({"context": {**_CTX, "encounterId": "Encounter/enc-1001"}}, "context.encounterId"),
        ({"fhirAuthorization": _AUTH}, "fhirServer"),
        ({"fhirServer": "ftp://ehr"}, "fhirServer"),
        ({"fhirServer": "https://ehr/fhir", "fhirAuthorization": "t"}, "fhirAuthorization"),
        (
            {"fhirServer": "https://ehr/fhir", "fhirAuthorization": {**_AUTH, "access_token": ""}},
            "fhirAuthorization.access_token",
        ),
        (
            {"fhirServer": "https://ehr/fhir", "fhirAuthorization": {**_AUTH, "token_type": "MAC"}},
            "fhirAuthorization.token_type",
        ),
    ],
)
def test_parse_request_names_the_bad_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(CdsRequestError) as err:
        parse_request(_request(**overrides))
    assert err.value.field == field


def test_a_type_prefixed_id_is_refused_with_a_message_saying_so() -> None:
    with pytest.raises(CdsRequestError) as err:
        parse_request(_request(context={**_CTX, "patientId": "Patient/pat-77"}))
    assert "bare Patient.id" in err.value.message


def test_fhir_server_with_authorization_is_kept() -> None:
    hook = parse_request(_request(fhirServer="https://ehr/fhir", fhirAuthorization=_AUTH))
    assert (hook.fhir_server, hook.fhir_authorization) == ("https://ehr/fhir", _AUTH)


def test_a_failed_prefetch_counts_as_absent() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    assert prefetched({"encounter": None}, "encounter") is None
    assert prefetched({"encounter": outcome}, "encounter") is None
    assert prefetched({}, "encounter") is None
    assert prefetched({"encounter": {"resourceType": "Encounter"}}, "encounter") is not None
    assert prefetch_conflict({"encounter": outcome, "patient": None}, "p", "e") is None


def test_an_encounter_of_another_patient_is_a_conflict() -> None:
    mine = {"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}}
    assert encounter_conflict(mine, "p", "e", "x") is None
    other = {**mine, "subject": {"reference": "Patient/q"}}
    assert encounter_conflict(other, "p", "e", "x") == "x.subject is not context.patientId"
    assert encounter_conflict({**mine, "id": "f"}, "p", "e", "x")


def test_prefetch_of_another_patient_is_a_conflict() -> None:
    assert prefetch_conflict({"patient": {"resourceType": "Patient", "id": "other"}}, "p", "e")
    assert prefetch_conflict({"encounter": {"resourceType": "Patient"}}, "p", "e")
    assert prefetch_conflict({"patient": {"resourceType": "Patient", "id": "p"}}, "p", "e") is None


def test_card_has_the_spec_fields() -> None:
    event = score_event()
    card = risk_card(event, "https://web.example/encounters/enc-1001/")
    uuid.UUID(card["uuid"])
    assert card["indicator"] == "critical"
    assert "62%" in card["summary"]
    assert card["source"]["label"]
    assert card["links"] == [
        {
            "label": "Open readmission risk page",
            "url": "https://web.example/encounters/enc-1001/",
            "type": "absolute",
        }
    ]
    assert [s["label"] for s in card["suggestions"]] == [i.title for i in event.interventions]
    for suggestion in card["suggestions"]:
        uuid.UUID(suggestion["uuid"])
        (action,) = suggestion["actions"]
        assert action["type"] == "create"
        assert action["resource"]["resourceType"] == "ServiceRequest"
    assert "3 inpatient stays" in card["detail"]


@pytest.mark.parametrize(("band", "indicator"), [("low", "info"), ("medium", "warning")])
def test_indicator_follows_band(band: str, indicator: str) -> None:
    assert risk_card(score_event(band=band), "https://x/")["indicator"] == indicator


@given(label=st.text(min_size=0, max_size=400))
def test_summary_never_exceeds_140_characters(label: str) -> None:
    event = score_event(factors=(Factor(feature="f", label=label, contribution=0.1),))
    assert len(risk_card(event, "https://x/")["summary"]) <= SUMMARY_MAX


def test_no_warning_or_critical_card_when_the_risk_does_not_apply() -> None:
    # an event from before the rule moved into the prediction still carries factors and
    # interventions: the card must not present them
    card = risk_card(score_event(non_readmittable=True), "https://example.org/p")
    assert card["indicator"] == "info"
    assert card["suggestions"] == []
    assert "does not apply" in card["summary"]
    assert "Follow-up" not in card["detail"]
    assert len(card["summary"]) <= SUMMARY_MAX


def test_card_factors_are_in_percentage_points() -> None:
    card = risk_card(score_event(), "https://example.org/p")
    assert "3 inpatient stays last year (+0.4 percentage points)" in card["detail"]


def test_a_pending_card_offers_no_advice_and_says_it_is_being_computed() -> None:
    # an event carrying advice, as a pending score from before the scorer dropped it did
    pending = score_event(factors=(), factors_pending=True)
    card = risk_card(pending, "https://example.org/p")
    assert card["suggestions"] == []
    assert PENDING_TEXT in card["detail"]
    explained = risk_card(score_event(), "https://example.org/p")
    assert explained["suggestions"]
    assert PENDING_TEXT not in explained["detail"]
    assert card["uuid"] != explained["uuid"]  # suggestions never change under one uuid
