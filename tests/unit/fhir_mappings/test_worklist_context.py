"""FHIR Patient/Encounter -> the worklist context (name, MRN, age, sex, bed, stay)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings.codes.structural import IDENTIFIER_TYPE_SYSTEM as MR_TYPE_SYSTEM
from fhir_mappings.codes.structural import LOCATION_TYPE_SYSTEM as LOCATION_TYPE
from fhir_mappings.mapper import map_document
from fhir_mappings.worklist_context import (
    WorklistContext,
    contexts_by_encounter,
    worklist_context,
)


def _no_refs(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    return None


def _with_name_and_bed(bundle: dict[str, Any]) -> dict[str, Any]:
    """A synthesized bundle plus what a real EHR sends: a name and a bed Location."""
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["name"] = [
                {"use": "old", "family": "Maiden", "given": ["Ann"]},
                {"use": "official", "family": "García", "given": ["Ana", "María"]},
            ]
        if resource["resourceType"] == "Encounter":
            resource["location"].append(
                {
                    "location": {"reference": "Location/bed-12b", "display": "12B"},
                    "physicalType": {"coding": [{"system": LOCATION_TYPE, "code": "bd"}]},
                }
            )
    return bundle


def test_a_synthesized_discharge_gives_its_worklist_context(
    dev_rows: list[dict[str, str]], make_bundle: Callable[..., dict[str, Any]]
) -> None:
    row = next(r for r in dev_rows if r["age"] == "[70-80)")
    bundle = _with_name_and_bed(make_bundle(row))
    (mapped,) = map_document(bundle)
    ctx = contexts_by_encounter(bundle)[mapped.encounter_id]
    assert ctx.patient_name == "García, Ana María"
    assert ctx.mrn == row["patient_nbr"]
    assert ctx.sex == {"Female": "female", "Male": "male"}.get(row["gender"], "unknown")
    assert ctx.age_years is not None
    assert 70 <= ctx.age_years < 81
    assert ctx.unit is not None
    assert ctx.unit.endswith(" ward")
    assert ctx.bed == "12B"
    assert (ctx.admitted_at, ctx.discharged_at) == (mapped.admitted_at, mapped.discharged_at)
    assert ctx.disposition  # the dataset's description when the coding has no display


def test_reading_rules() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {"use": "official", "text": "Old Name", "period": {"end": "2001-01-01"}},
            {"use": "usual", "given": ["Bo"]},
            {"given": ["First"], "family": "Listed"},
        ],
        "identifier": [
            {"system": "urn:oid:1.2.3", "value": "SSN-1"},
            {"type": {"coding": [{"system": MR_TYPE_SYSTEM, "code": "MR"}]}, "value": "  77 01 "},
        ],
        "gender": "female",
        "birthDate": "1950-06-30",
    }
    encounter = {
        "resourceType": "Encounter",
        "period": {"start": "2020-06-20T08:00:00+02:00", "end": "2020-06-29T17:30:00+02:00"},
        "location": [
            {"location": {"display": "Ward 5 North"}},
            {
                "location": {"display": "Room 3"},
                "physicalType": {"coding": [{"code": "ro"}]},
            },
        ],
        "hospitalization": {"dischargeDisposition": {"text": "Home with home health"}},
    }
    ctx = worklist_context(encounter, patient, _no_refs)
    assert ctx.patient_name == "Bo"  # the ended official name is skipped, usual next
    assert ctx.mrn == "77 01"
    assert ctx.age_years == 69  # the day before the 70th birthday, at discharge
    assert (ctx.unit, ctx.room, ctx.bed) == ("Ward 5 North", "Room 3", None)
    assert ctx.disposition == "Home with home health"
    assert ctx.discharged_at == datetime.fromisoformat("2020-06-29T17:30:00+02:00")
    born_later = worklist_context(encounter, {**patient, "birthDate": "2021-01-01"}, _no_refs)
    assert born_later.age_years is None
    assert worklist_context({}, None, _no_refs) == WorklistContext()


_text = st.text(max_size=300)
_codes = st.sampled_from(["wa", "ro", "bd", "si", ""])
_names = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "use": st.sampled_from(["official", "usual", "old", "nickname"]),
            "text": _text,
            "family": _text,
            "given": st.lists(_text, max_size=3),
            "period": st.fixed_dictionaries({}, optional={"end": st.just("2000-01-01")}),
        },
    ),
    max_size=3,
)
_identifiers = st.lists(
    st.fixed_dictionaries(
        {"value": _text},
        optional={
            "system": st.sampled_from(["urn:mrn", "https://x.org/mrn", "urn:oid:9"]),
            "type": st.just({"coding": [{"system": MR_TYPE_SYSTEM, "code": "MR"}]}),
        },
    ),
    max_size=3,
)
_dates = st.dates(min_value=date(1880, 1, 1), max_value=date(2030, 12, 31)).map(date.isoformat)
_locations = st.lists(
    st.fixed_dictionaries(
        {"location": st.fixed_dictionaries({}, optional={"display": _text})},
        optional={"physicalType": _codes.map(lambda c: {"coding": [{"code": c}]})},
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    names=_names,
    identifiers=_identifiers,
    born=st.one_of(st.none(), _dates, st.sampled_from(["1970", "1970-05", "not a date"])),
    start=st.one_of(st.none(), _dates),
    end=st.one_of(st.none(), _dates),
    locations=_locations,
)
def test_any_well_formed_patient_and_encounter_give_a_bounded_context(
    names: list[Any],
    identifiers: list[Any],
    born: str | None,
    start: str | None,
    end: str | None,
    locations: list[Any],
) -> None:
    patient: dict[str, Any] = {"resourceType": "Patient", "name": names, "identifier": identifiers}
    if born:
        patient["birthDate"] = born
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    encounter = {"resourceType": "Encounter", "location": locations, "period": period}
    ctx = worklist_context(encounter, patient, _no_refs)
    for text in (ctx.patient_name, ctx.mrn, ctx.unit, ctx.room, ctx.bed):
        assert text is None or (0 < len(text) <= 200 and "\n" not in text and text == text.strip())
    assert ctx.age_years is None or 0 <= ctx.age_years <= 151
    assert WorklistContext.model_validate_json(ctx.model_dump_json()) == ctx
