"""Id-only and empty Subscription notifications, fetched from a real EHR FHIR server.

The EHR here is ``ehr_server.EhrServer``: real HTTP on a free port, a SMART token endpoint
verifying our client assertion against the JWKS `readmit ehr keygen` printed, reads,
paged searches and ``$events``. Ingest runs with the real broker; the id-only test also
runs scorers, so a notification that carries nothing but an Encounter id ends as a score.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from ehr_server import EhrServer, stored_resources
from fastapi.testclient import TestClient
from stream_support import dataset_rows, read_topic, wait_for
from typer.testing import CliRunner

from fhir_mappings.mapper import map_document
from fhir_mappings.synth import synthesize_bundle
from ingest.app import create_app
from readmit.cli import app as readmit_cli
from readmit_core.events import FeatureEvent
from readmit_core.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "integration-ingest-token-for-tests"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
CLIENT_ID = "readmit-ingest"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Our key, made the way an operator makes it: `readmit ehr keygen` (ES384)."""
    key = tmp_path_factory.mktemp("ehr-key") / "client.pem"
    result = CliRunner().invoke(readmit_cli, ["ehr", "keygen", "--out", str(key)])
    assert result.exit_code == 0, result.output
    return key, json.loads(result.output)


@pytest.fixture
def ehr(key_pair: tuple[Path, dict[str, Any]]) -> Iterator[EhrServer]:
    with EhrServer(key_pair[1], CLIENT_ID).running() as server:
        yield server


