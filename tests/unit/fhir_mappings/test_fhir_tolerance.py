"""Tolerance: perturbed bundles never crash the mapper, and absent input maps to the
documented missing value (listed in ``missing``).

Perturbations: fields removed, ICD-10-CM instead of ICD-9-CM, other units (mmol/L,
mmol/mol), relative instead of urn:uuid references, contained resources, unknown
extensions. Only :class:`FhirMappingError` may escape the mapper.
"""

from __future__ import annotations

import copy
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings.codes import diagnosis_group
from fhir_mappings.codes.icd10 import ICD10CM_SYSTEM
from fhir_mappings.codes.loinc import GLUCOSE_MMOL_TO_MGDL
from fhir_mappings.errors import FhirMappingError
from fhir_mappings.mapper import MappedEncounter, map_document
from fhir_mappings.synth import synthesize_bundle

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ICD10_BY_GROUP = {
    "Circulatory": ["I50.9", "I21.4", "I48.91", "I10", "G45.9", "I63.9"],
    "Respiratory": ["J18.9", "J44.1", "J96.01", "R06.02"],
    "Digestive": ["K92.2", "K85.90", "K57.30", "R11.2"],
    "Diabetes": ["E11.9", "E11.65", "E10.10", "E11.22"],
    "Injury": ["S72.001A", "T82.7XXA", "T81.4XXA", "S06.0X0A"],
    "Musculoskeletal": ["M17.11", "M54.5", "M86.9"],
    "Genitourinary": ["N39.0", "N17.9", "N18.6"],
    "Neoplasms": ["C34.90", "C50.919", "D49.2"],
    "Other": ["A41.9", "Z79.4", "F32.9", "E87.1"],
}
NEUTRAL = ("icd10", "units", "contained", "extensions", "relative")


@pytest.fixture(scope="session")
def cases(dev_rows) -> list[tuple[dict[str, str], dict[str, Any], MappedEncounter]]:
    """(row, bundle, mapping of the unperturbed bundle) for a varied set of rows."""
    picked = [r for r in dev_rows if r["A1Cresult"] != "None"][:6]
    picked += [r for r in dev_rows if r["max_glu_serum"] != "None"][:6]
    picked += [r for r in dev_rows if any(r[c] in ("Up", "Down") for c in ("insulin",))][:4]
    picked += dev_rows[:8]
    out = []
    for row in picked:
        bundle = synthesize_bundle(row, seed=21)
        out.append((row, bundle, map_document(bundle)[0]))
    return out


