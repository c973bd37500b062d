"""What the system remembers about patients between documents: durable, in the database.

Prior-year utilisation (``number_outpatient/emergency/inpatient``) and the history
features (``prior_encounters``) need encounters that arrived in earlier documents.
The ingest API remembers, per patient, every encounter it has seen (a small summary)
and every index encounter's feature record; the mapper reads them back through the
``EncounterHistory`` protocol. It also remembers which encounter versions it accepted
(idempotency) and where Kafka stored each, so a resend is refused as a duplicate only
while the broker still holds the event.

All of it lives in the state database (``patient_state``: PostgreSQL, SQLite in the
embedded run), not in Redis: a Redis flush or outage cannot change a later score. The mapper
reads a document's patients in one round trip (``for_patients``). A
cache in front of these primary-key lookups would save about a millisecond per
document (ingest spends tens validating FHIR) at the price of a second copy that can
disagree with the record a score depends on, so there is none.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

import orjson

from fhir_mappings.mapper import MappedEncounter
from fhir_mappings.prior_visits import PriorStay, VisitSummary, admission_order
from patient_state.store import (
    AcceptedRow,
    Delivery,
    IdentityRow,
    PatientStateStore,
    ResourceRow,
    StayDocumentRow,
    StayRow,
    VisitRow,
)
from readmit_core.events import FeatureEvent
from readmit_core.features import FeatureRecord


def _visit_row(v: VisitSummary) -> VisitRow:
    return VisitRow(
        patient_id=v.patient_id,
        encounter_id=v.encounter_id,
        class_code=v.class_code,
        start_at=v.start.isoformat(),
        end_at=v.end.isoformat() if v.end else None,
        is_index=v.is_index,
    )


def _visit(row: VisitRow) -> VisitSummary:
    return VisitSummary(
        encounter_id=row.encounter_id,
        patient_id=row.patient_id,
        class_code=row.class_code,
        start=datetime.fromisoformat(row.start_at),
        end=datetime.fromisoformat(row.end_at) if row.end_at else None,
        is_index=row.is_index,
    )


class HistorySnapshot:
    """The history of a few patients, read in one round trip (``EncounterHistory``)."""

    def __init__(self, visits: Sequence[VisitRow], stays: Sequence[StayRow]) -> None:
        self._visits: dict[str, list[VisitSummary]] = defaultdict(list)
        for row in visits:
            self._visits[row.patient_id].append(_visit(row))
        self._stays: dict[str, list[StayRow]] = defaultdict(list)
        for stay in stays:
            self._stays[stay.patient_id].append(stay)

    def prior_visits(self, patient_id: str) -> list[VisitSummary]:
        return list(self._visits.get(patient_id, ()))

    def prior_index_records(self, patient_id: str, before: datetime) -> list[PriorStay]:
        return _prior_stays(self._stays.get(patient_id, ()), before)


def _prior_stays(stays: Iterable[StayRow], before: datetime) -> list[PriorStay]:
    out: list[PriorStay] = []
    for stay in stays:
        admitted = datetime.fromisoformat(stay.admitted_at)
        if admitted < before:
            record = FeatureRecord.model_validate(orjson.loads(stay.record_json))
            out.append(PriorStay(admitted, record))
    return sorted(out, key=admission_order)


class DurableHistory:
    """Database-backed ``EncounterHistory`` plus the ingest idempotency records."""

    def __init__(self, store: PatientStateStore) -> None:
        self._store = store

    # -- EncounterHistory -------------------------------------------------------------
    def prior_visits(self, patient_id: str) -> list[VisitSummary]:
        return [_visit(v) for v in self._store.visits(patient_id)]

    def prior_index_records(self, patient_id: str, before: datetime) -> list[PriorStay]:
        return _prior_stays(self._store.stays(patient_id), before)

    def for_patients(self, patient_ids: Sequence[str]) -> HistorySnapshot:
        """``BatchedHistory``: one round trip for every patient of a document."""
        return HistorySnapshot(*self._store.histories(patient_ids))

    # -- idempotency and remembering ----------------------------------------------------
    def deliveries(self, input_keys: Sequence[str]) -> dict[str, Delivery]:
        """Accepted versions among ``input_keys`` and where the broker stored each."""
        return self._store.deliveries(input_keys)

    def remember(
        self,
        mapped: Sequence[MappedEncounter],
        published: Sequence[tuple[FeatureEvent, Delivery]],
        *,
        identities: Sequence[IdentityRow] = (),
        documents: Sequence[StayDocumentRow] = (),
        resources: Sequence[ResourceRow] = (),
    ) -> None:
        """The documents' visits and index records, the versions just published, the
        accepted resources' identities, the kept stay documents and loose resources.

        Called only after the broker acknowledged ``published``: an accepted marker
        never exists for an event Kafka did not take.
        """
        now = time.time()
        self._store.remember(
            visits=[_visit_row(v) for m in mapped for v in m.visits],
            stays=[
                StayRow(
                    m.patient_id,
                    m.encounter_id,
                    m.admitted_at.isoformat(),
                    orjson.dumps(m.record.columns()).decode(),
                )
                for m in mapped
                if m.admitted_at is not None
            ],
            accepted=[
                AcceptedRow(
                    delivery=delivery,
                    encounter_id=event.encounter_id,
                    patient_id=event.patient_id,
                    event_json=event.to_bytes().decode(),
                    accepted_at=now,
                    input_version=event.input_version or 0,
                    discharged_at=event.discharged_at.timestamp() if event.discharged_at else None,
                )
                for event, delivery in published
            ],
            identities=identities,
            documents=documents,
            resources=resources,
        )
