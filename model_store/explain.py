"""Turning per-column contributions into factors a clinician reads.

The model's encoded features are summed back to the dataset column they came from (a
one-hot block, a derived count), then the columns that *raise* the risk most are named
in plain clinical language with the patient's own value: "3 inpatient stays in the
prior year", not ``number_inpatient=3``; diagnoses by their ICD-9-CM title
(``fhir_mappings.codes.icd9_titles``). Contributions are reported in percentage points
of the calibrated risk. Gaps in the record (payer not recorded, a newborn code on an
adult stay) are data quality, not risk factors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from fhir_mappings.codes.dataset_ids import id_tables
from fhir_mappings.codes.icd9_titles import diagnosis_title, display_code
from readmit_core.events import Factor
from readmit_core.features import (
    DAYS_SINCE_DISCHARGE_CAP,
    FEATURE_COLUMNS,
    MEDICATION_COLUMNS,
    MISSING_CATEGORY,
    FeatureRecord,
)

TOP_FACTORS: Final = 4
MIN_CONTRIBUTION: Final = 0.01  # log-odds; smaller pushes are noise, not reasons
MIN_POINTS: Final = 0.05  # percentage points of calibrated risk, as shown ("+0.1")

CodeLabels = dict[str, dict[int, str]]
NOT_RECORDED_IDS: Final = frozenset({"NULL", "Not Available", "Not Mapped", "Unknown/Invalid"})
_DOSE_TEXT: Final = {"No": "not given", "Steady": "dose unchanged", "Up": "dose increased",
                     "Down": "dose decreased"}  # fmt: skip


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _label_count(template: str, word: str) -> Callable[[Any], str]:
    return lambda v: template.format(count=_plural(int(v), word))


_SIMPLE: Final[dict[str, Callable[[Any], str]]] = {
    "number_inpatient": _label_count("{count} in the prior year", "inpatient stay"),
    "number_emergency": _label_count("{count} in the prior year", "emergency visit"),
    "number_outpatient": _label_count("{count} in the prior year", "outpatient visit"),
    "time_in_hospital": _label_count("Length of stay {count}", "day"),
    "num_medications": _label_count("{count} during the stay", "medication"),
    "num_lab_procedures": _label_count("{count} during the stay", "lab test"),
    "num_procedures": _label_count("{count} during the stay", "procedure"),
    "number_diagnoses": _label_count("{count} recorded", "diagnosis"),
    "prior_encounters": _label_count("{count} already seen for this patient", "earlier admission"),
    "prior_days_in_hospital": _label_count("{count} in earlier admissions", "hospital day"),
    "prior_max_inpatient": lambda v: (
        f"Up to {_plural(int(v), 'inpatient stay')} a year reported at earlier admissions"
    ),
    "prior_emergency_visits": _label_count(
        "{count} before the previous admission", "emergency visit"
    ),
    "days_since_last_discharge": lambda v: (
        "No hospital stay seen in the past year"
        if int(v) >= DAYS_SINCE_DISCHARGE_CAP
        else f"Admitted {_plural(int(v), 'day')} after an earlier discharge"
    ),
}

_LAB_TEXT: Final = {
    "A1Cresult": {
        "None": "HbA1c not measured during the stay",
        "Norm": "HbA1c normal",
        ">7": "HbA1c above 7 %",
        ">8": "HbA1c above 8 %",
    },
    "max_glu_serum": {
        "None": "Serum glucose not measured",
        "Norm": "Serum glucose normal",
        ">200": "Serum glucose above 200 mg/dL",
        ">300": "Serum glucose above 300 mg/dL",
    },
}


_ID_PREFIX: Final = {
    "admission_type_id": "Admission type",
    "discharge_disposition_id": "Discharge disposition",
    "admission_source_id": "Admission source",
}
# Dataset codes that describe a newborn: on an adult stay they are a coding error.
_NEONATAL_IDS: Final[dict[str, frozenset[int]]] = {
    "admission_type_id": frozenset({4}),
    "discharge_disposition_id": frozenset({10}),
    "admission_source_id": frozenset({11, 12, 13, 14, 23, 24}),
}
_CHILD_AGES: Final = frozenset({"[0-10)", "[10-20)"})
_RANKS: Final = {"diag_1": "Primary", "diag_2": "Secondary", "diag_3": "Additional"}

NOT_APPLICABLE_TEXT: Final = (
    "30-day readmission risk does not apply: the patient died or was discharged to hospice."
)
# A score published before the explainer stage added its factors: advice waits for them
# too, since without factors it would be the band-only fallback, later withdrawn.
PENDING_TEXT: Final = (
    "The factors behind this score and the interventions they recommend are being computed; "
    "they follow shortly."
)


def _id_text(column: str, value: Any, code_labels: CodeLabels) -> str:
    return code_labels.get(column, {}).get(int(value), f"code {value}").strip()


def diagnosis_text(column: str, code: str) -> str:
    """ "Primary diagnosis: Congestive heart failure; nonhypertensive (ICD-9-CM 428)"."""
    rank = _RANKS[column]
    title = diagnosis_title(code)
    if title is None:
        return (
            f"{rank} diagnosis not recorded"
            if code == MISSING_CATEGORY
            else (f"{rank} diagnosis ICD-9-CM {code} (unknown code)")
        )
    return f"{rank} diagnosis: {title} (ICD-9-CM {display_code(code)})"


def data_quality_note(column: str, value: Any, code_labels: CodeLabels, age: str) -> str | None:
    """Why this column's value is a gap in the record rather than a fact about the patient.

    Administrative fields not recorded (payer, admission type/source, specialty,
    disposition), diagnoses not recorded, and newborn codes on an adult stay say
    something about the record, not the patient: they are reported as data quality,
    never as a risk factor.
    """
    if column in _ID_PREFIX:
        text = _id_text(column, value, code_labels)
        if text in NOT_RECORDED_IDS:
            return f"{_ID_PREFIX[column]} not recorded"
        if int(value) in _NEONATAL_IDS[column] and age not in _CHILD_AGES:
            return f"{_ID_PREFIX[column]} recorded with a newborn code ({value}) on an adult stay"
        return None
    if column in _RANKS and value == MISSING_CATEGORY:
        return f"{_RANKS[column]} diagnosis not recorded"
    if column == "payer_code" and value == MISSING_CATEGORY:
        return "Payer not recorded"
    if column == "medical_specialty" and value == MISSING_CATEGORY:
        return "Admitting specialty not recorded"
    return None


def record_data_quality(
    record: FeatureRecord | None, code_labels: CodeLabels | None = None
) -> tuple[str, ...]:
    """The data-quality notes of a stored score's inputs, in the words what-if gives.

    A streamed score carries its inputs but no notes: the page and the hand-over PDF
    derive them here, so a gap in the record is shown as a gap on every surface.
    """
    if record is None:
        return ()
    labels = code_labels if code_labels is not None else id_tables()
    values = record.columns()
    age = str(values["age"])
    notes = (data_quality_note(column, values[column], labels, age) for column in FEATURE_COLUMNS)
    return tuple(dict.fromkeys(note for note in notes if note))


def factor_label(column: str, value: Any, code_labels: CodeLabels) -> str:
    """Plain-language description of one dataset column's value for this patient.

    The one wording of a factor: the scorer's explanations carry it, and every surface
    (pages, PDF, CSV, CDS cards, FHIR RiskAssessment) shows exactly this text.
    """
    if column in _SIMPLE:
        return _SIMPLE[column](value)
    if column in _LAB_TEXT:
        return _LAB_TEXT[column].get(str(value), f"{column} {value}")
    if column in _ID_PREFIX:
        text = _id_text(column, value, code_labels)
        if text in NOT_RECORDED_IDS:
            return f"{_ID_PREFIX[column]} not recorded"
        return f"{_ID_PREFIX[column]}: {text}"
    if column in MEDICATION_COLUMNS or column.replace("_", "-") in MEDICATION_COLUMNS:
        return f"{column.replace('_', '-').capitalize()}: {_DOSE_TEXT.get(str(value), value)}"
    if column in _RANKS:
        return diagnosis_text(column, str(value))
    if column == "age":
        return f"Age {str(value).strip('[)').replace('-', ' to ')}"
    if column == "change":
        return "Diabetes medication changed" if value == "Ch" else "Diabetes medication unchanged"
    if column == "diabetesMed":
        return "On diabetes medication" if value == "Yes" else "No diabetes medication"
    if column == "medical_specialty":
        return (
            "Admitting specialty not recorded"
            if value == MISSING_CATEGORY
            else f"Admitting specialty: {value}"
        )
    if column == "payer_code":
        return "Payer not recorded" if value == MISSING_CATEGORY else f"Payer {value}"
    return f"{column.replace('_', ' ').capitalize()}: {value}"


def contribution_text(points: float) -> str:
    """A factor's contribution as every surface prints it: "+3.2 percentage points"."""
    return f"{points:+.1f} percentage points"


