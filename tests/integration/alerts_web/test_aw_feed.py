"""The alert feed against the real broker: store, dedupe, broadcast, commit; the command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from alerts_web.alerts.feed import FeedCounts
from alerts_web.alerts.kafka_feed import run_feed
from alerts_web.alerts.models import Alert
from readmit.embedded.stack import settings_env
from readmit_core.events import DEAD_LETTER_TOPIC, SCORED_TOPIC, DeadLetter
from readmit_core.kafka_clients import ensure_topics
from readmit_core.settings import PROJECT_ROOT, Settings
from scorer.lag import consumer_lag

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def feed_settings(service_settings: Settings) -> Settings:
    s = service_settings.model_copy(
        update={"topic_prefix": f"{service_settings.topic_prefix}f{time.monotonic_ns()}."}
    )
    ensure_topics(s)
    return s


def _produce(settings: Settings, payloads: list[bytes]) -> None:
    """Keyed by encounter like the scorer does, so one encounter's scores stay in order."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for payload in payloads:
        key = payload.split(b'"encounter_id":"', 1)[-1].split(b'"', 1)[0]
        producer.send(settings.topic(SCORED_TOPIC), key=key, value=payload)
    producer.flush()
    producer.close()


def _rescored(event: Any, minutes: float, **changes: Any) -> Any:
    """The same encounter scored again ``minutes`` later (earlier when negative)."""
    later = event.computed_at + timedelta(minutes=minutes)
    return event.model_copy(update={"computed_at": later, **changes})


def _run_until(settings: Settings, seen: int, timeout: float = 30) -> FeedCounts:
    """Run the feed in a thread until it has seen ``seen`` messages."""
    stop = threading.Event()
    result: dict[str, FeedCounts] = {}

    def on_batch(counts: FeedCounts) -> None:
        if counts.seen >= seen:
            stop.set()

    def target() -> None:
        try:
            result["c"] = run_feed(settings, stop, on_batch=on_batch)
        finally:
            connection.close()  # the thread's own connection; else the test DB cannot drop

    thread = threading.Thread(target=target)
    thread.start()
    finished = stop.wait(timeout)
    stop.set()
    thread.join(timeout=30)
    assert finished, "feed did not see the messages in time"
    return result["c"]


