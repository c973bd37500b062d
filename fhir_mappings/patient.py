"""Patient -> race, gender, age band."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from fhir_mappings.codes.race_ethnicity import race_from_patient
from fhir_mappings.dates import local_date, years_between
from fhir_mappings.errors import ImpossibleDates

GENDER: Final[dict[str, str]] = {
    "male": "Male",
    "female": "Female",
    "other": "Unknown/Invalid",
    "unknown": "Unknown/Invalid",
}


def gender(patient: dict[str, Any]) -> str | None:
    return GENDER.get(str(patient.get("gender") or ""))


def race(patient: dict[str, Any]) -> str | None:
    return race_from_patient(patient)


def age_band(patient: dict[str, Any], admitted: date | None) -> str | None:
    """``[70-80)``-style band of the age at admission; 100+ falls in ``[90-100)``."""
    born = local_date(patient.get("birthDate"))
    if born is None or admitted is None:
        return None
    if born > admitted:
        raise ImpossibleDates(
            "birthDate is after the admission", resource_type="Patient", element="birthDate"
        )
    decade = min(years_between(born, admitted) // 10, 9) * 10
    return f"[{decade}-{decade + 10})"
