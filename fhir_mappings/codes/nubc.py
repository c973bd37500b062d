"""Admission type, admission source and discharge disposition: dataset ids <-> FHIR codes.

Standard systems first (NUBC UB-04 code sets as published in HL7 Terminology, the
HL7 admit-source / discharge-disposition code systems, v3 ActPriority); dataset ids
without a standard equivalent use the project CodeSystems. The synthesizer writes
exactly one coding per element: the standard code when it maps back to exactly that
id, else the project code, so parity exercises the standard tables.
"""

from __future__ import annotations

from typing import Final

from fhir_mappings.codes.project_codesystems import (
    ADMISSION_SOURCE_SYSTEM,
    ADMISSION_TYPE_SYSTEM,
    DISCHARGE_DISPOSITION_SYSTEM,
)

NUBC_PRIORITY_SYSTEM: Final = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit"
NUBC_POINT_OF_ORIGIN_SYSTEM: Final = "https://www.nubc.org/CodeSystem/PointOfOrigin"
NUBC_DISCHARGE_SYSTEM: Final = "https://www.nubc.org/CodeSystem/PatDischargeStatus"
ACT_PRIORITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
HL7_ADMIT_SOURCE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/admit-source"
HL7_DISCHARGE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/discharge-disposition"

# Missing values of the dataset (its "NULL" ids): the element is absent.
ADMISSION_TYPE_MISSING: Final = 6
ADMISSION_SOURCE_MISSING: Final = 17
DISCHARGE_MISSING: Final = 18

# --- admission_type_id --------------------------------------------------------------
ADMISSION_TYPE_TO_NUBC: Final[dict[int, str]] = {1: "1", 2: "2", 3: "3", 4: "4", 7: "5", 5: "9"}
ADMISSION_TYPE_FROM_NUBC: Final = {v: k for k, v in ADMISSION_TYPE_TO_NUBC.items()}
ADMISSION_TYPE_FROM_ACT_PRIORITY: Final[dict[str, int]] = {"EM": 1, "UR": 2, "EL": 3}
ADMISSION_TYPE_PROJECT: Final = frozenset({8})  # "Not Mapped"

# --- admission_source_id ------------------------------------------------------------
ADMISSION_SOURCE_TO_NUBC: Final[dict[int, str]] = {
    1: "1", 2: "2", 3: "3", 4: "4", 5: "5", 6: "6", 7: "7", 8: "8", 9: "9",
    10: "A", 18: "B", 19: "C", 22: "D", 25: "E", 26: "F",
}  # fmt: skip
ADMISSION_SOURCE_FROM_NUBC: Final = {v: k for k, v in ADMISSION_SOURCE_TO_NUBC.items()}
# Newborn codes (old UB-92 newborn set) and duplicates of "not available" have no
# unambiguous NUBC point-of-origin code today.
ADMISSION_SOURCE_PROJECT: Final = frozenset({11, 12, 13, 14, 15, 20, 21, 23, 24})
ADMISSION_SOURCE_FROM_HL7: Final[dict[str, int]] = {
    "gp": 1, "mp": 1, "outp": 2, "hosp-trans": 4, "nursing": 5, "psych": 6, "rehab": 6,
    "emd": 7, "born": 23, "other": 6,
}  # fmt: skip

# --- discharge_disposition_id ------------------------------------------------------
DISCHARGE_TO_NUBC: Final[dict[int, str]] = {
    1: "01", 2: "02", 3: "03", 4: "04", 5: "05", 6: "06", 7: "07", 8: "08", 9: "09",
    11: "20", 12: "30", 13: "50", 14: "51", 15: "61", 19: "40", 20: "41", 21: "42",
    22: "62", 23: "63", 24: "64", 27: "43", 28: "65", 29: "66", 30: "70",
}  # fmt: skip
DISCHARGE_FROM_NUBC: Final = {v: k for k, v in DISCHARGE_TO_NUBC.items()}
DISCHARGE_PROJECT: Final = frozenset({10, 16, 17, 25, 26})
DISCHARGE_FROM_HL7: Final[dict[str, int]] = {
    "home": 1, "alt-home": 1, "other-hcf": 5, "hosp": 13, "long": 23, "aadvice": 7,
    "exp": 11, "psy": 28, "rehab": 22, "snf": 3, "oth": 30,
}  # fmt: skip

# Which (system -> code -> id) tables the mapper reads, in order of preference.
ADMISSION_TYPE_READERS: Final[tuple[tuple[str, dict[str, int]], ...]] = (
    (ADMISSION_TYPE_SYSTEM, {str(i): i for i in range(1, 9)}),
    (NUBC_PRIORITY_SYSTEM, ADMISSION_TYPE_FROM_NUBC),
    (ACT_PRIORITY_SYSTEM, ADMISSION_TYPE_FROM_ACT_PRIORITY),
)
ADMISSION_SOURCE_READERS: Final[tuple[tuple[str, dict[str, int]], ...]] = (
    (ADMISSION_SOURCE_SYSTEM, {str(i): i for i in range(1, 27)}),
    (NUBC_POINT_OF_ORIGIN_SYSTEM, ADMISSION_SOURCE_FROM_NUBC),
    (HL7_ADMIT_SOURCE_SYSTEM, ADMISSION_SOURCE_FROM_HL7),
)
DISCHARGE_READERS: Final[tuple[tuple[str, dict[str, int]], ...]] = (
    (DISCHARGE_DISPOSITION_SYSTEM, {str(i): i for i in range(1, 31)}),
    (NUBC_DISCHARGE_SYSTEM, DISCHARGE_FROM_NUBC),
    (HL7_DISCHARGE_SYSTEM, DISCHARGE_FROM_HL7),
)


def coding_for(value: int, standard: dict[int, str], std_system: str, project: str) -> dict:
    """The one coding the synthesizer writes for a dataset id."""
    if value in standard:
        return {"system": std_system, "code": standard[value]}
    return {"system": project, "code": str(value)}


def read_code(codings: list[dict], readers: tuple[tuple[str, dict[str, int]], ...]) -> int | None:
    """Dataset id from a CodeableConcept's codings (first reader that recognises one).

    ``http://`` and ``https://`` spellings of the NUBC URLs are both accepted.
    """
    for system, table in readers:
        alt = system.replace("https://", "http://", 1)
        for coding in codings:
            if coding.get("system") in (system, alt):
                hit = table.get(str(coding.get("code", "")).strip())
                if hit is not None:
                    return hit
    return None
