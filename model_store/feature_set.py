"""The fingerprint of what a model was trained on, checked before a model serves.

It lives with the model store, not with the feature definition, because it also covers
the diagnosis grouping of fhir_mappings: the core layer cannot see that.
"""

from __future__ import annotations

import hashlib
import json

from fhir_mappings.codes.icd9 import DIAGNOSIS_GROUPS
from readmit_core.features import (
    DAYS_SINCE_DISCHARGE_CAP,
    FEATURE_COLUMNS,
    FEATURE_SET_NAME,
    INTEGER_COLUMNS,
    VALUE_SETS,
)


def feature_set_hash() -> str:
    """Fingerprint of the feature definition; a model trained on another one is refused.

    Covers the columns, their types and value sets, the history cap, and the diagnosis
    groups the encoder derives from diag_1..3 (a regrouping silently changes every score).
    """
    payload = json.dumps(
        {
            "name": FEATURE_SET_NAME,
            "columns": FEATURE_COLUMNS,
            "integers": sorted(INTEGER_COLUMNS),
            "value_sets": VALUE_SETS,
            "diagnosis_groups": DIAGNOSIS_GROUPS,
            "days_since_discharge_cap": DAYS_SINCE_DISCHARGE_CAP,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
