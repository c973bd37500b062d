"""The scorer's upkeep thread: refill a lost Redis cache, recover events a broker lost,
prune old patient state.

Runs beside the poll loop, never on it (a refill of thousands of encounters or a
PostgreSQL outage must not stall group membership), with its own Redis client, Kafka
producer and state-database connections. Every scorer runs one; Redis keys make sure
one refill runs at a time (``patient_state.cache_refill``) and that the deployment
prunes once per ``READMIT_STATE_PRUNE_INTERVAL_S``, whichever scorer gets there first.
Failures are logged and retried at the next tick: upkeep is never a reason to die.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.producer.future import RecordMetadata

from patient_state.cache_refill import CacheRefill
from patient_state.store import PatientStateStore, open_store
from readmit_core.errors import ServiceUnavailable
from readmit_core.events import FEATURES_TOPIC, FeatureEvent
from readmit_core.kafka_clients import discard, make_probe_consumer, make_producer
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0
# After a broker loss, scores written this long before the broker was last seen well are
# scored again: the alert feed may not have read their risk.scored messages yet.
REDRIVE_MARGIN_S = 30.0


class _FeaturePublisher:
    """Republishes feature events keyed by patient (as ingest does), acknowledged."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topic(FEATURES_TOPIC)
        self._producer: KafkaProducer | None = None

    def publish(self, events: Sequence[FeatureEvent]) -> list[RecordMetadata]:
        if self._producer is None:
            self._producer = make_producer(self._settings, linger_ms=5)
        producer = self._producer
        try:
            sends = [
                producer.send(self._topic, key=e.patient_id.encode(), value=e.to_bytes())
                for e in events
            ]
            return [s.get(timeout=ACK_TIMEOUT_S) for s in sends]
        except KafkaError:
            self.close()  # a producer in a fatal state is replaced at the next publish
            raise

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            discard(lambda: producer.close(timeout=2), "upkeep producer")


class StateUpkeep:
    """A daemon thread ticking every ``state_upkeep_interval_s`` (0: not started)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-upkeep", daemon=True)
        self._client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        self._publisher = _FeaturePublisher(settings)
        self._store: PatientStateStore | None = None
        self._refill: CacheRefill | None = None
        self._probe: KafkaConsumer | None = None
        self._ends: dict[int, int] = {}
        self._broker_was_down = False
        self._broker_check_due = False
        self._last_ok_at = self._broker_ok_at = time.time()
        self.prune_key = f"{settings.topic_prefix}state:prune-due"

    def start(self) -> StateUpkeep:
        if self.settings.state_upkeep_interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self._publisher.close()
        if self._probe is not None:
            discard(self._probe.close, "upkeep probe")

    def _run(self) -> None:
        while not self.stop_event.wait(self.settings.state_upkeep_interval_s):
            self.tick()

    def tick(self) -> None:
        try:
            refill = self._refiller()
            # kept until a refill completes: a failed or contended one is tried again
            self._broker_check_due = self._broker_lost_events() or self._broker_check_due
            done = refill.check(
                broker_lost=self._broker_check_due,
                scored_since=self._broker_ok_at - REDRIVE_MARGIN_S,
            )
            if done.completed:
                self._broker_check_due = False
            self._maybe_prune()
        except (redis.RedisError, KafkaError, ServiceUnavailable) as exc:
            log.warning("state upkeep failed; retrying", extra={"error": type(exc).__name__})

    def _broker_lost_events(self) -> bool:
        """Whether the broker may have lost accepted events no scorer had consumed yet.

        Two signs: a ``features`` partition's log end went backwards since the last tick
        (the broker restarted empty, or the topic was recreated), or the broker answers
        again after this thread could not reach it (an embedded memory broker comes back
        empty; ends that new events pushed past the old ones would hide the loss). The
        refill that follows republishes only accepted versions with no cached score, so
        after an outage of a durable broker it costs a cache lookup per recent encounter
        and a few republished events the scorers then skip.
        """
        topic = self.settings.topic(FEATURES_TOPIC)
        try:
            if self._probe is None:
                self._probe = make_probe_consumer(self.settings, None)
            parts = self._probe.partitions_for_topic(topic) or set()
            ends = self._probe.end_offsets(
                [TopicPartition(topic, p) for p in parts], timeout_ms=3000
            )
        except (KafkaError, ServiceUnavailable):
            if self._probe is not None:
                probe, self._probe = self._probe, None
                discard(lambda: probe.close(), "upkeep probe")
            self._broker_was_down = True
            return False
        now = {tp.partition: int(end) for tp, end in ends.items()}
        if not now:  # no topic (yet): nothing to republish to; judged once it is back
            return False
        lost = self._broker_was_down or any(now.get(p, 0) < e for p, e in self._ends.items())
        if lost and not self._broker_check_due:
            self._broker_ok_at = self._last_ok_at  # the last moment all was known well
        self._ends, self._broker_was_down = now, False
        self._last_ok_at = time.time()
        if lost:
            log.warning("broker back or its log ends went backwards: checking for lost events")
        return lost

    def _refiller(self) -> CacheRefill:
        if self._refill is None:
            s = self.settings
            self._store = open_store(s.database_url, s.state_dir, s.topic_prefix)
            cache = ScoreCache(self._client, s.topic_prefix, s.score_ttl_seconds)
            self._refill = CacheRefill(
                self._client,
                cache,
                self._store,
                self._publisher,
                prefix=s.topic_prefix,
                window_s=s.score_ttl_seconds,
            )
        return self._refill

    def _maybe_prune(self) -> None:
        s = self.settings
        # the embedded demo replays records of 1999-2008: a wall-clock horizon would prune
        # the history its later stays need (see PatientStateStore.prune_history)
        if s.state_prune_interval_s <= 0 or s.embedded or self._store is None:
            return
        # whoever sets the key prunes; it expires after the interval, then the next one may
        due_ms = max(1, int(s.state_prune_interval_s * 1000))
        if not self._client.set(self.prune_key, "1", nx=True, px=due_ms):
            return
        pruned = self._store.prune_history(s.history_ttl_seconds)
        log.info(
            "pruned patient state past the history horizon",
            extra={
                "visits": pruned.visits,
                "stays": pruned.stays,
                "accepted": pruned.accepted,
                "resources": pruned.resources,
            },
        )
