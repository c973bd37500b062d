"""What the system remembers about patients between documents, kept in Redis.

Prior-year utilisation (``number_outpatient/emergency/inpatient``) and the history
features (``prior_encounters``) need encounters that arrived in earlier documents.
The ingest API remembers, per patient, every encounter it has seen (a small summary)
and every index encounter's feature record; the mapper reads them back through the
``EncounterHistory`` protocol. Keys (prefix = READMIT_TOPIC_PREFIX):

* ``{p}visits:{patient_id}`` — hash encounter_id → VisitSummary JSON
* ``{p}index:{patient_id}`` — hash encounter_id → {"admitted_at", "record"} JSON
* ``{p}accepted:{input_key}`` — this exact encounter version was published (idempotency)

All expire after READMIT_HISTORY_TTL_SECONDS (default 400 days: a year of look-back
plus margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
import redis

from fhir_mappings.features import FeatureRecord
from fhir_mappings.mapper import MappedEncounter
from fhir_mappings.prior_visits import PriorStay, VisitSummary, admission_order


def _visit_json(v: VisitSummary) -> bytes:
    return orjson.dumps(
        {
            "encounter_id": v.encounter_id,
            "patient_id": v.patient_id,
            "class_code": v.class_code,
            "start": v.start.isoformat(),
            "end": v.end.isoformat() if v.end else None,
            "is_index": v.is_index,
        }
    )


def _visit_from_json(raw: bytes) -> VisitSummary:
    d = orjson.loads(raw)
    return VisitSummary(
        encounter_id=d["encounter_id"],
        patient_id=d["patient_id"],
        class_code=d["class_code"],
        start=datetime.fromisoformat(d["start"]),
        end=datetime.fromisoformat(d["end"]) if d["end"] else None,
        is_index=d["is_index"],
    )


class RedisHistory:
    """Redis-backed ``EncounterHistory`` plus the ingest idempotency markers."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._r = client
        self._p = prefix
        self._ttl = ttl_seconds

    def _visits_key(self, patient_id: str) -> str:
        return f"{self._p}visits:{patient_id}"

    def _index_key(self, patient_id: str) -> str:
        return f"{self._p}index:{patient_id}"

    def _accepted_key(self, input_key: str) -> str:
        return f"{self._p}accepted:{input_key}"

    # -- EncounterHistory -------------------------------------------------------------
    def prior_visits(self, patient_id: str) -> list[VisitSummary]:
        return [_visit_from_json(v) for v in self._r.hvals(self._visits_key(patient_id))]

    def prior_index_records(self, patient_id: str, before: datetime) -> list[PriorStay]:
        out: list[PriorStay] = []
        for raw in self._r.hvals(self._index_key(patient_id)):
            d = orjson.loads(raw)
            admitted = datetime.fromisoformat(d["admitted_at"])
            if admitted < before:
                out.append(PriorStay(admitted, FeatureRecord.model_validate(d["record"])))
        return sorted(out, key=admission_order)

    # -- idempotency and remembering ----------------------------------------------------
    def accepted(self, input_keys: Sequence[str]) -> list[bool]:
        if not input_keys:
            return []
        pipe = self._r.pipeline(transaction=False)
        for k in input_keys:
            pipe.exists(self._accepted_key(k))
        return [bool(x) for x in pipe.execute()]

    def remember(self, mapped: Sequence[MappedEncounter]) -> None:
        """Record the documents' visits, index records and accepted versions in one trip."""
        pipe = self._r.pipeline(transaction=False)
        touched: set[str] = set()
        for m in mapped:
            for v in m.visits:
                pipe.hset(self._visits_key(v.patient_id), v.encounter_id, _visit_json(v))
                touched.add(self._visits_key(v.patient_id))
            if m.admitted_at is not None:
                payload = {"admitted_at": m.admitted_at.isoformat(), "record": m.record.columns()}
                pipe.hset(self._index_key(m.patient_id), m.encounter_id, orjson.dumps(payload))
                touched.add(self._index_key(m.patient_id))
            pipe.set(self._accepted_key(m.input_key), b"1", ex=self._ttl)
        for key in touched:
            pipe.expire(key, self._ttl)
        pipe.execute()
