"""How each FeatureRecord field is entered and validated by people and integrators.

The what-if form and ``POST /api/v1/predict`` both build their fields from this one
list, so the form and the API accept exactly the same values and refuse the same
records. Vocabularies come from ``readmit_core.features.VALUE_SETS`` and the dataset's
``IDs_mapping.csv``; diagnoses are checked against ICD-9-CM through
``fhir_mappings.codes`` and stored in the dataset's spelling (``038`` -> ``38``), as the
FHIR mapper stores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from fhir_mappings.codes.dataset_ids import id_tables
from fhir_mappings.codes.icd9 import dataset_code
from fhir_mappings.codes.icd9_titles import is_known_code
from model_store.explain import NOT_RECORDED_IDS
from readmit_core.errors import ReadmitError
from readmit_core.features import (
    CODED_ID_COLUMNS,
    DAYS_SINCE_DISCHARGE_CAP,
    DIAGNOSIS_COLUMNS,
    FEATURE_COLUMNS,
    HISTORY_COLUMNS,
    INTEGER_COLUMNS,
    MEDICATION_COLUMNS,
    MISSING_CATEGORY,
    VALUE_SETS,
    FeatureRecord,
)

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

Kind = Literal["choice", "integer", "code", "diagnosis"]


class DiagnosisCodeError(ReadmitError, ValueError):
    """Not an ICD-9-CM diagnosis code or category; ``code`` is what was entered."""

    status = 400
    issue_code = "code-invalid"

    def __init__(self, code: str) -> None:
        super().__init__(f"{code!r} is not an ICD-9-CM diagnosis code (e.g. 428, 250.02, V58).")
        self.code = code


def diagnosis_input(value: str) -> str:
    """An entered ICD-9-CM code in the dataset's spelling; ``?``/empty for not recorded."""
    value = value.strip().upper()
    if value in ("", MISSING_CATEGORY):
        return MISSING_CATEGORY
    if not is_known_code(value):
        raise DiagnosisCodeError(value)
    return dataset_code(value)


# Clinical label and unit of each column; anything not listed keeps the dataset's name.
LABELS: Final[dict[str, tuple[str, str]]] = {
    "race": ("Race", ""),
    "gender": ("Sex", ""),
    "age": ("Age band", "years"),
    "weight": ("Weight band", "lb"),
    "admission_type_id": ("Admission type", ""),
    "discharge_disposition_id": ("Discharge disposition", ""),
    "admission_source_id": ("Admission source", ""),
    "time_in_hospital": ("Length of stay", "days"),
    "payer_code": ("Payer code", ""),
    "medical_specialty": ("Admitting specialty", ""),
    "num_lab_procedures": ("Lab tests during the stay", "tests"),
    "num_procedures": ("Procedures (non-lab) during the stay", "procedures"),
    "num_medications": ("Distinct medications given", "medications"),
    "number_outpatient": ("Outpatient visits, prior year", "visits"),
    "number_emergency": ("Emergency visits, prior year", "visits"),
    "number_inpatient": ("Inpatient stays, prior year", "stays"),
    "diag_1": ("Primary diagnosis", "ICD-9-CM"),
    "diag_2": ("Secondary diagnosis", "ICD-9-CM"),
    "diag_3": ("Additional diagnosis", "ICD-9-CM"),
    "number_diagnoses": ("Diagnoses recorded", "diagnoses"),
    "max_glu_serum": ("Maximum serum glucose", "mg/dL"),
    "A1Cresult": ("HbA1c result", "%"),
    "change": ("Diabetes medication changed", ""),
    "diabetesMed": ("Any diabetes medication", ""),
    "prior_encounters": ("Earlier admissions seen", "admissions"),
    "prior_days_in_hospital": ("Days in earlier admissions", "days"),
    "prior_max_inpatient": ("Most inpatient stays reported earlier", "stays"),
    "prior_emergency_visits": ("Emergency visits before the last admission", "visits"),
    "days_since_last_discharge": ("Days since the last discharge", "days"),
}
_CHOICE_TEXT: Final[dict[str, str]] = {
    "?": "Not recorded",
    "None": "Not measured",
    "Norm": "Normal",
    "No": "No",
    "Steady": "Dose unchanged",
    "Up": "Dose increased",
    "Down": "Dose decreased",
    "Ch": "Changed",
    "Yes": "Yes",
    "Unknown/Invalid": "Unknown",
    "AfricanAmerican": "African American",
}
# The typical adult stay of the development data (89,034 readmittable stays of
# data/diabetic_data_dev.csv.gz: medians of the counts, modes of the categories), offered
# as the form's starting values. Age and the primary diagnosis have no default: they are
# the minimum a score needs (MINIMUM_INFORMATION).
POPULATION_DEFAULTS: Final[dict[str, object]] = {
    "time_in_hospital": 4,
    "num_lab_procedures": 44,
    "num_procedures": 1,
    "num_medications": 15,
    "number_diagnoses": 8,
    "admission_type_id": 1,
    "admission_source_id": 7,
    "discharge_disposition_id": 1,
    "diabetesMed": "Yes",
}
# Fields a record must carry to be scored honestly: without them the model scores the
# population average with confidence (an empty record scored 1 % "low").
MINIMUM_INFORMATION: Final = ("age", "diag_1", "number_diagnoses")


