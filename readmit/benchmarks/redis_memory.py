"""`readmit bench redis-memory`: Redis bytes per cached score, for the capacity model.

Sizing Redis for a hospital network needs one number: how many bytes one scored
encounter costs. This writes ``count`` realistic scores through the real
:meth:`readmit_core.score_cache.ScoreCache.write` into a fresh key prefix, then reads the cost two
ways:

* ``MEMORY USAGE`` of every key under the prefix (what the keys themselves hold,
  by key kind: score hash, patient history, ward list);
* the ``INFO memory`` ``used_memory`` delta (what the server really grew by,
  including its dictionary and expiry overhead; noisy if other clients write).

Scores are realistic: dataset rows (real encounters-per-patient distribution) with
FHIR-length ids (UUIDs), scored by the champion model when one loads (real factors and
interventions) or else given the same number of factors and interventions chosen by
the real intervention rules. Every key written is deleted at the end.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from readmit_core.errors import ReadmitError
from readmit_core.events import Factor, FeatureEvent, RiskBand, ScoreEvent
from readmit_core.settings import Settings

WARDS = 24
BATCH = 500
# Share of high/medium bands in the fallback (no champion): close to what the baseline
# model assigns on the development data.
FALLBACK_BANDS: tuple[tuple[RiskBand, float], ...] = (
    ("high", 0.15),
    ("medium", 0.35),
    ("low", 0.50),
)
_ID_NAMESPACE = uuid.UUID("6f1c3f8e-3b0e-4c36-9d8c-2d5f8e0b7a11")


class RedisMemoryError(ReadmitError):
    """The measurement cannot run: Redis unreachable, refused a command, or no data."""


@dataclass
class MemoryReport:
    """What one run measured; ``bytes_per_score_*`` are the numbers the capacity model uses.

    ``scores`` counts score writes (encounters x versions): a re-sent encounter version
    overwrites the score hash but adds a patient-history member.
    """

    scores: int
    mode: str
    keys: int
    memory_usage_bytes: int
    used_memory_delta_bytes: int
    bytes_per_score_memory_usage: float
    bytes_per_score_used_memory: float
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    encounters: int = 0
    bytes_per_encounter_memory_usage: float = 0.0
    bytes_per_encounter_used_memory: float = 0.0
    redis_version: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fhir_id(kind: str, value: str) -> str:
    """A stable UUID-shaped id: EHR logical ids are this long, the dataset's are shorter."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}/{value}"))


