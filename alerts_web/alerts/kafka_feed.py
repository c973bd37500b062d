"""The alert feed's Kafka loop: poll ``risk.scored``, store, broadcast, then commit.

Offsets are committed only after the batch is in the database, so a crash replays
the batch; the unique (encounter, model version) constraint makes the replay a no-op.
A message that can never become an alert (undecodable, unknown schema version, invalid)
goes to the dead-letter topic with its reason, like the scorer's, before the commit.
A batch is stored in one transaction: when PostgreSQL fails midway nothing of it is
kept, the loop rewinds to the batch's first offsets and backs off, and the retry stores
and broadcasts every alert of it (a half-stored batch would replay its stored alerts as
"unchanged" and never push them to the dashboards). A failed broadcast (channel layer
down) is counted and logged, not retried: the alert is in the database and dashboards
load it on their next reconnect or refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import fields

from django.db import DatabaseError, InterfaceError, close_old_connections, transaction
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from alerts_web.alerts import feed_metrics
from alerts_web.alerts.feed import FeedCounts, Rejection, broadcast, handle_messages
from readmit_core.backoff import Backoff
from readmit_core.errors import ServiceUnavailable
from readmit_core.events import DEAD_LETTER_TOPIC, SCORED_TOPIC, DeadLetter
from readmit_core.kafka_clients import discard, make_consumer, make_producer, rewind
from readmit_core.settings import Settings

log = logging.getLogger(__name__)

# Offset commits failing this long: the consumer is replaced (it rejoins the group).
REBUILD_AFTER_S = 10.0


def make_feed_consumer(settings: Settings) -> KafkaConsumer:
    """The feed's consumer: shared client settings, our own group on ``risk.scored``."""
    return make_consumer(settings, settings.alerts_group, [settings.topic(SCORED_TOPIC)])


def run_feed(
    settings: Settings,
    stop: threading.Event,
    *,
    max_records: int = 200,
    on_batch: Callable[[FeedCounts], None] | None = None,
    log_every_s: float = 30.0,
) -> FeedCounts:
    """Consume until ``stop`` is set; returns the counts (for tests and the final log).

    A Kafka failure (broker gone, restarted, the group forgotten) never ends the feed:
    the consumer is replaced, after a back-off, and resumes from the committed offsets.
    """
    feed = _FeedConsumer(settings)
    counts = FeedCounts()
    backoff = Backoff()
    last_log = time.monotonic()
    try:
        while not stop.is_set():
            try:
                consumer = feed.get()
                polled = consumer.poll(timeout_ms=500, max_records=max_records)
            except (KafkaError, ServiceUnavailable) as exc:
                feed.rebuild(exc, backoff, stop)
                continue
            records = [rec for batch in polled.values() for rec in batch]
            rejected: dict[int, Rejection] = {}
            if records and not _store_and_broadcast(
                consumer, records, counts, backoff, stop, rejected
            ):
                continue
            if rejected and not feed.dead_letter(consumer, records, rejected, backoff, stop):
                continue
            if records:
                feed.commit(consumer)
            if feed.commits_failing_too_long():
                feed.rebuild(KafkaError("offset commits keep failing"), backoff, stop)
            if records and on_batch is not None:
                on_batch(counts)
            if time.monotonic() - last_log > log_every_s:
                _log_counts(counts)
                last_log = time.monotonic()
    finally:
        _log_counts(counts)
        feed.close()
    return counts


