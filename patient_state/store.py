"""Reads and writes of the patient state tables (schema: ``patient_state.migrations``).

Every method is one transaction through :class:`StateDatabase` (so it survives a
database restart by reconnecting once) and touches one patient's rows by primary key,
or one time range through an index: lookups stay O(patient) however large the tables
grow. Values go in and out as the JSON and ISO-8601 text their owners already use, so
this module knows nothing about FHIR.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
    # the stay's input version this event carries (1, 2, ... per encounter; 0 before
    # versions existed) and its discharge time (epoch s), for the re-score window
    input_version: int = 0
    discharged_at: float | None = None


@dataclass(frozen=True)
class IdentityRow:
    """(kind, system, value) names the resource ``resource_id`` (system "#id": its id)."""

    kind: str
    system: str
    value: str
    resource_id: str


@dataclass(frozen=True)
class StayDocumentRow:
    """The completed document of a recently discharged stay (JSON), until expires_at."""

    encounter_id: str
    patient_id: str
    document_json: str
    expires_at: float


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


_ROWS_PER_STATEMENT = 100  # multi-row VALUES: one round trip per 100 rows, under SQLite's limits


def _insert_many(cur: Cursor, head: str, tail: str, rows: Sequence[Sequence[Any]]) -> None:
    """``head VALUES (...), (...) tail`` in chunks (psycopg2's executemany is a round trip
    per row; a document's identities are tens to hundreds of rows)."""
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[i : i + _ROWS_PER_STATEMENT]
        marks = ", ".join(f"({_in(list(r))})" for r in chunk)
        cur.execute(f"{head} VALUES {marks} {tail}", [v for r in chunk for v in r])


_INSERT_IDENTITY = (
    "INSERT INTO resource_identity (scope, kind, system, value, resource_id, claimed_at, "
    "accepted_at)"
)


_SELECT_DELIVERIES = (
    "SELECT input_key, topic, kafka_partition, kafka_offset FROM accepted_version "
    "WHERE scope = %s AND input_key IN ({marks})"
)
_SELECT_HISTORIES = (
    "SELECT 'v', patient_id, encounter_id, class_code, start_at, end_at, is_index, "
    "CAST(NULL AS TEXT) FROM visit WHERE scope = %s AND patient_id IN ({marks}) "
    "UNION ALL "
    "SELECT 's', patient_id, encounter_id, CAST(NULL AS TEXT), admitted_at, CAST(NULL AS TEXT), "
    "NULL, record FROM index_stay WHERE scope = %s AND patient_id IN ({marks})"
)
_SELECT_RESOURCES = (
    "SELECT patient_id, ref, is_patient, resource, expires_at FROM loose_resource "
    "WHERE scope = %s AND patient_id IN ({marks}) AND expires_at > %s ORDER BY patient_id, ref"
)

_UPSERT_RESOURCE = (
    "INSERT INTO loose_resource (scope, patient_id, ref, is_patient, resource, "
    "expires_at) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (scope, patient_id, ref) DO UPDATE SET "
    "is_patient = excluded.is_patient, resource = excluded.resource, "
    "expires_at = excluded.expires_at"
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

    def histories(self, patient_ids: Sequence[str]) -> tuple[list[VisitRow], list[StayRow]]:
        """Every visit and index stay of several patients in one statement (one round
        trip per document, however many encounters it carries)."""
        if not patient_ids:
            return [], []
        marks = _in(patient_ids)
        rows = self.db.run(
            lambda cur: cur.execute(
                _SELECT_HISTORIES.format(marks=marks),
                (self.scope, *patient_ids, self.scope, *patient_ids),
            ).fetchall(),
            write=False,
        )
        visits = [VisitRow(r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows if r[0] == "v"]
        stays = [StayRow(r[1], r[2], r[4], r[7]) for r in rows if r[0] == "s"]
        return visits, stays

    def remember(
        self,
        visits: Iterable[VisitRow],
        stays: Iterable[StayRow],
        accepted: Iterable[AcceptedRow],
        *,
        identities: Sequence[IdentityRow] = (),
        documents: Sequence[StayDocumentRow] = (),
        resources: Sequence[ResourceRow] = (),
    ) -> None:
        """Visits, index stays, accepted versions, the accepted resources' identities,
        the stays' documents and the loose resources kept in one transaction.

        One transaction: a stay is never marked accepted without its history (which a
        later score of the same patient would silently miss); and one write a document
        (the loose resources were a second one: SQLite has one writer at a time).
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
             a.delivery.topic, a.delivery.partition, a.delivery.offset, a.accepted_at,
             a.input_version, a.discharged_at)
            for a in accepted
        ]  # fmt: skip
        now = time.time()
        identity_rows = [
            (self.scope, i.kind, i.system, i.value, i.resource_id, now, now)
            for i in _first_per_key(identities)
        ]
        document_rows = [
            (self.scope, d.encounter_id, d.patient_id, d.document_json, d.expires_at)
            for d in documents
        ]

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
                "event, topic, kafka_partition, kafka_offset, accepted_at, input_version, "
                "discharged_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, input_key) DO UPDATE SET event = excluded.event, "
                "topic = excluded.topic, kafka_partition = excluded.kafka_partition, "
                "kafka_offset = excluded.kafka_offset, accepted_at = excluded.accepted_at, "
                "input_version = excluded.input_version, discharged_at = excluded.discharged_at",
                accepted_rows,
            )
            # first claimer keeps a key; accepting marks the claimer's own rows only
            _insert_many(
                cur,
                _INSERT_IDENTITY,
                "ON CONFLICT (scope, kind, system, value) DO UPDATE SET "
                "accepted_at = COALESCE(resource_identity.accepted_at, excluded.accepted_at) "
                "WHERE resource_identity.resource_id = excluded.resource_id",
                identity_rows,
            )
            cur.executemany(
                "INSERT INTO stay_document (scope, encounter_id, patient_id, document, "
                "expires_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (scope, encounter_id) DO UPDATE SET patient_id = "
                "excluded.patient_id, document = excluded.document, expires_at = "
                "excluded.expires_at",
                document_rows,
            )
            cur.executemany(_UPSERT_RESOURCE, self._resource_values(resources))

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
                _SELECT_ACCEPTED.format(
                    where="accepted_at >= %s AND accepted_at < %s ORDER BY accepted_at, input_key"
                ),
                (self.scope, since, until),
            ).fetchall(),
            write=False,
        )
        return [_accepted_row(r) for r in rows]

    def latest_accepted(self, encounter_ids: Sequence[str]) -> dict[str, AcceptedRow]:
        """The highest accepted input version of each encounter (absent: never accepted)."""
        ids = sorted(set(encounter_ids))
        if not ids:
            return {}
        rows = self.db.run(
            lambda cur: cur.execute(
                _SELECT_ACCEPTED.format(where=f"encounter_id IN ({_in(ids)})"),
                (self.scope, *ids),
            ).fetchall(),
            write=False,
        )
        latest: dict[str, AcceptedRow] = {}
        for row in map(_accepted_row, rows):
            current = latest.get(row.encounter_id)
            if current is None or (row.input_version, row.accepted_at) > (
                current.input_version,
                current.accepted_at,
            ):
                latest[row.encounter_id] = row
        return latest

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
        values = self._resource_values(rows)
        self.db.run(lambda cur: cur.executemany(_UPSERT_RESOURCE, values))

    def _resource_values(self, rows: Sequence[ResourceRow]) -> list[tuple[Any, ...]]:
        return [
            (self.scope, r.patient_id, r.ref, r.is_patient, r.resource_json, r.expires_at)
            for r in rows
        ]

    # -- access audit --------------------------------------------------------------------
    def record_score_read(
        self, actor: str, encounter_id: str, remote_addr: str | None, status: int
    ) -> None:
        """One audit row per score read (HIPAA §164.312(b)); NUL cannot live in text."""
        encounter = encounter_id.replace("\x00", "\ufffd")[:128]
        self.db.run(
            lambda cur: cur.execute(
                "INSERT INTO score_read_audit (scope, at, actor, encounter_id, remote_addr, "
                "status) VALUES (%s, %s, %s, %s, %s, %s)",
                (self.scope, time.time(), actor, encounter, remote_addr, status),
            )
        )

    def score_reads(self, encounter_id: str) -> list[tuple[Any, ...]]:
        """The audit rows of one encounter's reads, oldest first (auditors, tests)."""
        return self.db.run(
            lambda cur: cur.execute(
                "SELECT at, actor, encounter_id, remote_addr, status FROM score_read_audit "
                "WHERE scope = %s AND encounter_id = %s ORDER BY at",
                (self.scope, encounter_id),
            ).fetchall(),
            write=False,
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
        """Delete loose resources and stay documents past their expiry; the number deleted."""
        now = time.time() if now is None else now

        def delete(cur: Cursor) -> int:
            cur.execute("DELETE FROM loose_resource WHERE expires_at <= %s", (now,))
            gone = cur.rowcount
            cur.execute("DELETE FROM stay_document WHERE expires_at <= %s", (now,))
            return gone + cur.rowcount

        return self.db.run(delete)

    # -- visit identity ------------------------------------------------------------------
    def claim_identities(self, rows: Sequence[IdentityRow]) -> dict[tuple[str, str, str], str]:
        """Claim (kind, system, value) keys for resource ids; the id each key names now.

        The first claim of a key wins (concurrent claimers serialise on the key), so
        two sends of one visit racing each other still agree on its id. A claim is not
        an acceptance: conditional create counts only accepted resources.
        """
        keys = sorted({(r.kind, r.system, r.value) for r in rows})
        if not keys:
            return {}
        now = time.time()
        values = [
            (self.scope, r.kind, r.system, r.value, r.resource_id, now, None)
            for r in _first_per_key(rows)
        ]

        def claim(cur: Cursor) -> dict[tuple[str, str, str], str]:
            _insert_many(cur, _INSERT_IDENTITY, "ON CONFLICT DO NOTHING", values)
            return self._identities(cur, keys)

        return self.db.run(claim)

    def known_identities(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], str]:
        """The resource id each known (kind, system, value) key names."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        return self.db.run(lambda cur: self._identities(cur, wanted), write=False)

    def _identities(
        self, cur: Cursor, keys: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], str]:
        found: dict[tuple[str, str, str], str] = {}
        for i in range(0, len(keys), _ROWS_PER_STATEMENT):
            chunk = keys[i : i + _ROWS_PER_STATEMENT]
            where = " OR ".join(["(kind = %s AND system = %s AND value = %s)"] * len(chunk))
            rows = cur.execute(
                _SELECT_IDENTITIES.format(where=where),
                (self.scope, *(v for key in chunk for v in key)),
            ).fetchall()
            found.update({(r[0], r[1], r[2]): r[3] for r in rows})
        return found

    @contextmanager
    def serialised(self, names: Sequence[str]) -> Iterator[None]:
        """Exclusive, across processes and replicas, for each name (e.g. a conditional
        create's search): a check-then-write under it sees every earlier holder's write.
        The same locks as :meth:`stays_locked` (``StateDatabase.exclusive``)."""
        with self.db.exclusive([f"serialised|{self.scope}|{name}" for name in names]):
            yield

    def search_identities(self, kind: str, system: str | None, value: str) -> set[str]:
        """Ids of accepted resources of ``kind`` with that identifier (``system`` None:
        any system but the logical id's)."""
        if system is None:
            sql = (
                "SELECT resource_id FROM resource_identity WHERE scope = %s AND kind = %s "
                "AND value = %s AND system <> '#id' AND accepted_at IS NOT NULL"
            )
            params: tuple[Any, ...] = (self.scope, kind, value)
        else:
            sql = (
                "SELECT resource_id FROM resource_identity WHERE scope = %s AND kind = %s "
                "AND system = %s AND value = %s AND accepted_at IS NOT NULL"
            )
            params = (self.scope, kind, system, value)
        rows = self.db.run(lambda cur: cur.execute(sql, params).fetchall(), write=False)
        return {r[0] for r in rows}

    # -- stay documents ------------------------------------------------------------------
    def stays_locked(self, encounter_ids: Sequence[str]) -> AbstractContextManager[None]:
        """Hold these stays' documents exclusively (``StateDatabase.exclusive``): a late
        resource is merged into the document read under the lock and written back before
        it is released, so a concurrent late resource of the same stay sees it."""
        return self.db.exclusive([f"stay_document|{self.scope}|{e}" for e in encounter_ids])

    def stay_documents(
        self,
        *,
        encounter_ids: Sequence[str] = (),
        patient_ids: Sequence[str] = (),
        now: float | None = None,
    ) -> list[StayDocumentRow]:
        """Unexpired stay documents of these encounters and of these patients."""
        now = time.time() if now is None else now
        encounters, patients = sorted(set(encounter_ids)), sorted(set(patient_ids))
        if not encounters and not patients:
            return []
        clauses, params = [], []
        if encounters:
            clauses.append(f"encounter_id IN ({_in(encounters)})")
            params.extend(encounters)
        if patients:
            clauses.append(f"patient_id IN ({_in(patients)})")
            params.extend(patients)
        sql = _SELECT_STAY_DOCUMENTS.format(where=" OR ".join(clauses))
        rows = self.db.run(
            lambda cur: cur.execute(sql, (self.scope, now, *params)).fetchall(), write=False
        )
        return [StayDocumentRow(r[0], r[1], r[2], float(r[3])) for r in rows]

    def prune_history(self, horizon_s: float, now: float | None = None) -> Pruned:
        """Delete what no score can use any more: visits and index stays that began before
        ``now - horizon_s`` (clinical time: a stay admitted from now on looks back 365 days),
        accepted versions accepted before it (a resend that old is published again), expired
        loose resources. One transaction.

        The cutoff is the wall clock, right for live data only: a replay of historical
        records (the embedded demo, the tests) would lose the history its own later stays
        look back on, so such runs keep pruning off (``READMIT_STATE_PRUNE_INTERVAL_S=0``;
        the scorers never prune in the embedded run).
        """
        now = time.time() if now is None else now
        cutoff = datetime.fromtimestamp(now - horizon_s, UTC).isoformat()

        def delete(cur: Cursor) -> Pruned:
            cur.execute(
                "DELETE FROM visit WHERE scope = %s AND start_at < %s "
                "AND (end_at IS NULL OR end_at < %s)",
                (self.scope, cutoff, cutoff),
            )
            visits = cur.rowcount
            cur.execute(
                "DELETE FROM index_stay WHERE scope = %s AND admitted_at < %s",
                (self.scope, cutoff),
            )
            stays = cur.rowcount
            cur.execute(
                "DELETE FROM accepted_version WHERE scope = %s AND accepted_at < %s",
                (self.scope, now - horizon_s),
            )
            accepted = cur.rowcount
            cur.execute(
                "DELETE FROM stay_document WHERE scope = %s AND expires_at <= %s",
                (self.scope, now),
            )
            cur.execute(
                "DELETE FROM loose_resource WHERE scope = %s AND expires_at <= %s",
                (self.scope, now),
            )
            return Pruned(visits, stays, accepted, cur.rowcount)

        return self.db.run(delete)


def _first_per_key(rows: Iterable[IdentityRow]) -> list[IdentityRow]:
    """One row per key (a statement may not touch a row twice: PostgreSQL refuses)."""
    seen: dict[tuple[str, str, str], IdentityRow] = {}
    for row in rows:
        seen.setdefault((row.kind, row.system, row.value), row)
    return list(seen.values())


_SELECT_ACCEPTED = (
    "SELECT input_key, topic, kafka_partition, kafka_offset, encounter_id, patient_id, event, "
    "accepted_at, input_version, discharged_at FROM accepted_version "
    "WHERE scope = %s AND {where}"
)
_SELECT_IDENTITIES = (
    "SELECT kind, system, value, resource_id FROM resource_identity WHERE scope = %s AND ({where})"
)
_SELECT_STAY_DOCUMENTS = (
    "SELECT encounter_id, patient_id, document, expires_at FROM stay_document "
    "WHERE scope = %s AND expires_at > %s AND ({where}) ORDER BY encounter_id"
)


def _accepted_row(r: Sequence[Any]) -> AcceptedRow:
    return AcceptedRow(
        Delivery(r[0], r[1], int(r[2]), int(r[3])),
        r[4],
        r[5],
        r[6],
        float(r[7]),
        int(r[8] or 0),
        float(r[9]) if r[9] is not None else None,
    )


@dataclass(frozen=True)
class Pruned:
    """Rows deleted by one :meth:`PatientStateStore.prune_history`."""

    visits: int
    stays: int
    accepted: int
    resources: int

    @property
    def total(self) -> int:
        return self.visits + self.stays + self.accepted + self.resources


def open_store(database_url: str, state_dir: Path, scope: str) -> PatientStateStore:
    """A migrated store for READMIT_DATABASE_URL (empty: SQLite in the state directory)."""
    store = PatientStateStore(StateDatabase(database_url, state_dir), scope)
    store.migrate()
    return store
