"""One-off upgrade: copy the patient state that older releases kept in Redis.

Before ``patient_state`` existed, ingest kept history in Redis (``{p}visits:<patient>``,
``{p}index:<patient>``) and loose resources (``{p}patient-res:<patient>``,
``{p}loose-res:<patient>``). Upgrading without copying them would score every returning
patient as if new — the very failure the database exists to prevent — so
``readmit state import-redis`` copies them once (idempotent upserts: safe to re-run).
Old ``accepted:`` markers carry no broker position and are not copied; a resend of such
a version is published again and the scorer's cache deduplicates it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
import redis

from patient_state.store import PatientStateStore, ResourceRow, StayRow, VisitRow

SCAN_COUNT = 1000


@dataclass
class Imported:
    patients: int = 0
    visits: int = 0
    stays: int = 0
    resources: int = 0


def _patients(client: redis.Redis, prefix: str, kind: str) -> list[str]:
    head = f"{prefix}{kind}:"
    return sorted(
        key.decode()[len(head) :] for key in client.scan_iter(match=f"{head}*", count=SCAN_COUNT)
    )


def import_from_redis(client: redis.Redis, prefix: str, store: PatientStateStore) -> Imported:
    """Copy every patient's Redis-held state into ``store``; what was copied."""
    done = Imported()
    now = time.time()
    patients = set(_patients(client, prefix, "visits")) | set(_patients(client, prefix, "index"))
    for pid in sorted(patients):
        visits = []
        for raw in client.hvals(f"{prefix}visits:{pid}"):
            d = orjson.loads(raw)
            visits.append(
                VisitRow(
                    d["patient_id"], d["encounter_id"], d["class_code"], d["start"], d["end"],
                    bool(d["is_index"]),
                )
            )  # fmt: skip
        stays = []
        for enc, raw in client.hgetall(f"{prefix}index:{pid}").items():
            d = orjson.loads(raw)
            stays.append(
                StayRow(pid, enc.decode(), d["admitted_at"], orjson.dumps(d["record"]).decode())
            )
        store.remember(visits, stays, [])
        done.patients += 1
        done.visits += len(visits)
        done.stays += len(stays)
    for kind, is_patient in (("patient-res", True), ("loose-res", False)):
        for pid in _patients(client, prefix, kind):
            key = f"{prefix}{kind}:{pid}"
            ttl = client.ttl(key)
            expires = now + (ttl if ttl and ttl > 0 else 0)
            rows = [
                ResourceRow(pid, ref.decode(), is_patient, raw.decode(), expires)
                for ref, raw in client.hgetall(key).items()
            ]
            store.keep_resources(rows)
            done.resources += len(rows)
    return done