class _FeedConsumer:
    """The feed's consumer, made on first use and replaced when it stops working."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None
        self.commit_failing_since: float | None = None

    def dead_letter(
        self,
        consumer: KafkaConsumer,
        records: list[ConsumerRecord],
        rejected: dict[int, Rejection],
        backoff: Backoff,
        stop: threading.Event,
    ) -> bool:
        """Send the batch's refused messages to the dead-letter topic and wait for the
        broker's acks; False (batch rewound, clients replaced) when that failed, so a
        refused message is never committed past without its letter. The batch's alerts
        are stored already: its replay is a no-op for them."""
        try:
            if self.producer is None:
                self.producer = make_producer(self.settings)
            producer = self.producer
            sends = [
                producer.send(
                    self.settings.topic(DEAD_LETTER_TOPIC), value=_letter(records[i], r).to_bytes()
                )
                for i, r in rejected.items()
            ]
            for sent in sends:
                sent.get(timeout=10)
        except (KafkaError, ServiceUnavailable) as exc:
            rewind(consumer, records)
            self.rebuild(exc, backoff, stop)
            return False
        for rejection in rejected.values():
            feed_metrics.DEAD_LETTERS.labels(rejection.reason).inc()
            log.warning("score message dead-lettered", extra={"reason": rejection.reason})
        return True

    def get(self) -> KafkaConsumer:
        if self.consumer is None:
            self.consumer = make_feed_consumer(self.settings)
        return self.consumer

    def commit(self, consumer: KafkaConsumer) -> None:
        """Commit a stored batch; a failure is logged (a redelivery is a no-op) and timed."""
        try:
            consumer.commit()
        except KafkaError as exc:
            log.warning("offset commit failed", extra={"error": type(exc).__name__})
            if self.commit_failing_since is None:
                self.commit_failing_since = time.monotonic()
            return
        self.commit_failing_since = None

    def commits_failing_too_long(self) -> bool:
        since = self.commit_failing_since
        return since is not None and time.monotonic() - since > REBUILD_AFTER_S

    def rebuild(self, exc: Exception, backoff: Backoff, stop: threading.Event) -> None:
        pause = backoff.failed()
        log.warning(
            "alert feed consumer failed; replacing it",
            extra={"error": type(exc).__name__, "backoff_s": pause},
        )
        self.close()
        stop.wait(pause)

    def close(self) -> None:
        if self.consumer is not None:
            consumer = self.consumer
            discard(lambda: consumer.close(autocommit=False, timeout_ms=2000), "feed consumer")
            self.consumer = None
        if self.producer is not None:
            producer = self.producer
            discard(lambda: producer.close(timeout=2), "feed producer")
            self.producer = None
        self.commit_failing_since = None


def _letter(record: ConsumerRecord, rejection: Rejection) -> DeadLetter:
    return DeadLetter.of(
        record, reason=rejection.reason, detail=rejection.detail, consumer="alerts-feed"
    )


def _store_and_broadcast(
    consumer: KafkaConsumer,
    records: list[ConsumerRecord],
    counts: FeedCounts,
    backoff: Backoff,
    stop: threading.Event,
    rejected: dict[int, Rejection],
) -> bool:
    """Store and broadcast one batch; False when it must be retried (rewound, after a
    pause). Refused messages are left in ``rejected`` (by index in ``records``) for the
    dead-letter topic. The caller commits its offsets."""
    batch = FeedCounts()
    try:
        with transaction.atomic():
            changed = handle_messages([rec.value for rec in records], batch, rejected)
    except (DatabaseError, InterfaceError) as exc:  # InterfaceError: connection already gone
        rewind(consumer, records)
        close_old_connections()
        pause = backoff.failed()
        log.warning(
            "alert batch not stored; rewound and backing off",
            extra={"error": type(exc).__name__, "backoff_s": pause},
        )
        stop.wait(pause)
        return False
    backoff.succeeded()
    counts.add(batch)  # counted once, when the batch is stored
    for counter in fields(batch):
        value = getattr(batch, counter.name)
        if value and counter.name != "seen":
            feed_metrics.MESSAGES.labels(counter.name).inc(value)
    for alert in changed:
        try:
            broadcast(alert)
        except Exception as exc:  # noqa: BLE001 - any channel-layer failure: stored anyway
            counts.broadcast_failed += 1
            log.warning("alert broadcast failed", extra={"error": type(exc).__name__})
    return True


def _log_counts(counts: FeedCounts) -> None:
    log.info(
        "alert feed: seen=%d stored=%d updated=%d unchanged=%d not_alerting=%d downgraded=%d "
        "unknown_version=%d invalid=%d broadcast_failed=%d",
        counts.seen,
        counts.stored,
        counts.updated,
        counts.unchanged,
        counts.not_alerting,
        counts.downgraded,
        counts.unknown_version,
        counts.invalid,
        counts.broadcast_failed,
    )
