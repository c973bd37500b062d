"""An outsider's FHIR (issue 13 review): shapes real EHRs send that the corpus does not
carry — principal diagnosis order, refuted/stopped resources, reference spellings,
dates with offsets — each checked against the clinically right feature."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fhir_mappings.condition import concept_code
from fhir_mappings.mapper import map_document
from readmit_core.features import FeatureRecord

SCT = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1948-06-01"}


def _encounter(eid: str = "stay", **extra: Any) -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-03-10T08:00:00-05:00", "end": "2024-03-14T10:00:00-05:00"},
            **extra}  # fmt: skip


def _condition(cid: str, code: str, system: str = ICD10, category: str | None = None,
               **extra: Any) -> dict:  # fmt: skip
    out = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": system, "code": code}]}, **extra}  # fmt: skip
    if category:
        out["category"] = [{"coding": [{"system": CATEGORY, "code": category}]}]
    return out


def _verification(code: str) -> dict:
    system = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
    return {"coding": [{"system": system, "code": code}]}


def _diagnosis(cid: str, rank: int | None = None, use: str | None = None) -> dict:
    out: dict[str, Any] = {"condition": {"reference": f"Condition/{cid}"}}
    if rank is not None:
        out["rank"] = rank
    if use is not None:
        out["use"] = {"coding": [{"system": ROLE, "code": use}]}
    return out


def _bundle(*resources: dict) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r['id']}",
                       "resource": r} for r in resources]})  # fmt: skip


def _record(*resources: dict) -> FeatureRecord:
    mapped = map_document(_bundle(PATIENT, *resources))
    (stay,) = [m for m in mapped if m.encounter_id == "stay"]
    return stay.record


LINKED = {"encounter": {"reference": "Encounter/stay"}}


# --- principal diagnosis -----------------------------------------------------------------
def test_encounter_diagnosis_of_the_stay_comes_before_its_problem_list_entries():
    """A problem-list entry listed (and linked) before the stay's encounter diagnosis
    must not become diag_1: the encounter's own diagnosis is the principal."""
    record = _record(
        _encounter(),
        _condition("htn", "I10", category="problem-list-item", **LINKED),
        _condition("dm", "E11.65", category="encounter-diagnosis", **LINKED),
    )
    assert (record.diag_1, record.diag_2) == ("250.02", "401")
    record = _record(
        _encounter(),
        _condition("pre", "R73.03", category="problem-list-item", **LINKED),
        _condition("pn", "J18.9", category="encounter-diagnosis", **LINKED),
    )
    assert (record.diag_1, record.diag_2) == ("486", "790")


def test_billing_diagnosis_rank_one_is_principal_even_when_listed_last():
    record = _record(
        _encounter(diagnosis=[_diagnosis("cp", 1, "AD"), _diagnosis("mi", 1, "billing")]),
        _condition("cp", "R07.9"),
        _condition("mi", "I21.4"),
    )
    assert (record.diag_1, record.diag_2) == ("410", "786")


def test_discharge_diagnosis_wins_a_rank_tie_with_the_admission_diagnosis():
    record = _record(
        _encounter(diagnosis=[_diagnosis("cp", 1, "AD"), _diagnosis("hf", 1, "DD")]),
        _condition("cp", "R07.9"),
        _condition("hf", "I50.9"),
    )
    assert (record.diag_1, record.diag_2) == ("428", "786")


def test_refuted_or_erroneous_condition_in_encounter_diagnosis_is_not_a_diagnosis():
    record = _record(
        _encounter(diagnosis=[_diagnosis("mi", 1), _diagnosis("hf", 2), _diagnosis("ckd", 3)]),
        _condition("mi", "I21.4", verificationStatus=_verification("refuted")),
        _condition("hf", "I50.9"),
        _condition("ckd", "N18.3", verificationStatus=_verification("entered-in-error")),
    )
    assert (record.diag_1, record.diag_2, record.number_diagnoses) == ("428", "?", 1)


def test_refuted_condition_of_the_stay_is_not_a_diagnosis():
    record = _record(
        _encounter(),
        _condition("pe", "I26.99", category="encounter-diagnosis",
                   verificationStatus=_verification("refuted"), **LINKED),
        _condition("pn", "J18.9", category="encounter-diagnosis", **LINKED),
    )  # fmt: skip
    assert (record.diag_1, record.number_diagnoses) == ("486", 1)