def _stay(ehr: EhrServer, row_index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One synthetic stay stored on the EHR; (the pushed Bundle it came from, its Encounter)."""
    row = dataset_rows(1, skip=row_index)[0]
    bundle = synthesize_bundle(row, seed=11)
    resources = stored_resources(bundle)
    ehr.add(resources)
    return bundle, next(r for r in resources if r["resourceType"] == "Encounter")


def _settings(stream_settings: Settings, ehr: EhrServer, key: Path, **extra: Any) -> Settings:
    # model_copy skips the validator that refuses http:// EHR bases outside embedded: the
    # test EHR speaks plain HTTP on the loopback (that refusal has its own unit test)
    return stream_settings.model_copy(
        update={
            "ingest_tokens": TOKEN,
            "ehr_fhir_base_urls": ehr.base,
            "ehr_client_id": CLIENT_ID,
            "ehr_private_key_file": key,
            "ehr_retries": 1,
            "ehr_retry_backoff_seconds": 0.01,
            "ehr_timeout_seconds": 2.0,
            **extra,
        }
    )


def _r4b(subscription: str, kind: str = "event-notification", focus: list[str] | None = None,
         **status: Any) -> dict[str, Any]:  # fmt: skip
    events = [
        {"eventNumber": str(n), "focus": {"reference": ref}}
        for n, ref in enumerate(focus or [], start=1)
    ]
    body: dict[str, Any] = {
        "resourceType": "SubscriptionStatus",
        "status": "active",
        "type": kind,
        "subscription": {"reference": subscription},
        **status,
    }
    if events:
        body["notificationEvent"] = events
    return {
        "resourceType": "Bundle",
        "type": "subscription-notification",
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": body}],
    }


def _backport(subscription: str, focus: str) -> dict[str, Any]:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": subscription}},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "notification-event", "part": [
                {"name": "event-number", "valueString": "7"},
                {"name": "focus", "valueReference": {"reference": focus}},
            ]},
        ],
    }  # fmt: skip
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": params}, {"fullUrl": focus}],
    }


def _post(client: TestClient, doc: dict[str, Any]) -> Any:
    return client.post(
        "/fhir/$subscription-notification", content=orjson.dumps(doc), headers=HEADERS
    )


def _features(settings: Settings, expect: int, timeout: float = 20) -> list[FeatureEvent]:
    """The feature events on the topic, one per input (the last of each input key).

    A running scorer's cache refill (``scorer.state_upkeep``) republishes an accepted input
    that has no cached score yet — the very same event — so an input may be on the topic
    twice; every copy must carry the same record.
    """
    latest: dict[str, FeatureEvent] = {}
    for m in read_topic(settings, "features", expect=expect, timeout=timeout):
        event = FeatureEvent.model_validate_json(m)
        seen = latest.get(event.input_key)
        assert seen is None or seen.record == event.record, "one input, two records"
        latest[event.input_key] = event
    return list(latest.values())


def test_id_only_notification_is_fetched_mapped_and_scored(
    stream_settings, scorer_processes, cache, ehr, key_pair
):
    """R4B id-only (with R5's eventsInNotification) → the stay is read from the EHR → the
    same feature record a pushed Bundle gives → a score."""
    settings = _settings(stream_settings, ehr, key_pair[0])
    scorer_processes(stream_settings).start()  # same topics; scorers never talk to the EHR
    bundle, encounter = _stay(ehr, 3)
    note = _r4b(f"{ehr.base}/Subscription/discharges", focus=[f"Encounter/{encounter['id']}"],
                eventsInNotification=1)  # fmt: skip
    (pushed,) = map_document(bundle)
    with TestClient(create_app(settings)) as client:
        resp = _post(client, note)
        assert resp.status_code == 200, resp.text
        assert "1 encounter(s) queued" in resp.json()["issue"][0]["diagnostics"]
        wait_for(lambda: cache.latest(pushed.encounter_id) is not None, 60, "the score")
    (event,) = _features(settings, expect=1)
    assert event.record == pushed.record
    assert event.ward == pushed.ward
    assert ehr.token_requests == 1
    score = cache.latest(pushed.encounter_id)
    assert score is not None
    assert 0.0 < score.probability < 1.0


def test_token_is_reused_until_it_expires(stream_settings, ehr, key_pair):
    """Two notifications (R4B and R4 backport), one token request; a resend of the first
    is fetched again and answered as already known."""
    settings = _settings(stream_settings, ehr, key_pair[0])
    _, first = _stay(ehr, 5)
    _, second = _stay(ehr, 7)
    with TestClient(create_app(settings)) as client:
        one = _post(client, _r4b("Subscription/discharges", focus=[f"Encounter/{first['id']}"]))
        backport = _backport("Subscription/discharges", f"{ehr.base}/Encounter/{second['id']}")
        two = _post(client, backport)
        again = _post(client, _r4b("Subscription/discharges", focus=[f"Encounter/{first['id']}"]))
    assert one.status_code == two.status_code == again.status_code == 200, two.text
    assert "1 already known" in again.json()["issue"][0]["diagnostics"]
    assert ehr.token_requests == 1
    assert len({e.encounter_id for e in _features(settings, expect=2)}) == 2


def test_expired_token_is_renewed(stream_settings, key_pair):
    """A token that lives 2 s is renewed (margin: half its life), not reused after."""
    with EhrServer(key_pair[1], CLIENT_ID, token_ttl=2).running() as ehr:
        settings = _settings(stream_settings, ehr, key_pair[0])
        _, first = _stay(ehr, 9)
        with TestClient(create_app(settings)) as client:
            focus = [f"Encounter/{first['id']}"]
            assert _post(client, _r4b("Subscription/s", focus=focus)).status_code == 200
            assert ehr.token_requests == 1
            wait_for(
                lambda: (
                    _post(client, _r4b("Subscription/s", focus=focus)).status_code == 200
                    and ehr.token_requests == 2
                ),
                10,
                "a second token once the first is near expiry",
            )


def test_empty_notification_asks_for_the_events(stream_settings, ehr, key_pair):
    settings = _settings(stream_settings, ehr, key_pair[0])
    bundle, encounter = _stay(ehr, 11)
    ehr.events[41] = f"Encounter/{encounter['id']}"
    note = _r4b("Subscription/discharges")
    note["entry"][0]["resource"]["notificationEvent"] = [{"eventNumber": "41"}]
    with TestClient(create_app(settings)) as client:
        resp = _post(client, note)
    assert resp.status_code == 200, resp.text
    assert "/fhir/Subscription/discharges/$events" in ehr.requests
    assert [e.encounter_id for e in _features(settings, expect=1)] == [
        map_document(bundle)[0].encounter_id
    ]


@pytest.mark.parametrize("kind", ["handshake", "heartbeat"])
def test_handshake_and_heartbeat_are_answered_and_queue_nothing(
    stream_settings, ehr, key_pair, kind
):
    settings = _settings(stream_settings, ehr, key_pair[0])
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/discharges", kind=kind))
    assert resp.status_code == 200
    assert "nothing to fetch or queue" in resp.json()["issue"][0]["diagnostics"]
    assert ehr.requests == []
    assert _features(settings, expect=1, timeout=2) == []


@pytest.mark.parametrize(
    ("subscription", "focus"),
    [
        ("https://elsewhere.example/fhir/Subscription/x", "Encounter/e1"),
        ("Subscription/x", "https://elsewhere.example/fhir/Encounter/e1"),
    ],
)
def test_a_foreign_server_is_refused_and_never_asked(
    stream_settings, ehr, key_pair, subscription, focus
):
    settings = _settings(stream_settings, ehr, key_pair[0])
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b(subscription, focus=[focus]))
    assert resp.status_code == 422
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert ehr.requests == []


def test_ehr_refusing_our_token_is_503_not_2xx(stream_settings, ehr, key_pair):
    settings = _settings(stream_settings, ehr, key_pair[0])
    _, encounter = _stay(ehr, 13)
    ehr.refuse_tokens = True
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/s", focus=[f"Encounter/{encounter['id']}"]))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.json()["issue"][0]["code"] == "transient"
    assert _features(settings, expect=1, timeout=2) == []


def test_ehr_timeout_is_503_after_the_retries(stream_settings, ehr, key_pair):
    settings = _settings(stream_settings, ehr, key_pair[0], ehr_timeout_seconds=0.3)
    _, encounter = _stay(ehr, 15)
    ehr.hang = True
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/s", focus=[f"Encounter/{encounter['id']}"]))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    # discovery was tried twice (READMIT_EHR_RETRIES=1), then the notification refused
    assert ehr.requests == ["/fhir/.well-known/smart-configuration"] * 2


def test_search_paging_stops_at_the_page_limit(stream_settings, ehr, key_pair):
    """51 Observations, 10 a page, 2 pages: two Observation pages are read, no more."""
    settings = _settings(stream_settings, ehr, key_pair[0], ehr_page_size=10, ehr_max_pages=2)
    bundle, encounter = _stay(ehr, 3)
    observations = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observations > 20
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/s", focus=[f"Encounter/{encounter['id']}"]))
    assert resp.status_code == 200, resp.text
    assert ehr.searches["Observation"] == 2
    assert "fetched" in resp.json()["issue"][0]["diagnostics"]


def test_a_next_link_to_another_server_is_not_followed(stream_settings, ehr, key_pair):
    settings = _settings(stream_settings, ehr, key_pair[0], ehr_page_size=10)
    _, encounter = _stay(ehr, 3)
    ehr.foreign_next = True
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/s", focus=[f"Encounter/{encounter['id']}"]))
    assert resp.status_code == 422
    assert "outside" in resp.json()["issue"][0]["diagnostics"]
    assert _features(settings, expect=1, timeout=2) == []


def test_full_resource_notification_is_mapped_as_sent(stream_settings, ehr, key_pair):
    """The payload carries the resources: nothing is fetched, the record is the push's."""
    settings = _settings(stream_settings, ehr, key_pair[0])
    bundle = synthesize_bundle(dataset_rows(1, skip=17)[0], seed=11)
    note = _r4b("Subscription/discharges")
    index = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    note["entry"][0]["resource"]["notificationEvent"] = [
        {"eventNumber": "1", "focus": {"reference": index["fullUrl"]}}
    ]
    note["entry"] += [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in bundle["entry"]]
    with TestClient(create_app(settings)) as client:
        resp = _post(client, note)
    assert resp.status_code == 200, resp.text
    assert ehr.requests == []
    (event,) = _features(settings, expect=1)
    assert event.record == map_document(bundle)[0].record


def test_a_late_lab_focus_fetches_its_stay(stream_settings, ehr, key_pair):
    """An Observation focus with an encounter reference: the whole stay is fetched and
    scored, not the lab on its own."""
    settings = _settings(stream_settings, ehr, key_pair[0])
    bundle, encounter = _stay(ehr, 19)
    lab = next(
        r
        for r in ehr.resources.values()
        if r["resourceType"] == "Observation"
        and r.get("encounter", {}).get("reference") == f"Encounter/{encounter['id']}"
    )
    with TestClient(create_app(settings)) as client:
        resp = _post(client, _r4b("Subscription/labs", focus=[f"Observation/{lab['id']}"]))
    assert resp.status_code == 200, resp.text
    assert f"/fhir/Encounter/{encounter['id']}" in ehr.requests
    (event,) = _features(settings, expect=1)
    assert event.record == map_document(bundle)[0].record
