"""The FHIR http behaviour of writes: versions (ETag, Last-Modified, versioned Location),
PUT 200 vs 201, If-Match, Prefer on single writes and on transaction/batch entries.

The app runs whole (routers, service, the state database in SQLite) with a publisher
that acknowledges every event, so what is asserted is what an EHR would see.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from visit_support import Broker

from fhir_mappings.synth import read_rows, synthesize_bundle
from ingest.app import create_app
from readmit_core.settings import PROJECT_ROOT, Settings

TOKEN = "unit-token"
HEADERS = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}
MRN = "http://hospital.example.org/mrn"


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    publisher = Broker()  # acknowledges every event and still holds all of them
    app = create_app(settings, publisher=publisher)  # type: ignore[arg-type]
    app.state.ingest.service.event_log = publisher
    with TestClient(app) as c:
        c.publisher = publisher  # type: ignore[attr-defined]
        yield c


def _put(client: TestClient, resource: dict[str, Any], **headers: str) -> Any:
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    return client.put(path, content=orjson.dumps(resource), headers={**HEADERS, **headers})


def _patient(pid: str = "p1", family: str = "Okafor") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MRN, "value": f"mrn-{pid}"}],
        "name": [{"family": family}],
    }


def _post_bundle(client: TestClient, doc: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir", content=orjson.dumps(doc), headers={**HEADERS, **headers})


def _bundle(kind: str, *resources: dict[str, Any], method: str = "PUT") -> dict[str, Any]:
    def entry(r: dict[str, Any]) -> dict[str, Any]:
        url = f"{r['resourceType']}/{r['id']}" if method == "PUT" else r["resourceType"]
        return {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{r['id'].rjust(12, '0')}",
            "resource": r,
            "request": {"method": method, "url": url},
        }

    return {"resourceType": "Bundle", "type": kind, "entry": [entry(r) for r in resources]}


# --- versions, PUT 200 vs 201 ----------------------------------------------------------
def test_put_creates_version_1_then_updates_to_version_2(client: TestClient) -> None:
    first = _put(client, _patient())
    assert first.status_code == 201
    assert first.headers["etag"] == 'W/"1"'
    assert first.headers["location"].endswith("/fhir/Patient/p1/_history/1")
    parsedate_to_datetime(first.headers["last-modified"])  # an HTTP-date

    second = _put(client, _patient(family="Okafor-Eze"))
    assert second.status_code == 200
    assert second.headers["etag"] == 'W/"2"'
    assert second.headers["location"].endswith("/fhir/Patient/p1/_history/2")


def test_an_identical_resend_keeps_its_version(client: TestClient) -> None:
    first = _put(client, _patient())
    again = _put(client, _patient())
    assert again.status_code == 200
    assert again.headers["etag"] == first.headers["etag"] == 'W/"1"'
    assert again.headers["last-modified"] == first.headers["last-modified"]


def test_versions_are_per_logical_id(client: TestClient) -> None:
    _put(client, _patient("p1"))
    _put(client, _patient("p1", family="Changed"))
    other = _put(client, _patient("p2"))
    assert other.status_code == 201
    assert other.headers["etag"] == 'W/"1"'


def test_versions_survive_a_restart_of_the_app(tmp_path: Any) -> None:
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    for family, expected in (("A", 'W/"1"'), ("B", 'W/"2"')):
        app = create_app(settings, publisher=Broker())  # type: ignore[arg-type]
        with TestClient(app) as c:
            assert _put(c, _patient(family=family)).headers["etag"] == expected


# --- If-Match ----------------------------------------------------------------------------
def test_if_match_with_the_current_version_proceeds(client: TestClient) -> None:
    _put(client, _patient())
    response = _put(client, _patient(family="New"), **{"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'


@pytest.mark.parametrize("if_match", ['W/"7"', '"2"'])
def test_if_match_with_another_version_is_412_and_writes_nothing(
    client: TestClient, if_match: str
) -> None:
    _put(client, _patient())
    published = len(client.publisher.events)  # type: ignore[attr-defined]
    response = _put(client, _patient(family="New"), **{"If-Match": if_match})
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["code"] == "conflict"
    assert "version 1" in issue["diagnostics"]
    assert len(client.publisher.events) == published  # type: ignore[attr-defined]
    # nothing written: the next write is still version 2
    assert _put(client, _patient(family="Later")).headers["etag"] == 'W/"2"'


def test_if_match_on_an_id_never_written_is_412(client: TestClient) -> None:
    response = _put(client, _patient("never"), **{"If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert "has no version" in response.json()["issue"][0]["diagnostics"]


def test_if_match_that_is_no_etag_is_400(client: TestClient) -> None:
    assert _put(client, _patient(), **{"If-Match": "yesterday"}).status_code == 400


# --- Prefer on single writes ---------------------------------------------------------------
def test_prefer_return_shapes_the_answer(client: TestClient) -> None:
    minimal = _put(client, _patient("a"), Prefer="return=minimal")
    assert minimal.status_code == 201
    assert minimal.content == b""
    represented = _put(client, _patient("b"), Prefer="return=representation")
    body = represented.json()
    assert body["id"] == "b"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    outcome = _put(client, _patient("c"), Prefer="return=OperationOutcome").json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Patient/c/_history/1" in outcome["issue"][0]["diagnostics"]


# --- transaction / batch response entries ------------------------------------------------
def test_transaction_entries_carry_status_location_etag_and_last_modified(
    client: TestClient,
) -> None:
    _put(client, _patient("p1"))
    doc = _bundle("transaction", _patient("p1", family="Changed"), _patient("p2"))
    response = _post_bundle(client, doc)
    assert response.status_code == 200
    first, second = (e["response"] for e in response.json()["entry"])
    assert first["status"] == "200 OK"
    assert first["location"] == "Patient/p1/_history/2"
    assert first["etag"] == 'W/"2"'
    assert second["status"] == "201 Created"
    assert second["location"] == "Patient/p2/_history/1"
    assert second["etag"] == 'W/"1"'
    for entry in (first, second):
        assert entry["lastModified"].endswith("Z")


def test_transaction_post_entries_are_201_unless_resent_unchanged(client: TestClient) -> None:
    doc = _bundle("transaction", _patient("p3"), method="POST")
    assert _post_bundle(client, doc).json()["entry"][0]["response"]["status"] == "201 Created"
    again = _post_bundle(client, doc).json()["entry"][0]["response"]
    assert (again["status"], again["etag"]) == ("200 OK", 'W/"1"')


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_prefer_applies_to_each_entry(client: TestClient, kind: str) -> None:
    doc = _bundle(kind, _patient("p1"), _patient("p2"))
    minimal = _post_bundle(client, doc, Prefer="return=minimal").json()["entry"]
    assert all(set(e) == {"response"} and "outcome" not in e["response"] for e in minimal)
    represented = _post_bundle(client, doc, Prefer="return=representation").json()["entry"]
    assert [e["resource"]["id"] for e in represented] == ["p1", "p2"]
    assert all(e["resource"]["meta"]["versionId"] == "1" for e in represented)
    outcomes = _post_bundle(client, doc, Prefer="return=OperationOutcome").json()["entry"]
    for entry in outcomes:
        assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert "resource" not in entry


def test_transaction_if_match_mismatch_fails_whole_and_writes_nothing(client: TestClient) -> None:
    _put(client, _patient("p1"))
    doc = _bundle("transaction", _patient("p2"), _patient("p1", family="New"))
    doc["entry"][1]["request"]["ifMatch"] = 'W/"5"'
    response = _post_bundle(client, doc)
    assert response.status_code == 412
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.ifMatch"]
    assert _put(client, _patient("p2")).status_code == 201  # p2 was not written either


def test_batch_if_match_mismatch_refuses_that_entry_only(client: TestClient) -> None:
    _put(client, _patient("p1"))
    doc = _bundle("batch", _patient("p2"), _patient("p1", family="New"), _patient("p3"))
    doc["entry"][1]["request"]["ifMatch"] = 'W/"5"'
    doc["entry"][2]["request"]["ifMatch"] = 'W/"1"'  # p3 has no version yet
    entries = _post_bundle(client, doc).json()["entry"]
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["201 Created", "412 Precondition Failed", "412 Precondition Failed"]
    assert entries[1]["response"]["outcome"]["issue"][0]["code"] == "conflict"


def test_batch_if_match_with_the_current_version_updates(client: TestClient) -> None:
    _put(client, _patient("p1"))
    doc = _bundle("batch", _patient("p1", family="New"))
    doc["entry"][0]["request"]["ifMatch"] = 'W/"1"'
    entry = _post_bundle(client, doc).json()["entry"][0]["response"]
    assert (entry["status"], entry["etag"]) == ("200 OK", 'W/"2"')


# --- conditional references ----------------------------------------------------------------
def _stay() -> dict[str, Any]:
    row = next(read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", 1))
    return copy.deepcopy(synthesize_bundle(row, seed=3))


def _with_conditional_subject(doc: dict[str, Any], query: str) -> tuple[dict[str, Any], int]:
    """The stay with its Patient's MRN set and its index Encounter naming the patient by
    a conditional reference; the Encounter's entry index."""
    index = None
    for i, entry in enumerate(doc["entry"]):
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["identifier"] = [{"system": MRN, "value": "mrn-77"}]
        if resource["resourceType"] == "Encounter" and index is None:
            resource["subject"] = {"reference": f"Patient?{query}"}
            index = i
    assert index is not None
    return doc, index


