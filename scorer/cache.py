"""The Redis layout of scores: written by the scorer, read by the web app and the API.

Keys (``{p}`` is the configured topic prefix, so deployments can share a Redis):

* ``{p}score:{encounter_id}`` — hash, the latest score of an encounter: ``probability``,
  ``band``, ``model_version``, ``input_key``, ``computed_at``, ``ward``, ``patient_id``,
  ``factors`` (JSON), ``interventions`` (JSON), ``event`` (the full ScoreEvent JSON),
  ``cached_at`` (epoch seconds of the write: end-to-end latency is measured to it).
  Expires after ``READMIT_SCORE_TTL_SECONDS``.
* ``{p}patient:{patient_id}:scores`` — sorted set of ``encounter_id|input_key`` scored
  by computed_at epoch seconds: the patient's score history.
* ``{p}ward:{ward}:high`` — sorted set of encounter ids in band ``high`` scored by
  probability: the ward's live high-risk list (removed when a newer score is lower).
* ``{p}done:{input_key}`` — marker that this exact input was scored; makes redelivered
  events no-ops (same input, same key, no second alert).

Only the scorer writes; everyone else reads through :class:`ScoreCache`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis

from readmit.events import ScoreEvent


class ScoreCache:
    """Typed access to the score keys; one instance per process, thread-safe via redis-py."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._r = client
        self._p = prefix
        self._ttl = ttl_seconds

    # -- key names: the only place they are spelled ---------------------------------
    def score_key(self, encounter_id: str) -> str:
        return f"{self._p}score:{encounter_id}"

    def patient_key(self, patient_id: str) -> str:
        return f"{self._p}patient:{patient_id}:scores"

    def ward_key(self, ward: str) -> str:
        return f"{self._p}ward:{ward}:high"

    def done_key(self, input_key: str) -> str:
        return f"{self._p}done:{input_key}"

    # -- writes ---------------------------------------------------------------------
    def already_scored(self, input_keys: Sequence[str]) -> list[bool]:
        """Which inputs were scored before (one round trip for the whole batch)."""
        if not input_keys:
            return []
        pipe = self._r.pipeline(transaction=False)
        for key in input_keys:
            pipe.exists(self.done_key(key))
        return [bool(x) for x in pipe.execute()]

    def write(self, events: Sequence[ScoreEvent]) -> None:
        """Store a batch of scores in one pipeline; idempotent for the same input_key.

        Does not mark the inputs done: the scorer does that with :meth:`mark_done` only
        after ``risk.scored`` is published, so a crash in between rescores (harmless)
        instead of silently dropping the alert.
        """
        if not events:
            return
        pipe = self._r.pipeline(transaction=True)
        cached_at = repr(time.time())
        for ev in events:
            self._stage(pipe, ev, cached_at)
        pipe.execute()

    def mark_done(self, events: Sequence[ScoreEvent]) -> None:
        if not events:
            return
        pipe = self._r.pipeline(transaction=False)
        for ev in events:
            pipe.set(self.done_key(ev.input_key), ev.model_version, ex=self._ttl)
        pipe.execute()

    def _stage(self, pipe: Any, ev: ScoreEvent, cached_at: str) -> None:
        key = self.score_key(ev.encounter_id)
        payload = ev.to_bytes()
        pipe.hset(
            key,
            mapping={
                "probability": repr(ev.probability),
                "band": ev.band,
                "model_version": ev.model_version,
                "input_key": ev.input_key,
                "computed_at": ev.computed_at.isoformat(),
                "ward": ev.ward,
                "patient_id": ev.patient_id,
                "factors": orjson.dumps([f.model_dump() for f in ev.factors]),
                "interventions": orjson.dumps([i.model_dump() for i in ev.interventions]),
                "event": payload,
                "cached_at": cached_at,
            },
        )
        pipe.expire(key, self._ttl)
        history = self.patient_key(ev.patient_id)
        pipe.zadd(history, {f"{ev.encounter_id}|{ev.input_key}": ev.computed_at.timestamp()})
        pipe.expire(history, self._ttl)
        ward = self.ward_key(ev.ward)
        if ev.band == "high" and not ev.non_readmittable:
            pipe.zadd(ward, {ev.encounter_id: ev.probability})
        else:
            pipe.zrem(ward, ev.encounter_id)

    def ping(self) -> bool:
        try:
            return bool(self._r.ping())
        except redis.RedisError:
            return False

    # -- reads ----------------------------------------------------------------------
    def latest(self, encounter_id: str) -> ScoreEvent | None:
        raw = self._r.hget(self.score_key(encounter_id), "event")
        return ScoreEvent.model_validate_json(raw) if raw else None

    def patient_history(self, patient_id: str) -> list[tuple[str, str, float]]:
        """(encounter_id, input_key, computed_at epoch) oldest first."""
        rows = self._r.zrange(self.patient_key(patient_id), 0, -1, withscores=True)
        out = []
        for member, ts in rows:
            enc, _, input_key = member.decode().partition("|")
            out.append((enc, input_key, float(ts)))
        return out

    def ward_high_risk(self, ward: str, limit: int = 100) -> list[tuple[str, float]]:
        """(encounter_id, probability), highest first."""
        rows = self._r.zrevrange(self.ward_key(ward), 0, limit - 1, withscores=True)
        return [(m.decode(), float(s)) for m, s in rows]
