"""What the system has seen of a patient before: the source of prior utilisation.

The mapper counts a patient's outpatient, emergency and inpatient encounters of the
365 days before admission from two places: the document itself, and an
:class:`EncounterHistory` holding encounters of earlier documents. Production keeps
that history in Redis (``ingest``); tests and the CLI use :class:`InMemoryHistory`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from readmit_core.features import FeatureRecord

if TYPE_CHECKING:
    from fhir_mappings.mapper import MappedEncounter


@dataclass(frozen=True)
class VisitSummary:
    """One encounter reduced to what prior-utilisation counting needs."""

    encounter_id: str
    patient_id: str
    class_code: str  # v3-ActCode: IMP/ACUTE/NONAC/AMB/EMER/...
    start: datetime
    end: datetime | None
    is_index: bool


@dataclass(frozen=True)
class PriorStay:
    """An earlier index encounter: when it was admitted and its feature record."""

    admitted_at: datetime
    record: FeatureRecord


def admission_order(stay: PriorStay) -> tuple[datetime, str]:
    """Oldest first; stays admitted at the same moment in encounter-id order, as training
    orders a patient's rows."""
    return stay.admitted_at, stay.record.encounter_id


class EncounterHistory(Protocol):
    """Read access to encounters of earlier documents, per patient."""

    def prior_visits(self, patient_id: str) -> list[VisitSummary]:
        """Every encounter seen for the patient (any class, any time)."""
        ...

    def prior_index_records(self, patient_id: str, before: datetime) -> list[PriorStay]:
        """The patient's index encounters admitted before ``before``, oldest first."""
        ...


@runtime_checkable
class BatchedHistory(EncounterHistory, Protocol):
    """A history that reads several patients at once: the mapper asks it once per
    document for every patient the document names, then reads that snapshot (one
    database round trip per document instead of two or three per index encounter)."""

    def for_patients(self, patient_ids: Sequence[str]) -> EncounterHistory:
        """The history of ``patient_ids`` as one read."""
        ...


class InMemoryHistory:
    """A process-local :class:`EncounterHistory` (tests, CLI, parity)."""

    def __init__(self) -> None:
        self._visits: dict[str, dict[str, VisitSummary]] = defaultdict(dict)
        self._records: dict[str, dict[str, tuple[datetime | None, FeatureRecord]]] = defaultdict(
            dict
        )

    def remember_visits(self, visits: tuple[VisitSummary, ...] | list[VisitSummary]) -> None:
        for visit in visits:
            self._visits[visit.patient_id][visit.encounter_id] = visit

    def remember(self, mapped: MappedEncounter) -> None:
        """Store a mapped encounter's visits and its record (as an earlier index stay)."""
        self.remember_visits(mapped.visits)
        self._records[mapped.patient_id][mapped.encounter_id] = (mapped.admitted_at, mapped.record)

    def prior_visits(self, patient_id: str) -> list[VisitSummary]:
        return list(self._visits.get(patient_id, {}).values())

    def prior_index_records(self, patient_id: str, before: datetime) -> list[PriorStay]:
        stays = [
            PriorStay(admitted, record)
            for admitted, record in self._records.get(patient_id, {}).values()
            if admitted is not None and admitted < before
        ]
        return sorted(stays, key=admission_order)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def natural_key(visit: VisitSummary) -> tuple[str, str, datetime | None, datetime | None]:
    """What names a visit when nothing else does: its patient, class and period (two
    different visits of one patient never share all three)."""
    return visit.patient_id, visit.class_code, _utc(visit.start), _utc(visit.end)


def combine_visits(
    stored: Sequence[VisitSummary],
    document: Sequence[VisitSummary],
    unidentified: set[str] | frozenset[str] = frozenset(),
) -> list[VisitSummary]:
    """The patient's visits from the store and the document, each visit once.

    By encounter id first (the document's version wins). A document visit without a
    business identifier (``unidentified``: its id is whatever this send gave it) is
    also the stored visit with the same natural key: a resend under new ids must not
    count the same prior stay twice. Stored visits sharing a natural key are one visit
    too (earlier sends of such a visit under other ids were remembered under each).
    """
    seen: dict[str, VisitSummary] = {}
    by_key: dict[tuple[str, str, datetime | None, datetime | None], str] = {}
    for visit in stored:
        key = natural_key(visit)
        if key in by_key and visit.encounter_id not in seen:
            continue
        seen[visit.encounter_id] = visit
        by_key.setdefault(key, visit.encounter_id)
    for visit in document:
        if visit.encounter_id not in seen and visit.encounter_id in unidentified:
            twin = by_key.get(natural_key(visit))
            if twin is not None:
                del seen[twin]
        seen[visit.encounter_id] = visit
    return list(seen.values())


def combine_stays(
    stored: Sequence[PriorStay],
    document: Sequence[PriorStay],
    unidentified: set[str] | frozenset[str] = frozenset(),
) -> dict[str, PriorStay]:
    """Earlier index stays of the store and the document by encounter id (the document's
    wins); an unidentified document stay also replaces the stored one admitted at the
    same moment for as long (same reason as :func:`combine_visits`)."""
    stays: dict[str, PriorStay] = {}
    by_key: dict[tuple[datetime | None, int], str] = {}
    for stay in stored:
        key = (_utc(stay.admitted_at), stay.record.time_in_hospital)
        if key in by_key and stay.record.encounter_id not in stays:
            continue
        stays[stay.record.encounter_id] = stay
        by_key.setdefault(key, stay.record.encounter_id)
    for stay in document:
        eid = stay.record.encounter_id
        if eid not in stays and eid in unidentified:
            twin = by_key.get((_utc(stay.admitted_at), stay.record.time_in_hospital))
            if twin is not None:
                stays.pop(twin, None)
        stays[eid] = stay
    return stays