def _entries(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def _index(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in _entries(bundle, "Encounter") if "-prior-" not in e["resource"]["id"])


def _loinc(entry: dict[str, Any]) -> str:
    return entry["resource"]["code"]["coding"][0]["code"]


# --- perturbations that must not change any feature --------------------------------------
def to_icd10(bundle: dict[str, Any], draw: Any) -> dict[str, str]:
    """Recode every ICD-9 Condition as an ICD-10-CM code of the same group.

    Returns {dataset diag column -> expected group}.
    """
    expected = {}
    index = _index(bundle)["resource"]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    for k, diagnosis in enumerate(index.get("diagnosis", ())[:3], start=1):
        condition = by_url[diagnosis["condition"]["reference"]]
        coding = (condition["code"].get("coding") or [None])[0]
        if coding is None:
            continue
        group = diagnosis_group(coding["code"])
        code = draw(st.sampled_from(ICD10_BY_GROUP[group]))
        condition["code"] = {"coding": [{"system": ICD10CM_SYSTEM, "code": code}]}
        expected[f"diag_{k}"] = group
    return expected


def to_other_units(bundle: dict[str, Any]) -> None:
    """Glucose in mmol/L (LOINC 14749-6), HbA1c in IFCC mmol/mol (LOINC 59261-8)."""
    for entry in _entries(bundle, "Observation"):
        quantity = entry["resource"].get("valueQuantity")
        code = _loinc(entry)
        if code == "2345-7":
            mmol = round(quantity["value"] / GLUCOSE_MMOL_TO_MGDL, 1)
            entry["resource"]["code"]["coding"][0]["code"] = "14749-6"
            quantity.update(value=mmol, unit="mmol/L", code="mmol/L")
        elif code == "4548-4":
            ifcc = round((quantity["value"] - 2.152) / 0.09148)
            entry["resource"]["code"]["coding"][0]["code"] = "59261-8"
            quantity.update(value=ifcc, unit="mmol/mol", code="mmol/mol")


def to_relative_references(bundle: dict[str, Any]) -> None:
    """Give every entry an id and a RESTful fullUrl; rewrite urn:uuid references to Type/id."""
    base = "https://ehr.example.org/fhir"
    mapping = {}
    for n, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        resource.setdefault("id", f"gen-{n}")
        new = f"{resource['resourceType']}/{resource['id']}"
        mapping[entry["fullUrl"]] = new
        entry["fullUrl"] = f"{base}/{new}"
        entry["request"] = {"method": "PUT", "url": new}

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref in mapping:
                node["reference"] = mapping[ref]
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for item in node:
                rewrite(item)

    rewrite(bundle)


def to_contained(bundle: dict[str, Any]) -> None:
    """Contain the ward Location in the Encounter and combination Medications in their requests."""
    index = _index(bundle)
    for entry in _entries(bundle, "Location"):
        location = entry["resource"]
        index["resource"].setdefault("contained", []).append(location)
        index["resource"]["location"][0]["location"] = {"reference": f"#{location['id']}"}
        bundle["entry"].remove(entry)
    for entry in _entries(bundle, "Medication"):
        users = [
            e for e in _entries(bundle, "MedicationRequest")
            if e["resource"].get("medicationReference", {}).get("reference") == entry["fullUrl"]
        ]  # fmt: skip
        for n, user in enumerate(users):
            medication = dict(entry["resource"], id=f"med{n}")
            user["resource"]["contained"] = [medication]
            user["resource"]["medicationReference"] = {"reference": f"#med{n}"}
        bundle["entry"].remove(entry)


WORDS = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)


def add_unknown_extensions(bundle: dict[str, Any], draw: Any) -> None:
    for entry in bundle["entry"]:
        if draw(st.booleans()):
            entry["resource"].setdefault("extension", []).append(
                {
                    "url": "https://other-ehr.example.com/fhir/StructureDefinition/x-flag",
                    "valueString": draw(WORDS),
                }
            )


def _apply(bundle: dict[str, Any], names: list[str], draw: Any) -> dict[str, str]:
    groups: dict[str, str] = {}
    for name in names:
        if name == "icd10":
            groups = to_icd10(bundle, draw)
        elif name == "units":
            to_other_units(bundle)
        elif name == "relative":
            to_relative_references(bundle)
        elif name == "contained":
            to_contained(bundle)
        else:
            add_unknown_extensions(bundle, draw)
    return groups


@SETTINGS
@given(data=st.data())
def test_neutral_perturbations_keep_every_feature(cases, data):
    _, bundle, baseline = cases[data.draw(st.integers(0, len(cases) - 1), label="case")]
    bundle = copy.deepcopy(bundle)
    names = data.draw(st.lists(st.sampled_from(NEUTRAL), min_size=1, max_size=5, unique=True))
    names = sorted(names, key=NEUTRAL.index)  # recode/contain first, rewrite references last
    groups = _apply(bundle, names, data.draw)
    (mapped,) = map_document(bundle)
    got, want = mapped.record.columns(), baseline.record.columns()
    for column in want:
        if column in groups:
            assert diagnosis_group(got[column]) == groups[column], column
        else:
            assert got[column] == want[column], column
    assert mapped.ward == baseline.ward
    assert set(mapped.missing) == set(baseline.missing)


# --- removals: absent input -> documented missing value, flagged ---------------------------
def _drop_patient_field(bundle: dict[str, Any], field: str) -> None:
    _entries(bundle, "Patient")[0]["resource"].pop(field, None)


