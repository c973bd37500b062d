"""LOINC codes and UCUM unit conversions for the two lab columns, plus the lab panel.

HbA1c is classified in NGSP percent, glucose in mg/dL; other units are converted with
UCUM-correct factors before the thresholds are applied:

* glucose: 1 mmol/L = 18.0156 mg/dL (molar mass of glucose 180.156 g/mol);
* HbA1c: NGSP % = 0.09148 x IFCC mmol/mol + 2.152 (IFCC-NGSP master equation).
"""

from __future__ import annotations

from typing import Final

LOINC_SYSTEM: Final = "http://loinc.org"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

GLUCOSE_MMOL_TO_MGDL: Final = 18.0156
BODY_WEIGHT: Final = "29463-7"
LB_TO_KG: Final = 0.45359237

# HbA1c/Hemoglobin.total in Blood: 4548-4 (%), 17856-6 (% by HPLC), 4549-2 (% by
# electrophoresis), 59261-8 (mmol/mol, IFCC).
HBA1C_CODES: Final = frozenset({"4548-4", "17856-6", "4549-2", "59261-8"})
# Glucose in serum or plasma: 2345-7 (mass/volume), 14749-6 (moles/volume), fasting
# 1558-6 (mass) and 14771-0 (moles); 2339-0 (mass, blood) is accepted as a sibling.
GLUCOSE_CODES: Final = frozenset({"2345-7", "14749-6", "1558-6", "14771-0", "2339-0"})


def _unit(unit: str) -> str:
    return unit.strip().replace(" ", "").lower()


def glucose_mg_dl(value: float, unit: str | None) -> float | None:
    """Glucose in mg/dL, or None when the unit is unknown (then the value is not used)."""
    u = _unit(unit or "mg/dL")
    if u in {"mg/dl", "mg/100ml"}:
        return value
    if u in {"mmol/l", "mmol/dm3"}:
        return value * GLUCOSE_MMOL_TO_MGDL
    if u == "g/l":
        return value * 100.0
    return None


def hba1c_percent(value: float, unit: str | None) -> float | None:
    """HbA1c in NGSP %, or None for an unknown unit."""
    u = _unit(unit or "%")
    if u == "%":
        return value
    if u == "mmol/mol":
        return 0.09148 * value + 2.152
    return None


def body_weight_kg(value: float, unit: str | None) -> float | None:
    u = _unit(unit or "kg")
    if u == "kg":
        return value
    if u in {"[lb_av]", "lb", "lbs"}:
        return value * LB_TO_KG
    if u == "g":
        return value / 1000.0
    return None


def glucose_band(mg_dl: float) -> str:
    """max_glu_serum band of a glucose value (mg/dL): >300, >200, else Norm."""
    if mg_dl > 300:
        return ">300"
    if mg_dl > 200:
        return ">200"
    return "Norm"


def hba1c_band(percent: float) -> str:
    """A1Cresult band of an HbA1c value (NGSP %): >8, >7, else Norm."""
    if percent > 8:
        return ">8"
    if percent > 7:
        return ">7"
    return "Norm"


# Other laboratory tests the synthesizer draws from (LOINC, display, UCUM unit, low, high).
LAB_PANEL: Final = (
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 132.0, 146.0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.3, 5.4),
    ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 95.0, 110.0),
    ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 20.0, 31.0),
    ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 6.0, 45.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 3.5),
    ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.0, 10.6),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 8.0, 16.5),
    ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 26.0, 50.0),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3.5, 16.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 120.0, 420.0),
    ("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 5.5, 8.3),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 2.5, 5.0),
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        7.0,
        80.0,
    ),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        8.0,
        80.0,
    ),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 110.0, 280.0),
    ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 50.0, 400.0),
    ("2777-1", "Phosphate [Mass/volume] in Serum or Plasma", "mg/dL", 2.3, 5.0),
    ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", 1.6, 2.6),
    ("5902-2", "Prothrombin time (PT)", "s", 10.0, 18.0),
)