@pytest.mark.parametrize("query", [f"identifier={MRN}|mrn-77", "identifier=mrn-77"])
def test_a_conditional_reference_resolves_to_the_one_matching_entry(
    client: TestClient, query: str
) -> None:
    doc, _ = _with_conditional_subject(_stay(), query)
    patient = next(
        e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    response = _post_bundle(client, doc)
    assert response.status_code == 200, response.text
    (event,) = client.publisher.events  # type: ignore[attr-defined]
    assert event.patient_id == patient["id"]


@pytest.mark.parametrize(
    ("query", "twin", "status", "code"),
    [
        (f"identifier={MRN}|someone-else", False, 422, "not-found"),
        (f"identifier={MRN}|mrn-77", True, 412, "multiple-matches"),
        ("name=Okafor", False, 422, "not-supported"),
    ],
)
def test_a_conditional_reference_not_matching_exactly_one_names_reference_and_entry(
    client: TestClient, query: str, twin: bool, status: int, code: str
) -> None:
    doc, index = _with_conditional_subject(_stay(), query)
    if twin:  # a second Patient with the same MRN
        doc["entry"].append(
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000beef",
                "resource": {
                    "resourceType": "Patient",
                    "id": "twin",
                    "identifier": [{"system": MRN, "value": "mrn-77"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        )
    response = _post_bundle(client, doc)
    assert response.status_code == status
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert f"Patient?{query}" in issue["diagnostics"]
    assert issue["expression"] == [f"Bundle.entry[{index}].resource.subject"]
    assert "has no Patient subject" not in issue["diagnostics"]
    assert client.publisher.events == []  # type: ignore[attr-defined]


def test_in_a_batch_a_bad_conditional_reference_refuses_its_entry_only(client: TestClient) -> None:
    doc = _bundle("batch", _patient("p1"))
    doc["entry"].append(
        {
            "fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000c1",
            "resource": {
                "resourceType": "Condition",
                "id": "c1",
                "subject": {"reference": f"Patient?identifier={MRN}|nobody"},
            },
            "request": {"method": "PUT", "url": "Condition/c1"},
        }
    )
    entries = _post_bundle(client, doc).json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"] == "422 Unprocessable Entity"
    expression = entries[1]["response"]["outcome"]["issue"][0]["expression"]
    assert expression == ["Bundle.entry[1].resource.subject"]


def test_a_conditional_reference_to_a_type_not_deciding_identity_may_stay_external(
    client: TestClient,
) -> None:
    """Synthea names Practitioners so; none is in the Bundle: external, as Practitioner/1."""
    doc, index = _with_conditional_subject(_stay(), f"identifier={MRN}|mrn-77")
    npi = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999"
    doc["entry"][index]["resource"]["participant"] = [{"individual": {"reference": npi}}]
    response = _post_bundle(client, doc)
    assert response.status_code == 200, response.text
    assert len(client.publisher.events) == 1  # type: ignore[attr-defined]
