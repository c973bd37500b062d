"""The streaming path under faults, against real processes and services.

Each test counts what it sent, what was scored, what went to the DLQ and what was
lost; the counts are asserted, and printed for the closing note (pytest -s).
"""

from __future__ import annotations

import os
import signal

import orjson
import pytest
import redis
from stream_support import feature_events, produce, read_topic, wait_for

from readmit.embedded.services import free_port, start_redis
from readmit_core.events import DEAD_LETTER_TOPIC, FEATURES_TOPIC, SCORED_TOPIC
from readmit_core.score_cache import ScoreCache

pytestmark = pytest.mark.integration


def _assigned_partitions(log_path) -> set[int]:
    """The partitions a scorer last said it owns (from its JSON log)."""
    owned: set[int] = set()
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("msg") == "partitions assigned":
                owned = set(entry["partitions"])
    return owned


def _scored(cache: ScoreCache, events) -> int:
    return sum(cache.latest(e.encounter_id) is not None for e in events)


def _send(settings, events) -> None:
    produce(settings, [(e.patient_id.encode(), e.to_bytes()) for e in events], FEATURES_TOPIC)


def _cache(settings) -> ScoreCache:
    return ScoreCache(redis.Redis.from_url(settings.redis_url), settings.topic_prefix, 3600)


def test_poison_message_goes_to_dlq_and_the_rest_is_scored(stream_settings, scorer_processes):
    good = feature_events(1000, tag="poison-")
    payloads = [(e.patient_id.encode(), e.to_bytes()) for e in good]
    payloads.insert(500, (b"p", b"\x00this is not an event"))
    produce(stream_settings, payloads, FEATURES_TOPIC)
    scorer_processes(stream_settings).start()
    cache = _cache(stream_settings)
    wait_for(lambda: _scored(cache, good) == len(good), 90, "1000 good events scored")
    dead = read_topic(stream_settings, DEAD_LETTER_TOPIC, expect=1)
    print(f"\npoison: sent 1001, scored {_scored(cache, good)}, dlq {len(dead)}, lost 0")
    assert len(dead) == 1
    letter = orjson.loads(dead[0])
    assert letter["reason"] == "undecodable"


def test_duplicate_deliveries_give_one_score(stream_settings, scorer_processes):
    events = feature_events(50, skip=2000, tag="dup-")
    _send(stream_settings, events + events + events)
    scorer_processes(stream_settings).start()
    cache = _cache(stream_settings)
    wait_for(lambda: _scored(cache, events) == len(events), 60, "50 events scored")
    scored = read_topic(stream_settings, SCORED_TOPIC, expect=len(events) * 3, timeout=5)
    keys = [orjson.loads(m)["input_key"] for m in scored]
    print(f"\nduplicates: sent 150 (50 x3), scored {len(set(keys))}, risk.scored msgs {len(keys)}")
    assert sorted(set(keys)) == sorted(e.input_key for e in events)
    assert len(keys) == len(events), "each input is published to risk.scored exactly once"
    for e in events[:5]:
        assert len(cache.patient_history(e.patient_id)) >= 1


def test_kill_minus_nine_mid_stream_loses_nothing(stream_settings, scorer_processes):
    events = feature_events(3000, skip=4000, tag="kill-")
    procs = scorer_processes(stream_settings)
    first = procs.start("scorer-a")
    cache = _cache(stream_settings)
    _send(stream_settings, events)
    wait_for(lambda: _scored(cache, events[:300]) > 0, 60, "scoring to start")
    first.kill()
    scored_at_kill = _scored(cache, events)
    procs.start("scorer-b")
    wait_for(lambda: _scored(cache, events) == len(events), 120, "all events scored after restart")
    wanted = {e.input_key for e in events}

    def every_input_read(read: list[bytes]) -> bool:  # the in-flight batch is repeated
        return {orjson.loads(m)["input_key"] for m in read} >= wanted

    scored = read_topic(stream_settings, SCORED_TOPIC, 0, timeout=30, until=every_input_read)
    keys = [orjson.loads(m)["input_key"] for m in scored]
    print(
        f"\nkill -9: sent {len(events)}, scored before kill {scored_at_kill}, "
        f"scored in the end {_scored(cache, events)}, lost 0, "
        f"risk.scored msgs {len(keys)} ({len(keys) - len(set(keys))} repeats of in-flight batch)"
    )
    assert set(keys) == wanted
    # every encounter ends with exactly one current score: one hash per encounter, one input each
    for e in events[::50]:
        history = cache.patient_history(e.patient_id)
        assert [k for enc, k, _ in history if enc == e.encounter_id] == [e.input_key]


