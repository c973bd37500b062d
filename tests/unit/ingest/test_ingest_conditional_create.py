"""Conditional create over HTTP (If-None-Exist, entry.request.ifNoneExist): 0 matches →
created (201), 1 → 200 with the existing location and nothing created or scored, more
→ 412; parameters other than identifier and _id are refused, never ignored."""

from __future__ import annotations

import copy

import orjson
import pytest
from fastapi.testclient import TestClient
from visit_support import VISITS, Broker, encounter, visit

from ingest.app import create_app
from ingest.conditional import UnsupportedSearchParameter, criteria
from readmit_core.settings import Settings

TOKEN = "unit-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
MRN = "https://hospital.example.org/mrn"


class _Publisher(Broker):
    def ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def broker() -> _Publisher:
    return _Publisher()


@pytest.fixture
def client(tmp_path, broker):
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    with TestClient(create_app(settings, publisher=broker)) as c:
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
    assert again.headers["Location"].endswith("/fhir/Patient/p1")
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
    assert response["location"] == f"Encounter/{encounter(bundle)['id']}"
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
