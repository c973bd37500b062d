"""map_document: bundle types, reference resolution, history, errors, missing values."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from fhir_mappings.errors import (
    FhirMappingError,
    ImpossibleDates,
    InvalidJson,
    InvalidResource,
    MissingPatient,
    UnknownResourceType,
    UnresolvedReference,
)
from fhir_mappings.mapper import map_document
from fhir_mappings.prior_visits import InMemoryHistory, PriorStay, VisitSummary
from readmit_core.features import FeatureRecord


def _index(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Encounter" and "-prior-" not in e["resource"]["id"]
    )


def _without_requests(bundle: dict[str, Any], bundle_type: str) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["type"] = bundle_type
    for entry in out["entry"]:
        entry.pop("request", None)
    return out


def _loose_encounter(bundle: dict[str, Any]) -> dict[str, Any]:
    encounter = copy.deepcopy(_index(bundle)["resource"])
    encounter["subject"] = {"reference": "Patient/p-123"}
    encounter["location"] = [{"location": {"reference": "Location/ward-card"}}]
    encounter.pop("diagnosis")
    return encounter


def test_transaction_bundle_maps_to_its_row(rich_row, make_bundle):
    (mapped,) = map_document(orjson.dumps(make_bundle(rich_row)))
    assert mapped.encounter_id == rich_row["encounter_id"]
    assert mapped.patient_id == rich_row["patient_nbr"]
    assert mapped.record.encounter_id == rich_row["encounter_id"]
    assert mapped.record.patient_nbr == rich_row["patient_nbr"]
    assert mapped.ward.startswith("ward-")
    assert mapped.admitted_at is not None
    assert mapped.discharged_at is not None
    assert mapped.record.A1Cresult == rich_row["A1Cresult"]
    assert mapped.record.payer_code == rich_row["payer_code"]
    # no store given, but the bundle carries the earlier inpatient stays
    assert mapped.record.prior_encounters == int(rich_row["number_inpatient"])
    assert "A1Cresult" not in mapped.missing
    ids = {v.encounter_id for v in mapped.visits}
    assert rich_row["encounter_id"] in ids
    assert len(ids) == 1 + sum(
        int(rich_row[c]) for c in ("number_outpatient", "number_emergency", "number_inpatient")
    )
    assert [v.is_index for v in mapped.visits].count(True) == 1


@pytest.mark.parametrize("bundle_type", ["collection", "batch", "searchset"])
def test_other_bundle_types_map_the_same(rich_row, make_bundle, bundle_type):
    bundle = make_bundle(rich_row)
    expected = map_document(bundle)[0].record
    other = _without_requests(bundle, bundle_type)
    if bundle_type == "searchset":
        for entry in other["entry"]:
            entry["search"] = {"mode": "match"}
    assert map_document(other)[0].record == expected


def test_message_bundle_maps_its_focus(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    message = _without_requests(bundle, "message")
    header = {
        "resourceType": "MessageHeader",
        "eventCoding": {"system": "http://example.org/events", "code": "discharge"},
        "source": {"endpoint": "http://ehr.example.org"},
        "focus": [{"reference": _index(bundle)["fullUrl"]}],
    }
    message["entry"].insert(
        0, {"fullUrl": "urn:uuid:0e0e0e0e-0000-4000-8000-000000000001", "resource": header}
    )
    assert map_document(message)[0].record == map_document(bundle)[0].record


def test_r4b_subscription_notification(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    note = _without_requests(bundle, "subscription-notification")
    status = {
        "resourceType": "SubscriptionStatus",
        "status": "active",
        "type": "event-notification",
        "notificationEvent": [
            {"eventNumber": "1", "focus": {"reference": _index(bundle)["fullUrl"]}}
        ],
        "subscription": {"reference": "Subscription/discharges"},
    }
    note["entry"].insert(
        0, {"fullUrl": "urn:uuid:0e0e0e0e-0000-4000-8000-000000000002", "resource": status}
    )
    assert map_document(note)[0].record == map_document(bundle)[0].record


def test_r4_backport_subscription_notification(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    note = _without_requests(bundle, "history")
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/discharges"}},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "notification-event", "part": [
                {"name": "event-number", "valueString": "1"},
                {"name": "focus", "valueReference": {"reference": _index(bundle)["fullUrl"]}},
            ]},
        ],
    }  # fmt: skip
    note["entry"].insert(
        0, {"fullUrl": "urn:uuid:0e0e0e0e-0000-4000-8000-000000000003", "resource": params}
    )
    assert map_document(note)[0].record == map_document(bundle)[0].record


def test_declared_focus_selects_the_index_encounters(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    prior = next(
        e
        for e in bundle["entry"]
        if "-prior-" in e["resource"].get("id", "") and e["resource"]["class"]["code"] == "IMP"
    )
    message = _without_requests(bundle, "message")
    message["entry"].insert(0, {"resource": {
        "resourceType": "MessageHeader",
        "eventCoding": {"system": "http://example.org/events", "code": "visit"},
        "source": {"endpoint": "http://ehr.example.org"},
        "focus": [{"reference": prior["fullUrl"]}],
    }})  # fmt: skip
    (mapped,) = map_document(message)
    assert mapped.encounter_id == prior["resource"]["id"]
    prior["resource"]["class"]["code"] = "AMB"
    message["entry"][1 + bundle["entry"].index(prior)]["resource"]["class"]["code"] = "AMB"
    assert map_document(message) == []


def test_loose_encounter_with_external_references_flags_missing(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    (mapped,) = map_document(encounter)
    assert mapped.patient_id == "p-123"
    assert mapped.ward == "ward-card"
    assert mapped.record.race == "?"
    assert mapped.record.age == "?"
    assert mapped.record.diag_1 == "?"
    assert mapped.record.number_diagnoses == 0
    assert {"race", "gender", "age", "diag_1", "payer_code", "A1Cresult"} <= set(mapped.missing)
    assert mapped.record.time_in_hospital == int(rich_row["time_in_hospital"])
    assert "time_in_hospital" not in mapped.missing


def test_history_supplies_prior_visits_demographics_and_prior_encounters(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    (first,) = map_document(encounter)
    assert first.admitted_at is not None
    history = InMemoryHistory()
    earlier = FeatureRecord(
        encounter_id="e0", patient_nbr="p-123", race="Asian", gender="Male", time_in_hospital=6
    )
    history._records["p-123"]["e0"] = (first.admitted_at - timedelta(days=40), earlier)
    history.remember_visits([
        VisitSummary("v1", "p-123", "EMER", first.admitted_at - timedelta(days=10), None, False),
        VisitSummary("v2", "p-123", "AMB", first.admitted_at - timedelta(days=400), None, False),
        VisitSummary("v3", "p-123", "IMP", first.admitted_at - timedelta(days=40), None, True),
        VisitSummary(first.encounter_id, "p-123", "IMP", first.admitted_at, None, True),
    ])  # fmt: skip
    (mapped,) = map_document(encounter, history=history)
    assert mapped.record.number_emergency == 1
    assert mapped.record.number_outpatient == 0  # 400 days ago: outside the year
    assert mapped.record.number_inpatient == 1  # itself is not counted
    assert mapped.record.prior_encounters == 1
    assert mapped.record.days_since_last_discharge == 34  # admitted 40 days ago, stayed 6
    assert (mapped.record.race, mapped.record.gender) == ("Asian", "Male")
    assert "prior_encounters" not in mapped.missing
    assert "race" not in mapped.missing


def test_visits_from_document_and_history_are_deduplicated(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    (mapped,) = map_document(bundle)
    history = InMemoryHistory()
    history.remember_visits(mapped.visits)
    (again,) = map_document(bundle, history=history)
    assert again.record.number_inpatient == int(rich_row["number_inpatient"])
    assert again.record.number_outpatient == int(rich_row["number_outpatient"])


def _stay_at(encounter: dict[str, Any], start: str, end: str) -> dict[str, Any]:
    moved = copy.deepcopy(encounter)
    moved["period"] = {"start": start, "end": end}
    return moved


def test_days_since_discharge_counts_calendar_days(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    history = InMemoryHistory()
    first = _stay_at(encounter, "2005-03-01T23:00:00-05:00", "2005-03-02T10:00:00-05:00")
    first["id"] = "first-stay"
    (earlier,) = map_document(first)
    history.remember(earlier)
    # 26 hours after the first admission but two calendar days later, the stay being 1 day
    later = _stay_at(encounter, "2005-03-03T01:00:00-05:00", "2005-03-05T10:00:00-05:00")
    (mapped,) = map_document(later, history=history)
    assert earlier.record.time_in_hospital == 1
    assert mapped.record.prior_encounters == 1
    assert mapped.record.days_since_last_discharge == 1


def test_an_encounter_is_never_its_own_previous_stay(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    history = InMemoryHistory()
    (original,) = map_document(encounter)
    history.remember(original)
    corrected = _stay_at(encounter, "2009-06-01T08:00:00-05:00", "2009-06-04T08:00:00-05:00")
    (mapped,) = map_document(corrected, history=history)  # same id, admission moved later
    assert mapped.record.prior_encounters == 0
    assert mapped.record.days_since_last_discharge == 365


def test_in_memory_history_remembers_mapped_encounters(rich_row, make_bundle):
    (mapped,) = map_document(make_bundle(rich_row))
    history = InMemoryHistory()
    history.remember(mapped)
    later = datetime.now(UTC)
    assert mapped.admitted_at is not None
    assert history.prior_index_records(mapped.patient_id, later) == [
        PriorStay(mapped.admitted_at, mapped.record)
    ]
    assert history.prior_index_records(mapped.patient_id, mapped.admitted_at) == []


def test_input_key_prefers_version_then_last_updated_then_content(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    hashed = map_document(bundle)[0].input_key
    assert hashed.startswith(f"{rich_row['encounter_id']}#sha256:")
    labs = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    labs[0]["resource"]["valueQuantity"]["value"] += 1
    assert map_document(bundle)[0].input_key != hashed
    _index(bundle)["resource"]["meta"] = {"lastUpdated": "2005-01-01T00:00:00Z"}
    assert map_document(bundle)[0].input_key == f"{rich_row['encounter_id']}@2005-01-01T00:00:00Z"
    _index(bundle)["resource"]["meta"]["versionId"] = "3"
    assert map_document(bundle)[0].input_key == f"{rich_row['encounter_id']}/_history/3"


def test_unused_resource_types_are_accepted_and_ignored():
    assert map_document({"resourceType": "Practitioner", "id": "dr-1", "active": True}) == []
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Organization", "id": "o1", "name": "Hospital"}}],
    }
    assert map_document(bundle) == []


def test_unfinished_or_outpatient_encounters_are_not_index(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    encounter["status"] = "in-progress"
    assert map_document(encounter) == []
    encounter["status"] = "finished"
    encounter["class"]["code"] = "AMB"
    assert map_document(encounter) == []


@pytest.mark.parametrize(
    ("mutate", "error", "expression"),
    [
        (lambda e: e.update(foo=1), InvalidResource, "Encounter.foo"),
        (lambda e: e.update(id="not valid!"), InvalidResource, "Encounter.id"),
        (lambda e: e.pop("class"), InvalidResource, "Encounter.class"),
        (lambda e: e.update(status=12), InvalidResource, "Encounter.status"),
        (lambda e: e["period"].update(start="2001-02-30"), InvalidResource,
         "Encounter.period.start"),
        (lambda e: e.pop("subject"), MissingPatient, "Encounter.subject"),
        (lambda e: e["period"].update(start="2001-02-10", end="2001-02-01"), ImpossibleDates,
         "Encounter.period.end"),
        (lambda e: e.update(subject={"reference": "urn:uuid:6b2bd6a4-3ad5-4f0e-9f39-4b3d1c7e0001"}),
         UnresolvedReference, "Encounter.subject"),
        (lambda e: e.update(resourceType="Encounterz"), UnknownResourceType,
         "Encounterz.resourceType"),
    ],
)  # fmt: skip
def test_bad_input_raises_a_typed_error_naming_resource_and_element(
    rich_row, make_bundle, mutate, error, expression
):
    encounter = _loose_encounter(make_bundle(rich_row))
    mutate(encounter)
    with pytest.raises(error) as caught:
        map_document(encounter)
    outcome = caught.value.to_operation_outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["expression"] == [expression]
    # FHIR's own rules broken -> 400; valid FHIR we cannot process (business rule) -> 422
    business = error in (MissingPatient, ImpossibleDates, UnresolvedReference)
    assert caught.value.status == (422 if business else 400)


def test_dangling_urn_uuid_inside_a_transaction_is_refused(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    lab = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    lab["resource"]["subject"] = {"reference": "urn:uuid:6b2bd6a4-3ad5-4f0e-9f39-4b3d1c7e0002"}
    with pytest.raises(UnresolvedReference) as caught:
        map_document(bundle)
    assert caught.value.expression == "Observation.subject"


def test_birth_after_admission_is_impossible(rich_row, make_bundle):
    bundle = make_bundle(rich_row)
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["resource"]["birthDate"] = "2030-01-01"
    with pytest.raises(ImpossibleDates) as caught:
        map_document(bundle)
    assert caught.value.expression == "Patient.birthDate"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", '"text"'])
def test_malformed_bodies_are_400(body):
    with pytest.raises(InvalidJson) as caught:
        map_document(body)
    assert caught.value.status == 400
    assert caught.value.to_operation_outcome()["issue"][0]["code"] == "structure"


@pytest.mark.parametrize("resource_type", ["Quantity", "Resource", "", "Nope"])
def test_non_resources_are_unknown_types(resource_type):
    with pytest.raises(UnknownResourceType):
        map_document({"resourceType": resource_type})


def test_errors_are_all_fhir_mapping_errors():
    for cls in (InvalidJson, InvalidResource, UnknownResourceType, UnresolvedReference,
                MissingPatient, ImpossibleDates):  # fmt: skip
        assert issubclass(cls, FhirMappingError)


def test_history_visits_with_naive_times_are_read_as_utc(rich_row, make_bundle):
    encounter = _loose_encounter(make_bundle(rich_row))
    (first,) = map_document(encounter)
    assert first.admitted_at is not None
    naive = (first.admitted_at - timedelta(days=3)).astimezone(UTC).replace(tzinfo=None)
    history = InMemoryHistory()
    history.remember_visits([VisitSummary("v9", "p-123", "AMB", naive, None, False)])
    (mapped,) = map_document(encounter, history=history)
    assert mapped.record.number_outpatient == 1
