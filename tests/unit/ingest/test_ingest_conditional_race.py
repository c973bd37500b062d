"""Concurrent conditional creates with the same search create exactly one resource.

The search and the create run under an advisory lock on the searched tokens
(``PatientStateStore.serialised``), so four writers racing with one If-None-Exist get
one 201-equivalent (created) and three matches, on PostgreSQL (what production runs,
across processes) and on SQLite (embedded: a lock file)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from visit_support import Broker

from ingest.history_store import DurableHistory
from ingest.resource_store import ResourceStore
from ingest.service import IngestService
from patient_state.store import open_store

MRN = "https://hospital.example.org/mrn"


class SlowBroker(Broker):
    """Acknowledges after a while: the window in which an unserialised check-then-create
    lets a second writer find nothing."""

    def publish(self, events: list[Any]) -> list[SimpleNamespace]:
        time.sleep(0.2)
        return super().publish(events)


def _service(url: str, tmp_path: Path) -> IngestService:
    state = open_store(url, tmp_path, f"race{uuid.uuid4().hex[:8]}.")
    broker = SlowBroker()
    return IngestService(
        DurableHistory(state),
        broker,  # type: ignore[arg-type]
        ResourceStore(state, 3600, 3600),
        broker,  # type: ignore[arg-type]
        state,
    )


def _race(service: IngestService, writers: int = 4) -> list[bool]:
    value = uuid.uuid4().hex
    start = threading.Barrier(writers)

    def create(i: int) -> bool:
        patient = {
            "resourceType": "Patient",
            "id": f"p{i}-{value[:6]}",
            "identifier": [{"system": MRN, "value": value}],
        }
        start.wait()
        created, found = service.create_conditional(patient, "Patient", f"identifier={MRN}|{value}")
        assert (created is None) == bool(found)
        return created is not None

    with ThreadPoolExecutor(writers) as pool:
        return list(pool.map(create, range(writers)))


def test_concurrent_conditional_creates_make_one_resource_on_postgres(postgres_dsn, tmp_path):
    service = _service(postgres_dsn, tmp_path)
    for _ in range(3):
        assert sorted(_race(service)) == [False, False, False, True]


def test_concurrent_conditional_creates_make_one_resource_on_sqlite(tmp_path):
    service = _service("", tmp_path)
    assert sorted(_race(service)) == [False, False, False, True]


def test_different_searches_do_not_wait_for_each_other(postgres_dsn, tmp_path):
    service = _service(postgres_dsn, tmp_path)
    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _race(service, writers=1), range(4)))
    assert results == [[True]] * 4
    assert time.monotonic() - began < 4 * 0.2 + 0.5  # they ran side by side


@pytest.mark.parametrize("names", [[], ["a"], ["a", "b", "a"]])
def test_serialised_is_reentrant_free_and_releases(postgres_dsn, tmp_path, names):
    store = open_store(postgres_dsn, tmp_path, f"lock{uuid.uuid4().hex[:8]}.")
    with store.serialised(names):
        pass
    with store.serialised(names):  # released: taken again at once
        pass
