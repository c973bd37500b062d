"""Versions of the resources written through the FHIR API (``meta.versionId``, ETag).

A FHIR server gives each logical id a version that grows with every change, and says
so in ``ETag: W/"n"``, ``Last-Modified`` and ``Location: [base]/[type]/[id]/_history/n``
(and in a transaction/batch response entry's ``etag``, ``lastModified``, ``location``).
This receiver keeps no copy to read back, only the version: one row per ``Type/id`` in
the state database (``patient_state``, table ``resource_version``), beside the loose
resources it keeps, so versions survive restarts and are shared by every replica.

An identical resend (same content, ``meta`` aside) makes no new version: interface
engines resend, and a resend is not a change. The version is recorded only after the
document was accepted (its events acknowledged by the broker): a refused write leaves
no version behind.

``If-Match`` is checked against the stored version before anything is published. No
lock is held across the broker's acknowledgement, so two writers sending the same
``If-Match`` at the same moment can both pass; each still gets its own version.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import orjson

from fhir_mappings.errors import FhirMappingError, InvalidEntry, VersionConflict
from patient_state.store import PatientStateStore

Resource = dict[str, Any]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


@dataclass(frozen=True)
class Stamp:
    """What a write did to one resource's version."""

    ref: str  # "Type/id"
    version_id: int
    last_modified: float
    created: bool  # this write made the resource's first version
    changed: bool  # this write made a new version (False: an identical resend)

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def location(self) -> str:
        """``Type/id/_history/n`` (relative to the FHIR base)."""
        return f"{self.ref}/_history/{self.version_id}"

    @property
    def http_date(self) -> str:
        return formatdate(self.last_modified, usegmt=True)

    @property
    def instant(self) -> str:
        """``lastModified`` / ``meta.lastUpdated`` as a FHIR instant."""
        when = datetime.fromtimestamp(self.last_modified, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def stamped(self, resource: Resource) -> Resource:
        """The resource as this version (``meta.versionId``, ``meta.lastUpdated``)."""
        meta = {**(resource.get("meta") or {})}
        meta.update(versionId=str(self.version_id), lastUpdated=self.instant)
        return {**resource, "meta": meta}


def ref_of(resource: Resource) -> str | None:
    """``Type/id`` of a resource that carries an id (None: nothing to version)."""
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid}" if rid else None


def content_hash(resource: Resource) -> str:
    """What makes a version: the resource without the ``meta`` the server assigns."""
    meta = {
        k: v
        for k, v in (resource.get("meta") or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    body = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        body["meta"] = meta
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_etag(value: str) -> int | None:
    """The version an ``If-Match`` value names (``W/"3"``, ``"3"`` or ``3``), else None."""
    match = _ETAG.match(value)
    return int(match.group(1)) if match else None


class ResourceVersions:
    def __init__(self, store: PatientStateStore) -> None:
        self._store = store

    def conflicts(
        self, wanted: Iterable[tuple[int | None, str, str]]
    ) -> dict[int | None, FhirMappingError]:
        """For each (entry index, ``Type/id``, If-Match value): the refusal when the value
        is not the resource's current version (one read for all of them)."""
        wanted = list(wanted)
        current = self._store.versions([ref for _, ref, _ in wanted])
        refused: dict[int | None, FhirMappingError] = {}
        for index, ref, value in wanted:
            where = f"Bundle.entry[{index}].request.ifMatch" if index is not None else "If-Match"
            version = parse_etag(value)
            if version is None:
                refused[index] = InvalidEntry(
                    f'{where}: {value!r} is not a version ETag (W/"n")',
                    element=where,
                    entry_index=index,
                )
                continue
            row = current.get(ref)
            if row is None or row.version_id != version:
                now = f"is at version {row.version_id}" if row else "has no version yet"
                refused[index] = VersionConflict(
                    f"{where}: {ref} {now}, not {version}; nothing was written",
                    element=where,
                    entry_index=index,
                )
        return refused

    def record(
        self, resources: Iterable[Resource], canonical: Mapping[str, str] | None = None
    ) -> dict[str, Stamp]:
        """Record the accepted write of each resource with an id; its stamp by ``Type/id``
        as sent. ``canonical`` maps a sent ``Type/id`` to the one it is versioned under:
        an Encounter resent under a new id is its visit (``ingest.visit_identity``), so
        it is a version of the visit's canonical id, compared with the id replaced (an
        identical resend under a new id keeps the version)."""
        aliases = canonical or {}
        contents: dict[str, str] = {}
        sent: dict[str, list[str]] = {}  # versioned ref -> the refs that named it
        for resource in resources:
            ref = ref_of(resource)
            if ref is None:
                continue
            target = aliases.get(ref, ref)
            body = resource if target == ref else {**resource, "id": target.partition("/")[2]}
            contents[target] = content_hash(body)
            sent.setdefault(target, []).append(ref)
        write_id = uuid.uuid4().hex
        rows = self._store.write_versions(list(contents.items()), write_id, time.time())
        stamps: dict[str, Stamp] = {}
        for target, row in rows.items():
            stamp = Stamp(
                ref=target,
                version_id=row.version_id,
                last_modified=row.last_modified,
                created=row.write_id == write_id and row.version_id == 1,
                changed=row.write_id == write_id,
            )
            for ref in sent.get(target, [target]):
                stamps[ref] = stamp
        return stamps

    def current(self, refs: Iterable[str]) -> dict[str, Stamp]:
        """The current version of each ``Type/id`` that has one (nothing is written):
        what a conditional create that matched an existing resource answers."""
        return {
            ref: Stamp(ref, row.version_id, row.last_modified, created=False, changed=False)
            for ref, row in self._store.versions(list(refs)).items()
        }
