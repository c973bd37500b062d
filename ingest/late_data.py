"""Late and corrected resources, mapped together with the rest of their stay.

A discharge Bundle is complete when it arrives; what comes after it (a Condition coded
a day later, a late lab, an Encounter whose disposition was corrected) arrives alone.
Mapped alone it has no stay to belong to, so ingest keeps each recently discharged
stay's completed document (``stay_document``, for the re-score window) and maps a
partial document (one without its Patient) merged into the documents of the stays it
touches: the stay named by its encounter reference (``Condition.encounter``,
``Observation.encounter``, ``MedicationAdministration.context``, an Encounter itself),
else every kept stay of its patient (a corrected Patient; a resource the mapper links
by time, or not at all).

Merging replaces a resource the stay already holds (same ``Type/id``, same fullUrl, or
for an Encounter or Patient the same business identifier: the corrected resource keeps
the stored one's id and fullUrl, so the stay's own references still reach it) and
appends anything new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_mappings.bundle import Document
from fhir_mappings.dates import parse_datetime
from fhir_mappings.errors import SubjectMismatch
from fhir_mappings.identity import ID_SYSTEM, IDENTIFIED_KINDS, business_identifier
from fhir_mappings.mapper import ENCOUNTER_LINK
from ingest.resource_store import PATIENT_ELEMENT, resources_of

Resource = dict[str, Any]
Key = tuple[str, str, str]  # (kind, system, value) of resource_identity

# where each resource type names its encounter (the mapper's rule)
ENCOUNTER_ELEMENT = ENCOUNTER_LINK


def _tail_id(reference: Any, kind: str) -> str | None:
    """The id a ``Kind/id`` (relative, absolute or versioned) reference names."""
    if not isinstance(reference, dict):
        return None
    target = reference.get("reference")
    if isinstance(target, str) and not target.startswith(("urn:", "#")):
        parts = target.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == kind:
            return parts[-1]
    return None


def touched(doc: Resource) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """(Encounter ids, Patient ids, Encounter business identifiers) a partial document
    refers to or carries; ids as the document spells them."""
    encounters: set[str] = set()
    patients: set[str] = set()
    identified: set[tuple[str, str]] = set()
    for _, resource in resources_of(doc):
        kind = resource.get("resourceType")
        if kind == "Patient" and resource.get("id"):  # corrected demographics
            patients.add(str(resource["id"]))
        if kind == "Encounter":
            if resource.get("id"):
                encounters.add(str(resource["id"]))
            key = business_identifier(resource)
            if key:
                identified.add(key)
        element = ENCOUNTER_ELEMENT.get(str(kind))
        link = resource.get(element) if element else None
        encounter_id = _tail_id(link, "Encounter")
        if encounter_id:
            encounters.add(encounter_id)
        elif isinstance(link, dict) and isinstance(link.get("identifier"), dict):
            ident = link["identifier"]
            if isinstance(ident.get("value"), str):
                identified.add((str(ident.get("system") or ""), ident["value"]))
        elif link is None and kind != "Encounter":  # an Encounter is its own stay
            subject = resource.get(PATIENT_ELEMENT.get(str(kind), "subject"))
            patient_id = _tail_id(subject, "Patient")
            if patient_id:
                patients.add(patient_id)
    return encounters, patients, identified


def _indexed(doc: Resource) -> Iterator[tuple[int | None, Resource]]:
    """(entry index, resource) of a Bundle's entries, or (None, the loose resource)."""
    if doc.get("resourceType") != "Bundle":
        yield None, doc
        return
    for i, entry in enumerate(doc.get("entry") or []):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield i, entry["resource"]


def _key(reference: Any, kind: str) -> Key | None:
    """The identity key a reference names: ``Kind/id`` or a logical identifier."""
    tail = _tail_id(reference, kind)
    if tail:
        return kind, ID_SYSTEM, tail
    ident = reference.get("identifier") if isinstance(reference, dict) else None
    if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
        return kind, str(ident.get("system") or ""), ident["value"]
    return None


def subject_keys(doc: Resource) -> list[Key]:
    """The Patient keys the resources of a partial document name as their subject."""
    keys = []
    for _, resource in _indexed(doc):
        element = PATIENT_ELEMENT.get(str(resource.get("resourceType")))
        key = _key(resource.get(element), "Patient") if element else None
        if key:
            keys.append(key)
    return keys


