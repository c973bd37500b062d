"""Kafka clients configured once: producers, consumers, topic creation.

Every component gets its clients here so delivery guarantees (acks=all, retries,
manual commits) and the group timings that make rebalances take ~3 s instead of
~23 s are decided in one place.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterable

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError

from readmit_core.errors import ServiceUnavailable
from readmit_core.events import ALL_TOPICS
from readmit_core.settings import Settings

log = logging.getLogger(__name__)


def check_broker(settings: Settings, timeout_s: float = 3.0) -> None:
    """Fail fast, in one line, when no bootstrap server accepts a TCP connection.

    kafka-python would otherwise retry with back-off for ~30 s and log every attempt;
    a process starting against a down broker should instead say so and exit.
    """
    for server in settings.kafka_servers:
        host, _, port = server.rpartition(":")
        try:
            socket.create_connection(
                (host.strip("[]") or "127.0.0.1", int(port)), timeout_s
            ).close()
            return
        except (OSError, ValueError):
            continue
    raise ServiceUnavailable("Kafka", f"no broker answers at {settings.kafka_bootstrap}")


def broker_reachable(settings: Settings, timeout_s: float = 0.5) -> bool:
    """Whether a bootstrap server accepts a TCP connection right now.

    Readiness probes use it: a client's cached metadata stays "fine" for seconds after
    the broker died, a refused connection is known at once.
    """
    try:
        check_broker(settings, timeout_s)
    except ServiceUnavailable:
        return False
    return True


def make_producer(settings: Settings, *, linger_ms: int | None = None) -> KafkaProducer:
    """A producer that only reports success once every in-sync replica has the record.

    kafka-python 2.x/3.x supports ``enable_idempotence``; with acks=all and bounded
    in-flight requests it keeps per-partition order across retries. Linger and batch
    size come from the settings (``linger_ms`` overrides the linger for bulk loaders):
    a batch larger than kafka-python's 16 KiB means the sender thread is woken once
    per partition and flush, not once every few records.
    """
    try:
        return KafkaProducer(
            bootstrap_servers=settings.kafka_servers,
            acks="all",
            retries=5,
            enable_idempotence=True,
            max_in_flight_requests_per_connection=5,
            linger_ms=settings.producer_linger_ms if linger_ms is None else linger_ms,
            batch_size=settings.producer_batch_bytes,
            request_timeout_ms=5000,
            max_block_ms=5000,
            client_id="readmit",
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            "Kafka", f"no broker answers at {settings.kafka_bootstrap}"
        ) from exc


def make_consumer(
    settings: Settings,
    group: str,
    topics: Iterable[str],
    listener: ConsumerRebalanceListener | None = None,
) -> KafkaConsumer:
    """A group consumer with manual commits (the caller commits after its side effects).

    The fetch wait is the latency floor of every consumer: the broker holds an empty
    fetch that long before answering, so a record arriving just after waits for it.
    """
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
            max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
            max_poll_records=settings.scorer_batch_max,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            client_id=f"readmit-{group}",
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            "Kafka", f"no broker answers at {settings.kafka_bootstrap}"
        ) from exc
    consumer.subscribe(list(topics), listener=listener)
    return consumer


def make_probe_consumer(settings: Settings, group: str | None) -> KafkaConsumer:
    """A consumer that never joins ``group``: it reads offsets (committed, log end) for
    lag and progress checks, from its own thread, so a slow broker never blocks a poll loop."""
    try:
        return KafkaConsumer(
            bootstrap_servers=settings.kafka_servers,
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=5000,
            fetch_max_wait_ms=100,
            max_poll_records=100_000,
            client_id=f"readmit-probe-{group}",
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            "Kafka", f"no broker answers at {settings.kafka_bootstrap}"
        ) from exc


def log_end_offsets(
    probe: KafkaConsumer, partitions: Iterable[TopicPartition], timeout_ms: int = 3000
) -> dict[TopicPartition, int]:
    """The offset after each partition's last record, even on brokers that under-report it.

    Tansu answers ListOffsets(latest) with the last *batch*'s base offset + 1, so a lag
    computed from it reads low by up to one batch per partition. Fetching from the
    reported end finds the records it left out (on Apache Kafka the fetch is empty and the
    reported end stands). ``probe`` must not be a group member: this assigns and seeks it.
    """
    tps = list(partitions)
    if not tps:
        return {}
    ends = {tp: int(off) for tp, off in probe.end_offsets(tps, timeout_ms=timeout_ms).items()}
    probe.assign(tps)
    for tp in tps:
        probe.seek(tp, ends.get(tp, 0))
    for _ in range(3):
        polled = probe.poll(timeout_ms=200)
        for tp, records in polled.items():
            if records:
                ends[tp] = max(ends.get(tp, 0), records[-1].offset + 1)
        if not polled:
            break
    return ends


def make_admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_servers,
            client_id="readmit-admin",
            request_timeout_ms=5000,
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            "Kafka", f"no broker answers at {settings.kafka_bootstrap}"
        ) from exc


def ensure_topics(settings: Settings, names: Iterable[str] = ALL_TOPICS) -> None:
    """Create the application's topics if missing (partition count from settings)."""
    check_broker(settings)
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic(n) for n in names]
        new = [
            NewTopic(name=t, num_partitions=settings.topic_partitions, replication_factor=1)
            for t in wanted
            if t not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
            log.info("created topics", extra={"topics": [t.name for t in new]})
    finally:
        admin.close()


def discard(close: Callable[[], object], what: str) -> None:
    """Close a client that is being replaced; one in a broken state may fail to close,
    which must not stop its replacement."""
    try:
        close()
    except Exception:
        log.debug("%s close failed", what, exc_info=True)


def rewind(consumer: KafkaConsumer, records: Iterable[ConsumerRecord]) -> None:
    """Seek every partition of a failed batch back to its first record.

    For loops that commit only after a batch succeeded: the next poll then redelivers
    the whole batch instead of skipping it (partitions revoked meanwhile are left to
    their new owner, which starts from the committed offset anyway).
    """
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    assigned = consumer.assignment()
    for tp, offset in first.items():
        if tp in assigned:
            consumer.seek(tp, offset)
