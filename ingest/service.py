"""Accepting a FHIR document: map, deduplicate, publish durably, remember.

The HTTP layer (``ingest.app``) only translates between HTTP and this service, so the
acceptance rules can be exercised without a web server: a document is either fully
handed to Kafka (and then remembered as accepted) or refused with nothing published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fhir_mappings.errors import FhirMappingError
from fhir_mappings.mapper import MappedEncounter, map_document
from fhir_mappings.worklist_context import contexts_by_encounter
from ingest import metrics
from ingest.entries import entry_problems
from ingest.event_log import EventLog
from ingest.history_store import DurableHistory
from ingest.publisher import EventPublisher
from ingest.resource_store import ResourceStore
from patient_state.store import Delivery
from readmit_core.events import FeatureEvent, WorklistContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """What happened to a document: encounters published and those already known."""

    published: tuple[str, ...]
    duplicates: tuple[str, ...]


def to_event(m: MappedEncounter, context: WorklistContext | None = None) -> FeatureEvent:
    return FeatureEvent(
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


class IngestService:
    def __init__(
        self,
        history: DurableHistory,
        publisher: EventPublisher,
        resources: ResourceStore,
        event_log: EventLog,
    ) -> None:
        self.history = history
        self.publisher = publisher
        self.resources = resources
        self.event_log = event_log

    def _already_accepted(self, mapped: list[MappedEncounter]) -> list[bool]:
        """Which encounter versions were accepted and are still in the broker's log.

        A version whose event the broker lost (an embedded memory broker restarted) is
        published again: the EHR's resend is the only copy left.
        """
        known = self.history.deliveries([m.input_key for m in mapped])
        seen = []
        for m in mapped:
            delivery = known.get(m.input_key)
            held = delivery is not None and self.event_log.holds(delivery)
            if delivery is not None and not held:
                metrics.REPUBLISHED_LOST.inc()
                log.warning("accepted event missing from the broker; publishing the resend")
            seen.append(held)
        return seen

    def accept(self, document: dict[str, Any]) -> Accepted:
        """Map a document and publish its new index encounters; raises typed errors.

        Order matters for at-least-once: publish first (waiting for acks), then mark as
        accepted, with where the broker stored each event. A crash between the two
        republishes on the client's retry, and the scorer's input_key deduplication
        absorbs the repeat.
        """
        complete = self.resources.complete(document)
        mapped = map_document(complete, history=self.history)
        seen = self._already_accepted(mapped)
        fresh = [m for m, dup in zip(mapped, seen, strict=True) if not dup]
        contexts = contexts_by_encounter(complete) if fresh else {}
        events = [to_event(m, contexts.get(m.encounter_id)) for m in fresh]
        acks = self.publisher.publish(events)
        self.history.remember(
            mapped,
            [
                (ev, Delivery(ev.input_key, ack.topic, ack.partition, ack.offset))
                for ev, ack in zip(events, acks, strict=True)
            ],
        )
        self.resources.remember(document)
        metrics.EVENTS_PUBLISHED.inc(len(fresh))
        metrics.DUPLICATES.inc(len(mapped) - len(fresh))
        log.info(
            "document accepted",
            extra={"encounters": len(mapped), "published": len(fresh)},
        )
        return Accepted(
            published=tuple(m.encounter_id for m in fresh),
            duplicates=tuple(m.encounter_id for m, dup in zip(mapped, seen, strict=True) if dup),
        )

    def accept_batch(
        self, doc: dict[str, Any], refused: dict[int, FhirMappingError] | None = None
    ) -> tuple[Accepted, dict[int, FhirMappingError]]:
        """A batch's entries stand alone: refuse the invalid ones, accept the rest.

        Each entry is checked once on its own (http rules, FHIR validation), so the cost
        is linear in entries however many are bad. An error the whole-document mapping
        still pins on one entry (``entry_index``) takes that entry out and maps the rest
        again; errors that name no entry (a missing Patient, an unresolvable reference)
        refuse the whole batch.
        """
        entries = doc.get("entry") or []
        failures = {**(refused or {}), **entry_problems(doc)}  # e.g. ifMatch conflicts
        remaining = [i for i in range(len(entries)) if i not in failures]
        while True:
            try:
                return self.accept({**doc, "entry": [entries[i] for i in remaining]}), failures
            except FhirMappingError as exc:
                index = exc.entry_index
                if index is None or index >= len(remaining):
                    raise
                failures[remaining[index]] = exc
                exc.entry_index = remaining.pop(index)
