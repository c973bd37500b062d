"""Resources that arrive on their own, kept until the rest of the stay arrives.

Interface engines rarely send a whole stay in one Bundle: a Patient comes at
registration, Conditions and Observations during the stay, the finished Encounter at
discharge, sometimes a late lab after it. The ingest API keeps such loose resources
per patient, and completes each incoming document with them before mapping, so a
loose Encounter that points at ``Patient/123`` gets the demographics sent a week
earlier, and a late Observation re-scores its (already finished) stay.

What is kept, to bound memory: every Patient (small, needed to resolve later
references), and every clinical resource that arrived outside a complete Bundle (one
holding its own Patient). Keys (hash ``Type/id`` → resource JSON):
``{p}patient-res:{patient_id}`` expires after READMIT_HISTORY_TTL_SECONDS,
``{p}loose-res:{patient_id}`` after READMIT_SCORE_TTL_SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import redis

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
    kind, _, rid = ref.rstrip("/").rpartition("/")
    return rid if kind.endswith("Patient") and rid else None


class ResourceStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int, patient_ttl_s: int) -> None:
        self._r = client
        self._p = prefix
        self._ttl = ttl_s
        self._patient_ttl = patient_ttl_s

    def _keys(self, patient_id: str) -> tuple[str, str]:
        """(Patient resource key, loose clinical resources key): they expire differently."""
        return f"{self._p}patient-res:{patient_id}", f"{self._p}loose-res:{patient_id}"

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

    def complete(self, doc: Resource) -> Resource:
        """The document plus what was kept for its patients (the document's own copy wins)."""
        kept, complete = self._index(doc)
        if complete or not kept:
            return doc
        patients = sorted({pid for pid, _ in kept})
        present = {f"{r.get('resourceType')}/{r.get('id')}" for _, r in resources_of(doc)}
        pipe = self._r.pipeline(transaction=False)
        for pid in patients:
            for key in self._keys(pid):
                pipe.hgetall(key)
        extra = [
            orjson.loads(raw)
            for stored in pipe.execute()
            for ref, raw in stored.items()
            if ref.decode() not in present
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

    def remember(self, doc: Resource) -> None:
        """Keep the document's Patients, and all of it when it was not a complete Bundle."""
        kept, complete = self._index(doc)
        if not kept:
            return
        pipe = self._r.pipeline(transaction=False)
        for pid, res in kept:
            is_patient = res.get("resourceType") == "Patient"
            if complete and not is_patient:
                continue
            patient_key, loose_key = self._keys(pid)
            key = patient_key if is_patient else loose_key
            pipe.hset(key, f"{res['resourceType']}/{res['id']}", orjson.dumps(res))
            pipe.expire(key, self._patient_ttl if is_patient else self._ttl)
        pipe.execute()
