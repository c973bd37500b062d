"""A real ingest service on SQLite with an in-memory broker: what the visit identity,
late-data and conditional-create tests drive (no Kafka, no Redis needed)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from fastapi.testclient import TestClient

from fhir_mappings.synth import read_rows, synthesize_bundle
from ingest.app import create_app
from ingest.history_store import DurableHistory
from ingest.resource_store import ResourceStore
from ingest.service import IngestService
from patient_state.store import open_store
from readmit_core.events import FeatureEvent
from readmit_core.settings import PROJECT_ROOT, Settings

DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"
VN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}]}
VISITS = "https://ehr.example.org/visit-number"


class Broker:
    """Takes every event (positions counted) and still holds all of them."""

    def __init__(self) -> None:
        self.events: list[FeatureEvent] = []

    def publish(self, events: list[FeatureEvent]) -> list[SimpleNamespace]:
        start = len(self.events)
        self.events.extend(events)
        return [
            SimpleNamespace(topic="t", partition=0, offset=start + i) for i in range(len(events))
        ]

    def holds(self, delivery: Any) -> bool:
        return True

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


TOKEN = "unit-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}


@contextmanager
def http_client(tmp_path: Path, broker: Broker) -> Iterator[TestClient]:
    """The whole ingest app over HTTP, publishing to ``broker`` (which also answers
    whether an accepted event is still held)."""
    settings = Settings(ingest_tokens=TOKEN, redis_url="redis://127.0.0.1:1/0", state_dir=tmp_path)
    app = create_app(settings, publisher=broker)  # type: ignore[arg-type]
    app.state.ingest.service.event_log = broker
    with TestClient(app) as client:
        yield client


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def service(
    tmp_path: Path, clock: Clock, broker: Broker, window_h: float = 72, database_url: str = ""
) -> IngestService:
    """The service on SQLite in ``tmp_path`` (``database_url`` empty) or PostgreSQL."""
    state = open_store(database_url, tmp_path, f"t{uuid.uuid4().hex[:6]}.")
    resources = ResourceStore(state, 3600 * 24 * 30, 3600 * 24 * 400)
    return IngestService(
        DurableHistory(state),
        broker,  # type: ignore[arg-type]
        resources,
        broker,  # type: ignore[arg-type]
        state,
        rescore_window_s=window_h * 3600,
        clock=clock,
    )


def row(index: int = 0) -> dict[str, str]:
    rows = read_rows(DATA, index + 1)
    for _ in range(index):
        next(rows)
    return next(rows)


def visit(index: int = 0, number: str = "V-1") -> dict[str, Any]:
    """A discharge transaction as an interface engine sends it: a visit number on the
    Encounter, urn:uuid fullUrls."""
    bundle = copy.deepcopy(synthesize_bundle(row(index), seed=3))
    encounter(bundle)["identifier"] = [{"type": VN, "system": VISITS, "value": number}]
    return bundle


def encounter(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )


def regenerated(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same content with every urn:uuid replaced (what engines do on each send)."""
    text = orjson.dumps(bundle).decode()
    for entry in bundle["entry"]:
        text = text.replace(entry["fullUrl"], f"urn:uuid:{uuid.uuid4()}")
    return orjson.loads(text)


def discharged(bundle: dict[str, Any]) -> float:
    return datetime.fromisoformat(encounter(bundle)["period"]["end"]).timestamp()


def with_ids(bundle: dict[str, Any]) -> dict[str, Any]:
    """Every resource with an id and every reference as Type/id (what a REST client
    posting loose resources uses), the fullUrls kept."""
    for entry in bundle["entry"]:
        entry["resource"].setdefault("id", entry["fullUrl"].rpartition(":")[2])
    text = orjson.dumps(bundle).decode()
    for entry in bundle["entry"]:
        res = entry["resource"]
        text = text.replace(
            f'"reference":"{entry["fullUrl"]}"', f'"reference":"{res["resourceType"]}/{res["id"]}"'
        )
    return orjson.loads(text)
