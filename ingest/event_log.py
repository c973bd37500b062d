"""Whether the broker still holds an event it once acknowledged.

An accepted marker says "Kafka took this encounter version at partition p, offset o".
A resend of the same version is a duplicate only while that is still true: an
embedded memory broker that restarted (or a topic deleted and recreated) has lost
the event, and refusing the EHR's resend would lose the discharge for good — the
failure this module exists to prevent. So before a resend is refused, the record at
(p, o) is read back and must carry the same ``input_key``.

Reading one record costs a fetch (tens of ms); it happens only for resends, never
for new data. An offset below the partition's log start was removed by retention
(7 days on ``features``): it was in the log long after it was consumed, so it counts
as delivered.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from patient_state.store import Delivery
from readmit_core.errors import ServiceUnavailable
from readmit_core.settings import Settings

log = logging.getLogger(__name__)

READ_BACK_TIMEOUT_S = 3.0


class EventLog:
    """Reads single records back by position; one lazily created consumer, serialised."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._settings.kafka_servers,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=5000,
            )
        return self._consumer

    def _reset(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:
                log.debug("read-back consumer close failed", exc_info=True)
            self._consumer = None

    def holds(self, delivery: Delivery) -> bool:
        """True if the record at the delivery's position is still that event."""
        with self._lock:
            try:
                return self._holds(delivery)
            except KafkaError as exc:
                self._reset()
                raise ServiceUnavailable(
                    "Kafka", f"reading back {delivery.topic} failed: {type(exc).__name__}"
                ) from exc

    def _holds(self, delivery: Delivery) -> bool:
        consumer = self._get()
        tp = TopicPartition(delivery.topic, delivery.partition)
        if delivery.partition not in (consumer.partitions_for_topic(delivery.topic) or set()):
            return False
        consumer.assign([tp])
        start = consumer.beginning_offsets([tp])[tp]
        end = consumer.end_offsets([tp])[tp]
        if delivery.offset < start:
            return True
        if delivery.offset >= end:
            return False
        consumer.seek(tp, delivery.offset)
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                if record.offset != delivery.offset:
                    return False
                return _input_key(record.value) == delivery.input_key
        raise ServiceUnavailable("Kafka", f"no record read back from {delivery.topic}")

    def close(self) -> None:
        with self._lock:
            self._reset()


def _input_key(value: bytes | None) -> str | None:
    try:
        payload = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return payload.get("input_key") if isinstance(payload, dict) else None
