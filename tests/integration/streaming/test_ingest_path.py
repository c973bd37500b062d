"""The thin path end to end, and the ingest API's promises, through real services."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from stream_support import dataset_rows, wait_for

from ingest.app import create_app
from readmit.embedded.services import free_port, start_broker
from readmit_core.kafka_clients import ensure_topics

pytestmark = pytest.mark.integration

TOKEN = "integration-ingest-token-for-tests"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}


def _bundle(row_index: int):
    from fhir_mappings.synth import synthesize_bundle

    row = dataset_rows(1, skip=row_index)[0]
    return row, synthesize_bundle(row, seed=11)


def _client(settings):
    s = settings.model_copy(update={"ingest_tokens": TOKEN})
    return TestClient(create_app(s))


def test_bundle_to_score_over_http(stream_settings, scorer_processes, cache):
    """POST a transaction Bundle → feature event → scorer → Redis → GET the score."""
    scorer_processes(stream_settings).start()
    row, bundle = _bundle(3)
    with _client(stream_settings) as client:
        resp = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["type"] == "transaction-response"
        assert len(body["entry"]) == len(bundle["entry"])
        assert all(e["response"]["status"].startswith(("200", "201")) for e in body["entry"])
        enc = row["encounter_id"]
        read = {"Authorization": f"Bearer {stream_settings.api_token.get_secret_value()}"}
        wait_for(lambda: client.get(f"/scores/{enc}", headers=read).status_code == 200, 60, "score")
        score = client.get(f"/scores/{enc}", headers=read).json()
    assert 0.0 < score["probability"] < 1.0
    assert score["band"] in {"low", "medium", "high"}
    assert score["model_version"]
    assert score["encounter_id"] == enc


def test_same_encounter_version_twice_is_one_event(stream_settings):
    from stream_support import read_topic

    _, bundle = _bundle(5)
    with _client(stream_settings) as client:
        first = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        second = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
    assert first.status_code == second.status_code == 200
    events = read_topic(stream_settings, "features", expect=2, timeout=5)
    assert len(events) == 1
    statuses = [
        e["response"].get("outcome", {}).get("issue", [{}])[0].get("code")
        for e in second.json()["entry"]
    ]
    assert "duplicate" in statuses


def test_broker_down_gives_503_and_retry_succeeds(stream_settings, tmp_path):
    port = free_port()
    broker = start_broker(port, tmp_path / "broker.log")
    settings = stream_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    ensure_topics(settings)
    _, bundle = _bundle(7)
    with _client(settings) as client:
        broker.stop()
        down = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
        assert down.status_code == 503
        assert down.headers["Retry-After"]
        assert down.json()["resourceType"] == "OperationOutcome"
        broker = start_broker(port, tmp_path / "broker2.log")
        try:
            ensure_topics(settings)
            wait_for(
                lambda: (
                    client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS).status_code
                    == 200
                ),
                60,
                "the client's retry to succeed",
            )
        finally:
            broker.stop()


def test_loose_resources_assemble_into_the_same_features(stream_settings):
    """Patient first, clinical resources one by one, the finished Encounter last."""
    from stream_support import read_topic

    from fhir_mappings.mapper import map_document

    row, bundle = _bundle(9)
    expected = map_document(orjson.dumps(bundle))[0]
    for entry in bundle["entry"]:  # PUT needs ids; POSTed entries may only have a urn:uuid
        entry["resource"].setdefault("id", entry["fullUrl"].rpartition(":")[2])
    resources = [e["resource"] for e in bundle["entry"]]
    full_urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if e.get("fullUrl")}

    def absolute(resource):
        """Loose resources use Type/id references, as an EHR's REST client would."""
        text = orjson.dumps(resource).decode()
        for url, target in full_urls.items():
            text = text.replace(url, f"{target['resourceType']}/{target['id']}")
        return orjson.loads(text)

    index = next(
        r for r in resources if r["resourceType"] == "Encounter" and r["id"] == row["encounter_id"]
    )
    before = [r for r in resources if r is not index and r["resourceType"] != "Location"]
    before.sort(key=lambda r: r["resourceType"] != "Patient")
    with _client(stream_settings) as client:
        for res in before:
            loose = absolute(res)
            path = f"/fhir/{loose['resourceType']}/{loose['id']}"
            resp = client.put(path, content=orjson.dumps(loose), headers=HEADERS)
            assert resp.status_code in (201, 404), (path, resp.text)  # 404: types we do not take
        assert read_topic(stream_settings, "features", expect=1, timeout=2) == []
        resp = client.put(
            f"/fhir/Encounter/{index['id']}", content=orjson.dumps(absolute(index)), headers=HEADERS
        )
        assert resp.status_code == 201, resp.text
    events = read_topic(stream_settings, "features", expect=1, timeout=10)
    assert len(events) == 1
    record = orjson.loads(events[0])["record"]
    assert record == expected.record.columns()


def test_batch_refuses_the_bad_entry_and_accepts_the_rest(stream_settings):
    from stream_support import read_topic

    _, bundle = _bundle(11)
    bundle["type"] = "batch"
    bad = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation"
    )
    bundle["entry"][bad]["resource"]["status"] = 42  # not a FHIR code
    with _client(stream_settings) as client:
        resp = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses[bad] == "400 Bad Request"  # a FHIR basic-rule failure
    assert body["entry"][bad]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert all(s.startswith(("200", "201")) for i, s in enumerate(statuses) if i != bad)
    assert len(read_topic(stream_settings, "features", expect=1, timeout=10)) == 1


def test_transaction_with_a_bad_entry_is_refused_whole(stream_settings):
    from stream_support import read_topic

    _, bundle = _bundle(11)
    bad = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation"
    )
    bundle["entry"][bad]["resource"]["status"] = 42
    with _client(stream_settings) as client:
        resp = client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS)
    assert resp.status_code == 400
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"Bundle.entry[{bad}]" in outcome["issue"][0]["diagnostics"]
    assert read_topic(stream_settings, "features", expect=1, timeout=3) == []
