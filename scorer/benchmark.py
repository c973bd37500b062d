"""Scorer throughput in one process, against raw kafka-python consume of the same bytes.

``readmit bench stream`` times the running scorers from outside; this measures one
scorer loop (``ScorerWorker.step``) in the calling process, after the model is loaded
and compiled, so neither the compile nor a monitor shares the CPU it measures. Each
repeat uses fresh topics (its own prefix) holding the same events, and the baseline
drains the same bytes with the same fetch settings right after, so the ratio compares
like with like on a shared machine. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from kafka import KafkaConsumer, TopicPartition

from readmit_core.events import FEATURES_TOPIC, FeatureEvent
from readmit_core.kafka_clients import ensure_topics, make_consumer, make_producer
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings
from scorer.consumer import Scorer, ScorerWorker, topics


def _fill(settings: Settings, payloads: Sequence[tuple[bytes, bytes]]) -> None:
    ensure_topics(settings)
    producer = make_producer(settings, linger_ms=20)
    topic = settings.topic(FEATURES_TOPIC)
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=60)
    producer.close()


def bench_worker(
    settings: Settings, scorer: Scorer, client: redis.Redis, name: str
) -> ScorerWorker:
    """A scorer loop wired like ``scorer.main`` but around an already compiled ``scorer``."""
    return ScorerWorker(
        settings,
        ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds),
        scorer,
        new_consumer=lambda listener: make_consumer(
            settings, settings.scorer_group, topics(settings), listener=listener
        ),
        new_producer=lambda: make_producer(settings),
        name=name,
    )


def _scorer_rate(
    settings: Settings, scorer: Scorer, count: int, timeout_s: float
) -> tuple[float, float]:
    """(events/s, process CPU ms per event) of one worker draining ``count`` events,
    timed from its first non-empty poll. CPU time is robust to the machine's other load,
    wall time is what a deployment sees."""
    client = redis.Redis.from_url(settings.redis_url)
    worker = bench_worker(settings, scorer, client, "bench-scorer")
    done, timed, started, cpu = 0, 0, 0.0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while done < count and time.monotonic() < deadline:
            handled = worker.step()
            if handled and not started:
                # the first batch (group join, warm-up) is untimed
                started, cpu = time.perf_counter(), time.process_time()
            elif started:
                timed += handled
            done += handled
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        worker.stop_event.set()
        worker._shutdown()
        client.close()
    if not (started and elapsed > 0 and timed):
        return float("nan"), float("nan")
    return timed / elapsed, 1000.0 * cpu / timed


def _raw_rate(settings: Settings, count: int, timeout_s: float) -> float:
    """kafka-python alone, same fetch settings, same bytes: messages/s once flowing."""
    topic = settings.topic(FEATURES_TOPIC)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        max_poll_records=settings.scorer_batch_max,
    )
    partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen, timed, started = 0, 0, 0.0
    deadline = time.monotonic() + timeout_s
    while seen < count and time.monotonic() < deadline:
        got = sum(len(b) for b in consumer.poll(timeout_ms=100).values())
        if got and not started:
            started = time.perf_counter()  # like the scorer: the first batch is untimed
        elif started:
            timed += got
        seen += got
    elapsed = time.perf_counter() - started
    consumer.close()
    return timed / elapsed if started and elapsed > 0 else float("nan")


def measure_scorer(
    settings: Settings,
    events: Sequence[FeatureEvent],
    *,
    scorer: Scorer,
    repeats: int = 3,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Median (and min/max) events/s of one scorer loop vs raw consume, ``repeats`` runs.

    ``scorer`` is built (and its forest compiled) by the caller, once for all repeats.
    ``settings`` points at a broker and a Redis the benchmark may write to; each repeat
    writes under its own topic prefix.
    """
    payloads = [
        (
            e.patient_id.encode(),
            e.model_copy(update={"input_key": f"{e.input_key}|b{i}"}).to_bytes(),
        )
        for i, e in enumerate(events)
    ]
    scorer_rates, cpu_ms, raw_rates = [], [], []
    for _ in range(repeats):
        run = settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
        _fill(run, payloads)
        rate, cpu = _scorer_rate(run, scorer, len(payloads), timeout_s)
        scorer_rates.append(rate)
        cpu_ms.append(cpu)
        raw_rates.append(_raw_rate(run, len(payloads), timeout_s))
    ratios = [s / r for s, r in zip(scorer_rates, raw_rates, strict=True)]
    return {
        "events": len(payloads),
        "repeats": repeats,
        "explain_bands": settings.scorer_explain_bands,
        "explain_inline": scorer.explain_inline,
        "scorer_per_s": statistics.median(scorer_rates),
        "scorer_per_s_range": [min(scorer_rates), max(scorer_rates)],
        "scorer_cpu_ms_per_event": statistics.median(cpu_ms),
        "scorer_cpu_ms_range": [min(cpu_ms), max(cpu_ms)],
        "baseline_raw_kafka_consume_per_s": statistics.median(raw_rates),
        "baseline_range": [min(raw_rates), max(raw_rates)],
        "scorer_vs_raw_consume": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
    }


def measure_latency(
    settings: Settings,
    events: Sequence[FeatureEvent],
    *,
    scorer: Scorer,
    rate: float = 20.0,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Produce → score cached in Redis, at ``rate`` events/s, one scorer loop running.

    The part of POST → score that Kafka and the scorer own (ingest's own share is
    measured by ``readmit bench stream``): each event is sent the way ingest sends it
    (acknowledged before the next), stamped when sent, and timed to the ``cached_at``
    the scorer writes with its score. Percentiles in milliseconds.
    """
    import threading

    run = settings.model_copy(update={"topic_prefix": f"lat{uuid.uuid4().hex[:8]}."})
    ensure_topics(run)
    client = redis.Redis.from_url(run.redis_url)
    cache = ScoreCache(client, run.topic_prefix, run.score_ttl_seconds)
    worker = bench_worker(run, scorer, client, "bench-latency")
    loop = threading.Thread(target=worker.run, daemon=True)
    loop.start()
    deadline = time.monotonic() + timeout_s
    while not worker.ownership.owned and time.monotonic() < deadline:
        worker.stop_event.wait(0.05)  # joined and assigned before the clock starts
    producer = make_producer(run)
    topic = run.topic(FEATURES_TOPIC)
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i, event in enumerate(events):
        pause = start + i / rate - time.perf_counter()
        if pause > 0:
            worker.stop_event.wait(pause)
        fresh = event.model_copy(update={"input_key": f"{event.input_key}|lat{i}"})
        sent[fresh.encounter_id] = time.time()
        producer.send(topic, key=fresh.patient_id.encode(), value=fresh.to_bytes()).get(10)
    producer.close()
    latencies: dict[str, float] = {}
    while len(latencies) < len(sent) and time.monotonic() < deadline:
        for encounter_id, at in sent.items():
            if encounter_id not in latencies:
                cached = client.hget(cache.score_key(encounter_id), "cached_at")
                if cached is not None:
                    latencies[encounter_id] = (float(cached) - at) * 1000.0
        worker.stop_event.wait(0.1)
    worker.stop_event.set()
    loop.join(timeout=30)
    client.close()
    ms = sorted(latencies.values())

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(q / 100 * len(ms)))] if ms else float("nan")

    return {
        "rate_per_s": rate,
        "sent": len(sent),
        "scored": len(ms),
        "fetch_max_wait_ms": run.consumer_fetch_max_wait_ms,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": ms[-1] if ms else float("nan"),
    }
