"""FHIR's structural code systems and the codes of them this project reads or writes.

These say *what kind* of thing a resource is (an inpatient stay, a lab result, a ward),
not what the patient has. The synthesizer writes them and the readers match them, so
both import them from here: a code spelled differently in the two would make the
parity test pass on our own Bundles and the mapper miss every real one.
"""

from __future__ import annotations

from typing import Final

# Encounter.class (v3-ActCode).
ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INPATIENT_CLASS: Final = "IMP"
INPATIENT: Final = frozenset({INPATIENT_CLASS, "ACUTE", "NONAC"})
EMERGENCY: Final = frozenset({"EMER"})
OUTPATIENT: Final = frozenset({"AMB", "VR", "HH", "FLD", "SS", "OBSENC", "PRENC"})

# Encounter.diagnosis.use.
DIAGNOSIS_ROLE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/diagnosis-role"

# Observation.category.
OBSERVATION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
LABORATORY: Final = "laboratory"

# Condition.category, clinicalStatus, verificationStatus.
CONDITION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
ENCOUNTER_DIAGNOSIS: Final = "encounter-diagnosis"
PROBLEM_LIST: Final = "problem-list-item"
CONDITION_CLINICAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Location.physicalType: ward, room, bed.
LOCATION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/location-physical-type"
WARD: Final = "wa"
ROOM: Final = "ro"
BED: Final = "bd"

# Identifier.type: the medical record number.
IDENTIFIER_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
MEDICAL_RECORD_NUMBER: Final = "MR"
