"""Scorer benchmarks on their own broker and Redis (figures in infra/OPERATIONS.md).

    .venv/bin/python infra/scripts/scorer_bench.py events 3000
    .venv/bin/python infra/scripts/scorer_bench.py throughput 10000 3 "none;medium,high;high"
    .venv/bin/python infra/scripts/scorer_bench.py latency 300 3

``events`` synthesizes the ``readmit bench stream`` workload once (var/bench/events.jsonl);
``throughput`` compiles the champion once, then runs ``scorer.benchmark.measure_scorer``
per explanation setting; ``latency`` runs ``measure_latency`` at 20 events/s with
kafka-python's 500 ms fetch wait and with the configured one, alternately. One JSON line
per result on stdout.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from model_store.registry import Registry
from readmit.embedded.services import free_port, start_broker, start_redis
from readmit_core.events import FeatureEvent
from readmit_core.settings import Settings
from scorer.benchmark import measure_latency, measure_scorer
from scorer.consumer import Scorer
from scorer.main import limit_blas_threads

EVENTS = Path("var/bench/events.jsonl")


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
        scorer = Scorer(Registry(base.model_dir), base.explain_band_set, compile_trees=True)
        while not scorer.ready():
            time.sleep(0.2)
        if mode == "throughput":
            for setting in bands.split(";"):
                run = base.model_copy(update={"scorer_explain_bands": setting})
                scorer.explain_bands = run.explain_band_set
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
