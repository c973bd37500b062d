"""The FHIR http behaviour of writes through the real broker and the real state database:
versions in response entries, an identical resend, If-Match, conditional references."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from stream_support import dataset_rows, read_topic

from fhir_mappings.synth import synthesize_bundle
from ingest.app import create_app

pytestmark = pytest.mark.integration

TOKEN = "integration-ingest-token-for-tests"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
MRN = "http://hospital.example.org/mrn"


def test_versions_if_match_and_conditional_references_end_to_end(stream_settings):
    row = dataset_rows(1, skip=9)[0]
    bundle = synthesize_bundle(row, seed=13)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["identifier"] = [{"system": MRN, "value": f"mrn-{patient['id']}"}]
    encounter_index = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Encounter"
    )
    encounter = bundle["entry"][encounter_index]["resource"]
    encounter["subject"] = {"reference": f"Patient?identifier={MRN}|mrn-{patient['id']}"}
    settings = stream_settings.model_copy(update={"ingest_tokens": TOKEN})
    with TestClient(create_app(settings)) as client:
        first = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        assert first.status_code == 200, first.text
        responses = [e["response"] for e in first.json()["entry"]]
        with_id = [r for r in responses if "etag" in r]
        assert with_id, "entries with ids carry versions"
        assert all(r["etag"] == 'W/"1"' and "/_history/1" in r["location"] for r in with_id)
        assert all(r["lastModified"] for r in responses)

        again = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        assert [e["response"].get("etag") for e in again.json()["entry"]] == [
            r.get("etag") for r in responses
        ]

        stale = client.put(
            f"/fhir/Patient/{patient['id']}",
            content=orjson.dumps({**patient, "gender": "other"}),
            headers={**HEADERS, "If-Match": 'W/"9"'},
        )
        assert stale.status_code == 412
        current = client.put(
            f"/fhir/Patient/{patient['id']}",
            content=orjson.dumps({**patient, "gender": "other"}),
            headers={**HEADERS, "If-Match": 'W/"1"'},
        )
        assert (current.status_code, current.headers["etag"]) == (200, 'W/"2"')
        assert current.headers["location"].endswith(f"/fhir/Patient/{patient['id']}/_history/2")

        encounter["subject"] = {"reference": f"Patient?identifier={MRN}|nobody"}
        unresolved = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        assert unresolved.status_code == 422
        issue = unresolved.json()["issue"][0]
        assert issue["expression"] == [f"Bundle.entry[{encounter_index}].resource.subject"]

    # the conditional reference resolved to the Patient: one event, for that patient
    events = [orjson.loads(v) for v in read_topic(settings, "features", expect=2, timeout=5)]
    assert [e["patient_id"] for e in events] == [patient["id"]]
