"""Read-side access to cached scores (written by the scorer, read here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis

from readmit_core.events import ScoreEvent
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import get_settings


@lru_cache(maxsize=1)
def score_cache() -> ScoreCache:
    s = get_settings()
    # bounded waits: a hung Redis becomes a 503 (alerts_web.outage), not a hung request
    client = redis.Redis.from_url(s.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return ScoreCache(client, s.topic_prefix, s.score_ttl_seconds)


@dataclass(frozen=True)
class HistoryPoint:
    """One score of a patient's stay, for the history chart and the API."""

    encounter_id: str
    input_key: str
    at: datetime
    probability: float | None
    band: str | None
    model_version: str | None


def latest_score(encounter_id: str) -> ScoreEvent | None:
    return score_cache().latest(encounter_id)


def latest_explained(encounter_id: str) -> tuple[ScoreEvent, datetime | None] | None:
    """The latest score and the time its factors were added (None if not yet)."""
    return score_cache().latest_explained(encounter_id)


def patient_history(patient_id: str) -> list[HistoryPoint]:
    """Scores of a patient oldest first.

    The cache keeps the latest score per encounter; earlier inputs of the same
    encounter are listed with their time but without a probability of their own
    (None), unless it is the input the latest score came from.
    """
    cache = score_cache()
    latest_by_encounter: dict[str, ScoreEvent | None] = {}
    points = []
    for encounter_id, input_key, ts in cache.patient_history(patient_id):
        if encounter_id not in latest_by_encounter:
            latest_by_encounter[encounter_id] = cache.latest(encounter_id)
        ev = latest_by_encounter[encounter_id]
        same = ev is not None and ev.input_key == input_key
        points.append(
            HistoryPoint(
                encounter_id=encounter_id,
                input_key=input_key,
                at=datetime.fromtimestamp(ts, tz=UTC),
                probability=ev.probability if same and ev else None,
                band=ev.band if same and ev else None,
                model_version=ev.model_version if same and ev else None,
            )
        )
    return points