def test_feed_stores_high_risk_once_broadcasts_and_commits(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(wards[0].group_name, channel)
    high_1 = event_factory("ward-a")
    high_2 = event_factory("ward-a")
    medium = event_factory("ward-a", band="medium", probability=0.3)
    payloads = [
        high_1.to_bytes(),
        high_2.to_bytes(),
        high_1.to_bytes(),  # redelivery: same encounter, model and input
        medium.to_bytes(),  # listed: the worklist shows medium risk on demand
        event_factory("ward-a", non_readmittable=True).to_bytes(),
        high_1.to_bytes().replace(b'"schema_version":1', b'"schema_version":9'),
        b"\xff not json",
    ]
    dead_before = (
        REGISTRY.get_sample_value("readmit_feed_dead_letters_total", {"reason": "unknown_version"})
        or 0.0
    )
    _produce(feed_settings, payloads)
    counts = _run_until(feed_settings, seen=len(payloads))
    assert (counts.stored, counts.unchanged, counts.not_alerting) == (3, 1, 1)
    assert (counts.unknown_version, counts.invalid) == (1, 1)
    listed = {high_1.encounter_id, high_2.encounter_id, medium.encounter_id}
    assert set(Alert.objects.values_list("encounter_id", flat=True)) == listed

    async def receive_three() -> list[dict[str, Any]]:
        return [await layer.receive(channel) for _ in range(3)]

    received = async_to_sync(receive_three)()
    assert {m["alert"]["encounter_id"] for m in received} == listed, received
    lags = consumer_lag(
        feed_settings.kafka_bootstrap, feed_settings.alerts_group, feed_settings.topic(SCORED_TOPIC)
    )
    # Committed = next offset to read, per partition: everything polled was committed.
    assert sum(p.committed or 0 for p in lags) == len(payloads)
    # the two refused messages were dead-lettered with their reasons, not dropped
    letters = [
        DeadLetter.model_validate_json(v) for v in _read_all(feed_settings, DEAD_LETTER_TOPIC)
    ]
    assert sorted(letter.reason for letter in letters) == ["undecodable", "unknown_version"]
    assert {letter.source_topic for letter in letters} == {feed_settings.topic(SCORED_TOPIC)}
    assert all(letter.consumer == "alerts-feed" for letter in letters)
    assert (
        REGISTRY.get_sample_value("readmit_feed_dead_letters_total", {"reason": "unknown_version"})
        == dead_before + 1
    )


def _read_all(settings: Settings, name: str) -> list[bytes]:
    """Every message of one topic, read by assignment (no group join) up to its end."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_servers, enable_auto_commit=False)
    try:
        topic = settings.topic(name)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[bytes] = []
        deadline = time.monotonic() + 15
        while any(consumer.position(tp) < end[tp] for tp in parts):
            assert time.monotonic() < deadline, "topic not read to its end"
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(r.value for r in records)
        return out
    finally:
        consumer.close()


def test_replay_from_the_start_creates_no_duplicates(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    events = [event_factory("ward-a") for _ in range(3)]
    _produce(feed_settings, [e.to_bytes() for e in events])
    assert _run_until(feed_settings, seen=3).stored == 3
    replay = feed_settings.model_copy(update={"alerts_group": "replay-from-zero"})
    counts = _run_until(replay, seen=3)
    assert (counts.stored, counts.unchanged) == (0, 3)
    assert Alert.objects.count() == 3


def test_new_input_for_the_same_encounter_updates_the_alert(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    first = event_factory("ward-a", probability=0.6)
    second = _rescored(first, 5, input_key=first.input_key + "-v2", probability=0.8)
    late = _rescored(first, -60, input_key=first.input_key + "-v0")
    _produce(feed_settings, [first.to_bytes(), second.to_bytes(), late.to_bytes()])
    counts = _run_until(feed_settings, seen=3)
    assert (counts.stored, counts.updated, counts.unchanged) == (1, 1, 1)
    alert = Alert.objects.get()
    assert (alert.probability, alert.input_key) == (0.8, second.input_key)


def test_the_explainers_factors_complete_the_pending_alert_and_are_broadcast(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    """The scorer's pending score opens the row at once without factors; the explainer's
    completion of the same score fills them in (no rescore audit) and is pushed to the
    ward; a replayed pending score afterwards does not erase them."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(wards[0].group_name, channel)
    done = event_factory("ward-a")
    pending = done.model_copy(update={"factors": (), "interventions": (), "factors_pending": True})
    _produce(feed_settings, [pending.to_bytes()])
    assert _run_until(feed_settings, seen=1).stored == 1
    alert = Alert.objects.get()
    assert (alert.factors, alert.factors_pending) == ([], True)
    assert alert.as_message()["factors_pending"] is True
    _produce(feed_settings, [done.to_bytes(), pending.to_bytes()])
    counts = _run_until(feed_settings, seen=2)
    assert (counts.explained, counts.unchanged) == (1, 1)
    alert.refresh_from_db()
    assert alert.factors_pending is False
    assert alert.factors == [f.model_dump(mode="json") for f in done.factors]
    assert alert.interventions == [i.model_dump(mode="json") for i in done.interventions]
    assert not alert.actions.filter(kind="rescored").exists()

    async def receive_two() -> list[dict[str, Any]]:
        return [await layer.receive(channel) for _ in range(2)]

    first, second = async_to_sync(receive_two)()
    assert first["alert"]["factors_pending"] is True
    assert first["alert"]["top_factor"] is None
    assert second["alert"]["factors_pending"] is False
    assert second["alert"]["top_factor"] == done.factors[0].label


def test_new_model_scoring_low_closes_the_old_models_alert(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    """After a champion rotation, the new model's lower score still closes the alert."""
    old = event_factory("ward-a", probability=0.7)
    new = _rescored(old, 5, model_version=old.model_version + "-next", probability=0.05, band="low")
    _produce(feed_settings, [old.to_bytes(), new.to_bytes()])
    counts = _run_until(feed_settings, seen=2)
    assert (counts.stored, counts.downgraded) == (1, 1)
    alert = Alert.objects.get()
    assert (alert.status, alert.close_reason) == ("closed", "risk_fell")
    assert (alert.model_version, alert.band) == (new.model_version, "low")  # the latest truth


def test_a_database_failure_mid_batch_rewinds_and_keeps_every_alert(
    feed_settings: Settings, wards: Any, event_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt stores part of the batch, then PostgreSQL fails: nothing of it
    may stay half-stored, and the retry must store and broadcast all of it."""
    from alerts_web.alerts import kafka_feed

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(wards[0].group_name, channel)
    events = [event_factory("ward-a") for _ in range(3)]
    real = kafka_feed.handle_messages
    failures = []

    def fail_once(raws: list[bytes], counts: FeedCounts, rejected: Any = None) -> list[Alert]:
        changed = real(raws, counts, rejected)  # stores the batch, then the database "goes away"
        if not failures:
            failures.append(len(changed))
            raise OperationalError("server closed the connection unexpectedly")
        return changed

    monkeypatch.setattr(kafka_feed, "handle_messages", fail_once)
    _produce(feed_settings, [e.to_bytes() for e in events])
    counts = _run_until(feed_settings, seen=3)
    assert failures, "the failure was never injected"
    assert (counts.seen, counts.stored, counts.unchanged) == (3, 3, 0)
    assert Alert.objects.count() == 3

    async def receive(n: int) -> list[dict[str, Any]]:
        return [await layer.receive(channel) for _ in range(n)]

    received = async_to_sync(receive)(3)
    assert {m["alert"]["encounter_id"] for m in received} == {e.encounter_id for e in events}


def test_a_failed_broadcast_is_counted_and_the_batch_committed(
    feed_settings: Settings, wards: Any, event_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts_web.alerts import kafka_feed

    def channel_layer_down(alert: Alert, kind: str = "alert") -> None:
        raise ConnectionError("channel layer unreachable")

    monkeypatch.setattr(kafka_feed, "broadcast", channel_layer_down)
    _produce(feed_settings, [event_factory("ward-a").to_bytes()])
    counts = _run_until(feed_settings, seen=1)
    assert (counts.stored, counts.broadcast_failed) == (1, 1)
    lags = consumer_lag(
        feed_settings.kafka_bootstrap, feed_settings.alerts_group, feed_settings.topic(SCORED_TOPIC)
    )
    assert sum(p.committed or 0 for p in lags) == 1


def test_a_new_models_high_score_takes_over_the_open_alert(
    feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    """After a champion rotation one encounter keeps one alert, with its workflow state."""
    old = event_factory("ward-a", probability=0.6)
    _produce(feed_settings, [old.to_bytes()])
    assert _run_until(feed_settings, seen=1).stored == 1
    Alert.objects.update(status="acknowledged")  # a nurse already works on it
    new = _rescored(old, 5, model_version=old.model_version + "-next", probability=0.7)
    _produce(feed_settings, [new.to_bytes(), old.to_bytes()])  # then the old one, redelivered
    counts = _run_until(feed_settings, seen=2)  # the same group: the first one is committed
    assert (counts.stored, counts.updated, counts.unchanged) == (0, 1, 1)
    alert = Alert.objects.get()
    assert (alert.model_version, alert.probability) == (new.model_version, 0.7)
    assert alert.status == "acknowledged"
    assert "was model " + old.model_version in alert.actions.get().note


@pytest.fixture
def command_env(feed_settings: Settings) -> Iterator[dict[str, str]]:
    db = django_settings.DATABASES["default"]
    url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, **settings_env(feed_settings), "READMIT_DATABASE_URL": url}


def test_consume_scores_command_runs_and_stops_on_sigterm(
    command_env: dict[str, str], feed_settings: Settings, wards: Any, event_factory: Any
) -> None:
    event = event_factory("ward-b")
    _produce(feed_settings, [event.to_bytes()])
    proc = subprocess.Popen(
        [sys.executable, "-m", "alerts_web", "consume_scores"],
        cwd=PROJECT_ROOT,
        env=command_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not Alert.objects.filter(encounter_id=event.encounter_id).exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "command stored no alert"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "stored=1" in output
        assert event.encounter_id not in output
        assert event.patient_id not in output
    finally:
        if proc.poll() is None:
            proc.kill()
