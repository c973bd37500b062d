"""Required bindings of the elements the mapper reads, checked on every resource.

``fhir.resources`` checks that a ``code`` is a token, not that it belongs to the value
set of a *required* binding; a feed sending ``"gender": "M"`` or ``"status": "done"``
would otherwise be accepted and silently mapped to a missing value. Only required
bindings (FHIR R4, with the R4B additions where R4B widened a value set) are checked:
extensible and preferred bindings allow other codes by definition.
"""

from __future__ import annotations

from typing import Any, Final

from fhir_mappings.codes.structural import CONDITION_CLINICAL_SYSTEM, CONDITION_VERIFICATION_SYSTEM
from fhir_mappings.errors import InvalidCode

# resourceType -> element -> (value set name, allowed codes). Elements of type code.
CODE_BINDINGS: Final[dict[str, dict[str, tuple[str, frozenset[str]]]]] = {
    "Patient": {
        "gender": ("AdministrativeGender", frozenset({"male", "female", "other", "unknown"})),
    },
    "Encounter": {
        "status": ("EncounterStatus", frozenset({
            "planned", "arrived", "triaged", "in-progress", "onleave", "finished",
            "cancelled", "entered-in-error", "unknown"})),
    },
    "Observation": {
        "status": ("ObservationStatus", frozenset({
            "registered", "preliminary", "final", "amended", "corrected", "cancelled",
            "entered-in-error", "unknown"})),
    },
    "Procedure": {
        "status": ("EventStatus", frozenset({
            "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
            "entered-in-error", "unknown"})),
    },
    "MedicationRequest": {
        "status": ("medicationrequest Status", frozenset({
            "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
            "draft", "unknown"})),
        "intent": ("medicationRequest Intent", frozenset({
            "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
            "instance-order", "option"})),
    },
    "MedicationAdministration": {
        "status": ("MedicationAdministration Status Codes", frozenset({
            "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped",
            "unknown"})),
    },
    "MedicationStatement": {
        "status": ("Medication status codes", frozenset({
            "active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
            "unknown", "not-taken"})),
    },
    "Coverage": {
        "status": ("Financial Resource Status Codes", frozenset({
            "active", "cancelled", "draft", "entered-in-error"})),
    },
    "Bundle": {
        "type": ("BundleType", frozenset({
            "document", "message", "transaction", "transaction-response", "batch",
            "batch-response", "history", "searchset", "collection",
            "subscription-notification"})),  # R4B addition
    },
}  # fmt: skip

# resourceType -> element -> (value set name, code system, allowed codes). CodeableConcepts:
# a coding of that system must carry one of the codes (codings of other systems are
# translations and are not judged).
CONCEPT_BINDINGS: Final[dict[str, dict[str, tuple[str, str, frozenset[str]]]]] = {
    "Condition": {
        "clinicalStatus": ("ConditionClinicalStatusCodes", CONDITION_CLINICAL_SYSTEM, frozenset({
            "active", "recurrence", "relapse", "inactive", "remission", "resolved"})),
        "verificationStatus": ("ConditionVerificationStatus", CONDITION_VERIFICATION_SYSTEM,
                               frozenset({"unconfirmed", "provisional", "differential",
                                          "confirmed", "refuted", "entered-in-error"})),
    },
}  # fmt: skip


def check_bindings(resource: dict[str, Any], where: str) -> None:
    """Raise :class:`InvalidCode` naming the element when a required binding is broken."""
    resource_type = resource.get("resourceType")
    for element, (value_set, allowed) in CODE_BINDINGS.get(str(resource_type), {}).items():
        value = resource.get(element)
        if value is not None and value not in allowed:
            raise InvalidCode(
                f"{where}: {resource_type}.{element} {value!r} is not in the required value "
                f"set {value_set} ({', '.join(sorted(allowed))})",
                resource_type=str(resource_type),
                element=element,
            )
    for element, (value_set, system, codes) in CONCEPT_BINDINGS.get(str(resource_type), {}).items():
        for coding in (resource.get(element) or {}).get("coding") or ():
            if coding.get("system") == system and coding.get("code") not in codes:
                raise InvalidCode(
                    f"{where}: {resource_type}.{element} {coding.get('code')!r} is not in the "
                    f"required value set {value_set}",
                    resource_type=str(resource_type),
                    element=element,
                )
