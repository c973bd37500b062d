"""Upgrading from Redis-held history: `import_from_redis` copies it, and the mapper then
sees the same history as before the upgrade."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
import redis

from fhir_mappings.mapper import map_document
from fhir_mappings.synth import synthesize_bundle
from ingest.history_store import DurableHistory
from patient_state.redis_import import import_from_redis
from patient_state.store import open_store
from readmit_core.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def _old_layout(client: redis.Redis, prefix: str, mapped: list) -> None:
    """What RedisHistory and the Redis ResourceStore wrote (releases before 2026-12)."""
    for m in mapped:
        for v in m.visits:
            client.hset(
                f"{prefix}visits:{v.patient_id}",
                v.encounter_id,
                orjson.dumps(
                    {
                        "encounter_id": v.encounter_id,
                        "patient_id": v.patient_id,
                        "class_code": v.class_code,
                        "start": v.start.isoformat(),
                        "end": v.end.isoformat() if v.end else None,
                        "is_index": v.is_index,
                    }
                ),
            )
        payload = {"admitted_at": m.admitted_at.isoformat(), "record": m.record.columns()}
        client.hset(f"{prefix}index:{m.patient_id}", m.encounter_id, orjson.dumps(payload))
        client.hset(f"{prefix}patient-res:{m.patient_id}", f"Patient/{m.patient_id}", b"{}")
        client.expire(f"{prefix}patient-res:{m.patient_id}", 3600)


def test_history_survives_the_upgrade(redis_url: str, tmp_path: Path) -> None:
    from fhir_mappings.synth import read_rows

    prefix = f"imp{uuid.uuid4().hex[:8]}."
    client = redis.Redis.from_url(redis_url)
    rows = list(read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", limit=5))
    mapped = [map_document(orjson.dumps(synthesize_bundle(r, seed=3)))[0] for r in rows]
    try:
        _old_layout(client, prefix, mapped)
        store = open_store("", tmp_path, prefix)
        done = import_from_redis(client, prefix, store)
        again = import_from_redis(client, prefix, store)  # idempotent
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    assert done.patients == len({m.patient_id for m in mapped}) == again.patients
    assert done.stays == 5
    assert done.resources == done.patients
    history = DurableHistory(store)
    for m in mapped:
        assert {v.encounter_id for v in history.prior_visits(m.patient_id)} >= {
            v.encounter_id for v in m.visits
        }
        later = max(x.admitted_at for x in mapped if x.admitted_at).replace(year=2100)
        records = [s.record for s in history.prior_index_records(m.patient_id, later)]
        assert m.record in records
    assert store.resources([mapped[0].patient_id])[0].ref == f"Patient/{mapped[0].patient_id}"
