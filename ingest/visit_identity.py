"""Visit and patient identity kept in the state database (rules: fhir_mappings.identity).

:class:`StoredIdentities` answers the mapper's question "which visit is this
Encounter, which patient this Patient" from ``resource_identity``: a business key seen
before names the id it was first sent under; an unknown one claims this document's id.
A resend needs one read; only new keys cost a write, which is done before anything is
published, so two sends of one visit racing each other still agree on its id (the
first claim wins). Claims are not acceptances: :func:`accepted_identities` lists the
rows to mark accepted once the broker has the events, and only those count for
conditional create (``If-None-Exist``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_mappings.identity import ID_SYSTEM, IdentityClaim, own_id
from ingest.resource_store import resources_of
from patient_state.store import IdentityRow, PatientStateStore

Key = tuple[str, str, str]  # (kind, system, value)


class StoredIdentities:
    """One request's view of the identity table (the mapper's ``VisitIdentities``)."""

    def __init__(self, store: PatientStateStore) -> None:
        self._store = store
        self.canonical: dict[tuple[str, str], str] = {}  # (kind, local id) -> canonical

    def canonical_ids(self, claims: Sequence[IdentityClaim]) -> list[str]:
        keys: list[Key] = []
        for c in claims:
            keys.append((c.kind, *c.key))
            if c.has_id:
                keys.append((c.kind, ID_SYSTEM, c.local_id))
        known = self._store.known_identities(keys)
        wanted: list[IdentityRow] = []
        for c in claims:
            alias: Key = (c.kind, ID_SYSTEM, c.local_id)
            # a business key names its visit; an id already known keeps its visit when
            # the sender adds or corrects the identifier (same resource, same visit)
            cid = known.get((c.kind, *c.key)) or (known.get(alias) if c.has_id else None)
            cid = cid or c.local_id
            wanted.append(IdentityRow(c.kind, c.key[0], c.key[1], cid))
            if c.has_id and alias[1:] != c.key:
                wanted.append(IdentityRow(c.kind, ID_SYSTEM, c.local_id, cid))
        missing = [r for r in wanted if (r.kind, r.system, r.value) not in known]
        if missing:
            known.update(self._store.claim_identities(missing))
        out = []
        for c in claims:
            cid = known.get((c.kind, *c.key), c.local_id)
            self.canonical[(c.kind, c.local_id)] = cid
            out.append(cid)
        return out

    def encounter_of(self, local_id: str) -> str:
        """The canonical id of an Encounter this request resolved (else the id itself)."""
        return self.canonical.get(("Encounter", local_id), local_id)


def accepted_identities(
    document: dict[str, Any], identities: StoredIdentities
) -> list[IdentityRow]:
    """Every id and identifier of the document's resources, naming the canonical id
    (Encounters, Patients) or the resource's own id: what conditional create searches."""
    rows: list[IdentityRow] = []
    for _, resource in resources_of(document):
        kind = str(resource.get("resourceType") or "")
        own = own_id(resource)
        target = identities.canonical.get((kind, own), own) if own else None
        if not kind or target is None:
            continue
        if resource.get("id"):
            rows.append(IdentityRow(kind, ID_SYSTEM, str(resource["id"]), target))
        for ident in resource.get("identifier") or ():
            if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
                system = ident.get("system")
                rows.append(
                    IdentityRow(
                        kind, system if isinstance(system, str) else "", ident["value"], target
                    )
                )
    return rows
