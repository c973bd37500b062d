"""The one definition of the model's input: the UCI "Diabetes 130-US hospitals" columns.

Training reads the dataset's CSV, serving maps FHIR resources; both end in a
``FeatureRecord`` with exactly these columns, coded exactly as the dataset codes
them (including its own missing markers ``?``, ``None`` and ``No``). Anything that
turns records into numbers (``model_store``) imports the lists below, so a column
added here is added everywhere at once, and a column can never mean two things.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

FEATURE_SET_NAME: Final = "uci-diabetes-130-v1"

# The dataset's missing markers, by kind of column.
MISSING_CATEGORY: Final = "?"
MISSING_LAB: Final = "None"
MEDICATION_NOT_GIVEN: Final = "No"

IDENTIFIER_COLUMNS: Final = ("encounter_id", "patient_nbr")
TARGET_COLUMN: Final = "readmitted"
POSITIVE_TARGET: Final = "<30"

DEMOGRAPHIC_COLUMNS: Final = ("race", "gender", "age", "weight")
# The administrative columns holding IDs_mapping.csv ids (integers with a NULL id each).
CODED_ID_COLUMNS: Final = ("admission_type_id", "discharge_disposition_id", "admission_source_id")
ADMINISTRATIVE_COLUMNS: Final = (*CODED_ID_COLUMNS, "payer_code", "medical_specialty")
COUNT_COLUMNS: Final = (
    "time_in_hospital",
    "num_lab_procedures",
    "num_procedures",
    "num_medications",
    "number_outpatient",
    "number_emergency",
    "number_inpatient",
    "number_diagnoses",
)
DIAGNOSIS_COLUMNS: Final = ("diag_1", "diag_2", "diag_3")
LAB_COLUMNS: Final = ("max_glu_serum", "A1Cresult")

# The 23 diabetes medication columns, in the dataset's order. Values: No/Steady/Up/Down.
MEDICATION_COLUMNS: Final = (
    "metformin",
    "repaglinide",
    "nateglinide",
    "chlorpropamide",
    "glimepiride",
    "acetohexamide",
    "glipizide",
    "glyburide",
    "tolbutamide",
    "pioglitazone",
    "rosiglitazone",
    "acarbose",
    "miglitol",
    "troglitazone",
    "tolazamide",
    "examide",
    "citoglipton",
    "insulin",
    "glyburide-metformin",
    "glipizide-metformin",
    "glimepiride-pioglitazone",
    "metformin-rosiglitazone",
    "metformin-pioglitazone",
)
MEDICATION_SUMMARY_COLUMNS: Final = ("change", "diabetesMed")

# Label-free facts about the patient's own *earlier* index encounters, known at scoring
# time: in training, from the dataset rows of the same patient with a smaller
# encounter_id; in serving, from the encounters the system has already seen for the
# patient. Both are computed by ``fhir_mappings.history``.
HISTORY_COLUMNS: Final = (
    "prior_encounters",
    "prior_days_in_hospital",
    "prior_max_inpatient",
    "prior_emergency_visits",
    "days_since_last_discharge",
)

# ``days_since_last_discharge`` is capped here, and takes this value when no earlier stay
# is known: "a year or more ago" and "never seen" carry the same (low) recency risk, and
# the serving history forgets a patient about 400 days after their last stay.
DAYS_SINCE_DISCHARGE_CAP: Final = 365

# Closed vocabularies of the dataset (value sets); anything else is "unknown" to the model.
VALUE_SETS: Final[dict[str, tuple[str, ...]]] = {
    "race": ("Caucasian", "AfricanAmerican", "Hispanic", "Asian", "Other", MISSING_CATEGORY),
    "gender": ("Female", "Male", "Unknown/Invalid"),
    "age": tuple(f"[{d}-{d + 10})" for d in range(0, 100, 10)),
    "weight": (
        MISSING_CATEGORY,
        *(f"[{w}-{w + 25})" for w in range(0, 200, 25)),
        ">200",
    ),
    "max_glu_serum": (MISSING_LAB, "Norm", ">200", ">300"),
    "A1Cresult": (MISSING_LAB, "Norm", ">7", ">8"),
    "change": ("No", "Ch"),
    "diabetesMed": ("No", "Yes"),
    **{m: (MEDICATION_NOT_GIVEN, "Steady", "Up", "Down") for m in MEDICATION_COLUMNS},
}

# Inclusive bounds of the integer columns a record may carry. Wider than the dataset's
# observed ranges (stays of 1-14 days there) so that no real FHIR discharge is refused,
# narrow enough to catch a producer's bug (negative counts, units mixed up, overflow).
# The three administrative ids are checked against IDs_mapping.csv instead.
INTEGER_RANGES: Final[dict[str, tuple[int, int]]] = {
    "time_in_hospital": (1, 365),
    "num_lab_procedures": (0, 5000),
    "num_procedures": (0, 500),
    "num_medications": (0, 1000),
    "number_outpatient": (0, 1000),
    "number_emergency": (0, 1000),
    "number_inpatient": (0, 1000),
    "number_diagnoses": (0, 100),
    "prior_encounters": (0, 10_000),
    "prior_days_in_hospital": (0, 100_000),
    "prior_max_inpatient": (0, 1000),
    "prior_emergency_visits": (0, 100_000),
    "days_since_last_discharge": (0, DAYS_SINCE_DISCHARGE_CAP),
}

# Discharge dispositions after which a 30-day readmission cannot happen (death, hospice):
# excluded from training and evaluation, and scored with a flag at serving time.
NON_READMITTABLE_DISPOSITIONS: Final = frozenset({11, 13, 14, 19, 20, 21})


class FeatureRecord(BaseModel):
    """One index inpatient encounter, coded as a row of the UCI dataset.

    Field names follow the dataset; the five hyphenated medication columns use
    underscores in Python and the dataset's names (aliases) on the wire, so a record
    serialises ``by_alias`` to exactly a CSV row's keys.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    encounter_id: str
    patient_nbr: str
    race: str = MISSING_CATEGORY
    gender: str = "Unknown/Invalid"
    age: str = MISSING_CATEGORY
    weight: str = MISSING_CATEGORY
    admission_type_id: int = 6  # NULL
    discharge_disposition_id: int = 18  # NULL
    admission_source_id: int = 17  # NULL
    time_in_hospital: int = 1
    payer_code: str = MISSING_CATEGORY
    medical_specialty: str = MISSING_CATEGORY
    num_lab_procedures: int = 0
    num_procedures: int = 0
    num_medications: int = 0
    number_outpatient: int = 0
    number_emergency: int = 0
    number_inpatient: int = 0
    diag_1: str = MISSING_CATEGORY
    diag_2: str = MISSING_CATEGORY
    diag_3: str = MISSING_CATEGORY
    number_diagnoses: int = 0
    max_glu_serum: str = MISSING_LAB
    A1Cresult: str = MISSING_LAB
    metformin: str = MEDICATION_NOT_GIVEN
    repaglinide: str = MEDICATION_NOT_GIVEN
    nateglinide: str = MEDICATION_NOT_GIVEN
    chlorpropamide: str = MEDICATION_NOT_GIVEN
    glimepiride: str = MEDICATION_NOT_GIVEN
    acetohexamide: str = MEDICATION_NOT_GIVEN
    glipizide: str = MEDICATION_NOT_GIVEN
    glyburide: str = MEDICATION_NOT_GIVEN
    tolbutamide: str = MEDICATION_NOT_GIVEN
    pioglitazone: str = MEDICATION_NOT_GIVEN
    rosiglitazone: str = MEDICATION_NOT_GIVEN
    acarbose: str = MEDICATION_NOT_GIVEN
    miglitol: str = MEDICATION_NOT_GIVEN
    troglitazone: str = MEDICATION_NOT_GIVEN
    tolazamide: str = MEDICATION_NOT_GIVEN
    examide: str = MEDICATION_NOT_GIVEN
    citoglipton: str = MEDICATION_NOT_GIVEN
    insulin: str = MEDICATION_NOT_GIVEN
    glyburide_metformin: str = Field(MEDICATION_NOT_GIVEN, alias="glyburide-metformin")
    glipizide_metformin: str = Field(MEDICATION_NOT_GIVEN, alias="glipizide-metformin")
    glimepiride_pioglitazone: str = Field(MEDICATION_NOT_GIVEN, alias="glimepiride-pioglitazone")
    metformin_rosiglitazone: str = Field(MEDICATION_NOT_GIVEN, alias="metformin-rosiglitazone")
    metformin_pioglitazone: str = Field(MEDICATION_NOT_GIVEN, alias="metformin-pioglitazone")
    change: str = "No"
    diabetesMed: str = "No"
    prior_encounters: int = 0
    prior_days_in_hospital: int = 0
    prior_max_inpatient: int = 0
    prior_emergency_visits: int = 0
    days_since_last_discharge: int = Field(
        DAYS_SINCE_DISCHARGE_CAP, ge=0, le=DAYS_SINCE_DISCHARGE_CAP
    )

    def columns(self) -> dict[str, Any]:
        """The record as a dataset row: dataset column names (hyphens kept) to values."""
        return self.model_dump(by_alias=True)


