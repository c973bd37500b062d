"""Terminology tables: ICD-9 spelling, ICD-10 -> ICD-9 groups, units, NUBC, race."""

from __future__ import annotations

import pytest

from fhir_mappings.codes import diagnosis_group, nubc
from fhir_mappings.codes.icd9 import canonical_code, dataset_code
from fhir_mappings.codes.icd10 import icd10_to_icd9
from fhir_mappings.codes.loinc import glucose_band, glucose_mg_dl, hba1c_band, hba1c_percent
from fhir_mappings.codes.race_ethnicity import race_extensions, race_from_patient
from fhir_mappings.codes.wards import WARDS, ward_for


def test_icd9_dataset_spelling_round_trips_every_sample_code(dev_rows):
    codes = {row[f"diag_{k}"] for row in dev_rows for k in (1, 2, 3)} - {"?"}
    assert len(codes) > 100
    for code in codes:
        assert dataset_code(canonical_code(code)) == code


@pytest.mark.parametrize(
    ("fhir_code", "dataset"),
    [("038", "38"), ("250.00", "250"), ("250.60", "250.6"), ("250.83", "250.83"),
     ("428.0", "428"), ("V45.81", "V45"), ("E909.0", "E909"), ("25002", "250.02"),
     ("365.44", "365.44")],
)  # fmt: skip
def test_icd9_canonical_codes_take_the_dataset_spelling(fhir_code, dataset):
    assert dataset_code(fhir_code) == dataset


@pytest.mark.parametrize(
    ("icd9", "group"),
    [("428", "Circulatory"), ("785", "Circulatory"), ("459", "Circulatory"),
     ("486", "Respiratory"), ("786", "Respiratory"), ("578", "Digestive"),
     ("787", "Digestive"), ("250.83", "Diabetes"), ("250", "Diabetes"), ("820", "Injury"),
     ("996", "Injury"), ("715", "Musculoskeletal"), ("599", "Genitourinary"),
     ("788", "Genitourinary"), ("162", "Neoplasms"), ("239", "Neoplasms"), ("V45", "Other"),
     ("E909", "Other"), ("38", "Other"), ("?", "Missing"), ("789", "Other")],
)  # fmt: skip
def test_diagnosis_group_follows_the_literature(icd9, group):
    assert diagnosis_group(icd9) == group


@pytest.mark.parametrize(
    ("icd10", "icd9_group"),
    [("I50.9", "Circulatory"), ("I21.4", "Circulatory"), ("G45.9", "Circulatory"),
     ("R00.0", "Circulatory"), ("J18.9", "Respiratory"), ("J44.1", "Respiratory"),
     ("R06.02", "Respiratory"), ("K92.2", "Digestive"), ("R11.2", "Digestive"),
     ("E11.9", "Diabetes"), ("E10.65", "Diabetes"), ("E13.22", "Diabetes"),
     ("S72.001A", "Injury"), ("T82.7XXA", "Injury"), ("M17.11", "Musculoskeletal"),
     ("M54.5", "Musculoskeletal"), ("N39.0", "Genitourinary"), ("N18.6", "Genitourinary"),
     ("R33.9", "Genitourinary"), ("C34.90", "Neoplasms"), ("D49.2", "Neoplasms"),
     ("A41.9", "Other"), ("Z79.4", "Other"), ("F32.9", "Other"), ("W19.XXXA", "Other")],
)  # fmt: skip
def test_icd10_codes_land_in_the_same_group_as_their_icd9_equivalent(icd10, icd9_group):
    assert diagnosis_group(icd10_to_icd9(icd10)) == icd9_group


@pytest.mark.parametrize(
    ("icd10", "icd9"),
    [("I50.9", "428"), ("I48.91", "427"), ("I25.10", "414"), ("E11.9", "250"),
     ("E10.9", "250.01"), ("E11.65", "250.02"), ("E11.22", "250.4"), ("E11.40", "250.6"),
     ("N17.9", "584"), ("J96.01", "518"), ("A41.9", "38"), ("E87.1", "276")],
)  # fmt: skip
def test_icd10_maps_to_the_frequent_dataset_categories(icd10, icd9):
    assert icd10_to_icd9(icd10) == icd9


