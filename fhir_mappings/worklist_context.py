"""FHIR Patient/Encounter -> what a nurse needs on the worklist row (not a model input).

Name, MRN, sex, age, unit and bed, stay period and discharge disposition come from the
same document the features were mapped from, so the worklist shows the patient the EHR
sent and nothing typed in by hand. None of this feeds the model; it travels with the
events as an optional, versioned part (:class:`WorklistContext`) and ends up on the
web app's Alert rows, which carry ward access control. It is identifying data: it must
never be logged.

Reading rules (all tolerant: a missing element is ``None``, never an error, because a
worklist row without a bed number is still a row):

- name: the ``official`` (else ``usual``, else first) HumanName; ``text`` when given,
  else "Family, Given Given"; names whose period has ended are skipped.
- MRN: the identifier whose type is v2-0203 ``MR`` (else one whose system names an MRN).
- sex: ``Patient.gender`` (FHIR administrative gender, as sent).
- age: completed years at discharge (else admission) from ``birthDate``.
- unit/bed: the Encounter's locations, by physical type (``wa`` ward, ``ro`` room,
  ``bd`` bed), from the location entry or the resolved Location; the unit falls back
  to the last location listed.
- disposition: the display or text of ``hospitalization.dischargeDisposition``, else
  the dataset's description of the code the features read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Final

from fhir_mappings.bundle import Document
from fhir_mappings.codes.dataset_ids import id_tables
from fhir_mappings.codes.structural import (
    BED,
    IDENTIFIER_TYPE_SYSTEM,
    MEDICAL_RECORD_NUMBER,
    ROOM,
    WARD,
)
from fhir_mappings.dates import local_date, parse_datetime, years_between
from fhir_mappings.encounter import discharge_disposition
from fhir_mappings.errors import FhirMappingError
from fhir_mappings.mapper import _resource_id  # the mapper's own encounter/patient id rule
from readmit_core.events import Sex, WorklistContext

_NAME_USES: Final = ("official", "usual")
_TEXT_LIMIT: Final = 200

Resolver = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def _clip(value: Any) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:_TEXT_LIMIT] or None


def _name_current(name: dict[str, Any]) -> bool:
    end = (name.get("period") or {}).get("end")
    return not end


def patient_name(patient: dict[str, Any]) -> str | None:
    """The patient's display name, official first ("Family, Given Middle")."""
    names = [n for n in patient.get("name") or () if isinstance(n, dict) and _name_current(n)]
    if not names:
        return None
    ranked = sorted(
        names, key=lambda n: _NAME_USES.index(n["use"]) if n.get("use") in _NAME_USES else 9
    )
    best = ranked[0]
    if best.get("text"):
        return _clip(best["text"])
    given = " ".join(str(g) for g in best.get("given") or () if g)
    family = str(best.get("family") or "")
    return _clip(", ".join(p for p in (family, given) if p))


def _is_mrn(identifier: dict[str, Any]) -> bool:
    codings = (identifier.get("type") or {}).get("coding") or ()
    if any(
        c.get("system") == IDENTIFIER_TYPE_SYSTEM and c.get("code") == MEDICAL_RECORD_NUMBER
        for c in codings
    ):
        return True
    return "mrn" in str(identifier.get("system") or "").lower()


def mrn(patient: dict[str, Any]) -> str | None:
    """The medical record number: identifier typed MR, else one whose system says MRN."""
    for identifier in patient.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("value") and _is_mrn(identifier):
            return _clip(identifier["value"])
    return None


def sex(patient: dict[str, Any]) -> Sex | None:
    value = patient.get("gender")
    return value if value in ("male", "female", "other", "unknown") else None


def age_years(patient: dict[str, Any], on: date | None) -> int | None:
    """Completed years on ``on``; None without both dates or when they contradict."""
    born = local_date(patient.get("birthDate"))
    if born is None or on is None or born > on:
        return None
    return years_between(born, on)


def _physical_types(*holders: dict[str, Any] | None) -> set[str]:
    return {
        str(c.get("code"))
        for h in holders
        if h
        for c in (h.get("physicalType") or {}).get("coding") or ()
        if c.get("code")
    }


def _location_label(entry: dict[str, Any], location: dict[str, Any] | None) -> str | None:
    ref = entry.get("location") or {}
    return _clip((location or {}).get("name") or ref.get("display"))


def places(encounter: dict[str, Any], resolve: Resolver) -> dict[str, str | None]:
    """Unit, room and bed of the stay from ``Encounter.location`` (see module rules)."""
    found: dict[str, str | None] = {"unit": None, "room": None, "bed": None}
    last: str | None = None
    for entry in encounter.get("location") or ():
        if not isinstance(entry, dict):
            continue
        location = resolve(entry.get("location"))
        label = _location_label(entry, location)
        kinds = _physical_types(entry, location)
        for code, slot in ((WARD, "unit"), (ROOM, "room"), (BED, "bed")):
            if code in kinds and label:
                found[slot] = label
        if not kinds & {ROOM, BED} and label:
            last = label
    if found["unit"] is None:
        found["unit"] = last
    return found


def disposition(encounter: dict[str, Any]) -> str | None:
    """Where the patient went, in the sender's words, else the dataset's description."""
    concept = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    if concept.get("text"):
        return _clip(concept["text"])
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            return _clip(coding["display"])
    code = discharge_disposition(encounter)
    if code is None:
        return None
    return _clip(id_tables()["discharge_disposition_id"].get(code))


def worklist_context(
    encounter: dict[str, Any], patient: dict[str, Any] | None, resolve: Resolver
) -> WorklistContext:
    """The worklist part of one index encounter; ``resolve`` follows a Reference."""
    period = encounter.get("period") or {}
    admitted = parse_datetime(period.get("start"))
    discharged = parse_datetime(period.get("end"))
    day = local_date(period.get("end")) or local_date(period.get("start"))
    person = patient or {}
    return WorklistContext(
        patient_name=patient_name(person),
        mrn=mrn(person),
        sex=sex(person),
        age_years=age_years(person, day),
        admitted_at=admitted,
        discharged_at=discharged,
        disposition=disposition(encounter),
        **places(encounter, resolve),
    )


def contexts_by_encounter(document: dict[str, Any]) -> dict[str, WorklistContext]:
    """Every Encounter of an (already accepted) document -> its worklist context.

    Keyed by the same encounter id the mapper gives the feature event. The document was
    validated when it was mapped, so it is only indexed here, not validated again.
    """
    doc = Document(document, validate=False)
    out: dict[str, WorklistContext] = {}
    for encounter in doc.of_type("Encounter"):

        def resolve(ref: dict[str, Any] | None, holder: dict[str, Any] = encounter) -> Any:
            try:
                return doc.resolve(ref, holder)
            except FhirMappingError:
                return None

        subject = resolve(encounter.get("subject"))
        patient = subject if (subject or {}).get("resourceType") == "Patient" else None
        out[_resource_id(encounter, doc)] = worklist_context(encounter, patient, resolve)
    return out


__all__ = [
    "contexts_by_encounter",
    "worklist_context",
]
