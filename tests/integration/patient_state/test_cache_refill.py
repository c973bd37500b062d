"""A lost score cache is refilled from the state database: only what is missing, one
process at a time, and a flush during the refill makes the next check refill again."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis
from kafka.producer.future import RecordMetadata

from patient_state.cache_refill import CacheRefill
from patient_state.store import AcceptedRow, Delivery, open_store
from readmit_core.events import FeatureEvent, ScoreEvent
from readmit_core.score_cache import ScoreCache

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "streaming"))
from stream_support import feature_events  # noqa: E402


class Recorder:
    """Stands in for the producer; ``during`` runs inside the publish (a flush, say)."""

    def __init__(self, during=None) -> None:
        self.sent: list[FeatureEvent] = []
        self.during = during

    def publish(self, events: Sequence[FeatureEvent]) -> list[RecordMetadata]:
        if self.during is not None:
            self.during()
        self.sent.extend(events)
        return [
            RecordMetadata("t.features", 0, None, len(self.sent) + i, 0, None, 0, 0, 0)
            for i in range(len(events))
        ]


@pytest.fixture
def setup(redis_url: str, tmp_path: Path):
    prefix = f"cr{uuid.uuid4().hex[:8]}."
    client = redis.Redis.from_url(redis_url)
    cache = ScoreCache(client, prefix, 3600)
    store = open_store("", tmp_path, prefix)
    events = feature_events(6, skip=100, tag=f"{prefix}-")
    store.remember(
        [],
        [],
        [
            AcceptedRow(
                Delivery(e.input_key, "t.features", 0, i), e.encounter_id, e.patient_id,
                e.to_bytes().decode(), 1000.0 + i,
            )
            for i, e in enumerate(events)
        ],
    )  # fmt: skip
    yield client, cache, store, events, prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def _scored(cache: ScoreCache, events: list[FeatureEvent]) -> None:
    cache.write(
        [
            ScoreEvent(
                encounter_id=e.encounter_id, patient_id=e.patient_id, ward=e.ward,
                input_key=e.input_key, probability=0.1, band="low", model_version="m1",
            )
            for e in events
        ]
    )  # fmt: skip


def _refill(setup, publisher: Recorder) -> CacheRefill:
    client, cache, store, _, prefix = setup
    return CacheRefill(client, cache, store, publisher, prefix=prefix, window_s=10_000)


def test_a_lost_cache_republishes_only_the_missing_scores_once(setup) -> None:
    client, cache, _, events, _ = setup
    _scored(cache, events[:2])  # written after the loss: current, not republished
    publisher = Recorder()
    refill = _refill(setup, publisher)
    done = refill.check(now=2000.0)
    assert done.ran
    assert done.completed
    assert done.candidates == 6
    assert sorted(e.input_key for e in publisher.sent) == sorted(e.input_key for e in events[2:])
    assert refill.cache_whole()
    assert not refill.check(now=2000.0).ran  # whole: nothing to do
    assert len(publisher.sent) == 4
    client.delete(refill.sentinel_key)  # flushed again; the republished ones are scored now
    _scored(cache, events)
    again = refill.check(now=2000.0)
    assert again.ran
    assert again.republished == 0


def test_one_refill_at_a_time(setup) -> None:
    client, *_ = setup
    publisher = Recorder()
    refill = _refill(setup, publisher)
    client.set(refill.lock_key, "another process")
    assert not refill.check(now=2000.0).ran
    assert publisher.sent == []
    assert not refill.cache_whole()


def test_a_flush_during_the_refill_leaves_no_sentinel(setup) -> None:
    client, _, _, events, _ = setup
    holder: list[CacheRefill] = []
    publisher = Recorder(during=lambda: client.delete(holder[0].lock_key))
    holder.append(_refill(setup, publisher))
    first = holder[0].check(now=2000.0)
    assert first.ran
    assert not first.completed
    assert not holder[0].cache_whole()
    publisher.during = None
    assert holder[0].check(now=2000.0).completed  # the next check refills again
    assert len(publisher.sent) == 2 * len(events)


def test_the_window_is_the_score_ttl(setup) -> None:
    client, cache, store, events, prefix = setup
    publisher = Recorder()
    CacheRefill(client, cache, store, publisher, prefix=prefix, window_s=997).check(now=2000.0)
    # accepted at 1000..1005: only those at or after 2000 - 997 = 1003
    assert sorted(e.input_key for e in publisher.sent) == sorted(e.input_key for e in events[3:])


def test_after_a_broker_loss_recent_scores_are_scored_again(setup) -> None:
    """Their risk.scored may have died with the broker before the alert feed read it."""
    client, cache, _, events, _ = setup
    _scored(cache, events[:3])
    for e in events[:1]:  # written long before the broker was last seen well
        client.hset(cache.score_key(e.encounter_id), "cached_at", "1.0")
    publisher = Recorder()
    refill = _refill(setup, publisher)
    refill.check(now=2000.0)  # the cache itself is whole from here on
    publisher.sent.clear()
    _scored(cache, events[3:])
    for e in events[3:]:
        client.hset(cache.score_key(e.encounter_id), "cached_at", "1.0")
    done = refill.check(now=2000.0, broker_lost=True, scored_since=100.0)
    assert done.completed
    again = {e.input_key for e in events[1:3]}
    assert {e.input_key for e in publisher.sent} == again
    assert all(cache.latest(e.encounter_id) is None for e in events[1:3])  # dropped first
    assert cache.latest(events[0].encounter_id) is not None