def check_subjects(
    doc: Resource,
    encounter_id: str,
    patient_id: str,
    known: dict[Key, str],
    canonical: Any,
) -> None:
    """Refuse (SubjectMismatch) a resource that names the stay ``encounter_id`` (by its
    encounter reference, or as that Encounter) while its subject is another patient
    than the stay's ``patient_id``: merged, another patient's diagnosis would be scored
    as this stay's. Ids are compared as canonical ids (``known``: identity rows read;
    ``canonical``: the request's :class:`ingest.visit_identity.StoredIdentities`)."""

    def visit(key: Key | None) -> str | None:
        if key is None:
            return None
        if key[1] == ID_SYSTEM:
            return known.get(key) or canonical.encounter_of(key[2])
        return known.get(key)

    for index, resource in _indexed(doc):
        kind = str(resource.get("resourceType"))
        if kind == "Encounter":
            names = (
                {visit(("Encounter", ID_SYSTEM, str(resource["id"])))}
                if resource.get("id")
                else set()
            )
            ident = business_identifier(resource)
            if ident:
                names.add(visit(("Encounter", *ident)))
        else:
            element = ENCOUNTER_ELEMENT.get(kind)
            names = {visit(_key(resource.get(element), "Encounter"))} if element else set()
        if encounter_id not in names:
            continue
        element = PATIENT_ELEMENT.get(kind, "subject")
        key = _key(resource.get(element), "Patient")
        if key is None:
            continue
        owner = (
            known.get(key)
            or (canonical.canonical.get(("Patient", key[2])) if key[1] == ID_SYSTEM else None)
            or (key[2] if key[1] == ID_SYSTEM else None)
        )
        if owner is not None and owner != patient_id:
            raise SubjectMismatch(
                f"{kind}.{element} names Patient {owner}, but the stay it belongs to "
                f"(Encounter {encounter_id}) is Patient {patient_id}'s: refused, not merged",
                resource_type=kind,
                element=element,
                entry_index=index,
            )


@dataclass(frozen=True)
class Stale:
    """A resource of a partial document older than the version the stay already holds
    (both say when: ``meta.lastUpdated``): the stored one is kept."""

    ref: str | None  # "Type/id" as sent (None: it came without an id)
    held_ref: str  # "Type/id" as the stay holds it
    sent: str  # its meta.lastUpdated as sent
    held: str  # the meta.lastUpdated of the version the stay holds

    def sentence(self) -> str:
        return (
            f"{self.held_ref} was last updated {self.sent}, before the version already accepted "
            f"(last updated {self.held}): it is older than what we have, so it was neither "
            "stored nor re-scored"
        )


def _last_updated(resource: Resource) -> datetime | None:
    meta = resource.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, dict) else None
    stamp = parse_datetime(value) if isinstance(value, str) else None
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp


def merged(stay_doc: Resource, partial: Resource) -> tuple[Resource, list[Stale]]:
    """The stay's document with the partial document's resources merged in, and those
    it did not take because they are older than the version it holds ("the latest data
    decides": a stale version arriving after a newer one never replaces it). Without
    ``meta.lastUpdated`` on either side, arrival order decides: the later one wins."""
    entries = [dict(e) for e in stay_doc.get("entry") or [] if isinstance(e, dict)]
    by_key: dict[Any, int] = {}
    stale: list[Stale] = []
    for i, entry in enumerate(entries):
        for key in _keys(entry.get("fullUrl"), entry.get("resource") or {}):
            by_key.setdefault(key, i)
    for full_url, resource in resources_of(partial):
        hit = next((by_key[k] for k in _keys(full_url, resource) if k in by_key), None)
        if hit is None:
            entry = {"resource": resource}
            if full_url:
                entry["fullUrl"] = full_url
            for key in _keys(full_url, resource):
                by_key.setdefault(key, len(entries))
            entries.append(entry)
            continue
        old = entries[hit].get("resource") or {}
        sent, held = _last_updated(resource), _last_updated(old)
        if sent is not None and held is not None and sent < held:
            kind = resource.get("resourceType")
            sent_ref = f"{kind}/{resource['id']}" if resource.get("id") else None
            held_ref = f"{kind}/{old.get('id') or resource.get('id')}"
            stale.append(
                Stale(
                    sent_ref, held_ref, resource["meta"]["lastUpdated"], old["meta"]["lastUpdated"]
                )
            )
            continue
        replacement = dict(resource)
        if old.get("id"):
            replacement["id"] = old["id"]  # the stay's references name the stored id
        entries[hit] = {**entries[hit], "resource": replacement}
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, stale


def _keys(full_url: str | None, resource: Resource) -> Iterator[Any]:
    kind = resource.get("resourceType")
    if full_url:
        yield ("url", full_url)
    if resource.get("id"):
        yield ("ref", kind, str(resource["id"]))
    if kind in IDENTIFIED_KINDS:
        key = business_identifier(resource)
        if key:
            yield ("identity", kind, *key)


def stay_document(doc: Resource, encounter_resource_id: str, full_url: str | None) -> Resource:
    """What of a (completed) document is worth keeping for one stay: everything, unless
    it holds several patients; then the stay's patient's resources and those of no
    patient (Locations, Medications, Organizations)."""
    patients = sum(1 for _, r in resources_of(doc) if r.get("resourceType") == "Patient")
    if patients <= 1:
        return doc
    index = Document(doc, validate=False)
    encounter = next(
        (
            e
            for e in index.of_type("Encounter")
            if str(e.get("id") or "") == encounter_resource_id
            or (full_url and index.full_url(e) == full_url)
        ),
        None,
    )
    if encounter is None:
        return doc
    try:
        patient = index.resolve(encounter.get("subject"), encounter)
    except Exception:  # noqa: BLE001 - the document was mapped; an odd reference keeps it all
        return doc
    kept = []
    for entry in doc.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind == "Patient":
            if resource is patient:
                kept.append(entry)
            continue
        element = PATIENT_ELEMENT.get(str(kind))
        if element is None or not resource.get(element):
            kept.append(entry)
            continue
        try:
            owner = index.resolve(resource.get(element), resource)
        except Exception:  # noqa: BLE001 - unresolvable: not this stay's
            owner = None
        if owner is patient:
            kept.append(entry)
    return {**doc, "entry": kept}
