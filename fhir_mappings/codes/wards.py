"""The hospital wards of the demo deployment: one list, used by the synthesizer and the web app.

A ward is where the index stay happened (``Encounter.location`` -> ``Location``); it
is not a model input, only the dashboards group by it. Synthesized encounters get a
ward deterministically from their medical specialty (and age, for geriatrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Ward:
    code: str
    id: str  # the FHIR Location id, and MappedEncounter.ward
    name: str


WARDS: Final = (
    Ward("CARD", "ward-card", "Cardiology"),
    Ward("MED", "ward-med", "General Medicine"),
    Ward("SURG", "ward-surg", "Surgery"),
    Ward("ONC", "ward-onc", "Oncology"),
    Ward("RENAL", "ward-renal", "Nephrology"),
    Ward("ICU", "ward-icu", "Intensive Care"),
    Ward("GERI", "ward-geri", "Geriatrics"),
    Ward("PEDS", "ward-peds", "Paediatrics"),
)
WARD_BY_CODE: Final = {w.code: w for w in WARDS}
WARD_BY_ID: Final = {w.id: w for w in WARDS}


def ward_for(specialty: str, age_band: str) -> Ward:
    """Deterministic ward of a dataset row, from its specialty (and age band)."""
    s = specialty.lower()
    if s.startswith("pediatrics") or s.endswith("-pediatric") or "child" in s:
        code = "PEDS"
    elif "criticalcare" in s or s in {"emergency/trauma", "anesthesiology"}:
        code = "ICU"
    elif "cardio" in s:
        code = "CARD"
    elif "onco" in s or "hematology" in s:
        code = "ONC"
    elif "nephro" in s or "urology" in s:
        code = "RENAL"
    elif s.startswith(("surg", "orthop", "podiatry", "otolaryng", "ophthal", "proctology")):
        code = "SURG"
    elif age_band in {"[80-90)", "[90-100)"}:
        code = "GERI"
    else:
        code = "MED"
    return WARD_BY_CODE[code]
