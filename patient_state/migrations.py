"""Versioned schema of the state database, applied in order, each version once.

Every process that uses the store (ingest at start, ``readmit rescore``) calls
:func:`migrate`; on PostgreSQL an advisory lock serialises concurrent starters (several
ingest replicas rolling out) and DDL is transactional, so a version is either applied
whole or not at all. A new version is appended to :data:`MIGRATIONS`; applied ones are
never edited. Statements are portable between PostgreSQL and SQLite (TEXT, BIGINT,
DOUBLE PRECISION, BOOLEAN); timestamps are ISO-8601 text where the mapper needs the
original value back, epoch seconds where the store selects ranges.

``scope`` is READMIT_TOPIC_PREFIX: deployments (and tests) sharing one database keep
their state apart, as they do in Kafka and Redis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from patient_state.database import Cursor, StateDatabase

ADVISORY_LOCK_KEY = 7_271_200_512


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "visits, index stays, accepted versions, loose resources",
        (
            """CREATE TABLE visit (
                scope TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                encounter_id TEXT NOT NULL,
                class_code TEXT NOT NULL,
                start_at TEXT NOT NULL,
                end_at TEXT,
                is_index BOOLEAN NOT NULL,
                PRIMARY KEY (scope, patient_id, encounter_id)
            )""",
            """CREATE TABLE index_stay (
                scope TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                encounter_id TEXT NOT NULL,
                admitted_at TEXT NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (scope, patient_id, encounter_id)
            )""",
            """CREATE TABLE accepted_version (
                scope TEXT NOT NULL,
                input_key TEXT NOT NULL,
                encounter_id TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                event TEXT NOT NULL,
                topic TEXT NOT NULL,
                kafka_partition INTEGER NOT NULL,
                kafka_offset BIGINT NOT NULL,
                accepted_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (scope, input_key)
            )""",
            "CREATE INDEX accepted_version_by_time ON accepted_version (scope, accepted_at)",
            """CREATE TABLE loose_resource (
                scope TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                ref TEXT NOT NULL,
                is_patient BOOLEAN NOT NULL,
                resource TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (scope, patient_id, ref)
            )""",
            "CREATE INDEX loose_resource_by_expiry ON loose_resource (expires_at)",
        ),
    ),
    Migration(
        2,
        "visit identity, input versions, stay documents for late data",
        (
            # (kind, system, value) -> the canonical id of the resource it names; system
            # "#id" keys a logical id. accepted_at is null until the resource was
            # accepted (conditional create counts only accepted ones).
            """CREATE TABLE resource_identity (
                scope TEXT NOT NULL,
                kind TEXT NOT NULL,
                system TEXT NOT NULL,
                value TEXT NOT NULL,
                resource_id TEXT NOT NULL,
                claimed_at DOUBLE PRECISION NOT NULL,
                accepted_at DOUBLE PRECISION,
                PRIMARY KEY (scope, kind, system, value)
            )""",
            "CREATE INDEX resource_identity_by_value ON resource_identity (scope, kind, value)",
            "ALTER TABLE accepted_version ADD COLUMN input_version BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE accepted_version ADD COLUMN discharged_at DOUBLE PRECISION",
            "CREATE INDEX accepted_version_by_encounter ON accepted_version (scope, encounter_id)",
            # the completed document of a recently discharged stay, so a late resource
            # can be mapped with the rest of its stay; kept for the re-score window
            """CREATE TABLE stay_document (
                scope TEXT NOT NULL,
                encounter_id TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                document TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (scope, encounter_id)
            )""",
            "CREATE INDEX stay_document_by_patient ON stay_document (scope, patient_id)",
            "CREATE INDEX stay_document_by_expiry ON stay_document (expires_at)",
        ),
    ),
    Migration(
        3,
        "resource versions (FHIR meta.versionId, ETag, Last-Modified)",
        (
            # one row per logical id written through the FHIR API: its current version,
            # when that version was made, the content it holds (a hash: an identical
            # resend makes no new version) and which write made it
            """CREATE TABLE resource_version (
                scope TEXT NOT NULL,
                ref TEXT NOT NULL,
                version_id INTEGER NOT NULL,
                content_hash TEXT NOT NULL,
                last_modified DOUBLE PRECISION NOT NULL,
                write_id TEXT NOT NULL,
                PRIMARY KEY (scope, ref)
            )""",
        ),
    ),
    Migration(
        4,
        "time indexes for pruning past the history horizon",
        (
            "CREATE INDEX visit_by_start ON visit (scope, start_at)",
            "CREATE INDEX index_stay_by_admission ON index_stay (scope, admitted_at)",
        ),
    ),
    Migration(
        5,
        "access audit of ingest's score reads",
        (
            # one row per GET /scores/{encounter}: who (the token's name), what, when
            # (epoch seconds), from where, the answer; ingest has no Django database, and
            # its logs carry no identifiers, so the state database keeps the trail
            """CREATE TABLE score_read_audit (
                scope TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                encounter_id TEXT NOT NULL,
                remote_addr TEXT,
                status INTEGER NOT NULL
            )""",
            "CREATE INDEX score_read_audit_by_time ON score_read_audit (scope, at)",
            "CREATE INDEX score_read_audit_by_encounter ON score_read_audit (scope, encounter_id)",
        ),
    ),
)

_TABLE = """CREATE TABLE IF NOT EXISTS patient_state_migration (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


def _apply(cur: Cursor, db: StateDatabase) -> list[int]:
    if not db.sqlite:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    cur.execute(_TABLE)
    done = {row[0] for row in cur.execute("SELECT version FROM patient_state_migration").fetchall()}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO patient_state_migration (version, name, applied_at) VALUES (%s, %s, %s)",
            (migration.version, migration.name, time.time()),
        )
        applied.append(migration.version)
    return applied


def migrate(db: StateDatabase) -> list[int]:
    """Bring the schema up to date; the versions applied now (empty when current)."""
    return db.run(lambda cur: _apply(cur, db))


def current_version(db: StateDatabase) -> int:
    def read(cur: Cursor) -> int:
        cur.execute(_TABLE)
        row = cur.execute("SELECT MAX(version) FROM patient_state_migration").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    return db.run(read)
