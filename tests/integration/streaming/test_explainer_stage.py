"""The explanation stage: scores published at once, factors added by the explainer.

Real scorer and explainer processes against the session's broker and Redis. The factors
that arrive through the stage must be exactly those the scorer computes inline.
"""

from __future__ import annotations

import orjson
import pytest
import redis
from stream_support import feature_events, produce, read_topic, wait_for

from model_store.registry import Registry
from model_store.serving import needs_explanation
from readmit_core.events import FEATURES_TOPIC, SCORED_TOPIC, ScoreEvent
from readmit_core.score_cache import ScoreCache
from scorer.lag import consumer_lag

pytestmark = pytest.mark.integration


def test_factors_arrive_through_the_explainer_equal_to_inline(stream_settings, scorer_processes):
    settings = stream_settings
    assert not settings.scorer_explain_inline, "the stage is the default"
    bands = settings.explain_band_set
    events = feature_events(300, skip=4000, tag="explain-")
    produce(settings, [(e.patient_id.encode(), e.to_bytes()) for e in events], FEATURES_TOPIC)
    procs = scorer_processes(settings)
    procs.start()
    procs.start_explainer()
    cache = ScoreCache(redis.Redis.from_url(settings.redis_url), settings.topic_prefix, 3600)

    def settled() -> bool:
        scores = [cache.latest(e.encounter_id) for e in events]
        return all(s is not None and not s.factors_pending for s in scores)

    wait_for(settled, 120, "every score cached with its factors")

    # what the scorer computes inline, for the same records and model version
    model = Registry(settings.model_dir).load_champion()
    inline = model.score([e.record for e in events], explain_bands=bands)
    explained = 0
    for event, expected in zip(events, inline, strict=True):
        cached = cache.latest(event.encounter_id)
        assert cached is not None
        assert cached.model_version == model.version
        assert cached.probability == pytest.approx(expected.probability, abs=1e-9)
        assert [(f.feature, f.label) for f in cached.factors] == [
            (f.feature, f.label) for f in expected.factors
        ]
        for got, want in zip(cached.factors, expected.factors, strict=True):
            assert got.contribution == pytest.approx(want.contribution, abs=1e-9)
        assert cached.interventions == expected.interventions
        explained += needs_explanation(expected.band, expected.non_readmittable, bands)
    assert explained > 0, "the sample holds scores the stage had to explain"

    # risk.scored: every input at once, and a completion with factors for each pending one
    messages = read_topic(settings, SCORED_TOPIC, expect=len(events) + explained, timeout=30)
    scored = [ScoreEvent.model_validate_json(m) for m in messages]
    pending = [s for s in scored if s.factors_pending]
    completed = {
        s.input_key: s
        for s in scored
        if not s.factors_pending and s.input_key in {p.input_key for p in pending}
    }
    print(f"\nexplainer: {len(events)} scored, {len(pending)} pending, {len(completed)} completed")
    assert len(pending) == explained
    assert all(not p.factors for p in pending)
    assert set(completed) == {p.input_key for p in pending}
    for p in pending:
        done = completed[p.input_key]
        assert (done.computed_at, done.model_version, done.probability) == (
            p.computed_at,
            p.model_version,
            p.probability,
        )
        assert done.factors == cache.latest(p.encounter_id).factors
    # non-pending first messages are final as published: no second message for them
    keys = [orjson.loads(m)["input_key"] for m in messages]
    assert len(keys) == len(events) + explained

    # a replay of the whole topic (a new explainer group from offset 0) finds every score
    # explained already: it commits to the end and publishes nothing again
    replay = settings.model_copy(update={"explainer_group": f"{settings.topic_prefix}replay"})
    scorer_processes(replay).start_explainer("explainer-replay")
    topic = settings.topic(SCORED_TOPIC)

    def replayed() -> bool:
        rows = consumer_lag(settings.kafka_bootstrap, replay.explainer_group, topic)
        return sum(r.committed or 0 for r in rows) >= len(keys)

    wait_for(replayed, 90, "the replaying explainer committed the whole topic")
    again = read_topic(settings, SCORED_TOPIC, expect=len(keys) + 1, timeout=3)
    assert len(again) == len(keys)


def test_the_cache_gives_factors_only_to_the_score_it_still_holds(cache):
    """What the explainer reads and writes: a replay finds the score explained, a score
    replaced by a newer input is superseded (its factors never overwrite the newer one),
    one the scorer has not cached yet is waited for."""
    events = feature_events(2, skip=6000, tag="cache-states-")
    from datetime import timedelta

    from readmit_core.events import Factor

    base = ScoreEvent(
        encounter_id=events[0].encounter_id, patient_id="p", ward="w", input_key="k|1",
        probability=0.8, band="high", model_version="m-1", input_version=1,
        factors_pending=True,
    )  # fmt: skip
    done = base.model_copy(
        update={
            "factors_pending": False,
            "factors": (Factor(feature="age", label="Age 70 to 80", contribution=1.5),),
        }
    )
    absent = base.model_copy(update={"encounter_id": events[1].encounter_id})
    assert cache.pending_states([base, absent]) == ["not_yet", "not_yet"]
    cache.write([base])
    assert cache.pending_states([base, absent]) == ["pending", "not_yet"]
    assert cache.add_factors([done, absent]) == [True, False]
    assert cache.latest(base.encounter_id).factors == done.factors
    assert cache.pending_states([base]) == ["explained"]
    newer = base.model_copy(
        update={
            "input_key": "k|2",
            "input_version": 2,
            "computed_at": base.computed_at + timedelta(seconds=5),
        }
    )
    cache.write([newer])
    assert cache.pending_states([base, newer]) == ["superseded", "pending"]
    assert cache.add_factors([done]) == [False]
    latest = cache.latest(base.encounter_id)
    assert (latest.input_key, latest.factors, latest.factors_pending) == ("k|2", (), True)
    # a newer input the scorer has not cached yet (the cache holds an older one)
    later = newer.model_copy(update={"input_key": "k|3", "input_version": 3})
    assert cache.pending_states([later]) == ["not_yet"]
