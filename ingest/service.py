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
from fhir_mappings.worklist_context import WorklistContext, contexts_by_encounter
from ingest import metrics
from ingest.entries import entry_problems
from ingest.history_store import RedisHistory
from ingest.publisher import EventPublisher
from ingest.resource_store import ResourceStore
from readmit.events import FeatureEvent

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
        self, history: RedisHistory, publisher: EventPublisher, resources: ResourceStore
    ) -> None:
        self.history = history
        self.publisher = publisher
        self.resources = resources

    def accept(self, document: dict[str, Any]) -> Accepted:
        """Map a document and publish its new index encounters; raises typed errors.

        Order matters for at-least-once: publish first (waiting for acks), then mark as
        accepted. A crash between the two republishes on the client's retry, and the
        scorer's input_key deduplication absorbs the repeat.
        """
        complete = self.resources.complete(document)
        mapped = map_document(complete, history=self.history)
        seen = self.history.accepted([m.input_key for m in mapped])
        fresh = [m for m, dup in zip(mapped, seen, strict=True) if not dup]
        contexts = contexts_by_encounter(complete) if fresh else {}
        self.publisher.publish([to_event(m, contexts.get(m.encounter_id)) for m in fresh])
        self.history.remember(mapped)
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

    def accept_batch(self, doc: dict[str, Any]) -> tuple[Accepted, dict[int, FhirMappingError]]:
        """A batch's entries stand alone: refuse the invalid ones, accept the rest.

        Each entry is checked once on its own (http rules, FHIR validation), so the cost
        is linear in entries however many are bad. An error the whole-document mapping
        still pins on one entry (``entry_index``) takes that entry out and maps the rest
        again; errors that name no entry (a missing Patient, an unresolvable reference)
        refuse the whole batch.
        """
        entries = doc.get("entry") or []
        failures = entry_problems(doc)
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
