"""Medication rules: identification, dose direction, switches, the explicit extension."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.codes.project_codesystems import DOSE_CHANGE_EXTENSION
from fhir_mappings.codes.rxnorm import RXNORM_SYSTEM
from fhir_mappings.mapper import map_document

ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
    "subject": {"reference": "Patient/p1"},
    "period": {"start": "2005-03-01T08:00:00Z", "end": "2005-03-04T12:00:00Z"},
}


def _request(concept: dict[str, Any], dose: float | None = None, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        **extra,
    }
    if dose is not None:
        resource["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg", "code": "mg"}}],
            }
        ]
    return resource


def _rx(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM_SYSTEM, "code": code}]}


def _map(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"fullUrl": f"https://h.example.org/fhir/{r['resourceType']}/{r.get('id', n)}",
                "resource": r} for n, r in enumerate((ENCOUNTER, *resources))]  # fmt: skip
    (mapped,) = map_document({"resourceType": "Bundle", "type": "collection", "entry": entries})
    return mapped.record.columns()


@pytest.mark.parametrize(("before", "now", "direction"), [(500, 1000, "Up"), (1000, 500, "Down"),
                                                          (500, 500, "Steady")])  # fmt: skip
def test_prior_prescription_dose_gives_the_direction(before, now, direction):
    prior = _request(_rx("6809"), before, id="old", status="stopped")
    prior.pop("encounter")
    prior["authoredOn"] = "2004-12-01"
    current = _request(_rx("6809"), now, priorPrescription={"reference": "MedicationRequest/old"})
    record = _map(prior, current)
    assert record["metformin"] == direction
    assert record["change"] == ("No" if direction == "Steady" else "Ch")
    assert record["diabetesMed"] == "Yes"
    assert record["num_medications"] == 1


def test_a_different_prior_drug_is_a_switch():
    prior = _request(_rx("4815"), 5, id="old", status="stopped")
    prior.pop("encounter")
    prior["authoredOn"] = "2004-12-01"
    current = _request(_rx("4821"), 5, priorPrescription={"reference": "MedicationRequest/old"})
    record = _map(prior, current)
    assert (record["glipizide"], record["glyburide"], record["change"]) == ("Steady", "No", "Ch")


def test_explicit_extension_wins_over_prior_prescription():
    current = _request(
        _rx("5856"), 10, extension=[{"url": DOSE_CHANGE_EXTENSION, "valueCode": "down"}]
    )
    assert _map(current)["insulin"] == "Down"


def test_names_and_combinations_are_recognised_without_ingredient_codes():
    by_name = _request({"text": "Metformin hydrochloride 500 MG Oral Tablet"})
    combo = _request({"text": "glyburide / metformin 5 MG / 500 MG Oral Tablet"})
    other = _request({"text": "heparin 5000 UNT/ML"})
    record = _map(by_name, combo, other)
    assert record["metformin"] == "Steady"
    assert record["glyburide-metformin"] == "Steady"
    assert record["num_medications"] == 3


def test_administrations_count_and_cancelled_orders_do_not():
    administration = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": _rx("25789"),
        "subject": {"reference": "Patient/p1"},
        "context": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2005-03-02T09:00:00Z",
    }
    cancelled = _request(_rx("33738"), status="cancelled")
    record = _map(administration, cancelled)
    assert record["glimepiride"] == "Steady"
    assert record["pioglitazone"] == "No"
    assert record["num_medications"] == 1


def test_unlinked_resources_belong_by_patient_and_time():
    inside = _request(_rx("6809"))
    inside.pop("encounter")
    inside["authoredOn"] = "2005-03-02"
    outside = _request(_rx("4821"))
    outside.pop("encounter")
    outside["authoredOn"] = "2005-04-02"
    record = _map(inside, outside)
    assert (record["metformin"], record["glipizide"]) == ("Steady", "No")
