"""Visit identity and late data end to end: HTTP → ingest (PostgreSQL state) → real
broker → scorer process → Redis and risk.scored. One visit is one score whatever ids a
send gives it; a late Condition within the re-score window is input version 2 and the
cached score says so; conditional create finds what was accepted."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from stream_support import dataset_rows, read_topic, wait_for

from fhir_mappings.synth import synthesize_bundle
from ingest.app import create_app
from readmit_core.events import ScoreEvent

pytestmark = pytest.mark.integration

TOKEN = "integration-ingest-token-for-tests"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
VN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}]}
VISITS = "https://ehr.example.org/visit-number"


def _recent_visit(row_index: int) -> dict[str, Any]:
    """A synthesized discharge moved to yesterday (inside the re-score window), with a
    visit number and every resource addressable as Type/id."""
    bundle = copy.deepcopy(synthesize_bundle(dataset_rows(1, skip=row_index)[0], seed=5))
    end = datetime.now(UTC) - timedelta(hours=20)
    for entry in bundle["entry"]:
        res = entry["resource"]
        res.setdefault("id", entry["fullUrl"].rpartition(":")[2])
        if res["resourceType"] == "Encounter":
            res["identifier"] = [{"type": VN, "system": VISITS, "value": f"V-{row_index}"}]
            res["period"] = {
                "start": (end - timedelta(days=3)).isoformat(timespec="seconds"),
                "end": end.isoformat(timespec="seconds"),
            }
    return bundle


def _regenerated(bundle: dict[str, Any]) -> bytes:
    text = orjson.dumps(bundle).decode()
    for entry in bundle["entry"]:
        text = text.replace(entry["fullUrl"], f"urn:uuid:{uuid.uuid4()}")
    return text.encode()


def _encounter(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )


def _patient_id(bundle: dict[str, Any]) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def test_one_visit_one_score_and_a_late_condition_is_version_two(
    stream_settings, scorer_processes, cache, postgres_dsn
):
    settings = stream_settings.model_copy(
        update={"ingest_tokens": TOKEN, "database_url": postgres_dsn}
    )
    scorer_processes(stream_settings).start()
    bundle = _recent_visit(13)
    enc = _encounter(bundle)
    with TestClient(create_app(settings)) as client:
        assert (
            client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS).status_code == 200
        )
        wait_for(lambda: cache.latest(enc["id"]) is not None, 60, "the first score")
        # the engine resends: new uuids; then the same visit number under a new id
        resend = client.post("/fhir", content=_regenerated(bundle), headers=HEADERS)
        renamed = orjson.loads(_regenerated(bundle))
        moved = _encounter(renamed)
        moved["id"] = f"{enc['id']}-resent"
        for entry in renamed["entry"]:
            if entry["resource"] is moved:
                entry["request"]["url"] = f"Encounter/{moved['id']}"
        under_new_id = client.post("/fhir", content=orjson.dumps(renamed), headers=HEADERS)
        for answer in (resend, under_new_id):
            assert answer.status_code == 200
            entries = [e["response"] for e in answer.json()["entry"]]
            # located (and versioned) as the visit, whatever id the resend used
            visit = f"Encounter/{enc['id']}/_history/"
            (stay,) = [e for e in entries if e.get("location", "").startswith(visit)]
            assert stay["status"] == "200 OK"
            assert stay["outcome"]["issue"][0]["code"] == "duplicate"
        # a diagnosis coded the next day, posted alone
        late = {
            "resourceType": "Condition",
            "id": f"late-{enc['id']}",
            "subject": {"reference": f"Patient/{_patient_id(bundle)}"},
            "encounter": {"reference": f"Encounter/{enc['id']}"},
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I50.9"}]},
        }
        put = client.put(
            f"/fhir/Condition/{late['id']}", content=orjson.dumps(late), headers=HEADERS
        )
        assert put.status_code == 201, put.text
        assert "1 encounter(s) queued" in put.json()["issue"][0]["diagnostics"]
        again = client.put(
            f"/fhir/Condition/{late['id']}", content=orjson.dumps(late), headers=HEADERS
        )
        assert "0 encounter(s) queued" in again.json()["issue"][0]["diagnostics"]
        wait_for(
            lambda: (cache.latest(enc["id"]) or ScoreEvent.model_construct()).input_version == 2,
            60,
            "the late Condition's score",
        )
        # conditional create finds the accepted Patient by its MRN
        mrn = next(
            e["resource"]["identifier"][0]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        conditional = client.post(
            "/fhir/Patient",
            content=orjson.dumps({"resourceType": "Patient", "id": "someone-else"}),
            headers={**HEADERS, "If-None-Exist": f"identifier={mrn['system']}|{mrn['value']}"},
        )
        assert conditional.status_code == 200
        assert conditional.headers["Location"].endswith(
            f"/fhir/Patient/{_patient_id(bundle)}/_history/1"
        )
        other = {
            "resourceType": "Patient",
            "id": f"other-{enc['id']}",
            "identifier": [{"system": "https://other.example.org/mrn", "value": mrn["value"]}],
        }
        created = client.post(
            "/fhir/Patient",
            content=orjson.dumps(other),
            headers={
                **HEADERS,
                "If-None-Exist": f"identifier=https://other.example.org/mrn|{mrn['value']}",
            },
        )
        assert created.status_code == 201
        ambiguous = client.post(
            "/fhir/Patient",
            content=orjson.dumps({"resourceType": "Patient", "id": "third"}),
            headers={**HEADERS, "If-None-Exist": f"identifier={mrn['value']}"},
        )
        assert ambiguous.status_code == 412
        # a stay discharged years ago: its late Condition is kept, not re-scored, and said so
        old = copy.deepcopy(synthesize_bundle(dataset_rows(1, skip=17)[0], seed=5))
        assert client.post("/fhir", content=orjson.dumps(old), headers=HEADERS).status_code == 200
        old_late = {
            **late,
            "id": "late-old",
            "subject": {"reference": f"Patient/{_patient_id(old)}"},
            "encounter": {"reference": f"Encounter/{_encounter(old)['id']}"},
        }
        kept = client.put(
            "/fhir/Condition/late-old", content=orjson.dumps(old_late), headers=HEADERS
        )
        assert kept.status_code == 201
        assert "re-score window" in kept.json()["issue"][0]["diagnostics"]
    features = [
        orjson.loads(m) for m in read_topic(stream_settings, "features", expect=4, timeout=5)
    ]
    assert [f["input_version"] for f in features if f["encounter_id"] == enc["id"]] == [1, 2]
    assert len(features) == 3  # and the old stay's first score, nothing for its late Condition
    scored = [
        ScoreEvent.model_validate_json(m)
        for m in read_topic(stream_settings, "risk.scored", expect=3, timeout=10)
        if orjson.loads(m)["encounter_id"] == enc["id"]
    ]
    assert [s.input_version for s in scored] == [1, 2]
    first, second = (s.record for s in scored)
    assert first is not None
    assert second is not None
    assert second.number_diagnoses == first.number_diagnoses + 1


def test_the_cache_never_lets_an_older_input_version_be_scored_over_a_newer_one(cache):
    enc = f"enc-{uuid.uuid4().hex[:8]}"
    newer = ScoreEvent(
        encounter_id=enc,
        patient_id="p",
        ward="w",
        input_key=f"{enc}#b",
        input_version=2,
        probability=0.4,
        band="medium",
        model_version="m",
    )
    cache.write([newer])
    assert cache.already_scored(
        [(enc, f"{enc}#b", 2), (enc, f"{enc}#a", 1), (enc, f"{enc}#c", 3), (enc, f"{enc}#d", None)]
    ) == [True, True, False, False]
    assert cache.latest(enc).input_version == 2
