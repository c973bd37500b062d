"""Accepting a FHIR document: map, deduplicate, publish durably, remember.

The HTTP layer (``ingest.app``) only translates between HTTP and this service, so the
acceptance rules can be exercised without a web server: a document is either fully
handed to Kafka (and then remembered as accepted) or refused with nothing published.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from fhir_mappings.errors import FhirMappingError
from fhir_mappings.identity import ID_SYSTEM
from fhir_mappings.mapper import MappedEncounter, map_document, map_entries
from fhir_mappings.worklist_context import contexts_by_encounter
from ingest import metrics
from ingest.conditional import entry_lock_names, lock_names, matches, split_conditional
from ingest.entries import entry_problems
from ingest.event_log import EventLog
from ingest.history_store import DurableHistory
from ingest.late_data import (
    Stale,
    check_subjects,
    merged,
    stay_document,
    subject_keys,
    touched,
)
from ingest.publisher import EventPublisher
from ingest.resource_store import ResourceStore
from ingest.visit_identity import StoredIdentities, accepted_identities
from patient_state.store import AcceptedRow, Delivery, PatientStateStore, StayDocumentRow
from readmit_core.events import FeatureEvent, WorklistContext

log = logging.getLogger(__name__)


Outcome = Literal["published", "duplicate", "not-rescored"]


@dataclass(frozen=True)
class StayOutcome:
    """What happened to one index stay of a document."""

    encounter_id: str  # the visit's canonical id (where its score lives)
    resource_id: str  # the Encounter's id as this document named it
    full_url: str | None
    outcome: Outcome
    input_version: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Accepted:
    """What happened to a document: per index stay, and why nothing was re-scored."""

    stays: tuple[StayOutcome, ...] = ()
    note: str = ""  # a partial document that touched no stay within the window
    # resources older (meta.lastUpdated) than the version their stay holds: not taken
    stale: tuple[Stale, ...] = ()

    def is_stale(self, ref: str | None) -> bool:
        """Whether the resource sent as ``Type/id`` was older than what we have."""
        return ref is not None and any(s.ref == ref for s in self.stale)

    @property
    def published(self) -> tuple[str, ...]:
        return tuple(s.encounter_id for s in self.stays if s.outcome == "published")

    @property
    def duplicates(self) -> tuple[str, ...]:
        return tuple(s.encounter_id for s in self.stays if s.outcome == "duplicate")

    @property
    def not_rescored(self) -> tuple[StayOutcome, ...]:
        return tuple(s for s in self.stays if s.outcome == "not-rescored")

    def outcome_of(self, resource_id: str | None, full_url: str | None) -> StayOutcome | None:
        """The stay a request entry's Encounter became (by its id or fullUrl)."""
        for stay in self.stays:
            if (resource_id and resource_id in (stay.resource_id, stay.encounter_id)) or (
                full_url and full_url == stay.full_url
            ):
                return stay
        return None

    def summary(self) -> str:
        """One sentence for a single-resource response."""
        text = (
            f"Accepted; {len(self.published)} encounter(s) queued for scoring, "
            f"{len(self.duplicates)} already known with the same features"
        )
        for stay in self.not_rescored:
            text += f"; encounter {stay.encounter_id} not re-scored: {stay.reason}"
        if self.note:
            text += f"; {self.note}"
        for old in self.stale:
            text += f"; {old.sentence()}"
        return text


def to_event(m: MappedEncounter, context: WorklistContext | None = None) -> FeatureEvent:
    event = FeatureEvent(
        encounter_id=m.encounter_id,
        patient_id=m.patient_id,
        ward=m.ward,
        input_key=m.input_key,
        admitted_at=m.admitted_at,
        discharged_at=m.discharged_at,
        record=m.record,
        missing=m.missing,
        context=context,
    )
    return event.model_copy(update={"input_key": content_key(event)})


