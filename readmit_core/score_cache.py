"""The Redis layout of scores: written by the scorer, read by the web app and the API.

Keys (``{p}`` is the configured topic prefix, so deployments can share a Redis):

* ``{p}score:{encounter_id}`` — hash, the latest score of an encounter: ``probability``,
  ``band``, ``model_version``, ``input_key``, ``input_version`` (empty when unknown),
  ``computed_at``, ``ward``, ``patient_id``,
  ``discharged_at``, ``non_readmittable``, ``factors`` (JSON), ``interventions`` (JSON),
  ``factors_pending`` ("1" while the explainer stage has yet to add the factors),
  ``cached_at`` (epoch seconds of the scorer's write: end-to-end latency is measured to
  it), ``explained_at`` (epoch seconds of the explainer's write of the factors, absent
  until then: the factors' delay is measured to it).
  Expires after ``READMIT_SCORE_TTL_SECONDS``.
* ``{p}patient:{patient_id}:scores`` — sorted set of ``encounter_id|input_key`` scored
  by computed_at epoch seconds: the patient's score history.
* ``{p}ward:{ward}:high`` — sorted set of encounter ids in band ``high`` scored by
  probability: the ward's live high-risk list (removed when a newer score is lower).

Only the scorer writes (the explainer stage only completes a pending score's factors,
and ``readmit rescore --force`` drops scores to recompute); everyone else reads through
:class:`ScoreCache`. Everything here can be recomputed from the state database
(``patient_state``): after a flush the scorers refill it by
themselves (``patient_state.cache_refill``; the ``{p}cache:generation`` key marks a whole
cache), and ``readmit rescore --since`` does so on demand.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import orjson
import redis

from readmit_core.events import Factor, Intervention, ScoreEvent, older_input, stored_fields

# Completes a pending score's factors only while the hash still holds that very score
# (same input and model version): atomic, so a newer score written meanwhile is never
# given an older input's factors.
_ADD_FACTORS: Final = """
local cur = redis.call('HMGET', KEYS[1], 'input_key', 'model_version')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'factors', ARGV[3], 'interventions', ARGV[4],
           'factors_pending', '0', 'explained_at', ARGV[5])
return 1
"""

# The hash fields of a cached score, in the order ``_values`` gives them (the layout above).
SCORE_FIELDS: Final = (
    "probability",
    "band",
    "model_version",
    "input_key",
    "input_version",
    "computed_at",
    "discharged_at",
    "ward",
    "patient_id",
    "non_readmittable",
    "factors",
    "interventions",
    "factors_pending",
    "cached_at",
)

# The cached input of each score key (KEYS), as one flat reply: input_key, input_version
# per key. One command instead of a pipeline of HMGETs: the scorer checks every event.
_CACHED_INPUTS: Final = """
local out = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('HMGET', key, 'input_key', 'input_version')
  out[2 * i - 1] = cur[1]
  out[2 * i] = cur[2]
end
return out
"""

# A batch of scores in one command, in batch order (a later score of an encounter wins,
# as the hash writes do). KEYS: per score its score, patient-history and ward keys.
# ARGV: ttl, the field count F, the F field names, then per score: encounter id, history
# member, history timestamp, "1" if alerting, probability, and its F field values.
_WRITE_SCORES: Final = """
local ttl = ARGV[1]
local nf = tonumber(ARGV[2])
local stride = nf + 5
local hash = {}
for i = 1, nf do hash[2 * i - 1] = ARGV[2 + i] end
for i = 1, #KEYS / 3 do
  local k = 3 * (i - 1)
  local a = 2 + nf + stride * (i - 1)
  for j = 1, nf do hash[2 * j] = ARGV[a + 5 + j] end
  redis.call('HDEL', KEYS[k + 1], 'explained_at')  -- a new score's factors are not written yet
  redis.call('HSET', KEYS[k + 1], unpack(hash))
  redis.call('EXPIRE', KEYS[k + 1], ttl)
  redis.call('ZADD', KEYS[k + 2], ARGV[a + 3], ARGV[a + 2])
  redis.call('EXPIRE', KEYS[k + 2], ttl)
  if ARGV[a + 4] == '1' then
    redis.call('ZADD', KEYS[k + 3], ARGV[a + 5], ARGV[a + 1])
  else
    redis.call('ZREM', KEYS[k + 3], ARGV[a + 1])
  end
