"""How each FeatureRecord field is entered and validated by people and integrators.

The what-if form and ``POST /api/v1/predict`` both build their fields from this one
list, so the form and the API accept exactly the same values. Vocabularies come
from ``fhir_mappings.features.VALUE_SETS`` and the dataset's ``IDs_mapping.csv``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from fhir_mappings.codes.dataset_ids import id_tables
from fhir_mappings.features import (
    DAYS_SINCE_DISCHARGE_CAP,
    DIAGNOSIS_COLUMNS,
    FEATURE_COLUMNS,
    INTEGER_COLUMNS,
    MEDICATION_COLUMNS,
    VALUE_SETS,
    FeatureRecord,
)

CODED_ID_COLUMNS: Final = ("admission_type_id", "discharge_disposition_id", "admission_source_id")

# ICD-9-CM as the dataset codes it: 3 digits (optionally .d/.dd), V+2 digits, E+3 digits, "?".
ICD9_PATTERN: Final = re.compile(r"^(\d{3}(\.\d{1,2})?|V\d{2}(\.\d{1,2})?|E\d{3}(\.\d)?|\?)$")
PAYER_PATTERN: Final = re.compile(r"^([A-Z]{2}|\?)$")
SPECIALTY_PATTERN: Final = re.compile(r"^[A-Za-z&/\- ]{1,64}$|^\?$")

# Plausible ranges (the dataset's own ranges, widened); outside them a value is a typo.
INTEGER_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "time_in_hospital": (1, 60),
    "num_lab_procedures": (0, 300),
    "num_procedures": (0, 50),
    "num_medications": (0, 150),
    "number_outpatient": (0, 100),
    "number_emergency": (0, 100),
    "number_inpatient": (0, 50),
    "number_diagnoses": (0, 40),
    "prior_encounters": (0, 100),
    "prior_days_in_hospital": (0, 2000),
    "prior_max_inpatient": (0, 50),
    "prior_emergency_visits": (0, 200),
    "days_since_last_discharge": (0, DAYS_SINCE_DISCHARGE_CAP),
}

# The medication columns' shared vocabulary (No/Steady/Up/Down), named once in the OpenAPI schema.
MEDICATION_CHOICES: Final = VALUE_SETS[MEDICATION_COLUMNS[0]]

Kind = Literal["choice", "integer", "code"]


@dataclass(frozen=True)
class FieldSpec:
    name: str  # Python attribute of FeatureRecord
    column: str  # dataset column (hyphens kept)
    kind: Kind
    label: str
    choices: tuple[tuple[str, str], ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    pattern: re.Pattern[str] | None = None
    group: str = "Encounter"


def id_descriptions() -> dict[str, tuple[tuple[str, str], ...]]:
    """The dataset's code tables: column → ((id, "id — description"), ...)."""
    return {
        column: tuple((str(code), f"{code} — {desc}") for code, desc in table.items())
        for column, table in id_tables().items()
    }


def _group(column: str) -> str:
    if column in MEDICATION_COLUMNS or column in ("change", "diabetesMed"):
        return "Diabetes medications"
    if column in DIAGNOSIS_COLUMNS or column in ("max_glu_serum", "A1Cresult"):
        return "Diagnoses and labs"
    if column in ("race", "gender", "age", "weight"):
        return "Patient"
    return "Encounter"


def _label(column: str) -> str:
    return column.replace("_", " ").replace("-", " + ").replace("A1Cresult", "A1C result")


@lru_cache(maxsize=1)
def field_specs() -> tuple[FieldSpec, ...]:
    by_column = {(info.alias or name): name for name, info in FeatureRecord.model_fields.items()}
    ids = id_descriptions()
    specs = []
    for column in FEATURE_COLUMNS:
        name, label, group = by_column[column], _label(column), _group(column)
        if column in VALUE_SETS:
            choices = tuple((v, v) for v in VALUE_SETS[column])
            default = str(FeatureRecord.model_fields[name].default)
            if default not in VALUE_SETS[column]:  # e.g. age "?": the record's missing marker
                choices = ((default, f"{default} (unknown)"), *choices)
            specs.append(FieldSpec(name, column, "choice", label, choices=choices, group=group))
        elif column in CODED_ID_COLUMNS:
            choices = ids.get(column, ())
            specs.append(FieldSpec(name, column, "choice", label, choices=choices, group=group))
        elif column in INTEGER_COLUMNS:
            lo, hi = INTEGER_BOUNDS.get(column, (0, 1000))
            specs.append(
                FieldSpec(name, column, "integer", label, min_value=lo, max_value=hi, group=group)
            )
        else:
            pattern = {"payer_code": PAYER_PATTERN, "medical_specialty": SPECIALTY_PATTERN}.get(
                column, ICD9_PATTERN
            )
            specs.append(FieldSpec(name, column, "code", label, pattern=pattern, group=group))
    return tuple(specs)


def default_value(spec: FieldSpec) -> object:
    return FeatureRecord.model_fields[spec.name].default


def record_from_values(
    values: dict[str, object], *, encounter_id: str = "what-if"
) -> FeatureRecord:
    """A FeatureRecord from cleaned values keyed by Python attribute name."""
    data = {spec.name: values[spec.name] for spec in field_specs() if spec.name in values}
    data["encounter_id"] = encounter_id
    data["patient_nbr"] = encounter_id
    for spec in field_specs():
        if spec.column in CODED_ID_COLUMNS and spec.name in data:
            data[spec.name] = int(str(data[spec.name]))
    return FeatureRecord.model_validate(data)
