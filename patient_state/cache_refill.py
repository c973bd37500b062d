"""Refilling the Redis score cache by itself after Redis was flushed, lost or replaced.

Redis holds only what the state database can recompute (cached scores, patients' score
histories, ward high-risk lists), but nothing recomputed it unless someone ran
``readmit rescore``: after a flush the web showed "no score" and empty ward lists until
then. A refill writes a **generation sentinel** key when it has handed everything over;
Redis without that key (a flush, a fresh instance, a failover to an empty replica) is a
cache that lost its contents. Then one process at a time (a Redis lock, so N scorers do
not all republish) republishes the latest accepted version of every encounter accepted
within the score TTL whose cached score is missing; the scorers score them as usual
(the same input gives the same score; the alert feed keeps one alert per encounter and
model) and so rewrite the scores, histories and ward lists.

The same refill recovers what a broker restarted empty (the embedded memory broker)
lost: accepted events no scorer had consumed, and the ``risk.scored`` messages of recent
scores the alert feed had not read yet (those encounters are scored again). The caller
says so and the sentinel is not consulted.

The sentinel is set only if the lock is still ours when the republish ends (one atomic
script): a flush during the refill removes the lock too, so the next check refills
again rather than trusting a sentinel written over an empty cache. Every step is
idempotent: a second refill finds every score current and publishes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import redis

from patient_state.rescore import Publisher, latest_versions, republish
from patient_state.store import AcceptedRow, PatientStateStore
from readmit_core.score_cache import ScoreCache

log = logging.getLogger(__name__)

LOCK_TTL_S = 600  # a refill that died holding the lock stops blocking others after this
CHECK_BATCH = 500

# set the sentinel and release the lock only if the lock is still the caller's
_FINISH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[2], ARGV[2])
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Refill:
    """What one check did: ``ran`` false when the cache was whole or another process refills."""

    ran: bool
    candidates: int = 0
    republished: int = 0
    completed: bool = False


class CacheRefill:
    """Detects a lost cache and refills it from the state database (see the module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        cache: ScoreCache,
        store: PatientStateStore,
        publisher: Publisher,
        *,
        prefix: str,
        window_s: float,
    ) -> None:
        self._r = client
        self._cache = cache
        self._store = store
        self._publisher = publisher
        self.sentinel_key = f"{prefix}cache:generation"
        self.lock_key = f"{prefix}cache:refill-lock"
        self._window_s = window_s
        self._finish = client.register_script(_FINISH)

    def cache_whole(self) -> bool:
        return bool(self._r.exists(self.sentinel_key))

    def check(
        self, now: float | None = None, *, broker_lost: bool = False, scored_since: float = 0.0
    ) -> Refill:
        """Refill if the sentinel is gone and no other process is refilling.

        ``broker_lost``: a broker restarted empty lost the accepted events not yet scored,
        and the ``risk.scored`` messages the alert feed had not yet read: encounters whose
        cached score was written at or after ``scored_since`` (epoch) are scored again
        too (their cached score dropped first, so the scorer does not skip them).
        """
        if not broker_lost and self.cache_whole():
            return Refill(ran=False)
        token = uuid.uuid4().hex
        if not self._r.set(self.lock_key, token, nx=True, ex=LOCK_TTL_S):
            return Refill(ran=False)
        now = time.time() if now is None else now
        started = time.monotonic()
        rows = latest_versions(self._store.accepted_since(now - self._window_s))
        missing: list[AcceptedRow] = []
        for i in range(0, len(rows), CHECK_BATCH):
            chunk = rows[i : i + CHECK_BATCH]
            current = self._cache.already_scored(
                [(r.encounter_id, r.delivery.input_key, r.input_version or None) for r in chunk]
            )
            missing.extend(r for r, ok in zip(chunk, current, strict=True) if not ok)
        if broker_lost:
            gone = {r.delivery.input_key for r in missing}
            cached = [r for r in rows if r.delivery.input_key not in gone]
            recent = self._scored_since(cached, scored_since)
            self._cache.forget([r.encounter_id for r in recent])
            missing.extend(recent)
        sent = republish(self._store, self._publisher, missing) if missing else 0
        completed = bool(self._finish(keys=[self.lock_key, self.sentinel_key], args=[token, now]))
        log.warning(
            "refilled the score cache from the state database",
            extra={
                "cause": "broker lost events" if broker_lost else "no cache generation marker",
                "candidates": len(rows),
                "republished": sent,
                "completed": completed,
                "seconds": round(time.monotonic() - started, 2),
            },
        )
        return Refill(ran=True, candidates=len(rows), republished=sent, completed=completed)

    def _scored_since(self, rows: list[AcceptedRow], since: float) -> list[AcceptedRow]:
        """The rows whose cached score was written at or after ``since`` (epoch), or is
        still waiting for its factors: the ``risk.scored`` message the explainer stage
        would complete may be among those the broker lost, however old it is."""
        out: list[AcceptedRow] = []
        for i in range(0, len(rows), CHECK_BATCH):
            chunk = rows[i : i + CHECK_BATCH]
            pipe = self._r.pipeline(transaction=False)
            for r in chunk:
                pipe.hmget(self._cache.score_key(r.encounter_id), ["cached_at", "factors_pending"])
            stamps = pipe.execute()
            out.extend(
                r
                for r, (at, pending) in zip(chunk, stamps, strict=True)
                if at and (float(at) >= since or pending == b"1")
            )
        return out
