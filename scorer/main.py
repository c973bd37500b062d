"""Process entry of a scorer: wire Kafka, Redis, the model and metrics, handle SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer

from model_store.registry import Registry
from readmit_core.kafka_clients import ensure_topics, make_consumer, make_producer
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings
from scorer.consumer import Scorer, ScorerWorker, topics
from scorer.health import HealthServer
from scorer.lag import LagMonitor
from scorer.state_upkeep import StateUpkeep

log = logging.getLogger(__name__)


def build_worker(settings: Settings, name: str | None = None) -> ScorerWorker:
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    cache = ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds)
    scorer = Scorer(
        Registry(settings.model_dir),
        settings.explain_band_set,
        compile_trees=settings.scorer_compile_trees,
        explain_inline=settings.scorer_explain_inline,
    )

    def new_consumer(listener: ConsumerRebalanceListener) -> KafkaConsumer:
        # a broker restarted empty has lost the topics too: recreate them (idempotent)
        ensure_topics(settings)
        return make_consumer(settings, settings.scorer_group, topics(settings), listener=listener)

    return ScorerWorker(
        settings,
        cache,
        scorer,
        new_consumer=new_consumer,
        new_producer=lambda: make_producer(settings),
        name=name or f"scorer-{os.getpid()}",
    )


def limit_blas_threads() -> None:
    """One BLAS thread: the scorer's matrix products are small (a batch x ~40 groups).

    OpenBLAS otherwise starts a thread per core that spins after each product (the sum
    of TreeSHAP columns per feature group): on 2 cores that cost 25 % of the scorer's
    CPU per event and competed with the other scorer. Set at run time (threadpoolctl)
    because numpy is imported long before the scorer entry point runs; LightGBM and the
    compiled forest are already called with one thread each.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def run(settings: Settings, metrics_port: int | None = None) -> None:
    """Run until SIGTERM/SIGINT: finish the batch, commit, leave the group."""
    limit_blas_threads()
    worker = build_worker(settings)
    monitor = LagMonitor(settings, topics(settings)[0], lambda: worker.ownership.owned).start()
    upkeep = StateUpkeep(settings).start()
    port = settings.scorer_metrics_port if metrics_port is None else metrics_port
    health = None
    if port:
        host = "127.0.0.1" if settings.embedded else "0.0.0.0"
        health = HealthServer(worker, monitor, host, port).start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested", extra={"signal": signum})
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.run()
    finally:
        upkeep.stop()
        monitor.stop()
        if health is not None:
            health.stop()