# The column lists below derive from the record's declaration, so adding a field to
# FeatureRecord adds the column everywhere; the groups above say what each column *is*.
_FIELDS: Final = {
    field.alias or name: field
    for name, field in FeatureRecord.model_fields.items()
    if name not in IDENTIFIER_COLUMNS
}

# Every model input column, in the dataset's order (history last).
FEATURE_COLUMNS: Final = tuple(_FIELDS)

# The dataset's columns in file order (identifiers, features without history, target).
DATASET_COLUMNS: Final = (
    IDENTIFIER_COLUMNS
    + tuple(c for c in FEATURE_COLUMNS if c not in HISTORY_COLUMNS)
    + (TARGET_COLUMN,)
)

INTEGER_COLUMNS: Final = frozenset(c for c, field in _FIELDS.items() if field.annotation is int)


def _check_groups() -> None:
    """Every record column belongs to exactly one group: a column added to the record
    without a role (or a group naming a column the record lacks) fails at import."""
    groups = (
        DEMOGRAPHIC_COLUMNS,
        ADMINISTRATIVE_COLUMNS,
        COUNT_COLUMNS,
        DIAGNOSIS_COLUMNS,
        LAB_COLUMNS,
        MEDICATION_COLUMNS,
        MEDICATION_SUMMARY_COLUMNS,
        HISTORY_COLUMNS,
    )
    grouped = [c for group in groups for c in group]
    if sorted(grouped) != sorted(FEATURE_COLUMNS):
        raise RuntimeError(
            f"feature groups and FeatureRecord disagree: {grouped} vs {FEATURE_COLUMNS}"
        )


_check_groups()
