"""The LACE index (van Walraven et al. 2010, CMAJ 182:551) from the dataset's columns.

A clinical baseline the models must beat. LACE = L + A + C + E:

* **L**ength of stay (days): 1->1, 2->2, 3->3, 4 to 6->4, 7 to 13->5, >=14->7 (0 for <1 day);
* **A**cuity: 3 if the admission was emergent (admission type 1 "Emergency" or 7
  "Trauma Center", or admission source 7 "Emergency Room"), else 0;
* **C**omorbidity: Charlson index from the three recorded ICD-9 codes (Deyo/Quan
  categories and weights), scored 0,1,2,3 and 5 for ≥4;
* **E**mergency visits in the previous 6 months — the data has only "in the prior
  year", used as the closest proxy, capped at 4.

Only three diagnoses are recorded, so C is an undercount; the baseline is approximate
and documented as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

# The usual "high risk" cut-off of the LACE literature (van Walraven 2010): flagged at >= 10.
LACE_HIGH_RISK: Final = 10
LACE_RULE: Final = f"LACE >= {LACE_HIGH_RISK} flagged"

# (ICD-9 prefix ranges as floats [low, high), Charlson weight)
_CHARLSON: Final = (
    ((410.0, 413.0), 1),  # myocardial infarction
    ((428.0, 429.0), 1),  # congestive heart failure
    ((441.0, 442.0), 1),  # peripheral vascular disease
    ((443.9, 444.0), 1),
    ((430.0, 439.0), 1),  # cerebrovascular disease
    ((290.0, 291.0), 1),  # dementia
    ((490.0, 506.0), 1),  # chronic pulmonary disease
    ((710.0, 711.0), 1),  # rheumatic disease
    ((714.0, 715.0), 1),
    ((725.0, 726.0), 1),
    ((531.0, 535.0), 1),  # peptic ulcer
    ((571.0, 572.0), 1),  # mild liver disease
    ((250.0, 250.4), 1),  # diabetes without complication
    ((250.4, 251.0), 2),  # diabetes with complication
    ((342.0, 343.0), 2),  # hemiplegia
    ((344.0, 345.0), 2),
    ((582.0, 587.0), 2),  # renal disease
    ((588.0, 589.0), 2),
    ((140.0, 196.0), 2),  # malignancy
    ((200.0, 209.0), 2),  # lymphoma, leukaemia
    ((572.0, 573.0), 3),  # severe liver disease
    ((196.0, 200.0), 6),  # metastatic solid tumour
    ((42.0, 43.0), 6),  # AIDS
)


def _charlson_weight(code: str) -> int:
    code = code.strip()
    if not code or code[0] in "VE?":
        return 0
    try:
        value = float(code)
    except ValueError:
        return 0
    return max((w for (low, high), w in _CHARLSON if low <= value < high), default=0)


def _length_points(days: int) -> int:
    if days < 1:
        return 0
    if days <= 3:
        return days
    if days <= 6:
        return 4
    if days <= 13:
        return 5
    return 7


def lace_score(
    time_in_hospital: int,
    admission_type_id: int,
    admission_source_id: int,
    diagnoses: Iterable[str],
    number_emergency: int,
) -> int:
    acuity = 3 if admission_type_id in (1, 7) or admission_source_id == 7 else 0
    charlson = sum(_charlson_weight(str(d)) for d in diagnoses)
    comorbidity = 5 if charlson >= 4 else charlson
    return _length_points(int(time_in_hospital)) + acuity + comorbidity + min(number_emergency, 4)


def lace_scores(
    time_in_hospital: np.ndarray,
    admission_type_id: np.ndarray,
    admission_source_id: np.ndarray,
    diagnoses: np.ndarray,
    number_emergency: np.ndarray,
) -> np.ndarray:
    """LACE for each row; ``diagnoses`` has shape (n, 3)."""
    return np.array(
        [
            lace_score(int(t), int(a), int(s), d, int(e))
            for t, a, s, d, e in zip(
                time_in_hospital,
                admission_type_id,
                admission_source_id,
                diagnoses,
                number_emergency,
                strict=True,
            )
        ],
        dtype=np.float64,
    )
