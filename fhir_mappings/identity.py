"""Which visit (and which patient) a resource is, whatever id this send gave it.

Interface engines regenerate ``urn:uuid`` fullUrls on every send, and some give the
same visit a new resource id when it is resent; the visit number and the MRN stay.
So an Encounter is keyed by its business identifier (``Encounter.identifier``: the
visit-number type ``VN`` where several are given, else the first identifier with a
system) and a Patient by its MRN (type ``MR``, else the first identifier with a
system); only a resource without such an identifier is keyed by its id. Identifiers
whose ``use`` is ``old`` never key anything (they name what the resource used to be).

The mapper asks a :class:`VisitIdentities` for the canonical id of every Encounter and
Patient of a document at once (one database round trip in ingest); without one, every
resource is its own id (:class:`LocalIdentities`: the CLI, parity, tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
# the identifier type that names the visit / the patient, per resource type
PREFERRED_TYPE: Final = {"Encounter": "VN", "Patient": "MR"}
IDENTIFIED_KINDS: Final = frozenset(PREFERRED_TYPE)
# the pseudo identifier system of a resource's logical id (the key without an identifier)
ID_SYSTEM: Final = "#id"


def _typed(identifier: dict[str, Any], code: str) -> bool:
    codings = (identifier.get("type") or {}).get("coding") or ()
    return any(
        isinstance(c, dict) and c.get("code") == code and c.get("system") in (V2_0203, None)
        for c in codings
    )


def business_identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    """(system, value) that names the visit or patient, or None (see module rules).

    Candidates have a string value and a system, or the preferred type (a typed
    visit number without a system still names the visit; its system is then "").
    """
    preferred = PREFERRED_TYPE.get(str(resource.get("resourceType")))
    candidates: list[tuple[bool, str, str]] = []
    for ident in resource.get("identifier") or ():
        if not isinstance(ident, dict) or ident.get("use") == "old":
            continue
        value, system = ident.get("value"), ident.get("system")
        if not isinstance(value, str) or not value:
            continue
        typed = preferred is not None and _typed(ident, preferred)
        if typed or (isinstance(system, str) and system):
            candidates.append((typed, system if isinstance(system, str) else "", value))
    if not candidates:
        return None
    best = next((c for c in candidates if c[0]), candidates[0])
    return best[1], best[2]


def own_id(resource: dict[str, Any]) -> str | None:
    """The id a resource gives itself: its ``id``, else its first identifier value (the
    mapper adds the fullUrl's uuid for a resource with neither)."""
    if resource.get("id"):
        return str(resource["id"])
    for ident in resource.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("value"):
            return str(ident["value"])
    return None


def identity_key(resource: dict[str, Any], local_id: str) -> tuple[str, str]:
    """The (system, value) a resource is known by: its business identifier where it
    has one, else ``(ID_SYSTEM, local_id)``."""
    return business_identifier(resource) or (ID_SYSTEM, local_id)


def patient_scoped(key: tuple[str, str], patient_id: str | None) -> tuple[str, str]:
    """A visit's business key within its patient: the same visit number sent for another
    patient names another visit, never this one.

    Visit numbers are unique per assigning authority only in principle; a feed that
    reuses one (or sends it without a system) must not move one patient's score and
    worklist row onto another patient. The patient is named by its canonical id (found
    by MRN or id first), so a resend under new ids still finds the visit.
    """
    if key[0] == ID_SYSTEM or not patient_id:
        return key
    return f"{key[0]}|patient:{patient_id}", key[1]


@dataclass(frozen=True)
class IdentityClaim:
    """One Encounter or Patient of a document: what it is called here and its key."""

    kind: str  # "Encounter" | "Patient"
    local_id: str  # its id in this document (resource id, else identifier value / uuid)
    key: tuple[str, str]  # identity_key()
    has_id: bool = True  # the resource carries that id itself (not a fallback)


class VisitIdentities(Protocol):
    """Canonical ids of the Encounters and Patients of one document."""

    def canonical_ids(self, claims: Sequence[IdentityClaim]) -> list[str]:
        """One id per claim, in order: the id the visit/patient was first known by."""
        ...


class LocalIdentities:
    """No memory: the same key within one document is one id (the first one's)."""

    def canonical_ids(self, claims: Sequence[IdentityClaim]) -> list[str]:
        first: dict[tuple[str, str, str], str] = {}
        return [first.setdefault((c.kind, *c.key), c.local_id) for c in claims]


__all__ = [
    "ID_SYSTEM",
    "IdentityClaim",
    "LocalIdentities",
    "VisitIdentities",
    "business_identifier",
    "identity_key",
    "own_id",
    "patient_scoped",
]