def content_key(event: FeatureEvent) -> str:
    """``<encounter>#sha256:<hash>`` of what the scorer and the worklist see (features,
    ward, worklist context, stay times): the same visit resent under new ids or with a
    new meta.versionId keeps its key; any change that matters gets a new one."""
    seen = event.model_dump(
        mode="json", exclude={"event_id", "emitted_at", "input_key", "input_version"}
    )
    digest = hashlib.sha256(orjson.dumps(seen, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{event.encounter_id}#sha256:{digest[:32]}"


@dataclass(frozen=True)
class _Touch:
    """What a partial document names: stays and patients (canonical ids), and the
    identity rows read to find them."""

    encounters: list[str]
    patients: list[str]
    known: dict[tuple[str, str, str], str]


@dataclass
class _Plan:
    """One mapped stay on its way: its event, and whether and how it is published."""

    mapped: MappedEncounter
    event: FeatureEvent
    outcome: Outcome
    reason: str = ""


class IngestService:
    def __init__(
        self,
        history: DurableHistory,
        publisher: EventPublisher,
        resources: ResourceStore,
        event_log: EventLog,
        state: PatientStateStore,
        *,
        rescore_window_s: float = 72 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.publisher = publisher
        self.resources = resources
        self.event_log = event_log
        self.state = state
        self.window_s = rescore_window_s
        self.clock = clock

    def accept(self, document: dict[str, Any]) -> Accepted:
        """Map a document and publish its new or changed index stays; raises typed errors.

        A stay is published when it is new, or when its features or worklist context
        changed and it was discharged within the re-score window (a new input version);
        the same content under new ids or versionIds is a duplicate. Order matters for
        at-least-once: publish first (waiting for acks), then mark as accepted, with
        where the broker stored each event. A crash between the two republishes on the
        client's retry, and the scorer's input_key deduplication absorbs the repeat.
        """
        return self._accept(document, lenient=False)[0]

    def _accept(
        self, document: dict[str, Any], *, lenient: bool
    ) -> tuple[Accepted, dict[int, FhirMappingError]]:
        """:meth:`accept`; ``lenient`` (a batch): entries the mapping refuses on their own
        are left out of everything accepted and returned by entry index."""
        now = self.clock()
        identities = StoredIdentities(self.state)
        complete = self.resources.complete(document)
        own = len(document.get("entry") or []) if document.get("resourceType") == "Bundle" else 1
        problems: dict[int, FhirMappingError] = {}
        if lenient:
            mapped, problems = map_entries(
                complete, history=self.history, identities=identities, own_entries=own
            )
            if problems:
                document = _without_entries(document, problems)
                complete = _without_entries(complete, problems)
        else:
            mapped = map_document(
                complete, history=self.history, identities=identities, own_entries=own
            )
        if self.resources.is_complete(document):
            return self._accept_mapped(document, complete, mapped, identities, now), problems
        # a late resource is a read-modify-write of its stays' documents: hold them from
        # the read (again, under the lock) until the merged documents are written back
        touch = self._touched(document, identities)
        rows = self._stay_rows(touch, now)
        with self.state.stays_locked([r.encounter_id for r in rows]):
            rows = self._stay_rows(touch, now)
            accepted = self._accept_mapped(
                document, complete, mapped, identities, now, (touch, rows)
            )
            return accepted, problems

    def _accept_mapped(
        self,
        document: dict[str, Any],
        complete: dict[str, Any],
        mapped: list[MappedEncounter],
        identities: StoredIdentities,
        now: float,
        stays: tuple[_Touch, list[StayDocumentRow]] | None = None,
    ) -> Accepted:
        """Plan, publish and remember (``stays``: what a partial document names and the
        kept stay documents it is merged into, read under their lock; None for a
        complete document)."""
        documents = {m.encounter_id: complete for m in mapped}
        note = ""
        stale: list[Stale] = []
        if stays is not None:
            touch, rows = stays
            mapped, note = self._with_stays(
                document, mapped, documents, identities, touch.known, rows, stale
            )
        contexts = _contexts(documents, mapped)
        plans = self._plan(mapped, contexts, now)
        fresh = [p for p in plans if p.outcome == "published"]
        acks = self.publisher.publish([p.event for p in fresh])
        self.history.remember(
            mapped,
            [
                (p.event, Delivery(p.event.input_key, ack.topic, ack.partition, ack.offset))
                for p, ack in zip(fresh, acks, strict=True)
            ],
            identities=accepted_identities(document, identities),
            documents=self._stay_documents(plans, documents, now),
            resources=self.resources.rows_to_keep(
                _without(document, {s.ref for s in stale if s.ref})
            ),
        )
        metrics.EVENTS_PUBLISHED.inc(len(fresh))
        metrics.DUPLICATES.inc(sum(p.outcome == "duplicate" for p in plans))
        log.info(
            "document accepted",
            extra={"encounters": len(mapped), "published": len(fresh)},
        )
        return Accepted(
            stays=tuple(
                StayOutcome(
                    p.mapped.encounter_id,
                    p.mapped.resource_id,
                    p.mapped.full_url,
                    p.outcome,
                    p.event.input_version,
                    p.reason,
                )
                for p in plans
            ),
            note=note if not plans else "",
            stale=tuple(stale),
        )

    # -- conditional create -------------------------------------------------------------
    def existing(self, resource_type: str, query: str, where: str) -> set[str]:
        """Ids of accepted resources matching an If-None-Exist query (ingest.conditional)."""
        return matches(self.state.search_identities, resource_type, query, where)

    def create_conditional(
        self, document: dict[str, Any], resource_type: str, condition: str
    ) -> tuple[Accepted | None, set[str]]:
        """``POST [type]`` with ``If-None-Exist``: (what was accepted, None when the
        search matched) and the ids it matched. The search and the create run under a
        lock on the searched tokens (PostgreSQL advisory locks, across workers and
        replicas): a concurrent create with the same search waits and then finds this
        one, so exactly one of them creates."""
        with self.state.serialised(lock_names(resource_type, condition)):
            found = self.existing(resource_type, condition, "If-None-Exist")
            if found:
                return None, found
            return self.accept(document), set()

    def accept_conditional(
        self,
        doc: dict[str, Any],
        *,
        atomic: bool,
        refused: dict[int, FhirMappingError] | None = None,
    ) -> tuple[Accepted, dict[int, FhirMappingError], dict[int, str]]:
        """A transaction (atomic) or batch with its ``ifNoneExist`` entries resolved first:
        (what was accepted, refused entries, ``{index: "Type/id"}`` of entries that matched
        an existing resource and were not created), indexes as in ``doc``. ``refused``:
        batch entries already refused by the caller (an ifMatch conflict), by index in
        ``doc``. Serialised on the entries' searches, as :meth:`create_conditional`."""
        with self.state.serialised(entry_lock_names(doc)):
            return self._accept_conditional(doc, atomic=atomic, refused=refused)

    def _accept_conditional(
        self,
        doc: dict[str, Any],
        *,
        atomic: bool,
        refused: dict[int, FhirMappingError] | None,
    ) -> tuple[Accepted, dict[int, FhirMappingError], dict[int, str]]:
        rest, existing, failures, kept = split_conditional(
            doc, self.state.search_identities, atomic=atomic
        )
        if atomic:
            return self.accept(rest), {}, existing
        position = {original: i for i, original in enumerate(kept)}
        already = {position[i]: e for i, e in (refused or {}).items() if i in position}
        accepted, batch_refused = self.accept_batch(rest, already)
        for index, exc in batch_refused.items():
            failures[kept[index]] = _renumbered(exc, kept[index])
        return accepted, failures, existing

    # -- late and corrected data --------------------------------------------------------
    def _touched(self, partial: dict[str, Any], identities: StoredIdentities) -> _Touch:
        """The stays and patients a partial document names, as canonical ids."""
        encounters, patients, identified = touched(partial)
        keys = [("Encounter", ID_SYSTEM, e) for e in encounters]
        keys += [("Encounter", s, v) for s, v in identified]
        keys += [("Patient", ID_SYSTEM, p) for p in patients]
        keys += subject_keys(partial)
        known = self.state.known_identities(keys) if keys else {}
        wanted_encounters = {known.get(k, k[2]) for k in keys if k[0] == "Encounter"}
        wanted_encounters |= {identities.encounter_of(e) for e in encounters}
        wanted_patients = {known.get(("Patient", ID_SYSTEM, p), p) for p in patients}
        return _Touch(sorted(wanted_encounters), sorted(wanted_patients), known)

    def _stay_rows(self, touch: _Touch, now: float) -> list[StayDocumentRow]:
        return self.state.stay_documents(
            encounter_ids=touch.encounters, patient_ids=touch.patients, now=now
        )

    def _with_stays(
        self,
        partial: dict[str, Any],
        mapped: list[MappedEncounter],
        documents: dict[str, dict[str, Any]],
        identities: StoredIdentities,
        known: dict[tuple[str, str, str], str],
        rows: list[StayDocumentRow],
        stale: list[Stale],
    ) -> tuple[list[MappedEncounter], str]:
        """The partial document mapped inside each kept stay document it touches (that
        mapping wins: it has the whole stay); a sentence when it touched none. Refuses
        a resource that names a stay of another patient than its own subject; lists in
        ``stale`` those older than the version their stay holds (not merged)."""
        for row in rows:
            check_subjects(partial, row.encounter_id, row.patient_id, known, identities)
        by_id = {m.encounter_id: m for m in mapped}
        for row in rows:
            whole, older = merged(orjson.loads(row.document_json), partial)
            stale.extend(o for o in older if o not in stale)
            for m in map_document(whole, history=self.history, identities=identities):
                if m.encounter_id == row.encounter_id:
                    by_id[m.encounter_id] = m
                    documents[m.encounter_id] = whole
        if rows or by_id:
            return list(by_id.values()), ""
        hours = self.window_s / 3600
        return list(by_id.values()), (
            f"it changes no stay discharged within the last {hours:g} h (the re-score window), "
            "so nothing was re-scored; it is kept for the patient's later stays"
        )

    def _plan(
        self,
        mapped: list[MappedEncounter],
        contexts: dict[str, WorklistContext],
        now: float,
    ) -> list[_Plan]:
        """New, changed-within-window, duplicate or not-re-scored, per stay."""
        latest = self.state.latest_accepted([m.encounter_id for m in mapped])
        plans = []
        for m in mapped:
            event = to_event(m, contexts.get(m.encounter_id))
            before = latest.get(m.encounter_id)
            if before is None:
                plans.append(_Plan(m, _versioned(event, 1), "published"))
            elif before.delivery.input_key == event.input_key:
                version = before.input_version or 1
                if self.event_log.holds(before.delivery):
                    plans.append(_Plan(m, _versioned(event, version), "duplicate"))
                else:
                    metrics.REPUBLISHED_LOST.inc()
                    log.warning("accepted event missing from the broker; publishing the resend")
                    plans.append(_Plan(m, _versioned(event, version), "published"))
            else:
                since = _discharge_time(m, before)
                if now - since <= self.window_s:
                    plans.append(_Plan(m, _versioned(event, before.input_version + 1), "published"))
                else:
                    hours = self.window_s / 3600
                    reason = (
                        f"discharged {(now - since) / 3600:.0f} h ago, outside the {hours:g} h "
                        "re-score window; the change is stored for later stays"
                    )
                    plans.append(_Plan(m, event, "not-rescored", reason))
        return plans

    def _stay_documents(
        self, plans: list[_Plan], documents: dict[str, dict[str, Any]], now: float
    ) -> list[StayDocumentRow]:
        """The documents of stays still inside the re-score window, kept until it ends."""
        rows = []
        for p in plans:
            m = p.mapped
            ends = (m.discharged_at.timestamp() if m.discharged_at else now) + self.window_s
            doc = documents.get(m.encounter_id)
            if ends <= now or doc is None or p.outcome == "not-rescored":
                continue
            kept = stay_document(doc, m.resource_id, m.full_url)
            rows.append(
                StayDocumentRow(m.encounter_id, m.patient_id, orjson.dumps(kept).decode(), ends)
            )
        return rows

    def accept_batch(
        self, doc: dict[str, Any], refused: dict[int, FhirMappingError] | None = None
    ) -> tuple[Accepted, dict[int, FhirMappingError]]:
        """A batch's entries stand alone: refuse the invalid ones, accept the rest.

        Each entry is checked once on its own (http rules, FHIR validation), then the
        rest is mapped once, leniently (``map_entries``): an entry with a reference
        problem, and an index stay that cannot be mapped with the entries belonging to
        it, are refused alone. The cost stays linear however many entries are bad; only
        an error that names no entry refuses the whole batch.
        """
        entries = doc.get("entry") or []
        failures = {**(refused or {}), **entry_problems(doc)}  # e.g. ifMatch conflicts
        remaining = [i for i in range(len(entries)) if i not in failures]
        accepted, problems = self._accept(
            {**doc, "entry": [entries[i] for i in remaining]}, lenient=True
        )
        for index, exc in problems.items():
            failures[remaining[index]] = _renumbered(exc, remaining[index])
        return accepted, dict(sorted(failures.items()))


def _renumbered(exc: FhirMappingError, index: int) -> FhirMappingError:
    """The error of an entry of a sub-Bundle, named by its index in the Bundle sent."""
    if exc.entry_index is not None and exc.entry_index != index:
        was, now = f"Bundle.entry[{exc.entry_index}]", f"Bundle.entry[{index}]"
        exc.message = exc.message.replace(was, now)
        exc.element = exc.element.replace(was, now) if exc.element else exc.element
    exc.entry_index = index
    return exc


def _without_entries(doc: dict[str, Any], refused: dict[int, FhirMappingError]) -> dict[str, Any]:
    """The Bundle without the refused entries (by index)."""
    entries = doc.get("entry") or []
    return {**doc, "entry": [e for i, e in enumerate(entries) if i not in refused]}


def _without(document: dict[str, Any], refs: set[str]) -> dict[str, Any]:
    """The document without the resources sent as ``refs`` (``Type/id``)."""
    if not refs:
        return document
    if document.get("resourceType") != "Bundle":
        ref = f"{document.get('resourceType')}/{document.get('id')}"
        return {"resourceType": "Bundle", "type": "collection"} if ref in refs else document
    kept = [
        e
        for e in document.get("entry") or []
        if not (
            isinstance(e, dict)
            and isinstance(e.get("resource"), dict)
            and f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}" in refs
        )
    ]
    return {**document, "entry": kept}


def _versioned(event: FeatureEvent, version: int) -> FeatureEvent:
    return event.model_copy(update={"input_version": version})


def _discharge_time(m: MappedEncounter, before: AcceptedRow) -> float:
    """When the stay ended, for the window: its (corrected) period.end, else the one
    accepted before, else when that version was accepted."""
    if isinstance(m.discharged_at, datetime):
        return m.discharged_at.timestamp()
    return before.discharged_at if before.discharged_at is not None else before.accepted_at


def _contexts(
    documents: dict[str, dict[str, Any]], mapped: list[MappedEncounter]
) -> dict[str, WorklistContext]:
    """Each stay's worklist context, from the document it was mapped from (keyed there
    by the Encounter's own id, here by the visit's canonical id)."""
    out: dict[str, WorklistContext] = {}
    by_doc: dict[int, dict[str, WorklistContext]] = {}
    for m in mapped:
        doc = documents[m.encounter_id]
        contexts = by_doc.get(id(doc))
        if contexts is None:
            contexts = by_doc[id(doc)] = contexts_by_encounter(doc)
        found = contexts.get(m.resource_id)
        if found is not None:
            out[m.encounter_id] = found
    return out