def test_redis_outage_backs_off_and_catches_up(stream_settings, scorer_processes, tmp_path):
    port = free_port()
    own_redis = start_redis(port, tmp_path / "redis.log")
    settings = stream_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
    try:
        procs = scorer_processes(settings)
        procs.start()
        cache = _cache(settings)
        before = feature_events(100, skip=8000, tag="redis-a-")
        _send(settings, before)
        wait_for(lambda: _scored(cache, before) == len(before), 60, "first 100 scored")
        own_redis.stop()
        during = feature_events(200, skip=8100, tag="redis-b-")
        _send(settings, during)
        # Redis is down for 10 s while events keep arriving; the scorer must not commit.
        import time

        time.sleep(10)  # the outage itself: a duration, not a condition to await
        own_redis = start_redis(port, tmp_path / "redis2.log")
        cache = _cache(settings)
        wait_for(lambda: _scored(cache, during) == len(during), 90, "catch-up after outage")
        print(
            f"\nredis outage: sent {len(during)} during 10 s outage, scored {len(during)}, lost 0"
        )
        assert all(p.alive for p in procs.procs), "the scorer survived the outage"
    finally:
        own_redis.stop()


def test_two_scorers_share_the_partitions(stream_settings, scorer_processes):
    procs = scorer_processes(stream_settings)
    a, b = procs.start("scorer-a"), procs.start("scorer-b")
    events = feature_events(2000, skip=10000, tag="two-")
    _send(stream_settings, events)
    cache = _cache(stream_settings)
    wait_for(lambda: _scored(cache, events) == len(events), 90, "2000 events scored by 2 scorers")
    assert a.alive
    assert b.alive
    owned = [_assigned_partitions(p.log_path) for p in (a, b)]
    print(f"\ntwo scorers: sent {len(events)}, scored {len(events)}, partitions {owned}")
    assert all(owned), "both scorers own partitions"
    assert set().union(*owned) == set(range(stream_settings.topic_partitions))
    # SIGTERM: finish the batch, commit, leave the group
    for p in (a, b):
        assert p.proc is not None
        os.kill(p.proc.pid, signal.SIGTERM)
    for p in (a, b):
        assert p.proc is not None
        assert p.proc.wait(timeout=20) == 0


def test_model_hot_reload_without_dropping_events(stream_settings, scorer_processes, tmp_path):
    """Promoting a new champion switches live scorers; every event still gets a score."""
    import shutil

    from stream_support import DATA

    from model_store.registry import Registry
    from model_store.train import train_models

    registry_dir = tmp_path / "registry"
    shutil.copytree(stream_settings.model_dir, registry_dir)
    settings = stream_settings.model_copy(update={"model_dir": registry_dir})
    registry = Registry(registry_dir)
    first = registry.champion_version()
    (second,) = train_models(
        DATA, registry_dir, ("lr",), sample_patients=2000, seed=7, promote=False
    )
    scorer_processes(settings).start()
    cache = _cache(settings)
    before = feature_events(200, skip=12000, tag="reload-a-")
    _send(settings, before)
    wait_for(lambda: _scored(cache, before) == len(before), 60, "scores by the first model")
    registry.promote(second)
    after = feature_events(200, skip=12200, tag="reload-b-")

    probes = iter(feature_events(100, skip=12400, tag="reload-probe-"))

    def scored_by_second() -> bool:
        """Send a fresh probe (a resend would be a duplicate) and look at its model."""
        probe = next(probes)
        _send(settings, [probe])
        wait_for(lambda: cache.latest(probe.encounter_id) is not None, 30, "the probe's score")
        return cache.latest(probe.encounter_id).model_version == second

    wait_for(scored_by_second, 60, "the scorer to follow the new champion")
    _send(settings, after)
    wait_for(lambda: _scored(cache, after) == len(after), 60, "scores after the switch")
    versions = {cache.latest(e.encounter_id).model_version for e in before}
    print(f"\nhot reload: {first} -> {second}; {len(before) + len(after)} events, all scored")
    assert versions == {first}
    assert {cache.latest(e.encounter_id).model_version for e in after} == {second}
