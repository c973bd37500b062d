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
from datetime import datetime
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