# --- references --------------------------------------------------------------------------
def test_versioned_and_absolute_references_link_a_condition_to_the_stay():
    record = _record(
        _encounter(),
        _condition("hf", "I50.9", category="encounter-diagnosis",
                   encounter={"reference": "Encounter/stay/_history/2"}),
        _condition("pn", "J18.9", category="encounter-diagnosis",
                   encounter={"reference": "http://ehr.example/fhir/Encounter/stay"}),
    )  # fmt: skip
    assert (record.diag_1, record.diag_2, record.number_diagnoses) == ("428", "486", 2)


# --- medications -------------------------------------------------------------------------
def _insulin(oid: str, status: str, **extra: Any) -> dict:
    return {"resourceType": "MedicationRequest", "id": oid, "status": status, "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "106892",
                                                      "display": "Humulin 70/30"}]},
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2024-03-11",
            **extra}  # fmt: skip


def test_stopped_completed_or_erroneous_orders_of_the_stay_do_not_count():
    for status in ("entered-in-error", "cancelled", "draft"):
        record = _record(_encounter(), _insulin("ins", status, **LINKED))
        assert (record.insulin, record.diabetesMed, record.num_medications) == ("No", "No", 0)


def test_insulin_order_of_the_stay_is_on_insulin():
    record = _record(_encounter(), _insulin("ins", "active", **LINKED))
    assert (record.insulin, record.diabetesMed) == ("Steady", "Yes")


def test_chronic_insulin_stopped_before_admission_does_not_count():
    record = _record(_encounter(), _insulin("ins", "stopped", authoredOn="2023-01-01"))
    assert record.insulin == "No"


# --- SNOMED concepts of the STU3 Synthea sample (out of the R4 set the table was built on)
@pytest.mark.parametrize(
    ("concept", "icd9"),
    [("85116003", "634"),  # Miscarriage in second trimester
     ("267253006", "655"),  # Fetus with chromosomal abnormality
     ("403192003", "949"),  # Third degree burn
     ("86849004", "E950"),  # Suicidal deliberate poisoning
     ("287182007", "E953"),  # Attempted suicide - suffocation
     ("37849005", "752")],  # Congenital uterine anomaly
)  # fmt: skip
def test_snomed_concepts_unmapped_in_the_stu3_synthea_sample(concept, icd9):
    assert concept_code({"coding": [{"system": SCT, "code": concept}]}) == (icd9, "snomed")


# --- logical references and the same encounter under two ids ----------------------------
VISIT_NUMBER = {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8", "value": "V123"}


def test_reference_by_identifier_links_a_condition_to_the_stay():
    """Epic/Cerner exports reference the visit by its visit number (a logical reference)."""
    record = _record(
        _encounter(identifier=[VISIT_NUMBER]),
        _condition("hf", "I50.9", category="encounter-diagnosis",
                   encounter={"type": "Encounter", "identifier": VISIT_NUMBER}),
    )  # fmt: skip
    assert (record.diag_1, record.number_diagnoses) == ("428", 1)


def test_external_reference_falls_back_to_its_identifier():
    record = _record(
        _encounter(identifier=[VISIT_NUMBER]),
        _condition("hf", "I50.9", category="encounter-diagnosis",
                   encounter={"reference": "https://other.example/Encounter/9",
                              "identifier": VISIT_NUMBER}),
    )  # fmt: skip
    assert record.diag_1 == "428"


def test_identifier_of_another_type_or_ambiguous_does_not_link():
    record = _record(
        _encounter(identifier=[VISIT_NUMBER]),
        _condition("hf", "I50.9", category="encounter-diagnosis",
                   encounter={"type": "Patient", "identifier": VISIT_NUMBER}),
    )  # fmt: skip
    assert record.number_diagnoses == 0


def _prior(eid: str, **extra: Any) -> dict:
    period = {"start": "2024-01-01T08:00:00Z", "end": "2024-01-05T08:00:00Z"}
    return _encounter(eid, period=period, **extra)


def test_an_earlier_stay_sent_twice_under_two_ids_with_one_identifier_counts_once():
    admission = [{"system": "urn:ehr:adm", "value": "ADM-1"}]
    record = _record(_encounter(), _prior("prevA", identifier=admission),
                     _prior("prevB", identifier=admission))  # fmt: skip
    assert (record.number_inpatient, record.prior_encounters) == (1, 1)
    other = [{"system": "urn:ehr:adm", "value": "ADM-2"}]
    record = _record(_encounter(), _prior("prevA", identifier=admission),
                     _prior("prevB", identifier=other))  # fmt: skip
    assert (record.number_inpatient, record.prior_encounters) == (2, 2)


# --- partial dates and offsets -------------------------------------------------------------
def test_a_partial_admission_or_discharge_date_gives_no_length_of_stay():
    """``2024-03`` is a month, not the 1st: a 13-day stay would be invented."""
    for period in (
        {"start": "2024-03", "end": "2024-03-14"},
        {"start": "2024-03-10", "end": "2024-03"},
    ):
        mapped = map_document(_bundle(PATIENT, _encounter(period=period)))
        (stay,) = mapped
        assert stay.record.time_in_hospital == 1
        assert "time_in_hospital" in stay.missing


def test_a_partial_discharge_in_the_admission_month_is_not_impossible():
    (stay,) = map_document(
        _bundle(PATIENT, _encounter(period={"start": "2024-03-10", "end": "2024"}))
    )
    assert stay.encounter_id == "stay"


def test_offsets_are_compared_as_instants_and_days_counted_as_written():
    period = {"start": "2024-03-10T23:30:00-05:00", "end": "2024-03-12T14:00:00+09:00"}
    (stay,) = map_document(_bundle(PATIENT, _encounter(period=period)))
    assert stay.record.time_in_hospital == 2


# --- insulin against the home regimen ------------------------------------------------------
def _units(per_day: float) -> list[dict]:
    return [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
             "doseAndRate": [{"doseQuantity": {"value": per_day, "unit": "U",
                                               "system": "http://unitsofmeasure.org",
                                               "code": "[IU]"}}]}]  # fmt: skip


