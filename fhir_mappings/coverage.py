"""Coverage -> payer_code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fhir_mappings.codes.project_codesystems import (
    PAYER_BY_SOPT,
    PAYER_CODES,
    PAYER_SYSTEM,
    SOPT_SYSTEM,
)
from fhir_mappings.dates import local_date

_INACTIVE = {"cancelled", "entered-in-error"}


def payer_code(coverage: dict[str, Any]) -> str | None:
    """Dataset payer code of one Coverage (project code first, then SOPT)."""
    codings = (coverage.get("type") or {}).get("coding") or ()
    for coding in codings:
        if coding.get("system") == PAYER_SYSTEM and coding.get("code") in PAYER_CODES:
            return str(coding["code"])
    for coding in codings:
        if coding.get("system") == SOPT_SYSTEM and coding.get("code") in PAYER_BY_SOPT:
            return PAYER_BY_SOPT[coding["code"]]
    return None


def payer_for(
    coverages: list[dict[str, Any]],
    is_patient: Callable[[dict[str, Any]], bool],
    admitted: date | None,
) -> str | None:
    """First usable Coverage of the patient that is in force at admission."""
    for coverage in coverages:
        if coverage.get("status") in _INACTIVE or not is_patient(coverage):
            continue
        period = coverage.get("period") or {}
        start, end = local_date(period.get("start")), local_date(period.get("end"))
        if admitted and ((start and start > admitted) or (end and end < admitted)):
            continue
        code = payer_code(coverage)
        if code is not None:
            return code
    return None
