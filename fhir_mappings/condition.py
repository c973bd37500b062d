"""Condition / reason codes -> the dataset's ICD-9-CM diagnosis code, and which
Conditions count as diagnoses of a stay.

Code systems, first match wins: ICD-9-CM, ICD-10-CM (or WHO ICD-10; with or without the
dot), SNOMED CT (curated table, ``codes/snomed.py``), and last the concept's ``text``
or a coding's ``display`` (``codes/snomed.text_code``). The rules are in CONTRACT.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from fhir_mappings.codes.icd9 import ICD9_SYSTEM, dataset_code
from fhir_mappings.codes.icd10 import ICD10_WHO_SYSTEM, ICD10CM_SYSTEM, icd10_to_icd9
from fhir_mappings.codes.snomed import (
    SNOMED_PREDIABETES,
    SNOMED_SYSTEM,
    snomed_to_icd9,
    text_code,
)
from fhir_mappings.dates import local_date

_NOT_TRUE: Final = frozenset({"entered-in-error", "refuted"})
_ENDED: Final = frozenset({"inactive", "resolved", "remission"})


def concept_code(concept: dict[str, Any] | None) -> tuple[str | None, str]:
    """(ICD-9-CM code in dataset spelling or None, the source that gave it).

    The source is ``icd9``, ``icd10``, ``snomed``, ``text`` or ``none``; the corpus
    coverage report counts them.
    """
    codings = [c for c in (concept or {}).get("coding") or () if isinstance(c, dict)]
    for coding in codings:
        code = coding.get("code")
        if coding.get("system") == ICD9_SYSTEM and isinstance(code, str) and code.strip():
            return dataset_code(code), "icd9"
    for coding in codings:
        code = coding.get("code")
        if coding.get("system") in (ICD10CM_SYSTEM, ICD10_WHO_SYSTEM) and isinstance(code, str):
            try:
                return icd10_to_icd9(code), "icd10"
            except ValueError:
                continue
    for coding in codings:
        code = coding.get("code")
        if coding.get("system") == SNOMED_SYSTEM and isinstance(code, str):
            hit = snomed_to_icd9(code)
            if hit is not None:
                return hit, "snomed"
    texts = [(concept or {}).get("text"), *(c.get("display") for c in codings)]
    for text in texts:
        if isinstance(text, str) and text:
            hit = text_code(text)
            if hit is not None:
                return hit, "text"
    return None, "none"


def diagnosis_code(condition: dict[str, Any] | None) -> str | None:
    """ICD-9-CM code (dataset spelling) of a Condition, or None."""
    if not condition:
        return None
    return concept_code(condition.get("code"))[0]


def is_prediabetes(condition: dict[str, Any]) -> bool:
    """Prediabetes or hyperglycaemia (SNOMED CT concepts, ICD-10-CM R73, ICD-9-CM
    790.2): excluded by a diabetes diagnosis (ICD-10-CM R73 Excludes1 E08-E13)."""
    for coding in (condition.get("code") or {}).get("coding") or ():
        system, code = coding.get("system"), str(coding.get("code") or "").replace(".", "")
        if (
            (system == SNOMED_SYSTEM and code in SNOMED_PREDIABETES)
            or (system in (ICD10CM_SYSTEM, ICD10_WHO_SYSTEM) and code.upper().startswith("R73"))
            or (system == ICD9_SYSTEM and code.startswith("7902"))
        ):
            return True
    return False


def categories(condition: dict[str, Any]) -> set[str]:
    """The condition-category codes (encounter-diagnosis, problem-list-item, ...)."""
    return {
        str(coding.get("code"))
        for cat in condition.get("category") or ()
        for coding in cat.get("coding") or ()
        if coding.get("code")
    }


def is_true(condition: dict[str, Any]) -> bool:
    """Not entered in error nor refuted (a differential or provisional one counts)."""
    status = condition.get("verificationStatus") or {}
    return not any(c.get("code") in _NOT_TRUE for c in status.get("coding") or ())


def active_during(condition: dict[str, Any], start: date, end: date) -> bool:
    """Whether a problem-list Condition was active on some day of ``[start, end]``.

    Onset (``onsetDateTime``/``onsetPeriod.start``, else ``recordedDate``) must be on or
    before the discharge day; an abatement date must be on or after the admission day.
    A Condition marked inactive/resolved/remission without an abatement date is taken
    as ended before the stay (we cannot tell when it ended).
    """
    onset = local_date(
        condition.get("onsetDateTime")
        or (condition.get("onsetPeriod") or {}).get("start")
        or condition.get("recordedDate")
    )
    if onset is not None and onset > end:
        return False
    abated = local_date(
        condition.get("abatementDateTime") or (condition.get("abatementPeriod") or {}).get("end")
    )
    if abated is not None:
        return abated >= start
    clinical = condition.get("clinicalStatus") or {}
    return not any(c.get("code") in _ENDED for c in clinical.get("coding") or ())