def test_stay_insulin_order_is_compared_with_the_running_home_order():
    """Synthea and many EHRs write no priorPrescription: the stay's insulin order at a
    higher daily dose than the order running at admission is a dose increase."""
    home = _insulin("home", "active", authoredOn="2023-01-01", dosageInstruction=_units(10))
    for units, expected, change in ((20, "Up", "Ch"), (5, "Down", "Ch"), (10, "Steady", "No")):
        stay = _insulin("new", "active", dosageInstruction=_units(units), **LINKED)
        record = _record(_encounter(), home, stay)
        assert (record.insulin, record.change, record.num_medications) == (expected, change, 1)


def test_home_order_alone_stays_steady_and_a_stay_order_without_dose_is_steady():
    home = _insulin("home", "active", authoredOn="2023-01-01", dosageInstruction=_units(10))
    assert _record(_encounter(), home).insulin == "Steady"
    record = _record(_encounter(), home, _insulin("new", "active", **LINKED))
    assert (record.insulin, record.change) == ("Steady", "No")


def test_an_order_not_to_give_insulin_or_a_mere_proposal_is_not_insulin():
    """``doNotPerform: true`` is a prohibition ("hold insulin"); a ``proposal`` (e.g. a
    decision-support suggestion) was never ordered. Neither puts the patient on insulin."""
    for extra in ({"doNotPerform": True}, {"intent": "proposal"}):
        for when in (LINKED, {"authoredOn": "2023-01-01"}):
            record = _record(_encounter(), _insulin("ins", "active", **{**when, **extra}))
            assert (record.insulin, record.diabetesMed, record.num_medications) == ("No", "No", 0)


def test_a_condition_listed_under_two_roles_is_one_diagnosis():
    """The same Condition as admission and discharge diagnosis (common in EHR exports)."""
    record = _record(
        _encounter(diagnosis=[_diagnosis("hf", 1, "AD"), _diagnosis("hf", 1, "DD"),
                              _diagnosis("dm", 2, "DD")]),
        _condition("hf", "I50.9"),
        _condition("dm", "E11.9"),
    )  # fmt: skip
    assert (record.diag_1, record.diag_2, record.number_diagnoses) == ("428", "250", 2)


def test_prediabetes_is_not_listed_with_diabetes_on_an_assembled_list():
    """ICD-10-CM R73 Excludes1 E08-E13 (ICD-9-CM 790.2 excludes 250): a coder never
    codes prediabetes next to diabetes, so a problem list still carrying the old
    prediabetes entry must not put 790 in diag_1 of a diabetic."""
    record = _record(
        _encounter(),
        _condition("pre", "714628002", SCT, onsetDateTime="2008-01-01"),
        _condition("dm", "44054006", SCT, onsetDateTime="2012-01-01"),
        _condition("htn", "38341003", SCT, onsetDateTime="2009-01-01"),
    )
    assert (record.diag_1, record.diag_2, record.number_diagnoses) == ("250", "401", 2)
    only = _record(_encounter(), _condition("pre", "714628002", SCT, onsetDateTime="2008-01-01"))
    assert only.diag_1 == "790"
