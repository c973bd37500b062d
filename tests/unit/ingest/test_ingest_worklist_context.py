"""Ingest puts the worklist context (name, MRN, bed...) on the feature event it publishes."""

from __future__ import annotations

import copy
from pathlib import Path

from visit_support import Broker, Clock, service

from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit_core.events import FeatureEvent
from readmit_core.settings import PROJECT_ROOT


def test_published_event_carries_the_context_and_survives_the_wire(tmp_path: Path) -> None:
    row = next(read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", 1))
    bundle = copy.deepcopy(synthesize_bundle(row, seed=3))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [{"family": "Okafor", "given": ["Chidi"]}]
    publisher = Broker()
    ingest = service(tmp_path, Clock(0.0), publisher)
    ingest.accept(bundle)
    (event,) = publisher.events
    assert event.context is not None
    assert (event.context.patient_name, event.context.mrn) == ("Okafor, Chidi", row["patient_nbr"])
    again = FeatureEvent.model_validate_json(event.to_bytes())
    assert again.context == event.context
