"""Observations -> num_lab_procedures, max_glu_serum, A1Cresult, weight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappings.codes.loinc import (
    BODY_WEIGHT,
    GLUCOSE_CODES,
    HBA1C_CODES,
    LOINC_SYSTEM,
    body_weight_kg,
    glucose_band,
    glucose_mg_dl,
    hba1c_band,
    hba1c_percent,
)
from fhir_mappings.codes.structural import LABORATORY

_NOT_RESULTS = {"entered-in-error", "cancelled"}
_WEIGHT_CODES = {BODY_WEIGHT, "3141-9"}


def _loinc_codes(observation: dict[str, Any]) -> set[str]:
    return {
        str(c.get("code"))
        for c in (observation.get("code") or {}).get("coding") or ()
        if c.get("system") == LOINC_SYSTEM
    }


def _is_lab(observation: dict[str, Any], codes: set[str]) -> bool:
    for category in observation.get("category") or ():
        for coding in category.get("coding") or ():
            if coding.get("code") == LABORATORY:
                return True
    return bool(codes & (GLUCOSE_CODES | HBA1C_CODES))


def _quantity(observation: dict[str, Any]) -> tuple[float, str | None] | None:
    quantity = observation.get("valueQuantity")
    if not quantity or quantity.get("value") is None:
        return None
    unit = quantity.get("code") or quantity.get("unit")
    return float(quantity["value"]), (str(unit) if unit else None)


@dataclass
class LabSummary:
    lab_count: int = 0
    max_glucose: float | None = None  # mg/dL
    max_hba1c: float | None = None  # NGSP %
    weight_kg: float | None = None
    weight_time: str = ""

    def glucose_band(self) -> str | None:
        return None if self.max_glucose is None else glucose_band(self.max_glucose)

    def hba1c_band(self) -> str | None:
        return None if self.max_hba1c is None else hba1c_band(self.max_hba1c)

    def weight_band(self) -> str | None:
        if self.weight_kg is None:
            return None
        if self.weight_kg >= 200:
            return ">200"
        low = int(max(self.weight_kg, 0) // 25) * 25
        return f"[{low}-{low + 25})"

    def add(self, observation: dict[str, Any]) -> None:
        """Fold one Observation of the stay into the summary."""
        if observation.get("status") in _NOT_RESULTS:
            return
        codes = _loinc_codes(observation)
        if codes & _WEIGHT_CODES:
            self._add_weight(observation)
            return
        if not _is_lab(observation, codes):
            return
        self.lab_count += 1
        value = _quantity(observation)
        if value is None:
            return
        if codes & GLUCOSE_CODES:
            mg = glucose_mg_dl(*value)
            if mg is not None and (self.max_glucose is None or mg > self.max_glucose):
                self.max_glucose = mg
        elif codes & HBA1C_CODES:
            pct = hba1c_percent(*value)
            if pct is not None and (self.max_hba1c is None or pct > self.max_hba1c):
                self.max_hba1c = pct

    def _add_weight(self, observation: dict[str, Any]) -> None:
        """Latest body weight of the stay wins."""
        value = _quantity(observation)
        if value is None:
            return
        kg = body_weight_kg(*value)
        when = str(observation.get("effectiveDateTime") or "")
        if kg is not None and (self.weight_kg is None or when >= self.weight_time):
            self.weight_kg, self.weight_time = kg, when
