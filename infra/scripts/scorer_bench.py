"""Scorer benchmarks on their own broker and Redis (figures in infra/OPERATIONS.md).

    .venv/bin/python infra/scripts/scorer_bench.py events 3000
    .venv/bin/python infra/scripts/scorer_bench.py throughput 10000 3 "none;medium,high;high"
    .venv/bin/python infra/scripts/scorer_bench.py throughput 10000 3 "medium,high;medium,high@s"
    .venv/bin/python infra/scripts/scorer_bench.py latency 300 3
    .venv/bin/python infra/scripts/scorer_bench.py scaleout 10000 3

``scaleout`` drains the same events (12 partitions) with 1, then 2 scorer processes of one
group, all compiled and started together, and reports events/s of the group per run; the
members explain as ``READMIT_SCORER_EXPLAIN_INLINE`` says (false: the explainer stage's
setting, ``READMIT_SCORER_EXPLAIN_INLINE=false .venv/bin/python infra/scripts/scorer_bench.py
scaleout 10000 3``).

``events`` synthesizes the ``readmit bench stream`` workload once (var/bench/events.jsonl);
``throughput`` compiles the champion once, then runs ``scorer.benchmark.measure_scorer``
per explanation setting (``bands@s``: the scorer leaves the factors to the explainer
stage, ``READMIT_SCORER_EXPLAIN_INLINE=false``); ``latency`` runs ``measure_latency`` at
20 events/s with kafka-python's 500 ms fetch wait and with the configured one,
alternately. One JSON line per result on stdout.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from model_store.registry import Registry
from readmit.embedded.services import free_port, start_broker, start_redis
from readmit_core.events import FEATURES_TOPIC, FeatureEvent
from readmit_core.kafka_clients import ensure_topics, make_producer
from readmit_core.settings import Settings
from scorer.benchmark import bench_worker, measure_latency, measure_scorer
from scorer.consumer import Scorer
from scorer.main import limit_blas_threads

EVENTS = Path("var/bench/events.jsonl")


def _group_member(settings: Settings, total: int, start: Any, done: Any, spans: Any) -> None:
    """One scorer process of the group: compile, wait for the others, drain, report."""
    limit_blas_threads()
    scorer = Scorer(
        Registry(settings.model_dir),
        settings.explain_band_set,
        compile_trees=True,
        explain_inline=settings.scorer_explain_inline,
    )
    while not scorer.ready():
        time.sleep(0.2)
    client = redis.Redis.from_url(settings.redis_url)
    worker = bench_worker(settings, scorer, client, "bench-group")
    start.wait()
    first = last = 0.0
    while done.value < total:
        handled = worker.step()
        if handled:
            now = time.time()
            first = first or now
            last = now
            with done.get_lock():
                done.value += handled
    spans.put((first, last))
    worker._shutdown()


def scale_out(base: Settings, events: list[FeatureEvent], scorers: int) -> float:
    """Events/s of ``scorers`` processes draining ``events`` together (first to last batch)."""
    ctx = multiprocessing.get_context("spawn")
    run = base.model_copy(
        update={"topic_prefix": f"scale{uuid.uuid4().hex[:8]}.", "topic_partitions": 12}
    )
    fill = [(e.patient_id.encode(), e.to_bytes()) for e in events]
    ensure_topics(run)
    producer = make_producer(run, linger_ms=20)
    for key, value in fill:
        producer.send(run.topic(FEATURES_TOPIC), key=key, value=value)
    producer.flush(60)
    producer.close()
    start, done, spans = ctx.Barrier(scorers + 1), ctx.Value("i", 0), ctx.Queue()
    members = [
        ctx.Process(target=_group_member, args=(run, len(fill), start, done, spans))
        for _ in range(scorers)
    ]
    for member in members:
        member.start()
    start.wait()
    results = [spans.get(timeout=600) for _ in members]
    for member in members:
        member.join(timeout=60)
    first = min(f for f, _ in results if f)
    last = max(t for _, t in results)
    return len(fill) / (last - first)


def main(mode: str, count: int, repeats: int = 3, bands: str = "medium,high") -> None:
    if mode == "events":
        from readmit.benchmarks.stream import build_workload

        EVENTS.parent.mkdir(parents=True, exist_ok=True)
        EVENTS.write_bytes(
            b"\n".join(e.to_bytes() for e in build_workload(Settings(), count).events)
        )
        return
    limit_blas_threads()
    events = [FeatureEvent.model_validate_json(line) for line in EVENTS.read_bytes().splitlines()]
    events = (events * (count // len(events) + 1))[:count]
    kafka_port, redis_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="scorer-bench-"))
    broker = start_broker(kafka_port, logs / "kafka.log")
    cache = start_redis(redis_port, logs / "redis.log")
    try:
        base = Settings(
            kafka_bootstrap=f"127.0.0.1:{kafka_port}", redis_url=f"redis://127.0.0.1:{redis_port}/0"
        )
        if mode == "scaleout":
            for _ in range(repeats):
                one, two = scale_out(base, events, 1), scale_out(base, events, 2)
                print(json.dumps({"one": one, "two": two, "ratio": two / one}), flush=True)
            return
        scorer = Scorer(Registry(base.model_dir), base.explain_band_set, compile_trees=True)
        while not scorer.ready():
            time.sleep(0.2)
        if mode == "throughput":
            for setting in bands.split(";"):
                band_list, _, where = setting.partition("@")
                run = base.model_copy(
                    update={
                        "scorer_explain_bands": band_list,
                        "scorer_explain_inline": where != "s",
                    }
                )
                scorer.explain_bands = run.explain_band_set
                scorer.explain_inline = run.scorer_explain_inline
                print(json.dumps(measure_scorer(run, events, scorer=scorer, repeats=repeats)))
        else:
            for _ in range(repeats):
                for wait in (500, base.consumer_fetch_max_wait_ms):
                    run = base.model_copy(update={"consumer_fetch_max_wait_ms": wait})
                    print(json.dumps(measure_latency(run, events, scorer=scorer)), flush=True)
    finally:
        broker.stop()
        cache.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], int(args[1]), int(args[2]) if len(args) > 2 else 3, *args[3:4])
