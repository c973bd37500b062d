"""Late resources racing each other: two late Conditions of one stay accepted at the same
moment by two request threads (shared by the SQLite unit test and the PostgreSQL one)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from visit_support import Broker, Clock, discharged, encounter, service, visit

from ingest.history_store import DurableHistory
from ingest.resource_store import ResourceStore
from ingest.service import IngestService
from patient_state.store import open_store
from readmit_core.events import FeatureEvent

HOUR = 3600.0


class SlowBroker(Broker):
    """Takes its time acknowledging: the window in which a second merge of the same
    stay document would read the first one's input (the lost update)."""

    def publish(self, events: list[FeatureEvent]) -> list[Any]:
        time.sleep(0.3)
        return super().publish(events)


def late_condition(bundle: dict[str, Any], icd9: str, patient: str | None = None) -> dict[str, Any]:
    owner = patient or next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    return {
        "resourceType": "Condition",
        "id": f"late-{icd9}",
        "subject": {"reference": f"Patient/{owner}"},
        "encounter": {"reference": f"Encounter/{encounter(bundle)['id']}"},
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
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": icd9}]},
    }


def _replica(ingest: IngestService, database_url: str, tmp_path: Path) -> IngestService:
    """A second ingest process on the same state: its own connections and locks."""
    state = open_store(database_url, tmp_path, ingest.state.scope)
    return IngestService(
        DurableHistory(state),
        ingest.publisher,
        ResourceStore(state, 3600 * 24 * 30, 3600 * 24 * 400),
        ingest.event_log,
        state,
        rescore_window_s=ingest.window_s,
        clock=ingest.clock,
    )


def race_two_late_conditions(
    tmp_path: Path, database_url: str = "", *, replicas: bool = False
) -> list[FeatureEvent]:
    """Accept a stay, then two late Conditions (250.01, 585) at once (by two threads, or
    by two replicas: nothing shared but the database); the events published."""
    broker = SlowBroker()
    bundle = visit(0, "V-RACE")
    ingest = service(tmp_path, Clock(discharged(bundle) + HOUR), broker, database_url=database_url)
    ingest.accept(bundle)
    second = _replica(ingest, database_url, tmp_path) if replicas else ingest
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def post(icd9: str, by: IngestService) -> None:
        start.wait()
        try:
            by.accept(late_condition(bundle, icd9))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [
        threading.Thread(target=post, args=(c, by))
        for c, by in (("250.01", ingest), ("585", second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return broker.events