def factor_text(factor: Factor) -> str:
    """ "Label (+3.2 percentage points)": the one line a factor takes in text surfaces."""
    return f"{factor.label} ({contribution_text(factor.contribution)})"


def percentage_points(
    raw: float, log_odds: float, calibrate: Callable[[np.ndarray], np.ndarray]
) -> float:
    """How much this push raises the calibrated risk, in percentage points.

    The risk as scored minus the risk with this column's log-odds contribution taken
    away (through the same calibrator), so the number is on the scale the nurse sees.
    """
    margin = float(np.log(raw) - np.log1p(-raw))
    without = 1.0 / (1.0 + np.exp(-(margin - log_odds)))
    both = calibrate(np.array([raw, without], dtype=np.float64))
    return round(100.0 * float(both[0] - both[1]), 2)


@dataclass(frozen=True)
class Explanation:
    factors: tuple[Factor, ...]
    data_quality: tuple[str, ...]


def explain_rows(
    contributions: np.ndarray,
    sources: list[str],
    values: Sequence[Any],
    code_labels: CodeLabels,
    raw: np.ndarray,
    calibrate: Callable[[np.ndarray], np.ndarray],
    k: int = TOP_FACTORS,
) -> list[Explanation]:
    """Per row, the ``k`` columns that raised the risk most, and the record's data gaps.

    ``contributions`` is (rows, columns-of-``sources``) in log-odds; ``values[i]`` is row
    i's value tuple in FEATURE_COLUMNS order; ``raw`` the uncalibrated probabilities.
    Columns whose value is a gap in the record (see :func:`data_quality_note`) are never
    reported as factors.
    """
    positions = [FEATURE_COLUMNS.index(source) for source in sources]
    age_at = FEATURE_COLUMNS.index("age")
    raw = np.clip(raw, 1e-9, 1 - 1e-9)
    out: list[Explanation] = []
    for row, order in enumerate(np.argsort(-contributions, axis=1).tolist()):
        age = str(values[row][age_at])
        notes = {
            column: note
            for column, position in zip(sources, positions, strict=True)
            if (note := data_quality_note(column, values[row][position], code_labels, age))
        }
        factors: list[Factor] = []
        for index in order:
            contribution = float(contributions[row, index])
            if contribution < MIN_CONTRIBUTION or len(factors) == k:
                break
            column = sources[index]
            if column in notes:
                continue
            points = percentage_points(float(raw[row]), contribution, calibrate)
            if points < MIN_POINTS:  # a push the calibrator flattens is no reason to show
                continue
            label = factor_label(column, values[row][positions[index]], code_labels)
            factors.append(Factor(feature=column, label=label, contribution=points))
        out.append(Explanation(tuple(factors), tuple(notes.values())))
    return out