end
return #KEYS / 3
"""

CachedState = Literal["pending", "explained", "superseded", "not_yet"]


class ScoreCache:
    """Typed access to the score keys; one instance per process, thread-safe via redis-py."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._r = client
        self._p = prefix
        self._ttl = ttl_seconds
        self._cached_inputs = client.register_script(_CACHED_INPUTS)
        self._write_scores = client.register_script(_WRITE_SCORES)

    # -- key names: the only place they are spelled ---------------------------------
    def score_key(self, encounter_id: str) -> str:
        return f"{self._p}score:{encounter_id}"

    def patient_key(self, patient_id: str) -> str:
        return f"{self._p}patient:{patient_id}:scores"

    def ward_key(self, ward: str) -> str:
        return f"{self._p}ward:{ward}:high"

    # -- writes ---------------------------------------------------------------------
    def already_scored(self, events: Sequence[tuple[str, str, int | None]]) -> list[bool]:
        """Which (encounter_id, input_key, input_version) need no score: the encounter's
        cached score is that input, or a newer input version (an older one arriving late
        must not overwrite it).

        The latest-score hash carries the input it was computed from, so a redelivered
        event is recognised with no extra keys; one script call reads them all (a
        pipeline of one HMGET an event cost the scorer more than the check itself).
        """
        if not events:
            return []
        flat = self._cached_inputs(keys=[self.score_key(e) for e, _, _ in events])
        out = []
        for i, (_, key, version) in enumerate(events):
            cur_key, cur_version = flat[2 * i], flat[2 * i + 1]
            cached = int(cur_version) if cur_version else None
            out.append(
                (cur_key is not None and cur_key.decode() == key) or older_input(version, cached)
            )
        return out

    def write(self, events: Sequence[ScoreEvent]) -> None:
        """Store a batch of scores in one script call; idempotent for the same input_key.

        The scorer calls it only after ``risk.scored`` is published: a crash in between
        leaves no cached score, so the redelivered event is scored and published again
        (the alert feed deduplicates) instead of the alert being silently lost. The
        script applies the scores in batch order, atomically: a pipeline of about three
        commands a score cost the scorer ~20 % of its CPU in redis-py's command packing.
        """
        if not events:
            return
        cached_at = repr(time.time())
        keys: list[str] = []
        args: list[str | bytes | int] = [self._ttl, len(SCORE_FIELDS), *SCORE_FIELDS]
        for ev in events:
            keys += (
                self.score_key(ev.encounter_id),
                self.patient_key(ev.patient_id),
                self.ward_key(ev.ward),
            )
            probability = repr(ev.probability)
            args += (
                ev.encounter_id,
                f"{ev.encounter_id}|{ev.input_key}",
                repr(ev.computed_at.timestamp()),
                "1" if ev.alerting else "0",
                probability,
            )
            args += _values(ev, probability, cached_at)
        self._write_scores(keys=keys, args=args)

    def pending_states(self, events: Sequence[ScoreEvent]) -> list[CachedState]:
        """For the explainer: whether each score is the encounter's cached one still
        waiting for factors ("pending") or with them ("explained": a replay), was
        replaced by a newer input or model ("superseded": its factors are not needed),
        or is not cached yet ("not_yet": the scorer publishes before it writes Redis)."""
        if not events:
            return []
        pipe = self._r.pipeline(transaction=False)
        for ev in events:
            pipe.hmget(
                self.score_key(ev.encounter_id),
                ["input_key", "model_version", "input_version", "computed_at", "factors_pending"],
            )
        out: list[CachedState] = []
        rows = pipe.execute()
        for (key, model, version, computed, pending), ev in zip(rows, events, strict=True):
            if key is None:
                out.append("not_yet")
            elif key.decode() == ev.input_key and model.decode() == ev.model_version:
                out.append("pending" if pending == b"1" else "explained")
            elif _replaced(ev, int(version) if version else None, computed.decode()):
                out.append("superseded")
            else:
                out.append("not_yet")
        return out

    def add_factors(self, events: Sequence[ScoreEvent]) -> list[bool]:
        """Write explained scores' factors and interventions into their cached score,
        each only if the cache still holds that score; which ones were written."""
        if not events:
            return []
        script = self._r.register_script(_ADD_FACTORS)
        pipe = self._r.pipeline(transaction=False)
        explained_at = repr(time.time())
        for ev in events:
            script(
                keys=[self.score_key(ev.encounter_id)],
                args=[
                    ev.input_key,
                    ev.model_version,
                    _json(ev.factors),
                    _json(ev.interventions),
                    explained_at,
                ],
                client=pipe,
            )
        return [bool(r) for r in pipe.execute()]

    def forget(self, encounter_ids: Sequence[str]) -> None:
        """Drop encounters' latest scores so their next input is scored again
        (``readmit rescore --force``); patient histories and ward lists follow the rescore."""
        for i in range(0, len(encounter_ids), 500):
            keys = [self.score_key(e) for e in encounter_ids[i : i + 500]]
            if keys:
                self._r.delete(*keys)

    def ping(self) -> bool:
        try:
            return bool(self._r.ping())
        except redis.RedisError:
            return False

    # -- reads ----------------------------------------------------------------------
    def latest(self, encounter_id: str) -> ScoreEvent | None:
        found = self.latest_explained(encounter_id)
        return found[0] if found else None

    def latest_explained(self, encounter_id: str) -> tuple[ScoreEvent, datetime | None] | None:
        """The latest score and when the explainer stage wrote its factors (None if it has
        not), read in one call: a FHIR client syncs on the time the content last changed."""
        raw = self._r.hgetall(self.score_key(encounter_id))
        if not raw:
            return None
        at = raw.get(b"explained_at")
        return _event(encounter_id, raw), datetime.fromtimestamp(float(at), tz=UTC) if at else None

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