def _drop_labs(bundle: dict[str, Any], loinc: str) -> None:
    for entry in _entries(bundle, "Observation"):
        if _loinc(entry) == loinc:
            bundle["entry"].remove(entry)


REMOVALS: dict[str, tuple[Any, dict[str, Any]]] = {
    "birthDate": (lambda b: _drop_patient_field(b, "birthDate"), {"age": "?"}),
    "race": (lambda b: _drop_patient_field(b, "extension"), {"race": "?"}),
    "gender": (lambda b: _drop_patient_field(b, "gender"), {"gender": "Unknown/Invalid"}),
    "priority": (lambda b: _index(b)["resource"].pop("priority", None), {"admission_type_id": 6}),
    "hospitalization": (
        lambda b: _index(b)["resource"].pop("hospitalization", None),
        {"admission_source_id": 17, "discharge_disposition_id": 18},
    ),
    "serviceType": (
        lambda b: _index(b)["resource"].pop("serviceType", None), {"medical_specialty": "?"}
    ),
    "period.end": (
        lambda b: _index(b)["resource"]["period"].pop("end"), {"time_in_hospital": 1}
    ),
    "coverage": (
        lambda b: [b["entry"].remove(e) for e in _entries(b, "Coverage")], {"payer_code": "?"}
    ),
    "hba1c": (
        lambda b: _drop_labs(b, "4548-4"),
        {"A1Cresult": "None"},
    ),
    "glucose": (
        lambda b: _drop_labs(b, "2345-7"),
        {"max_glu_serum": "None"},
    ),
    "weight": (
        lambda b: _drop_labs(b, "29463-7"),
        {"weight": "?"},
    ),
}  # fmt: skip


@SETTINGS
@given(data=st.data())
def test_removed_input_takes_its_documented_missing_value(cases, data):
    _, bundle, baseline = cases[data.draw(st.integers(0, len(cases) - 1), label="case")]
    bundle = copy.deepcopy(bundle)
    names = data.draw(st.lists(st.sampled_from(sorted(REMOVALS)), min_size=1, unique=True))
    expected: dict[str, Any] = {}
    for name in names:
        remove, values = REMOVALS[name]
        remove(bundle)
        expected.update(values)
    (mapped,) = map_document(bundle)
    got = mapped.record.columns()
    for column, value in expected.items():
        assert got[column] == value, column
        assert column in mapped.missing, column
    untouched = set(got) - set(expected) - {"num_lab_procedures", "age"}
    for column in untouched:
        assert got[column] == baseline.record.columns()[column], column


def test_diagnoses_without_encounter_diagnosis_fall_back_to_encounter_conditions(cases):
    _, bundle, baseline = cases[0]
    bundle = copy.deepcopy(bundle)
    _index(bundle)["resource"].pop("diagnosis")
    (mapped,) = map_document(bundle)
    for column in ("diag_1", "diag_2", "diag_3", "number_diagnoses"):
        assert mapped.record.columns()[column] == baseline.record.columns()[column]


# --- arbitrary damage: only FhirMappingError may escape -------------------------------------
@SETTINGS
@given(data=st.data())
def test_random_deletions_never_crash(cases, data):
    _, bundle, _ = cases[data.draw(st.integers(0, len(cases) - 1), label="case")]
    bundle = copy.deepcopy(bundle)
    for _ in range(data.draw(st.integers(1, 6))):
        entry = data.draw(st.sampled_from(bundle["entry"]))
        node: Any = entry["resource"]
        while isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            child = node[key]
            if isinstance(child, list) and child and data.draw(st.booleans()):
                child = data.draw(st.sampled_from(child))
            if not isinstance(child, dict | list) or data.draw(st.booleans()):
                if key != "resourceType":
                    del node[key]
                break
            node = child
    outcome = None
    try:
        result = map_document(bundle)
    except FhirMappingError as exc:
        outcome, result = exc.to_operation_outcome(), []
    if outcome is not None:
        assert outcome["resourceType"] == "OperationOutcome"
    for mapped in result:
        assert set(mapped.missing) <= set(mapped.record.columns())