def feature_events(data_path: Path, count: int) -> list[FeatureEvent]:
    """``count`` feature events from dataset rows, as the ingest API would publish them."""
    from readmit_core.features import TARGET_COLUMN, FeatureRecord

    events: list[FeatureEvent] = []
    with gzip.open(data_path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            if len(events) == count:
                break
            values = {k: v for k, v in row.items() if k != TARGET_COLUMN}
            record = FeatureRecord.model_validate(values)
            encounter = fhir_id("Encounter", record.encounter_id)
            events.append(
                FeatureEvent(
                    encounter_id=encounter,
                    patient_id=fhir_id("Patient", record.patient_nbr),
                    ward=f"ward-{int(encounter[:8], 16) % WARDS:02d}",
                    input_key=f"{encounter}/_history/1",
                    record=record,
                )
            )
    if not events:
        raise RedisMemoryError(f"no rows read from {data_path}")
    return events


def _champion_scores(events: Sequence[FeatureEvent], model_dir: Path) -> list[ScoreEvent] | None:
    """Scores from the champion model, or None when no champion loads here."""
    from model_store.registry import ModelRegistryError, Registry
    from scorer.consumer import to_score_event

    try:
        model = Registry(model_dir).load_champion()
    except ModelRegistryError:
        return None
    out: list[ScoreEvent] = []
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        preds = model.score([e.record for e in chunk])
        out.extend(to_score_event(e, p, model.version) for e, p in zip(chunk, preds, strict=True))
    return out


def _fallback_scores(events: Sequence[FeatureEvent]) -> list[ScoreEvent]:
    """Scores shaped like the champion's: 4 factors, interventions by the real rules."""
    from model_store.explain import TOP_FACTORS
    from model_store.interventions import recommend

    columns = ("number_inpatient", "num_medications", "time_in_hospital", "A1Cresult", "age")
    out: list[ScoreEvent] = []
    for i, ev in enumerate(events):
        band = _band_for(i)
        values = ev.record.model_dump()
        factors = tuple(
            Factor(
                feature=col,
                label=f"{col.replace('_', ' ').capitalize()}: {values.get(col)}",
                contribution=round(0.2 / (rank + 1), 4),
            )
            for rank, col in enumerate(columns[:TOP_FACTORS])
        )
        probability = {"high": 0.42, "medium": 0.18, "low": 0.06}[band]
        out.append(
            ScoreEvent(
                encounter_id=ev.encounter_id,
                patient_id=ev.patient_id,
                ward=ev.ward,
                input_key=ev.input_key,
                probability=probability + (i % 97) / 10_000,
                band=band,
                model_version="lr-20260101T000000Z",
                factors=factors,
                interventions=recommend(
                    band,
                    factors,
                    a1c_result=str(values.get("A1Cresult")),
                    age=str(values.get("age")),
                ),
            )
        )
    return out


def _band_for(i: int) -> RiskBand:
    slot = (i * 37) % 100 / 100
    acc = 0.0
    for band, share in FALLBACK_BANDS:
        acc += share
        if slot < acc:
            return band
    return "low"


def _scan(client: redis.Redis, prefix: str) -> Iterator[bytes]:
    yield from client.scan_iter(match=f"{prefix}*", count=1000)


def _kind(key: bytes, prefix: str) -> str:
    """score | patient | ward: the first path segment after the prefix."""
    return key.decode()[len(prefix) :].split(":", 1)[0]


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; returns how many went."""
    deleted = 0
    batch: list[bytes] = []
    for key in _scan(client, prefix):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


def with_updates(scores: Sequence[ScoreEvent], versions: int) -> list[ScoreEvent]:
    """Each score again as encounter versions 2..``versions`` (EHRs resend encounters)."""
    out = list(scores)
    for version in range(2, versions + 1):
        out.extend(
            s.model_copy(update={"input_key": f"{s.encounter_id}/_history/{version}"})
            for s in scores
        )
    return out


def measure(settings: Settings, count: int, versions: int = 1) -> MemoryReport:
    """Write ``count`` encounters' scores (``versions`` each) under a fresh prefix,
    measure, delete; see the module doc."""
    from readmit_core.score_cache import ScoreCache

    started = time.perf_counter()
    events = feature_events(settings.data_path, count)
    scores = _champion_scores(events, settings.model_dir)
    mode = "champion" if scores is not None else "fallback (no champion model loaded)"
    if scores is None:
        scores = _fallback_scores(events)
    scores = with_updates(scores, versions)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    prefix = f"benchmem{uuid.uuid4().hex[:8]}."
    cache = ScoreCache(client, prefix, settings.score_ttl_seconds)
    try:
        version = str(client.info("server").get("redis_version", ""))
        before = _used_memory(client)
        for start in range(0, len(scores), BATCH):
            chunk = scores[start : start + BATCH]
            cache.write(chunk)
        after = _used_memory(client)
        report = _usage_report(client, prefix, len(scores), after - before)
        report.encounters = len(events)
        report.bytes_per_encounter_memory_usage = round(report.memory_usage_bytes / len(events), 1)
        report.bytes_per_encounter_used_memory = round((after - before) / len(events), 1)
        report.mode = mode
        report.redis_version = version
    except redis.RedisError as exc:
        raise RedisMemoryError(f"Redis at {settings.redis_url}: {exc}") from exc
    finally:
        with contextlib.suppress(redis.RedisError):
            delete_prefix(client, prefix)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _usage_report(client: redis.Redis, prefix: str, scores: int, delta: int) -> MemoryReport:
    keys = list(_scan(client, prefix))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    sizes = [int(s or 0) for s in pipe.execute()]
    per_kind: Counter[str] = Counter()
    count_kind: Counter[str] = Counter()
    for key, size in zip(keys, sizes, strict=True):
        kind = _kind(key, prefix)
        per_kind[kind] += size
        count_kind[kind] += 1
    total = sum(sizes)
    return MemoryReport(
        scores=scores,
        mode="",
        keys=len(keys),
        memory_usage_bytes=total,
        used_memory_delta_bytes=delta,
        bytes_per_score_memory_usage=round(total / scores, 1),
        bytes_per_score_used_memory=round(delta / scores, 1),
        by_kind={
            kind: {
                "keys": count_kind[kind],
                "bytes": per_kind[kind],
                "bytes_per_score": round(per_kind[kind] / scores, 1),
            }
            for kind in sorted(per_kind)
        },
    )
