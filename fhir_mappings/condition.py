"""Condition.code (ICD-9-CM or ICD-10-CM) -> the dataset's ICD-9-CM diagnosis code."""

from __future__ import annotations

from typing import Any

from fhir_mappings.codes.icd9 import ICD9_SYSTEM, dataset_code
from fhir_mappings.codes.icd10 import ICD10_WHO_SYSTEM, ICD10CM_SYSTEM, icd10_to_icd9


def diagnosis_code(condition: dict[str, Any] | None) -> str | None:
    """ICD-9-CM code (dataset spelling) of a Condition; ICD-9-CM codings win over ICD-10."""
    if not condition:
        return None
    codings = (condition.get("code") or {}).get("coding") or ()
    for coding in codings:
        code = coding.get("code")
        if coding.get("system") == ICD9_SYSTEM and isinstance(code, str) and code.strip():
            return dataset_code(code)
    for coding in codings:
        code = coding.get("code")
        if coding.get("system") in (ICD10CM_SYSTEM, ICD10_WHO_SYSTEM) and isinstance(code, str):
            try:
                return icd10_to_icd9(code)
            except ValueError:
                continue
    return None
