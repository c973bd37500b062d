"""FHIR as real EHRs write it (issue 13): SNOMED-only diagnoses, problem lists, chronic
medication orders, history carried in the document; and hostile or odd input."""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fhir_mappings.bundle import MAX_JSON_DEPTH, check_depth, check_text_depth, load_json
from fhir_mappings.codes.icd10 import icd10_to_icd9
from fhir_mappings.codes.snomed import SNOMED_TO_ICD9
from fhir_mappings.condition import concept_code
from fhir_mappings.errors import FhirMappingError, InvalidCode, TooDeep
from fhir_mappings.mapper import map_document
from fhir_mappings.prior_visits import InMemoryHistory, PriorStay
from readmit.cli import app
from readmit_core.features import FeatureRecord

SCT = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-02-03"}


def _encounter(eid: str, start: str, end: str, cls: str = "IMP", **extra: Any) -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "subject": {"reference": "Patient/p1"}, "period": {"start": start, "end": end},
            **extra}  # fmt: skip


def _condition(cid: str, code: str, system: str = SCT, **extra: Any) -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": system, "code": code}]}, **extra}  # fmt: skip


def _order(oid: str, code: str, authored: str, status: str = "active", **extra: Any) -> dict:
    return {"resourceType": "MedicationRequest", "id": oid, "status": status, "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": authored, **extra}  # fmt: skip


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r['id']}",
                       "resource": r} for r in resources]}  # fmt: skip


STAY = _encounter("stay", "2024-03-10T08:00:00Z", "2024-03-14T10:00:00Z")


def _record(*resources: dict, history: InMemoryHistory | None = None) -> FeatureRecord:
    mapped = map_document(orjson.dumps(_bundle(PATIENT, *resources)), history=history)
    (stay,) = [m for m in mapped if m.encounter_id == "stay"]
    return stay.record


# --- diagnoses -------------------------------------------------------------------------
def test_snomed_only_conditions_become_diagnoses_from_reason_and_problem_list():
    stay = {**STAY, "reasonCode": [{"coding": [{"system": SCT, "code": "88805009"}]}]}
    record = _record(
        stay,
        _condition("dm", "44054006", onsetDateTime="2010-01-01"),  # active, no category
        _condition("ckd", "127013003", onsetDateTime="2015-01-01"),
        _condition("old", "444814009", onsetDateTime="2012-01-01",
                   abatementDateTime="2012-02-01"),  # resolved before the stay
        _condition("later", "38341003", onsetDateTime="2025-01-01"),  # after the stay
    )  # fmt: skip
    assert (record.diag_1, record.diag_2, record.diag_3) == ("428", "250", "250.4")
    assert record.number_diagnoses == 3


def test_encounter_diagnosis_of_another_encounter_is_not_this_stays():
    other = _encounter("clinic", "2023-01-01T08:00:00Z", "2023-01-01T09:00:00Z", "AMB")
    category = [{"coding": [{"code": "encounter-diagnosis"}]}]
    record = _record(
        STAY,
        other,
        _condition("c1", "I50.9", "http://hl7.org/fhir/sid/icd-10-cm", category=category,
                   encounter={"reference": "Encounter/stay"}),
        _condition("c2", "J18.9", "http://hl7.org/fhir/sid/icd-10-cm", category=category,
                   encounter={"reference": "Encounter/clinic"}),
    )  # fmt: skip
    assert (record.diag_1, record.number_diagnoses) == ("428", 1)


@pytest.mark.parametrize(
    ("system", "code", "icd9"),
    [("http://hl7.org/fhir/sid/icd-10-cm", "E11.22", "250.4"),
     ("http://hl7.org/fhir/sid/icd-10-cm", "E1122", "250.4"),
     ("http://hl7.org/fhir/sid/icd-9-cm", "4280", "428"),
     ("http://hl7.org/fhir/sid/icd-9-cm", "428.0", "428"),
     (SCT, "46635009", "250.01")],
)  # fmt: skip
def test_code_systems_and_spellings(system, code, icd9):
    assert concept_code({"coding": [{"system": system, "code": code}]})[0] == icd9


def test_text_is_the_last_fallback():
    concept = {
        "coding": [{"system": SCT, "code": "999999999"}],
        "text": "Acute on chronic heart failure",
    }
    assert concept_code(concept) == ("428", "text")
    assert concept_code({"text": "unremarkable"}) == (None, "none")


def test_every_curated_snomed_concept_has_a_valid_icd9_code():
    from fhir_mappings.codes.icd9 import dataset_code, diagnosis_group

    for icd9 in SNOMED_TO_ICD9.values():
        assert dataset_code(icd9) == icd9
        assert diagnosis_group(icd9) != "Missing"


