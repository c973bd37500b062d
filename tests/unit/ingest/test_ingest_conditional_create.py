"""Conditional create over HTTP (If-None-Exist, entry.request.ifNoneExist): 0 matches →
created (201), 1 → 200 with the existing location and nothing created or scored, more
→ 412; parameters other than identifier and _id are refused, never ignored. With
versions: a match answers the existing resource's current version, an Encounter resent
under a new id is a version of its visit, and a batch mixing a matched ifNoneExist with
an ifMatch conflict answers each entry at its own index."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from visit_support import HEADERS, VISITS, Broker, encounter, http_client, visit

from ingest.conditional import UnsupportedSearchParameter, criteria

MRN = "https://hospital.example.org/mrn"


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def client(tmp_path: Any, broker: Broker) -> Iterator[TestClient]:
    with http_client(tmp_path, broker) as c:
        yield c


def _patient(pid: str, system: str, value: str) -> bytes:
    return orjson.dumps(
        {"resourceType": "Patient", "id": pid, "identifier": [{"system": system, "value": value}]}
    )


def _post(client, path, body, condition=None):
    headers = dict(HEADERS)
    if condition is not None:
        headers["If-None-Exist"] = condition
    return client.post(path, content=body, headers=headers)


def test_if_none_exist_zero_one_and_two_matches(client):
    assert (
        _post(
            client, "/fhir/Patient", _patient("p1", MRN, "123"), f"identifier={MRN}|123"
        ).status_code
        == 201
    )
    again = _post(
        client, "/fhir/Patient", _patient("p1-resent", MRN, "123"), f"identifier={MRN}|123"
    )
    assert again.status_code == 200
    # the existing resource, at its current version (nothing new was written)
    assert again.headers["Location"].endswith("/fhir/Patient/p1/_history/1")
    assert again.headers["ETag"] == 'W/"1"'
    assert again.json()["issue"][0]["severity"] == "information"
    by_id = _post(client, "/fhir/Patient", _patient("p9", MRN, "9"), "_id=p1")
    assert by_id.status_code == 200
    other = "https://other.example.org/mrn"
    assert (
        _post(
            client, "/fhir/Patient", _patient("p2", other, "123"), f"identifier={other}|123"
        ).status_code
        == 201
    )
    two = _post(client, "/fhir/Patient", _patient("p3", MRN, "7"), "identifier=123")
    assert two.status_code == 412
    assert two.json()["resourceType"] == "OperationOutcome"
    # the 412 created nothing: p3 is still unknown
    assert _post(client, "/fhir/Patient", _patient("p4", MRN, "8"), "_id=p3").status_code == 201


def test_an_unsupported_parameter_is_refused_naming_it(client):
    resp = _post(client, "/fhir/Patient", _patient("p1", MRN, "1"), "name=Smith")
    assert resp.status_code == 400
    issue = resp.json()["issue"][0]
    assert "'name'" in issue["diagnostics"]
    assert issue["code"] == "not-supported"


@pytest.mark.parametrize(
    "query", ["", "identifier=", "identifier=a,b", "identifier:exact=x|1", f"identifier={MRN}|"]
)
def test_queries_that_cannot_be_searched_exactly_are_refused(query):
    with pytest.raises(UnsupportedSearchParameter):
        criteria(query, "If-None-Exist")


def test_criteria_read_system_and_value():
    assert criteria(f"identifier={MRN}|123&_id=p1", "x") == [(MRN, "123"), ("#id", "p1")]
    assert criteria("Patient?identifier=|7", "x") == [("", "7")]
    assert criteria("identifier=7", "x") == [(None, "7")]


def test_a_matched_encounter_in_a_transaction_is_not_scored_again(client, broker):
    bundle = visit()
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Encounter":
            entry["request"] = {
                "method": "POST",
                "url": "Encounter",
                "ifNoneExist": f"identifier={VISITS}|V-1",
            }
    first = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
    assert first.status_code == 200, first.text
    assert len(broker.events) == 1
    resent = copy.deepcopy(bundle)
    encounter(resent)["id"] = "new-id-from-the-engine"
    second = client.post("/fhir", content=orjson.dumps(resent), headers=HEADERS)
    assert second.status_code == 200, second.text
    index = next(
        i for i, e in enumerate(resent["entry"]) if e["resource"]["resourceType"] == "Encounter"
    )
    response = second.json()["entry"][index]["response"]
    assert response["status"] == "200 OK"
    # the visit's canonical id at its current version: the match wrote nothing
    assert response["location"] == f"Encounter/{encounter(bundle)['id']}/_history/1"
    assert response["etag"] == 'W/"1"'
    assert len(broker.events) == 1


def test_a_batch_entry_matching_two_resources_is_412_alone(client):
    other = "https://other.example.org/mrn"
    for pid, system in (("p1", MRN), ("p2", other)):
        assert _post(client, "/fhir/Patient", _patient(pid, system, "55")).status_code == 201
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1c2d0e-0000-4000-8000-0000000000a1",
                "resource": orjson.loads(_patient("p5", MRN, "56")),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=55"},
            },
            {
                "fullUrl": "urn:uuid:6f1c2d0e-0000-4000-8000-0000000000a2",
                "resource": orjson.loads(_patient("p6", MRN, "57")),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": "_id=p6"},
            },
        ],
    }
    resp = client.post("/fhir", content=orjson.dumps(batch), headers=HEADERS)
    assert resp.status_code == 200, resp.text
    statuses = [e["response"]["status"] for e in resp.json()["entry"]]
    assert statuses[0].startswith("412")
    assert statuses[1].startswith("201")


def _post_bundle(client: TestClient, doc: dict[str, Any]) -> Any:
    return client.post("/fhir", content=orjson.dumps(doc), headers=HEADERS)


def _renamed(bundle: dict[str, Any], new_id: str) -> dict[str, Any]:
    """The bundle with its Encounter sent under another id (references are fullUrls)."""
    out = copy.deepcopy(bundle)
    for entry in out["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["resource"]["id"] = new_id
            entry["request"]["url"] = f"Encounter/{new_id}"
    return out


def _encounter_response(bundle: dict[str, Any], answer: Any) -> dict[str, Any]:
    index = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Encounter"
    )
    response: dict[str, Any] = answer.json()["entry"][index]["response"]
    return response


def test_a_visit_resent_under_a_new_id_is_a_version_of_the_visit(client, broker):
    bundle = visit()
    first = _post_bundle(client, bundle)
    assert first.status_code == 200, first.text
    visit_id = encounter(bundle)["id"]
    created = _encounter_response(bundle, first)
    assert created["status"] == "201 Created"
    assert created["location"] == f"Encounter/{visit_id}/_history/1"
    resent = _renamed(bundle, "new-id-from-the-engine")
    second = _post_bundle(client, resent)
    assert second.status_code == 200, second.text
    again = _encounter_response(resent, second)
    # the same visit, same content but for the id: no new version, not scored again
    assert again["status"] == "200 OK"
    assert again["location"] == f"Encounter/{visit_id}/_history/1"
    assert again["etag"] == 'W/"1"'
    assert again["outcome"]["issue"][0]["code"] == "duplicate"
    assert len(broker.events) == 1
    # a change of the resource is the visit's next version, though the features it
    # scores are the same (not scored again)
    changed = copy.deepcopy(resent)
    encounter(changed)["language"] = "en"
    third = _encounter_response(changed, _post_bundle(client, changed))
    assert third["location"] == f"Encounter/{visit_id}/_history/2"
    assert third["status"] == "200 OK"
    assert len(broker.events) == 1


def _mrn_patient(pid: str, value: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": MRN, "value": value}]}


def test_a_batch_answers_a_matched_entry_and_an_if_match_conflict_at_their_indexes(client):
    for pid in ("p1", "p2"):
        put = client.put(
            f"/fhir/Patient/{pid}", content=orjson.dumps(_mrn_patient(pid, pid)), headers=HEADERS
        )
        assert put.status_code == 201, put.text
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": _mrn_patient("p1-resent", "p1"),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={MRN}|p1",
                },
            },
            {
                "resource": _mrn_patient("p2", "p2"),
                "request": {"method": "PUT", "url": "Patient/p2", "ifMatch": 'W/"7"'},
            },
            {
                "resource": _mrn_patient("p3", "p3"),
                "request": {"method": "PUT", "url": "Patient/p3"},
            },
        ],
    }
    answer = _post_bundle(client, batch)
    assert answer.status_code == 200, answer.text
    matched, conflict, created = (e["response"] for e in answer.json()["entry"])
    assert matched["status"] == "200 OK"
    assert matched["location"] == "Patient/p1/_history/1"
    assert conflict["status"] == "412 Precondition Failed"
    assert "entry[1]" in conflict["outcome"]["issue"][0]["diagnostics"]
    assert created["status"] == "201 Created"
    assert created["location"] == "Patient/p3/_history/1"
    # the conflicting PUT wrote nothing: p2 is still at version 1
    unchanged = client.put(
        "/fhir/Patient/p2",
        content=orjson.dumps(_mrn_patient("p2", "p2")),
        headers={**HEADERS, "If-Match": 'W/"1"'},
    )
    assert unchanged.status_code == 200
    assert unchanged.headers["ETag"] == 'W/"1"'


def _discharge(tag: str, mrn: str) -> dict[str, Any]:
    """A transaction whose Patient entry is a conditional create on the MRN (what
    interface engines send for a known patient); stays of the same dates."""
    patient, enc = "urn:uuid:" + uuid.uuid4().hex, "urn:uuid:" + uuid.uuid4().hex
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": MRN, "value": mrn}],
                    "gender": "male",
                    "birthDate": "1950-01-01",
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={MRN}|{mrn}",
                },
            },
            {
                "fullUrl": enc,
                "resource": {
                    "resourceType": "Encounter",
                    "id": f"E{tag}",
                    "identifier": [{"system": VISITS, "value": f"VN-{tag}"}],
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "IMP",
                    },
                    "subject": {"reference": patient},
                    "period": {"start": "2026-11-20T08:00:00Z", "end": "2026-11-24T08:00:00Z"},
                },
                "request": {"method": "PUT", "url": f"Encounter/E{tag}"},
            },
        ],
    }


def test_a_new_stay_of_a_matched_patient_is_scored_not_merged_into_the_last(client, broker):
    """Regression (atk14 H2): the matched Patient entry leaves the Bundle, which is then
    completed with the patient's stored resources, among them the previous stay's
    Encounter. That Encounter is context: only the sender's own Encounters can be index
    stays, so stay 2 is scored and stay 1 is not re-scored."""
    assert _post(client, "/fhir/Patient", _patient("P1", MRN, "42")).status_code == 201
    for tag in ("1", "2"):
        answer = client.post("/fhir", content=orjson.dumps(_discharge(tag, "42")), headers=HEADERS)
        assert answer.status_code == 200
        statuses = [e["response"]["status"] for e in answer.json()["entry"]]
        assert statuses == ["200 OK", "201 Created"]
    assert [(e.encounter_id, e.patient_id, e.input_version) for e in broker.events] == [
        ("E1", "P1", 1),
        ("E2", "P1", 1),
    ]


def test_if_none_exist_must_search_the_type_created(client):
    answer = _post(
        client, "/fhir/Patient", _patient("p9", MRN, "9"), f"Encounter?identifier={MRN}|9"
    )
    assert answer.status_code == 400
    assert "Encounter" in answer.json()["issue"][0]["diagnostics"]
    assert (
        _post(
            client, "/fhir/Patient", _patient("p9", MRN, "9"), f"Patient?identifier={MRN}|9"
        ).status_code
        == 201
    )
