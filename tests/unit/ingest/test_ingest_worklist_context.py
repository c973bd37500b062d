"""Ingest puts the worklist context (name, MRN, bed...) on the feature event it publishes."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from fhir_mappings.prior_visits import InMemoryHistory
from fhir_mappings.synth import read_rows, synthesize_bundle
from ingest.service import IngestService
from readmit_core.events import FeatureEvent
from readmit_core.settings import PROJECT_ROOT


class _History(InMemoryHistory):
    """Nothing accepted before; what ingest remembers is not under test here."""

    def deliveries(self, input_keys: Sequence[str]) -> dict[str, Any]:
        return {}

    def remember(self, mapped: Any, deliveries: Any = ()) -> None:
        return None


class _Publisher:
    def __init__(self) -> None:
        self.events: list[FeatureEvent] = []

    def publish(self, events: list[FeatureEvent]) -> list[SimpleNamespace]:
        self.events.extend(events)
        return [SimpleNamespace(topic="t", partition=0, offset=i) for i, _ in enumerate(events)]


class _Resources:
    def complete(self, doc: dict[str, Any]) -> dict[str, Any]:
        return doc

    def remember(self, doc: dict[str, Any]) -> None:
        return None


def test_published_event_carries_the_context_and_survives_the_wire() -> None:
    row = next(read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", 1))
    bundle = copy.deepcopy(synthesize_bundle(row, seed=3))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [{"family": "Okafor", "given": ["Chidi"]}]
    publisher = _Publisher()
    service = IngestService(_History(), publisher, _Resources(), None)  # type: ignore[arg-type]
    service.accept(bundle)
    (event,) = publisher.events
    assert event.context is not None
    assert (event.context.patient_name, event.context.mrn) == ("Okafor, Chidi", row["patient_nbr"])
    again = FeatureEvent.model_validate_json(event.to_bytes())
    assert again.context == event.context