def _values(ev: ScoreEvent, probability: str, cached_at: str) -> tuple[str | bytes, ...]:
    """The hash field values of a score, in ``SCORE_FIELDS`` order."""
    return (
        probability,
        ev.band,
        ev.model_version,
        ev.input_key,
        str(ev.input_version) if ev.input_version is not None else "",
        ev.computed_at.isoformat(),
        ev.discharged_at.isoformat() if ev.discharged_at else "",
        ev.ward,
        ev.patient_id,
        "1" if ev.non_readmittable else "0",
        _json(ev.factors),
        _json(ev.interventions),
        "1" if ev.factors_pending else "0",
        cached_at,
    )


def _replaced(ev: ScoreEvent, cached_version: int | None, cached_computed_at: str) -> bool:
    """Whether the cached score (another input or model) is newer than ``ev``: by input
    version when both have one and they differ (the stay's order), else by when they were
    computed (the same input rescored by another model: the later score stands)."""
    if None not in (ev.input_version, cached_version) and cached_version != ev.input_version:
        return older_input(ev.input_version, cached_version)
    return datetime.fromisoformat(cached_computed_at) >= ev.computed_at


def _json(items: Sequence[Factor] | Sequence[Intervention]) -> bytes:
    """The JSON list of factors or interventions (``model_dump`` of each, without the
    per-item Python dicts: the scorer writes two such lists for every score)."""
    return orjson.dumps(items, default=stored_fields) if items else b"[]"


def _event(encounter_id: str, raw: dict[bytes, bytes]) -> ScoreEvent:
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return ScoreEvent(
        encounter_id=encounter_id,
        patient_id=f["patient_id"],
        ward=f["ward"],
        input_key=f["input_key"],
        input_version=int(f["input_version"]) if f.get("input_version") else None,
        probability=float(f["probability"]),
        band=f["band"],
        model_version=f["model_version"],
        factors=tuple(Factor(**x) for x in orjson.loads(f["factors"])),
        interventions=tuple(Intervention(**x) for x in orjson.loads(f["interventions"])),
        factors_pending=f.get("factors_pending") == "1",
        computed_at=datetime.fromisoformat(f["computed_at"]),
        discharged_at=datetime.fromisoformat(f["discharged_at"]) if f["discharged_at"] else None,
        non_readmittable=f["non_readmittable"] == "1",
    )
