"""MedicationRequest/MedicationAdministration/MedicationStatement -> the 23 medication
columns, change, diabetesMed and num_medications.

A medication is identified by RxNorm ingredient codes (a Medication with two
ingredients is a combination column), else by an RxNorm clinical-drug or pack code
of the curated table (SCD/SBD/GPCK/BPCK, ``codes/rxnorm.CLINICAL_DRUGS``), else by a
project code, else by the generic name found in its text/display.
Orders running during the stay but written before it (chronic medication) count as
given and ``Steady``: no dose change of theirs is recorded in the stay.
The dose direction of a column comes from the explicit dose-change extension when
present, else from ``priorPrescription``: the daily dose of the request against the
one it replaces (higher = Up, lower = Down, equal = Steady); a prior prescription of a
*different* drug is a switch (Steady, and ``change`` = Ch); no prior prescription =
Steady.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from fhir_mappings.codes.project_codesystems import (
    DOSE_CHANGE_CODES,
    DOSE_CHANGE_EXTENSION,
    MEDICATION_SYSTEM,
)
from fhir_mappings.codes.rxnorm import (
    CLINICAL_DRUGS,
    COLUMN_BY_INGREDIENTS,
    COMBINATIONS,
    INGREDIENT,
    RXNORM_SYSTEM,
    SYNONYMS,
)
from fhir_mappings.dates import local_date
from readmit_core.features import MEDICATION_COLUMNS

Resolver = Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any] | None]

_NOT_GIVEN: Final = {"entered-in-error", "cancelled", "draft", "not-done", "not-taken", "intended"}
# Statuses of an order/statement written before the stay that is still running.
_RUNNING: Final = {"active", "on-hold"}
_MASS_MG: Final = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "ng": 1e-6}
_PERIOD_DAYS: Final = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0,
                       "mo": 30.0, "a": 365.0}  # fmt: skip
_MED_SET: Final = frozenset(MEDICATION_COLUMNS)


def _concept(resource: dict[str, Any], resolve: Resolver) -> tuple[dict, dict | None]:
    """(CodeableConcept, Medication resource or None) of a request/administration."""
    concept = resource.get("medicationCodeableConcept")
    if concept:
        return concept, None
    reference = resource.get("medicationReference") or {}
    medication = resolve(reference, resource)
    if medication is None:  # outside the document: its display is all we know
        display = reference.get("display")
        return ({"text": display} if isinstance(display, str) else {}), None
    return medication.get("code") or {}, medication


def _rx_codes(concept: dict[str, Any]) -> list[str]:
    return [
        str(c["code"])
        for c in concept.get("coding") or ()
        if c.get("system") == RXNORM_SYSTEM and c.get("code")
    ]


def _names(concept: dict[str, Any]) -> list[str]:
    texts = [concept.get("text") or ""]
    texts += [c.get("display") or "" for c in concept.get("coding") or ()]
    return [t.lower() for t in texts if t]


def identify(resource: dict[str, Any], resolve: Resolver) -> tuple[str | None, object]:
    """(dataset column or None, key for counting distinct medications)."""
    concept, medication = _concept(resource, resolve)
    ingredients: set[str] = set()
    names = _names(concept)
    if medication is not None:
        for ing in medication.get("ingredient") or ():
            item = ing.get("itemCodeableConcept") or {}
            ingredients.update(_rx_codes(item))
            names += _names(item)
    if ingredients:
        column = COLUMN_BY_INGREDIENTS.get(frozenset(ingredients))
        if column:
            return column, column
    codes = _rx_codes(concept)
    for code in codes:
        column = COLUMN_BY_INGREDIENTS.get(frozenset({code})) or CLINICAL_DRUGS.get(code)
        if column:
            return column, column
    for coding in concept.get("coding") or ():
        if coding.get("system") == MEDICATION_SYSTEM and coding.get("code") in _MED_SET:
            return str(coding["code"]), str(coding["code"])
    column = _column_from_names(names)
    if column:
        return column, column
    if ingredients or codes:
        return None, ("rx", tuple(sorted(ingredients or set(codes))))
    if names:
        return None, ("text", names[0])
    return None, ("unidentified", id(resource))


def _column_from_names(names: list[str]) -> str | None:
    found = {col for text in names for word, col in SYNONYMS.items() if word in text}
    if len(found) == 1:
        return found.pop()
    for column, pair in COMBINATIONS.items():
        if found == set(pair):
            return column
    return None


def daily_dose(resource: dict[str, Any]) -> tuple[float, str] | None:
    """(amount per day, unit) of the first dosage instruction, when computable."""
    dosage = (resource.get("dosageInstruction") or [None])[0] or resource.get("dosage")
    if not dosage:
        return None
    quantity = dosage.get("dose")
    if quantity is None:
        dose_and_rate = (dosage.get("doseAndRate") or [None])[0] or {}
        quantity = dose_and_rate.get("doseQuantity")
    if not quantity or quantity.get("value") is None:
        return None
    value = float(quantity["value"])
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    if unit in _MASS_MG:
        value, unit = value * _MASS_MG[unit], "mg"
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = float(repeat.get("frequency") or 1)
    period = float(repeat.get("period") or 1) * _PERIOD_DAYS.get(repeat.get("periodUnit", "d"), 1)
    return value * frequency / period, unit


def _started(resource: dict[str, Any]) -> str | None:
    """When an order/administration/statement began (as written)."""
    for key in ("authoredOn", "effectiveDateTime", "dateAsserted"):
        if resource.get(key):
            return str(resource[key])
    for key in ("effectivePeriod",):
        start = (resource.get(key) or {}).get("start")
        if start:
            return str(start)
    validity = (resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    return str(validity["start"]) if validity.get("start") else None


def _ended(resource: dict[str, Any]) -> date | None:
    """The day a request's validity or a statement's effective period ended, if given."""
    for holder in (
        resource.get("effectivePeriod"),
        (resource.get("dispenseRequest") or {}).get("validityPeriod"),
    ):
        if holder and holder.get("end"):
            return local_date(str(holder["end"]))
    return None


def running_during(resource: dict[str, Any], start: date, end: date) -> bool:
    """A chronic order/statement written before admission and not stopped by then.

    Status active or on-hold (a ``completed``/``stopped`` one has ended), begun on or
    before the admission day, not ended before it (validityPeriod.end /
    effectivePeriod.end), and not a mere proposal.
    """
    if resource.get("status") not in _RUNNING or resource.get("intent") == "proposal":
        return False
    began = local_date(_started(resource))
    if began is None or began > start:
        return False
    stopped = _ended(resource)
    return stopped is None or stopped >= start


def given(resource: dict[str, Any]) -> bool:
    """Whether a medication resource says the drug is (to be) given: not a status of
    error/cancellation/non-administration, not a prohibition (``doNotPerform``: "hold
    insulin" is not insulin) and not a mere ``proposal`` (a suggestion never ordered)."""
    return (
        resource.get("status") not in _NOT_GIVEN
        and resource.get("doNotPerform") is not True
        and resource.get("intent") != "proposal"
    )


@dataclass
class MedicationSummary:
    """Accumulates the medication resources of one stay."""

    resolve: Resolver
    latest: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    distinct: set[object] = field(default_factory=set)

    steady: set[int] = field(default_factory=set)
    # column -> the latest chronic order of it running at admission (the home regimen)
    home: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, resource: dict[str, Any], *, steady: bool = False) -> None:
        """Count one medication resource; ``steady``: a chronic order from before the
        stay (its direction is Steady whatever its own history says)."""
        if not given(resource):
            return
        column, key = identify(resource, self.resolve)
        self.distinct.add(key)
        if column is None:
            return
        when = _started(resource) or ""
        if steady and (column not in self.home or when >= self.home[column][0]):
            self.home[column] = (when, resource)
        previous = self.latest.get(column)
        if previous is None or when >= previous[0]:
            self.latest[column] = (when, resource)
            if steady:
                self.steady.add(id(resource))

    def columns(self) -> tuple[dict[str, str], bool]:
        """(column -> Up/Down/Steady for every given column, whether a drug was switched)."""
        out: dict[str, str] = {}
        switched = False
        for column, (_, resource) in self.latest.items():
            direction, was_switch = self._direction(column, resource)
            out[column] = direction
            switched = switched or was_switch
        return out, switched

    def _direction(self, column: str, resource: dict[str, Any]) -> tuple[str, bool]:
        if id(resource) in self.steady:
            return "Steady", False
        for ext in resource.get("extension") or ():
            if ext.get("url") == DOSE_CHANGE_EXTENSION:
                code = ext.get("valueCode") or (ext.get("valueCoding") or {}).get("code")
                if code in DOSE_CHANGE_CODES:
                    return DOSE_CHANGE_CODES[code], code == "switched"
        prior = None
        if resource.get("resourceType") == "MedicationRequest":
            prior = self.resolve(resource.get("priorPrescription"), resource)
        if prior is None and column in self.home:
            # No priorPrescription (Synthea, most EHR exports): the stay's order is
            # compared with the home order of the same drug running at admission.
            prior = self.home[column][1]
        if prior is None:
            return "Steady", False
        prior_column, _ = identify(prior, self.resolve)
        if prior_column != column:
            return "Steady", True
        now, before = daily_dose(resource), daily_dose(prior)
        if now is None or before is None or now[1] != before[1]:
            return "Steady", False
        if now[0] > before[0] * (1 + 1e-9):
            return "Up", False
        if now[0] < before[0] * (1 - 1e-9):
            return "Down", False
        return "Steady", False


__all__ = ["INGREDIENT", "MedicationSummary", "daily_dose", "identify", "running_during"]