def test_icd10_rejects_non_codes():
    with pytest.raises(ValueError, match="ICD-10"):
        icd10_to_icd9("123")


def test_glucose_units_convert_with_the_molar_mass_of_glucose():
    assert glucose_mg_dl(10.0, "mmol/L") == pytest.approx(180.156)
    assert glucose_mg_dl(150, "mg/dL") == 150
    assert glucose_mg_dl(1, "kg") is None
    assert [glucose_band(v) for v in (200, 200.1, 300, 301)] == ["Norm", ">200", ">200", ">300"]


def test_hba1c_ifcc_converts_with_the_master_equation():
    assert hba1c_percent(53, "mmol/mol") == pytest.approx(0.09148 * 53 + 2.152)
    assert hba1c_percent(6.5, "%") == 6.5
    assert [hba1c_band(v) for v in (7.0, 7.01, 8.0, 8.1)] == ["Norm", ">7", ">7", ">8"]


@pytest.mark.parametrize(
    ("ids", "to_std", "std", "project", "readers"),
    [
        (range(1, 9), nubc.ADMISSION_TYPE_TO_NUBC, nubc.NUBC_PRIORITY_SYSTEM,
         "https://readmit.example.org/fhir/CodeSystem/uci-admission-type",
         nubc.ADMISSION_TYPE_READERS),
        (range(1, 27), nubc.ADMISSION_SOURCE_TO_NUBC, nubc.NUBC_POINT_OF_ORIGIN_SYSTEM,
         "https://readmit.example.org/fhir/CodeSystem/uci-admission-source",
         nubc.ADMISSION_SOURCE_READERS),
        (range(1, 31), nubc.DISCHARGE_TO_NUBC, nubc.NUBC_DISCHARGE_SYSTEM,
         "https://readmit.example.org/fhir/CodeSystem/uci-discharge-disposition",
         nubc.DISCHARGE_READERS),
    ],
)  # fmt: skip
def test_every_administrative_id_round_trips(ids, to_std, std, project, readers):
    for value in ids:
        coding = nubc.coding_for(value, to_std, std, project)
        assert nubc.read_code([coding], readers) == value


def test_standard_hl7_codes_are_read_too():
    assert (
        nubc.read_code(
            [{"system": nubc.ACT_PRIORITY_SYSTEM, "code": "EM"}], nubc.ADMISSION_TYPE_READERS
        )
        == 1
    )
    assert (
        nubc.read_code(
            [{"system": nubc.HL7_DISCHARGE_SYSTEM, "code": "snf"}], nubc.DISCHARGE_READERS
        )
        == 3
    )
    assert nubc.read_code([{"system": "x", "code": "1"}], nubc.DISCHARGE_READERS) is None


@pytest.mark.parametrize("race", ["Caucasian", "AfricanAmerican", "Asian", "Hispanic", "Other"])
def test_race_round_trips_through_us_core_extensions(race):
    assert race_from_patient({"extension": race_extensions(race)}) == race


def test_absent_race_is_none_and_multiple_categories_are_other():
    assert race_from_patient({}) is None
    both = race_extensions("Caucasian")[:1] + race_extensions("Asian")[:1]
    merged = {"url": both[0]["url"], "extension": both[0]["extension"] + both[1]["extension"]}
    assert race_from_patient({"extension": [merged]}) == "Other"


def test_wards_are_stable_and_assigned_from_specialty():
    assert [w.id for w in WARDS] == [f"ward-{w.code.lower()}" for w in WARDS]
    assert ward_for("Cardiology", "[50-60)").code == "CARD"
    assert ward_for("Pediatrics-Endocrinology", "[0-10)").code == "PEDS"
    assert ward_for("?", "[80-90)").code == "GERI"
    assert ward_for("InternalMedicine", "[40-50)").code == "MED"
