"""Encounter -> class group, stay dates, admission/discharge codes, specialty, ward, diagnoses."""

from __future__ import annotations

from typing import Any, Final

from fhir_mappings.codes.nubc import (
    ADMISSION_SOURCE_READERS,
    ADMISSION_TYPE_READERS,
    DISCHARGE_READERS,
    read_code,
)
from fhir_mappings.codes.project_codesystems import SPECIALTY_SET, SPECIALTY_SYSTEM
from fhir_mappings.codes.structural import INPATIENT
from fhir_mappings.dates import is_partial, local_date

NOT_A_VISIT: Final = frozenset({"cancelled", "entered-in-error", "planned"})


def class_code(encounter: dict[str, Any]) -> str:
    """v3-ActCode of Encounter.class (R4 Coding; an R5-style list is read too)."""
    value = encounter.get("class")
    if isinstance(value, list):
        value = (value[0].get("coding") or [{}])[0] if value else {}
    return str((value or {}).get("code") or "").upper()


def is_index(encounter: dict[str, Any]) -> bool:
    """A finished inpatient stay: what the model scores."""
    return encounter.get("status") == "finished" and class_code(encounter) in INPATIENT


def length_of_stay(encounter: dict[str, Any]) -> int | None:
    """Calendar days from admission to discharge date (as written), at least 1; unknown
    when either is a partial date (a month is not its first day)."""
    period = encounter.get("period") or {}
    if is_partial(period.get("start")) or is_partial(period.get("end")):
        return None
    start, end = local_date(period.get("start")), local_date(period.get("end"))
    if start is None or end is None:
        return None
    return max(1, (end - start).days)


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or ())


def admission_type(encounter: dict[str, Any]) -> int | None:
    return read_code(_codings(encounter.get("priority")), ADMISSION_TYPE_READERS)


def admission_source(encounter: dict[str, Any]) -> int | None:
    hosp = encounter.get("hospitalization") or {}
    return read_code(_codings(hosp.get("admitSource")), ADMISSION_SOURCE_READERS)


def discharge_disposition(encounter: dict[str, Any]) -> int | None:
    hosp = encounter.get("hospitalization") or {}
    return read_code(_codings(hosp.get("dischargeDisposition")), DISCHARGE_READERS)


def specialty(encounter: dict[str, Any]) -> str | None:
    concept = encounter.get("serviceType") or {}
    if isinstance(concept, list):  # R5 CodeableReference list
        concept = (concept[0].get("concept") or {}) if concept else {}
    for coding in _codings(concept):
        if coding.get("system") == SPECIALTY_SYSTEM and coding.get("code") in SPECIALTY_SET:
            return str(coding["code"])
    text = concept.get("text")
    return text if text in SPECIALTY_SET else None


# Encounter.diagnosis.use (diagnosis-role): the principal diagnosis of a stay is the
# billing one, then the discharge diagnosis (established after study, UHDDS), then an
# unspecified role; admission diagnosis, chief complaint and comorbidity come last.
_ROLE_ORDER: Final = {"billing": 0, "DD": 1, "AD": 3, "CC": 4, "CM": 5}
_ROLE_UNSPECIFIED: Final = 2


def _role(entry: dict[str, Any]) -> int:
    roles = [
        _ROLE_ORDER.get(str(c.get("code")), _ROLE_UNSPECIFIED) for c in _codings(entry.get("use"))
    ]
    return min(roles, default=_ROLE_UNSPECIFIED)


def ranked_diagnoses(encounter: dict[str, Any]) -> list[dict[str, Any]]:
    """Encounter.diagnosis entries, principal first.

    ``rank`` is per role (R4: "ranking of the diagnosis for each role type"), so billing
    entries come first (the coded claim list), then by rank with unranked entries after
    the ranked ones; a rank tie between roles goes to the discharge diagnosis over the
    admission one; otherwise document order.
    """
    entries = list(encounter.get("diagnosis") or ())
    return sorted(
        entries,
        key=lambda d: (
            _role(d) != 0,
            d.get("rank") is None,
            d.get("rank") or 0,
            _role(d),
        ),
    )
