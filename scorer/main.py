"""Process entry of a scorer: wire Kafka, Redis, the model and metrics, handle SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

import redis
from kafka import ConsumerRebalanceListener, TopicPartition

from model_store.registry import Registry
from readmit.kafka_clients import ensure_topics, make_consumer, make_producer
from readmit.settings import Settings
from scorer.cache import ScoreCache
from scorer.consumer import Scorer, ScorerWorker, topics
from scorer.health import HealthServer

log = logging.getLogger(__name__)


class LoggingRebalance(ConsumerRebalanceListener):
    """Say which partitions this process owns; ops read it when lag is uneven."""

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)}
        )


def build_worker(settings: Settings, name: str | None = None) -> ScorerWorker:
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    cache = ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds)
    scorer = Scorer(
        Registry(settings.model_dir),
        settings.explain_band_set,
        compile_trees=settings.scorer_compile_trees,
    )
    consumer = make_consumer(
        settings, settings.scorer_group, topics(settings), listener=LoggingRebalance()
    )
    producer = make_producer(settings, linger_ms=5)
    return ScorerWorker(
        settings, consumer, producer, cache, scorer, name=name or f"scorer-{os.getpid()}"
    )


def run(settings: Settings, metrics_port: int | None = None) -> None:
    """Run until SIGTERM/SIGINT: finish the batch, commit, leave the group."""
    worker = build_worker(settings)
    port = settings.scorer_metrics_port if metrics_port is None else metrics_port
    health = None
    if port:
        host = "127.0.0.1" if settings.embedded else "0.0.0.0"
        health = HealthServer(worker, host, port).start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signum})
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.run()
    finally:
        if health is not None:
            health.stop()
