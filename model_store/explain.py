"""Turning per-column contributions into factors a clinician reads.

The model's encoded features are summed back to the dataset column they came from (a
one-hot block, a derived count), then the columns that *raise* the risk most are named
in plain clinical language with the patient's own value: "3 inpatient stays in the
prior year", not ``number_inpatient=3``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np

from fhir_mappings.codes.dataset_ids import ID_COLUMNS
from fhir_mappings.features import (
    DAYS_SINCE_DISCHARGE_CAP,
    FEATURE_COLUMNS,
    MEDICATION_COLUMNS,
    MISSING_CATEGORY,
)
from readmit.events import Factor

TOP_FACTORS: Final = 4
MIN_CONTRIBUTION: Final = 0.01  # log-odds; smaller pushes are noise, not reasons

CodeLabels = dict[str, dict[int, str]]
_NOT_RECORDED: Final = frozenset({"NULL", "Not Available", "Not Mapped", "Unknown/Invalid"})
_ID_SECTIONS: Final = ID_COLUMNS


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


def factor_label(column: str, value: Any, code_labels: CodeLabels) -> str:
    """Plain-language description of one dataset column's value for this patient."""
    if column in _SIMPLE:
        return _SIMPLE[column](value)
    if column in _LAB_TEXT:
        return _LAB_TEXT[column].get(str(value), f"{column} {value}")
    if column in _ID_SECTIONS:
        text = code_labels.get(column, {}).get(int(value), f"code {value}").strip()
        prefix = {
            "admission_type_id": "Admission type",
            "discharge_disposition_id": "Discharge disposition",
            "admission_source_id": "Admission source",
        }[column]
        if text in _NOT_RECORDED:
            return f"{prefix} not recorded"
        return f"{prefix}: {text}"
    if column in MEDICATION_COLUMNS or column.replace("_", "-") in MEDICATION_COLUMNS:
        return f"{column.replace('_', '-')}: {str(value).lower()}"
    if column in ("diag_1", "diag_2", "diag_3"):
        from model_store.encoding import diagnosis_group

        rank = {"diag_1": "Primary", "diag_2": "Secondary", "diag_3": "Additional"}[column]
        return f"{rank} diagnosis {value} ({diagnosis_group(str(value))})"
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


def top_factors(
    contributions: np.ndarray,
    sources: list[str],
    values: Sequence[Any],
    code_labels: CodeLabels,
    k: int = TOP_FACTORS,
) -> list[tuple[Factor, ...]]:
    """Per row, the ``k`` columns that raised the risk most, labelled for a clinician.

    ``contributions`` is (rows, columns-of-``sources``); ``values[i]`` is row i's value
    tuple in FEATURE_COLUMNS order (the patient's own values go into the labels).
    """
    positions = [FEATURE_COLUMNS.index(source) for source in sources]
    k = min(k, contributions.shape[1])
    top = np.argsort(-contributions, axis=1)[:, :k]
    out: list[tuple[Factor, ...]] = []
    for row, order in enumerate(top.tolist()):
        factors = []
        for index in order:
            contribution = float(contributions[row, index])
            if contribution < MIN_CONTRIBUTION:
                break
            column = sources[index]
            factors.append(
                Factor(
                    feature=column,
                    label=factor_label(column, values[row][positions[index]], code_labels),
                    contribution=round(contribution, 4),
                )
            )
        out.append(tuple(factors))
    return out
