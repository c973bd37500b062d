"""Reads and writes of the patient state tables (schema: ``patient_state.migrations``).

Every method is one transaction through :class:`StateDatabase` (so it survives a
database restart by reconnecting once) and touches one patient's rows by primary key,
or one time range through an index: lookups stay O(patient) however large the tables
grow. Values go in and out as the JSON and ISO-8601 text their owners already use, so
this module knows nothing about FHIR.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patient_state.database import Cursor, StateDatabase
from patient_state.migrations import migrate


@dataclass(frozen=True)
class VisitRow:
    patient_id: str
    encounter_id: str
    class_code: str
    start_at: str
    end_at: str | None
    is_index: bool


@dataclass(frozen=True)
class StayRow:
    patient_id: str
    encounter_id: str
    admitted_at: str
    record_json: str


@dataclass(frozen=True)
class Delivery:
    """Where the broker stored an accepted encounter version (from its acknowledgement)."""

    input_key: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class AcceptedRow:
    delivery: Delivery
    encounter_id: str
    patient_id: str
    event_json: str
    accepted_at: float


@dataclass(frozen=True)
class ResourceRow:
    patient_id: str
    ref: str  # "Type/id"
    is_patient: bool
    resource_json: str
    expires_at: float


@dataclass(frozen=True)
class VersionRow:
    """The current version of one resource written through the FHIR API."""

    ref: str  # "Type/id"
    version_id: int
    last_modified: float
    write_id: str  # which write made this version


def _in(values: Sequence[str]) -> str:
    """One placeholder per value: only placeholders are ever formatted into SQL."""
    return ", ".join(["%s"] * len(values))


_SELECT_DELIVERIES = (
    "SELECT input_key, topic, kafka_partition, kafka_offset FROM accepted_version "
    "WHERE scope = %s AND input_key IN ({marks})"
)
_SELECT_RESOURCES = (
    "SELECT patient_id, ref, is_patient, resource, expires_at FROM loose_resource "
    "WHERE scope = %s AND patient_id IN ({marks}) AND expires_at > %s ORDER BY patient_id, ref"
)

_SELECT_VERSIONS = (
    "SELECT ref, version_id, last_modified, write_id FROM resource_version "
    "WHERE scope = %s AND ref IN ({marks})"
)

# rows per multi-row statement: 5 parameters each stays far below SQLite's 32,766
VERSION_CHUNK = 500
_UPSERT_VERSIONS = (
    "INSERT INTO resource_version (scope, ref, version_id, content_hash, last_modified, "
    "write_id) VALUES {rows} "
    "ON CONFLICT (scope, ref) DO UPDATE SET version_id = resource_version.version_id + 1, "
    "content_hash = excluded.content_hash, last_modified = excluded.last_modified, "
    "write_id = excluded.write_id "
    "WHERE resource_version.content_hash <> excluded.content_hash"
)


class PatientStateStore:
    """The system of record of one deployment (``scope`` = READMIT_TOPIC_PREFIX)."""

    def __init__(self, db: StateDatabase, scope: str) -> None:
        self.db = db
        self.scope = scope

    def migrate(self) -> list[int]:
        return migrate(self.db)

    # -- history ------------------------------------------------------------------------
    def visits(self, patient_id: str) -> list[VisitRow]:
        rows = self.db.run(
            lambda cur: cur.execute(
                "SELECT patient_id, encounter_id, class_code, start_at, end_at, is_index "
                "FROM visit WHERE scope = %s AND patient_id = %s",
                (self.scope, patient_id),
            ).fetchall(),
            write=False,
        )
        return [VisitRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def stays(self, patient_id: str) -> list[StayRow]:
        rows = self.db.run(
            lambda cur: cur.execute(
                "SELECT patient_id, encounter_id, admitted_at, record FROM index_stay "
                "WHERE scope = %s AND patient_id = %s",
                (self.scope, patient_id),
            ).fetchall(),
            write=False,
        )
        return [StayRow(*r) for r in rows]

    def remember(
        self,
        visits: Iterable[VisitRow],
        stays: Iterable[StayRow],
        accepted: Iterable[AcceptedRow],
    ) -> None:
        """Visits, index stays and accepted versions in one transaction.

        One transaction: a stay is never marked accepted without its history (which a
        later score of the same patient would silently miss).
        """
        visit_rows = [
            (self.scope, v.patient_id, v.encounter_id, v.class_code, v.start_at, v.end_at,
             v.is_index)
            for v in visits
        ]  # fmt: skip
        stay_rows = [
            (self.scope, s.patient_id, s.encounter_id, s.admitted_at, s.record_json) for s in stays
        ]
        accepted_rows = [
            (self.scope, a.delivery.input_key, a.encounter_id, a.patient_id, a.event_json,
             a.delivery.topic, a.delivery.partition, a.delivery.offset, a.accepted_at)
            for a in accepted
        ]  # fmt: skip

        def write(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO visit (scope, patient_id, encounter_id, class_code, start_at, "
                "end_at, is_index) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, patient_id, encounter_id) DO UPDATE SET "
                "class_code = excluded.class_code, start_at = excluded.start_at, "
                "end_at = excluded.end_at, is_index = excluded.is_index",
                visit_rows,
            )
            cur.executemany(
                "INSERT INTO index_stay (scope, patient_id, encounter_id, admitted_at, record) "
                "VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, patient_id, encounter_id) DO UPDATE SET "
                "admitted_at = excluded.admitted_at, record = excluded.record",
                stay_rows,
            )
            cur.executemany(
                "INSERT INTO accepted_version (scope, input_key, encounter_id, patient_id, "
                "event, topic, kafka_partition, kafka_offset, accepted_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, input_key) DO UPDATE SET event = excluded.event, "
                "topic = excluded.topic, kafka_partition = excluded.kafka_partition, "
                "kafka_offset = excluded.kafka_offset, accepted_at = excluded.accepted_at",
                accepted_rows,
            )

        self.db.run(write)

    # -- accepted versions ---------------------------------------------------------------
    def deliveries(self, input_keys: Sequence[str]) -> dict[str, Delivery]:
        """The accepted ones among ``input_keys``, with where the broker stored each."""
        keys = sorted(set(input_keys))
        if not keys:
            return {}
        sql = _SELECT_DELIVERIES.format(marks=_in(keys))
        rows = self.db.run(
            lambda cur: cur.execute(sql, (self.scope, *keys)).fetchall(), write=False
        )
        return {r[0]: Delivery(r[0], r[1], int(r[2]), int(r[3])) for r in rows}

    def accepted_since(self, since: float, until: float | None = None) -> list[AcceptedRow]:
        """Accepted versions in [since, until), oldest first (``readmit rescore``)."""
        until = time.time() + 1 if until is None else until
        rows = self.db.run(
            lambda cur: cur.execute(
                "SELECT input_key, topic, kafka_partition, kafka_offset, encounter_id, "
                "patient_id, event, accepted_at FROM accepted_version "
                "WHERE scope = %s AND accepted_at >= %s AND accepted_at < %s "
                "ORDER BY accepted_at, input_key",
                (self.scope, since, until),
            ).fetchall(),
            write=False,
        )
        return [
            AcceptedRow(Delivery(r[0], r[1], int(r[2]), int(r[3])), r[4], r[5], r[6], float(r[7]))
            for r in rows
        ]

    # -- loose resources -----------------------------------------------------------------
    def resources(self, patient_ids: Sequence[str], now: float | None = None) -> list[ResourceRow]:
        ids = sorted(set(patient_ids))
        if not ids:
            return []
        now = time.time() if now is None else now
        sql = _SELECT_RESOURCES.format(marks=_in(ids))
        rows = self.db.run(
            lambda cur: cur.execute(sql, (self.scope, *ids, now)).fetchall(), write=False
        )
        return [ResourceRow(r[0], r[1], bool(r[2]), r[3], float(r[4])) for r in rows]

    def keep_resources(self, rows: Sequence[ResourceRow]) -> None:
        values: list[tuple[Any, ...]] = [
            (self.scope, r.patient_id, r.ref, r.is_patient, r.resource_json, r.expires_at)
            for r in rows
        ]
        self.db.run(
            lambda cur: cur.executemany(
                "INSERT INTO loose_resource (scope, patient_id, ref, is_patient, resource, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, patient_id, ref) DO UPDATE SET "
                "is_patient = excluded.is_patient, resource = excluded.resource, "
                "expires_at = excluded.expires_at",
                values,
            )
        )

    # -- resource versions ---------------------------------------------------------------
    def versions(self, refs: Sequence[str]) -> dict[str, VersionRow]:
        """The current version of each of ``refs`` that was ever written."""
        keys = sorted(set(refs))
        if not keys:
            return {}
        sql = _SELECT_VERSIONS.format(marks=_in(keys))
        rows = self.db.run(
            lambda cur: cur.execute(sql, (self.scope, *keys)).fetchall(), write=False
        )
        return {r[0]: VersionRow(r[0], int(r[1]), float(r[2]), r[3]) for r in rows}

    def write_versions(
        self, contents: Sequence[tuple[str, str]], write_id: str, now: float
    ) -> dict[str, VersionRow]:
        """Record a write of each (ref, content hash): a new ref is version 1, a changed
        content the next version, an unchanged one keeps its version (and ``write_id``,
        so the caller can tell). The increment happens in the database, so concurrent
        writers of one ref never hand out the same version twice; multi-row statements
        of :data:`VERSION_CHUNK` rows keep a 2,000-entry batch to a few round trips."""
        contents = sorted(dict(contents).items())  # one row per ref (a statement may not
        if not contents:  # update a row twice), in one order (no lock-order deadlocks)
            return {}
        chunks = [contents[i : i + VERSION_CHUNK] for i in range(0, len(contents), VERSION_CHUNK)]

        def write(cur: Cursor) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = []
            for chunk in chunks:
                values: list[Any] = []
                for ref, digest in chunk:
                    values += [self.scope, ref, digest, now, write_id]
                cur.execute(
                    _UPSERT_VERSIONS.format(
                        rows=", ".join(["(%s, %s, 1, %s, %s, %s)"] * len(chunk))
                    ),
                    values,
                )
            for chunk in chunks:
                refs = [ref for ref, _ in chunk]
                sql = _SELECT_VERSIONS.format(marks=_in(refs))
                rows += cur.execute(sql, (self.scope, *refs)).fetchall()
            return rows

        rows = self.db.run(write)
        return {r[0]: VersionRow(r[0], int(r[1]), float(r[2]), r[3]) for r in rows}

    def prune(self, now: float | None = None) -> int:
        """Delete loose resources past their expiry; the number deleted."""
        now = time.time() if now is None else now

        def delete(cur: Cursor) -> int:
            cur.execute("DELETE FROM loose_resource WHERE expires_at <= %s", (now,))
            return cur.rowcount

        return self.db.run(delete)


def open_store(database_url: str, state_dir: Path, scope: str) -> PatientStateStore:
    """A migrated store for READMIT_DATABASE_URL (empty: SQLite in the state directory)."""
    store = PatientStateStore(StateDatabase(database_url, state_dir), scope)
    store.migrate()
    return store
