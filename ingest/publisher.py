"""Hands feature events to Kafka and only reports success once the broker has them.

The ingest API must never answer 200 for data that was not durably handed over: each
publish waits for the broker's acknowledgement (acks=all) of every event of the
request, and any failure becomes ``ServiceUnavailable`` (HTTP 503 + Retry-After).
Events are keyed by patient id so one patient's encounters stay in order on one
partition, which is what prior-utilisation features rely on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import RecordMetadata

from readmit_core.errors import ServiceUnavailable
from readmit_core.events import FEATURES_TOPIC, FeatureEvent
from readmit_core.kafka_clients import broker_reachable, make_producer
from readmit_core.settings import Settings

log = logging.getLogger(__name__)


class EventPublisher:
    """Lazily connected, reconnecting producer shared by all request threads."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._topic = settings.topic(FEATURES_TOPIC)
        self._timeout = timeout_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(
                    self._settings, linger_ms=self._settings.ingest_producer_linger_ms
                )
            return self._producer

    def _reset(self) -> None:
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=0)
                except Exception:
                    log.debug("producer close failed", exc_info=True)
                self._producer = None

    def publish(self, events: Sequence[FeatureEvent]) -> list[RecordMetadata]:
        """Send all events and wait for every acknowledgement, or raise ServiceUnavailable.

        Returns each event's acknowledgement (topic, partition, offset), in order."""
        if not events:
            return []
        try:
            producer = self._get()
            futures = [
                producer.send(self._topic, key=ev.patient_id.encode(), value=ev.to_bytes())
                for ev in events
            ]
            return [fut.get(timeout=self._timeout) for fut in futures]
        except ServiceUnavailable:
            self._reset()
            raise
        except KafkaError as exc:
            self._reset()
            raise ServiceUnavailable(
                "Kafka", f"publish to {self._settings.kafka_bootstrap} failed: {type(exc).__name__}"
            ) from exc

    def ready(self) -> bool:
        """True when a broker accepts connections and the topic's metadata is known
        (used by /readyz). The connection is tried afresh each time: the producer's
        cached metadata said "fine" for seconds after the broker had died."""
        if not broker_reachable(self._settings):
            return False
        try:
            producer = self._get()
            return bool(producer.partitions_for(self._topic))
        except (KafkaError, ServiceUnavailable):
            self._reset()
            return False

    def close(self) -> None:
        self._reset()
