"""Transaction/batch entries the FHIR http rules refuse: refused with their index as
data, never answered 200/201 as if done (the refusals need no services)."""

import orjson
import pytest
from fastapi.testclient import TestClient
from test_ingest_refusals import ExplodingPublisher

from fhir_mappings.errors import InvalidEntry, InvalidResource, UnsupportedInteraction
from ingest.app import create_app
from ingest.entries import entry_problems
from readmit_core.errors import ReadmitError
from readmit_core.settings import Settings

TOKEN = "unit-token"
PATIENT = {"resourceType": "Patient", "id": "p1"}


def _entry(request, resource=PATIENT, full_url="urn:uuid:6f1c2d0e-0000-4000-8000-000000000001"):
    entry = {"request": request, "fullUrl": full_url}
    if resource is not None:
        entry["resource"] = resource
    return entry


POST = {"method": "POST", "url": "Patient"}
REFUSED = [
    (_entry({"method": "DELETE", "url": "Patient/p1"}, None), UnsupportedInteraction),
    (_entry({"method": "GET", "url": "Patient/p1"}, None), UnsupportedInteraction),
    (_entry({"method": "PATCH", "url": "Patient/p1"}), UnsupportedInteraction),
    (_entry({"method": "PUT", "url": "Patient?identifier=x|1"}), UnsupportedInteraction),
    (_entry({"method": "POST", "url": "Patient", "ifMatch": 'W/"1"'}), UnsupportedInteraction),
    (_entry({"method": "PUT", "url": "Patient/p1", "ifNoneMatch": "*"}), UnsupportedInteraction),
    (_entry({"method": "POST", "url": "CodeSystem/$lookup"}), UnsupportedInteraction),
    (_entry(POST, None), InvalidEntry),
    (_entry(POST, full_url="Patient/p1"), InvalidEntry),
    (_entry({"method": "PUT", "url": "Patient/other"}), InvalidEntry),
    ({"resource": PATIENT}, InvalidEntry),
    # http-verb codes are case-sensitive: "post" is not POST
    (_entry({"method": "post", "url": "Patient"}), InvalidEntry),
    (_entry({"method": "Put", "url": "Patient/p1"}), InvalidEntry),
    # a POST url naming another type than its resource's
    (_entry({"method": "POST", "url": "Observation"}), InvalidEntry),
    (_entry(POST, {"resourceType": "Patient", "id": "p1", "bogus": 1}), InvalidResource),
]


@pytest.mark.parametrize(("entry", "kind"), REFUSED)
def test_each_unsupported_or_malformed_entry_is_refused_with_its_index(entry, kind):
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [_entry(POST), entry]}
    problems = entry_problems(doc)
    assert list(problems) == [1]
    assert isinstance(problems[1], kind)
    assert isinstance(problems[1], ReadmitError)
    assert problems[1].entry_index == 1


def test_the_same_resource_twice_is_refused():
    second = _entry(POST, full_url="urn:uuid:6f1c2d0e-0000-4000-8000-000000000002")
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [_entry(POST), second]}
    problems = entry_problems(doc)
    assert list(problems) == [1]
    assert isinstance(problems[1], InvalidEntry)


@pytest.fixture
def client():
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, publisher=ExplodingPublisher())) as c:
        yield c


@pytest.mark.parametrize(("entry", "kind"), REFUSED[:-1])  # FHIR validation needs Redis up
def test_a_transaction_with_a_refused_entry_fails_whole_with_one_outcome(client, entry, kind):
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(POST), entry]}
    response = client.post(
        "/fhir",
        content=orjson.dumps(doc),
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == kind.status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert issue["code"] == kind.issue_code
    assert issue["expression"][0].startswith("Bundle.entry[1]")


def test_routing_errors_are_operation_outcomes_in_fhir_json_utf8(client):
    missing = client.get("/fhir/Patient/p1/nothing-here")
    wrong_method = client.delete("/fhir/Patient/p1")
    for response, status, code in (
        (missing, 404, "not-found"),
        (wrong_method, 405, "not-supported"),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
        assert response.json()["issue"][0]["code"] == code


def test_the_capability_statement_declares_versions_and_conditional_create_only(client):
    statement = client.get("/fhir/metadata").json()
    for resource in statement["rest"][0]["resource"]:
        assert resource["updateCreate"] is True
        assert resource["conditionalCreate"] is True  # If-None-Exist: ingest.conditional
        assert resource["conditionalUpdate"] is False
        assert resource["conditionalDelete"] == "not-supported"
        assert resource["versioning"] == "versioned-update"
        assert resource["readHistory"] is False
        assert {i["code"] for i in resource["interaction"]} == {"create", "update"}


def test_vread_and_history_are_refused_as_declared(client):
    for path in ("/fhir/Patient/p1/_history/1", "/fhir/Patient/p1/_history"):
        response = client.get(path)
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"
        assert response.json()["issue"][0]["code"] == "not-supported"


def test_a_transaction_naming_one_resource_twice_fails_whole(client):
    second = _entry(POST, full_url="urn:uuid:6f1c2d0e-0000-4000-8000-000000000002")
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(POST), second]}
    response = client.post(
        "/fhir",
        content=orjson.dumps(doc),
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].fullUrl"]


def test_a_post_url_may_be_absolute_or_end_with_a_slash():
    for url in ("Patient", "Patient/", "https://ehr.example.org/fhir/Patient"):
        doc = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [_entry({"method": "POST", "url": url})],
        }
        assert entry_problems(doc) == {}


def test_wrong_case_and_type_mismatch_are_400_naming_the_entry():
    doc = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _entry(POST),
            _entry({"method": "post", "url": "Patient"}, full_url=None),
            _entry({"method": "POST", "url": "Observation"}, full_url=None),
        ],
    }
    problems = entry_problems(doc)
    assert sorted(problems) == [1, 2]
    assert all(p.status == 400 for p in problems.values())
    assert "'post'" in problems[1].message
    assert "Bundle.entry[1]" in problems[1].message
    assert "Observation" in problems[2].message
    assert "Bundle.entry[2]" in problems[2].message
