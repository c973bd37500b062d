"""Selecting and republishing accepted encounter versions (``readmit rescore``).

Kept apart from the command so the rules are testable without a CLI: only the latest
accepted version of each encounter is sent (an older one would briefly overwrite the
newer score), in acceptance order, keyed by patient like ingest does; each sent
event's new broker position is recorded, so a later resend of that version is
recognised as a duplicate again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from kafka.producer.future import RecordMetadata

from patient_state.store import AcceptedRow, Delivery, PatientStateStore
from readmit_core.events import FeatureEvent, utcnow

BATCH = 500


class Publisher(Protocol):
    def publish(self, events: Sequence[FeatureEvent]) -> list[RecordMetadata]: ...


def latest_versions(rows: Sequence[AcceptedRow]) -> list[AcceptedRow]:
    """The newest accepted version per encounter (highest input version, then latest
    accepted), oldest encounter first."""
    latest: dict[str, AcceptedRow] = {}
    for row in rows:
        current = latest.get(row.encounter_id)
        if current is None or (row.input_version, row.accepted_at) >= (
            current.input_version,
            current.accepted_at,
        ):
            latest[row.encounter_id] = row
    return sorted(latest.values(), key=lambda r: (r.accepted_at, r.delivery.input_key))


def republish(store: PatientStateStore, publisher: Publisher, rows: Sequence[AcceptedRow]) -> int:
    """Publish each row's event again (fresh event id and time, same input); the count."""
    sent = 0
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        events = [
            FeatureEvent.model_validate_json(row.event_json).model_copy(
                update={"emitted_at": utcnow(), "event_id": uuid.uuid4().hex}
            )
            for row in chunk
        ]
        acks = publisher.publish(events)
        store.remember(
            visits=[],
            stays=[],
            accepted=[
                replace(
                    row,
                    delivery=Delivery(row.delivery.input_key, ack.topic, ack.partition, ack.offset),
                )
                for row, ack in zip(chunk, acks, strict=True)
            ],
        )
        sent += len(chunk)
    return sent
