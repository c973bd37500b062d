"""Resources that arrive on their own, kept until the rest of the stay arrives.

Interface engines rarely send a whole stay in one Bundle: a Patient comes at
registration, Conditions and Observations during the stay, the finished Encounter at
discharge, sometimes a late lab after it. The ingest API keeps such loose resources
per patient, and completes each incoming document with them before mapping, so a
loose Encounter that points at ``Patient/123`` gets the demographics sent a week
earlier, and a late Observation re-scores its (already finished) stay.

What is kept, to bound memory: every Patient (small, needed to resolve later
references), and every clinical resource that arrived outside a complete Bundle (one
holding its own Patient). They are kept in the state database (``patient_state``,
table ``loose_resource``, one row per patient and ``Type/id``), so a Redis flush cannot
strip a discharge of the demographics sent a week earlier: Patients for
READMIT_HISTORY_TTL_SECONDS, clinical resources for READMIT_SCORE_TTL_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from fhir_mappings.references import reference_target
from patient_state.store import PatientStateStore, ResourceRow

Resource = dict[str, Any]

# where each kept resource type names its patient
PATIENT_ELEMENT = {
    "Encounter": "subject",
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "MedicationAdministration": "subject",
    "Procedure": "subject",
    "Coverage": "beneficiary",
}


def resources_of(doc: Resource) -> Iterator[tuple[str | None, Resource]]:
    """(fullUrl, resource) for a Bundle's entries, or the loose resource itself."""
    if doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry") or []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield entry.get("fullUrl"), entry["resource"]
    else:
        yield None, doc


def _patient_id(resource: Resource, urls: dict[str, str]) -> str | None:
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return str(rid) if rid else None
    element = PATIENT_ELEMENT.get(str(resource.get("resourceType")))
    ref = (resource.get(element) or {}).get("reference") if element else None
    if not isinstance(ref, str):
        return None
    if ref.startswith("urn:uuid:"):
        return urls.get(ref)
    target = reference_target(ref)
    return target[1] if target and target[0] == "Patient" else None


class ResourceStore:
    def __init__(self, store: PatientStateStore, ttl_s: int, patient_ttl_s: int) -> None:
        self._store = store
        self._ttl = ttl_s
        self._patient_ttl = patient_ttl_s

    @staticmethod
    def _index(doc: Resource) -> tuple[list[tuple[str, Resource]], bool]:
        """(patient_id, resource) pairs worth keeping, and whether the doc is complete."""
        entries = list(resources_of(doc))
        urls = {
            url: str(res["id"])
            for url, res in entries
            if url and res.get("resourceType") == "Patient" and res.get("id")
        }
        complete = doc.get("resourceType") == "Bundle" and bool(urls or any(
            res.get("resourceType") == "Patient" for _, res in entries
        ))  # fmt: skip
        kept = []
        for _, res in entries:
            pid = _patient_id(res, urls)
            if pid and res.get("id"):
                kept.append((pid, res))
        return kept, complete

    @classmethod
    def is_complete(cls, doc: Resource) -> bool:
        """A Bundle holding its own Patient: mapped as it is, never merged into anything."""
        return cls._index(doc)[1]

    def complete(self, doc: Resource) -> Resource:
        """The document plus what was kept for its patients (the document's own copy wins)."""
        kept, complete = self._index(doc)
        if complete or not kept:
            return doc
        patients = sorted({pid for pid, _ in kept})
        present = {f"{r.get('resourceType')}/{r.get('id')}" for _, r in resources_of(doc)}
        extra = [
            orjson.loads(row.resource_json)
            for row in self._store.resources(patients)
            if row.ref not in present
        ]
        if not extra:
            return doc
        # the document's own entries stay as they are (fullUrls for urn:uuid references,
        # positions for error messages); what was kept is appended
        if doc.get("resourceType") == "Bundle":
            return {**doc, "entry": [*(doc.get("entry") or []), *({"resource": r} for r in extra)]}
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": doc}] + [{"resource": r} for r in extra],
        }

    def rows_to_keep(self, doc: Resource) -> list[ResourceRow]:
        """The document's Patients, and all of it when it was not a complete Bundle, as
        rows to keep (written with the document's history, in its one transaction)."""
        kept, complete = self._index(doc)
        if not kept:
            return []
        now = time.time()
        rows = []
        for pid, res in kept:
            is_patient = res.get("resourceType") == "Patient"
            if complete and not is_patient:
                continue
            rows.append(
                ResourceRow(
                    patient_id=pid,
                    ref=f"{res['resourceType']}/{res['id']}",
                    is_patient=is_patient,
                    resource_json=orjson.dumps(res).decode(),
                    expires_at=now + (self._patient_ttl if is_patient else self._ttl),
                )
            )
        return rows