# --- medications -----------------------------------------------------------------------
def test_chronic_orders_before_admission_count_as_steady():
    record = _record(
        STAY,
        _order("insulin", "106892", "2023-05-01"),  # Humulin SBD, never stopped
        _order("metformin", "860975", "2022-01-01", status="stopped"),  # stopped
        _order("glipizide", "310488", "2024-06-01",
               medicationCodeableConcept={"text": "glipiZIDE 5 MG Oral Tablet"}),  # after
    )  # fmt: skip
    assert (record.insulin, record.metformin, record.glipizide) == ("Steady", "No", "No")
    assert record.diabetesMed == "Yes"
    assert record.num_medications == 1


def test_contained_medication_and_medication_statement():
    contained = {"resourceType": "Medication", "id": "m1",
                 "code": {"coding": [{"system": RXNORM, "code": "860975"}]}}  # fmt: skip
    order = {"resourceType": "MedicationRequest", "id": "o1", "status": "completed",
             "intent": "order", "contained": [contained],
             "medicationReference": {"reference": "#m1"}, "subject": {"reference": "Patient/p1"},
             "encounter": {"reference": "Encounter/stay"}, "authoredOn": "2024-03-11"}  # fmt: skip
    statement = {"resourceType": "MedicationStatement", "id": "s1", "status": "active",
                 "medicationCodeableConcept": {"text": "Insulin glargine 100 UNT/ML"},
                 "subject": {"reference": "Patient/p1"},
                 "effectivePeriod": {"start": "2020-01-01"}}  # fmt: skip
    record = _record(STAY, order, statement)
    assert (record.metformin, record.insulin) == ("Steady", "Steady")


# --- history carried in the document -----------------------------------------------------
def _earlier_stays(n: int) -> list[dict]:
    return [
        _encounter(f"e{i}", f"2023-{i + 6:02d}-05T08:00:00Z", f"2023-{i + 6:02d}-08T08:00:00Z")
        for i in range(n)
    ]


def test_earlier_stays_in_the_document_are_history():
    record = _record(STAY, *_earlier_stays(5))
    assert record.number_inpatient == 5
    assert record.prior_encounters == 5
    assert record.prior_days_in_hospital == 15
    assert (
        record.days_since_last_discharge == (datetime(2024, 3, 10) - datetime(2023, 10, 5)).days - 3
    )


def test_document_and_store_history_count_each_encounter_once():
    history = InMemoryHistory()
    for earlier in _earlier_stays(5)[:3]:  # already seen by the store
        (mapped,) = map_document(orjson.dumps(_bundle(PATIENT, earlier)))
        history.remember(mapped)
    extra = FeatureRecord.model_validate({**_record(STAY).columns(), "encounter_id": "x9"})
    history._records["p1"]["x9"] = (datetime(2022, 6, 1, tzinfo=UTC), extra)  # store only
    record = _record(STAY, *_earlier_stays(5), history=history)
    assert record.prior_encounters == 6
    assert record.number_inpatient == 5


def test_stay_is_never_its_own_history():
    history = InMemoryHistory()
    (mapped,) = map_document(orjson.dumps(_bundle(PATIENT, STAY)))
    history.remember(mapped)
    assert _record(STAY, history=history).prior_encounters == 0
    assert isinstance(history.prior_index_records("p1", datetime.now(UTC))[0], PriorStay)


# --- hostile and odd input -----------------------------------------------------------------
def _nested(depth: int) -> bytes:
    ext: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        ext = {"url": "http://example.org/node", "extension": [ext]}
    return json.dumps({"resourceType": "Patient", "extension": [ext]}).encode()


def test_byte_order_mark_is_accepted():
    body = b"\xef\xbb\xbf" + orjson.dumps(_bundle(PATIENT, STAY))
    assert [m.encounter_id for m in map_document(body)] == ["stay"]
    assert load_json("\ufeff" + body[3:].decode())["resourceType"] == "Bundle"


