"""The alert feed's Kafka loop: poll ``risk.scored``, store, broadcast, then commit.

Offsets are committed only after the batch is in the database, so a crash replays
the batch; the unique (encounter, model version) constraint makes the replay a no-op.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer

from alerts_web.alerts.feed import FeedCounts, broadcast, handle_messages
from readmit.events import SCORED_TOPIC
from readmit.kafka_clients import make_consumer
from readmit.settings import Settings

log = logging.getLogger(__name__)


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
    """Consume until ``stop`` is set; returns the counts (for tests and the final log)."""
    consumer = make_feed_consumer(settings)
    counts = FeedCounts()
    last_log = time.monotonic()
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=500, max_records=max_records)
            raws = [rec.value for records in polled.values() for rec in records]
            if raws:
                changed = handle_messages(raws, counts)
                for alert in changed:
                    broadcast(alert)
                consumer.commit()
                if on_batch is not None:
                    on_batch(counts)
            if time.monotonic() - last_log > log_every_s:
                _log_counts(counts)
                last_log = time.monotonic()
    finally:
        _log_counts(counts)
        consumer.close()
    return counts


def _log_counts(counts: FeedCounts) -> None:
    log.info(
        "alert feed: seen=%d stored=%d updated=%d unchanged=%d not_alerting=%d downgraded=%d "
        "unknown_version=%d invalid=%d",
        counts.seen,
        counts.stored,
        counts.updated,
        counts.unchanged,
        counts.not_alerting,
        counts.downgraded,
        counts.unknown_version,
        counts.invalid,
    )