class InsufficientInformation(ReadmitError, ValueError):
    """The record lacks what an honest score needs; ``fields`` maps column -> reason."""

    status = 422
    issue_code = "incomplete"

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("too little information to score: " + ", ".join(fields))
        self.fields = fields


def check_minimum_information(record: FeatureRecord) -> None:
    """Refuse a record without age, primary diagnosis and a diagnosis count."""
    missing: dict[str, str] = {}
    if record.age == MISSING_CATEGORY:
        missing["age"] = "Enter the age band: the risk differs greatly by age."
    if record.diag_1 == MISSING_CATEGORY:
        missing["diag_1"] = "Enter the primary diagnosis (ICD-9-CM)."
    if record.number_diagnoses < 1:
        missing["number_diagnoses"] = "At least the primary diagnosis is recorded (1 or more)."
    if missing:
        raise InsufficientInformation(missing)


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
    group: str = "This stay"
    unit: str = ""


def id_descriptions() -> dict[str, tuple[tuple[str, str], ...]]:
    """The dataset's code tables: column → ((id, "id — description"), ...)."""
    return {
        column: tuple(
            (str(code), "Not recorded" if desc.strip() in NOT_RECORDED_IDS else desc.strip())
            for code, desc in table.items()
        )
        for column, table in id_tables().items()
    }


def _group(column: str) -> str:
    if column in MEDICATION_COLUMNS or column in ("change", "diabetesMed"):
        return "Diabetes medications"
    if column in DIAGNOSIS_COLUMNS or column == "number_diagnoses":
        return "Diagnoses"
    if column in ("max_glu_serum", "A1Cresult"):
        return "Laboratory results"
    if column in ("race", "gender", "age", "weight"):
        return "Patient"
    if column in CODED_ID_COLUMNS or column in ("payer_code", "medical_specialty"):
        return "Admission and discharge"
    if column in HISTORY_COLUMNS or column.startswith("number_"):
        return "Earlier hospital use"
    return "This stay"


def _label(column: str) -> str:
    if column in LABELS:
        return LABELS[column][0]
    return column.replace("_", " ").replace("-", " + ").capitalize()


def _unit(column: str) -> str:
    return LABELS.get(column, ("", ""))[1]


def _choice_text(column: str, value: str) -> str:
    if column == "age" and value.startswith("["):
        low, high = value.strip("[)").split("-")
        return f"{low} to {int(high) - 1} years"
    if column == "weight" and value.startswith("["):
        return value.strip("[)").replace("-", " to ") + " lb"
    return _CHOICE_TEXT.get(value, value)


@lru_cache(maxsize=1)
def field_specs() -> tuple[FieldSpec, ...]:
    by_column = {(info.alias or name): name for name, info in FeatureRecord.model_fields.items()}
    ids = id_descriptions()
    specs = []
    for column in FEATURE_COLUMNS:
        name, label = by_column[column], _label(column)
        group, unit = _group(column), _unit(column)
        if column in VALUE_SETS:
            choices = tuple((v, _choice_text(column, v)) for v in VALUE_SETS[column])
            default = str(FeatureRecord.model_fields[name].default)
            if default not in VALUE_SETS[column]:  # e.g. age "?": the record's missing marker
                choices = ((default, "Not recorded"), *choices)
            specs.append(
                FieldSpec(name, column, "choice", label, choices=choices, group=group, unit=unit)
            )
        elif column in CODED_ID_COLUMNS:
            choices = ids.get(column, ())
            specs.append(
                FieldSpec(name, column, "choice", label, choices=choices, group=group, unit=unit)
            )
        elif column in INTEGER_COLUMNS:
            lo, hi = INTEGER_BOUNDS.get(column, (0, 1000))
            specs.append(
                FieldSpec(
                    name,
                    column,
                    "integer",
                    label,
                    min_value=lo,
                    max_value=hi,
                    group=group,
                    unit=unit,
                )
            )
        elif column in DIAGNOSIS_COLUMNS:
            specs.append(FieldSpec(name, column, "diagnosis", label, group=group, unit=unit))
        else:
            pattern = {"payer_code": PAYER_PATTERN, "medical_specialty": SPECIALTY_PATTERN}[column]
            specs.append(
                FieldSpec(name, column, "code", label, pattern=pattern, group=group, unit=unit)
            )
    return tuple(specs)


def default_value(spec: FieldSpec) -> object:
    """The API's value for an omitted field: the record's own missing marker."""
    return FeatureRecord.model_fields[spec.name].default


def form_initial(spec: FieldSpec) -> object:
    """The form's starting value: the population's typical stay where there is one."""
    return POPULATION_DEFAULTS.get(spec.column, default_value(spec))


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