def test_deep_nesting_is_refused_with_400_and_the_cli_exits_2(tmp_path):
    with pytest.raises(TooDeep) as refused:
        map_document(_nested(150))
    assert refused.value.status == 400
    path = tmp_path / "deep.json"
    path.write_bytes(_nested(150))
    result = CliRunner().invoke(app, ["fhir", "features", str(path)])
    assert result.exit_code == 2
    assert orjson.loads(result.stdout)["issue"][0]["code"] == "too-costly"
    assert map_document(_nested(MAX_JSON_DEPTH // 2 - 4)) == []  # shallower is fine


@pytest.mark.parametrize(
    ("resource", "element"),
    [({**PATIENT, "gender": "M"}, "Patient.gender"),
     ({**STAY, "status": "done"}, "Encounter.status"),
     ({"resourceType": "Observation", "id": "o2", "status": "fin", "code": {"text": "x"}},
      "Observation.status"),
     (_order("o", "860975", "2024-01-01", status="taken"), "MedicationRequest.status"),
     (_condition("c", "44054006", clinicalStatus={"coding": [{
         "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
         "code": "current"}]}), "Condition.clinicalStatus")],
)  # fmt: skip
def test_required_bindings_are_checked_naming_the_element(resource, element):
    with pytest.raises(InvalidCode) as refused:
        map_document(orjson.dumps(_bundle(resource)))
    outcome = refused.value.to_operation_outcome()["issue"][0]
    assert outcome["code"] == "code-invalid"
    assert outcome["expression"] == [element]
    assert refused.value.status == 400  # a required binding is FHIR's own rule


def test_r4b_style_notification_elements_are_tolerated():
    status = {
        "resourceType": "SubscriptionStatus",
        "id": "n1",
        "status": "active",
        "type": "event-notification",
        "eventsSinceSubscriptionStart": "3",
        "eventsInNotification": 1,
        "subscription": {"reference": "Subscription/s1"},
        "notificationEvent": [{"eventNumber": "3", "focus": {"reference": "Encounter/stay"}}],
    }
    bundle = {"resourceType": "Bundle", "type": "subscription-notification",
              "entry": [{"fullUrl": "urn:uuid:0b6e5f8c-1111-4c3e-9a57-000000000001",
                         "resource": status},
                        *_bundle(PATIENT, STAY)["entry"]]}  # fmt: skip
    assert [m.encounter_id for m in map_document(orjson.dumps(bundle))] == ["stay"]


# --- property tests of the parsers -------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_mapped_or_refused_typed(body):
    with contextlib.suppress(FhirMappingError):
        map_document(body)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["resourceType", "entry", "type", "id", "status"]), _json))
def test_arbitrary_json_objects_are_mapped_or_refused_typed(data):
    with contextlib.suppress(FhirMappingError):
        map_document(orjson.dumps(data))


@settings(max_examples=200, deadline=None)
@given(_json)
def test_concept_code_never_raises(concept):
    code, source = concept_code(concept if isinstance(concept, dict) else {"coding": [concept]})
    assert source in {"icd9", "icd10", "snomed", "text", "none"}
    assert (code is None) == (source == "none")


@given(st.from_regex(r"[A-TV-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?", fullmatch=True))
def test_icd10_with_or_without_dot_maps_the_same(code):
    def outcome(value: str) -> str:
        try:
            return icd10_to_icd9(value)
        except ValueError:  # not an ICD-10 code (e.g. D90): refused the same way
            return "refused"

    assert outcome(code) == outcome(code.replace(".", ""))


def _random_json(rng: random.Random, depth: int) -> Any:
    """Nested objects and lists whose strings and keys hold brackets, quotes and
    backslashes (what a text-level depth check must not be fooled by)."""
    texts = ["[{", '"}]', "\\", '\\"[', "]]", "\\u005b", "\n{"]
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([1, None, 2.5, rng.choice(texts) + rng.choice(texts)])
    if rng.random() < 0.5:
        return {
            rng.choice(texts) + str(i): _random_json(rng, depth - 1)
            for i in range(rng.randint(1, 2))
        }
    return [_random_json(rng, depth - 1) for _ in range(rng.randint(1, 2))]


def test_text_depth_check_agrees_with_the_walk() -> None:
    """check_text_depth (on the bytes orjson parsed) refuses exactly what check_depth
    (on the parsed object) refuses, compact or indented, around each limit."""
    rng = random.Random(7)
    refused = 0
    for i in range(3000):
        data = {"a": _random_json(rng, rng.randint(1, 80))}
        raw = orjson.dumps(data, option=orjson.OPT_INDENT_2 if i % 2 else 0)
        for limit in (3, 10, MAX_JSON_DEPTH):
            try:
                check_depth(data, limit)
                walked = False
            except TooDeep:
                walked = True
            try:
                check_text_depth(raw, limit)
                scanned = False
            except TooDeep:
                scanned = True
            assert scanned == walked, raw[:200]
            refused += walked
    assert refused > 0  # some documents were deep enough to be refused
