"""`readmit bench stream`: the streaming path's throughput and latency, against baselines.

Every number is reported next to a baseline measured in the same run on the same
machine, because absolute numbers on a shared 2-core box mean little:

* ingest bundles/s (saturated, N concurrent clients) vs a raw FastAPI POST of the same
  bodies that does no work;
* scorer events/s (one burst drained by the running scorers) vs raw kafka-python
  consume of the same bytes (and produce, for reference);
* end-to-end latency from POST to score-in-Redis at a fixed rate (p50/p95/p99), read
  from the ``cached_at`` the scorer writes with each score.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from fhir_mappings import FHIR_JSON
from readmit.embedded.services import ManagedProcess, free_port, port_open, wait_until
from readmit_core.events import FEATURES_TOPIC, FeatureEvent
from readmit_core.settings import Settings


@dataclass(frozen=True)
class Workload:
    """Pre-synthesized bundles (bytes) and the index encounter id each one carries."""

    bodies: list[bytes]
    encounter_ids: list[str]
    events: list[FeatureEvent]


def build_workload(settings: Settings, count: int, seed: int = 3) -> Workload:
    from fhir_mappings.mapper import map_trusted_document
    from fhir_mappings.synth import iter_bundles
    from ingest.service import to_event

    bodies, ids, events = [], [], []
    for bundle in iter_bundles(settings.data_path, seed=seed, limit=count):
        body = orjson.dumps(bundle)
        mapped = map_trusted_document(body)  # our own synthesized bundles: no need to validate
        if not mapped:
            continue
        bodies.append(body)
        ids.append(mapped[0].encounter_id)
        events.append(to_event(mapped[0]))
    return Workload(bodies, ids, events)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def saturate(url: str, bodies: Sequence[bytes], headers: dict[str, str], clients: int) -> float:
    """POST every body once with ``clients`` concurrent connections; successful requests/s."""
    ok = 0
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]

    def worker(chunk: Sequence[bytes]) -> None:
        nonlocal ok
        mine = 0
        with httpx.Client(timeout=30) as client:
            for body in chunk:
                if client.post(url, content=body, headers=headers).status_code < 300:
                    mine += 1
        with lock:
            ok += mine

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok / (time.perf_counter() - start)


def paced(
    url: str, bodies: Sequence[bytes], headers: dict[str, str], rate: float
) -> tuple[list[float], int]:
    """POST at a fixed rate from 4 senders; returns send start times and failures."""
    sent_at = [0.0] * len(bodies)
    failures = 0
    lock = threading.Lock()
    t0 = time.time() + 0.2
    senders = 4

    def worker(offset: int) -> None:
        nonlocal failures
        with httpx.Client(timeout=30) as client:
            for i in range(offset, len(bodies), senders):
                due = t0 + i / rate
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                sent_at[i] = time.time()
                if client.post(url, content=bodies[i], headers=headers).status_code >= 300:
                    with lock:
                        failures += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent_at, failures


def collect_latencies(
    client: redis.Redis, prefix: str, ids: Sequence[str], sent_at: Sequence[float], timeout: float
) -> list[float]:
    """Seconds from POST to score-in-Redis, once every score is there (or timeout)."""
    from readmit_core.score_cache import ScoreCache

    cache = ScoreCache(client, prefix, 0)
    deadline = time.monotonic() + timeout
    cached: list[bytes | None] = [None] * len(ids)
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for enc in ids:
            pipe.hget(cache.score_key(enc), "cached_at")
        cached = pipe.execute()
        if all(cached):
            break
        time.sleep(0.2)
    return [float(c) - s for c, s in zip(cached, sent_at, strict=True) if c]


def raw_kafka(settings: Settings, payloads: Sequence[bytes]) -> tuple[float, float]:
    """kafka-python alone on the same bytes: (produce msgs/s, consume msgs/s)."""
    from kafka import KafkaConsumer

    from readmit_core.kafka_clients import ensure_topics, make_producer

    raw = settings.model_copy(update={"topic_prefix": f"rawbench{uuid.uuid4().hex[:6]}."})
    ensure_topics(raw, [FEATURES_TOPIC])
    topic = raw.topic(FEATURES_TOPIC)
    producer = make_producer(raw, linger_ms=5)
    start = time.perf_counter()
    futures = [producer.send(topic, value=p) for p in payloads]
    producer.flush()
    for f in futures:
        f.get(timeout=30)
    produce_rate = len(payloads) / (time.perf_counter() - start)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=settings.scorer_batch_max,
    )
    seen = 0
    start = 0.0
    deadline = time.monotonic() + 120
    while seen < len(payloads) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            if not start:
                start = time.perf_counter()
            seen += len(batch)
    consume_rate = seen / (time.perf_counter() - start) if start else 0.0
    consumer.close()
    return produce_rate, consume_rate


def drain_rate(settings: Settings, events: Sequence[FeatureEvent]) -> float:
    """Burst ``events`` into the features topic and time the running scorers draining it.

    Drained = the group's committed offsets advanced by the burst's size (end offsets are
    not used: some brokers report the last batch's base offset there).
    """
    from readmit_core.kafka_clients import make_producer
    from scorer.lag import consumer_lag

    topic = settings.topic(FEATURES_TOPIC)

    def committed() -> int:
        rows = consumer_lag(settings.kafka_bootstrap, settings.scorer_group, topic)
        return sum(p.committed or 0 for p in rows)

    before = committed()
    producer = make_producer(settings, linger_ms=20)
    for ev in events:
        producer.send(topic, key=ev.patient_id.encode(), value=ev.to_bytes())
    target = before + len(events)
    first: tuple[float, int] | None = None  # (time, committed) when scoring was first seen
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now, done = time.perf_counter(), committed()
        if first is None and done > before:
            first = (now, done)
        if done >= target:
            break
        time.sleep(0.02)
    producer.close()
    if first is None or done < target:
        raise TimeoutError("the scorers did not drain the burst within 300 s")
    elapsed = time.perf_counter() - first[0]
    return (target - first[1]) / elapsed if elapsed > 0 else float("nan")


def echo_server(settings: Settings) -> tuple[ManagedProcess, str]:
    """The raw-FastAPI baseline: same server stack, reads the body, does nothing."""
    port = free_port()
    proc = ManagedProcess(
        "echo",
        [
            sys.executable, "-m", "uvicorn", "readmit.benchmarks.echo:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        ],
    ).start()  # fmt: skip
    wait_until(lambda: port_open("127.0.0.1", port), 30, "echo baseline server")
    return proc, f"http://127.0.0.1:{port}/fhir"


def run(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    saturation_bundles: int,
    scorer_events: int,
    clients: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Run every phase against the stack ``settings`` points at; return the results."""
    token = next(iter(sorted(settings.ingest_token_set)))
    headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {token}"}
    latency_n = int(rate * duration)
    log(f"synthesizing {saturation_bundles + latency_n} bundles ...")
    work = build_workload(settings, saturation_bundles + latency_n)
    sat_bodies, lat_bodies = work.bodies[:saturation_bundles], work.bodies[saturation_bundles:]
    lat_ids = work.encounter_ids[saturation_bundles:]

    log("baseline: raw FastAPI POST ...")
    echo, echo_url = echo_server(settings)
    try:
        raw_post = saturate(echo_url, sat_bodies, headers, clients)
    finally:
        echo.stop()

    log(f"latency: {rate:g} bundles/s for {duration:g} s ...")
    sent_at, failures = paced(f"{settings.ingest_url}/fhir", lat_bodies, headers, rate)
    client = redis.Redis.from_url(settings.redis_url)
    lat = collect_latencies(client, settings.topic_prefix, lat_ids, sent_at, timeout=120)

    log("saturation: ingest ...")
    ingest_rate = saturate(f"{settings.ingest_url}/fhir", sat_bodies, headers, clients)

    log("scorer drain and raw Kafka baselines ...")
    burst = [
        ev.model_copy(update={"input_key": f"{ev.input_key}|burst{i}"})
        for i, ev in enumerate(
            (work.events * (scorer_events // max(1, len(work.events)) + 1))[:scorer_events]
        )
    ]
    scorer_rate = drain_rate(settings, burst)
    produce_rate, consume_rate = raw_kafka(settings, [ev.to_bytes() for ev in burst])

    ms = [x * 1000 for x in lat]
    sent_span = max(sent_at) - min(sent_at) if len(sent_at) > 1 else float("nan")
    return {
        "e2e_rate_per_s": rate,
        "e2e_achieved_rate_per_s": (len(sent_at) - 1) / sent_span if sent_span else float("nan"),
        "e2e_duration_s": duration,
        "e2e_sent": len(lat_bodies),
        "e2e_failed_posts": failures,
        "e2e_scored": len(lat),
        "e2e_p50_ms": percentile(ms, 50),
        "e2e_p95_ms": percentile(ms, 95),
        "e2e_p99_ms": percentile(ms, 99),
        "e2e_mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "ingest_per_s": ingest_rate,
        "baseline_raw_fastapi_post_per_s": raw_post,
        "ingest_vs_raw_post": ingest_rate / raw_post if raw_post else float("nan"),
        "scorer_per_s": scorer_rate,
        "scorer_events": len(burst),
        "baseline_raw_kafka_consume_per_s": consume_rate,
        "baseline_raw_kafka_produce_per_s": produce_rate,
        "scorer_vs_raw_consume": scorer_rate / consume_rate if consume_rate else float("nan"),
        "clients": clients,
    }


def markdown(results: dict[str, Any]) -> str:
    r = results
    latency = f"{r['e2e_p50_ms']:.1f} / {r['e2e_p95_ms']:.1f} / {r['e2e_p99_ms']:.1f}"
    at = f"{r['e2e_rate_per_s']:g}/s for {r['e2e_duration_s']:g} s"
    raw_post = r["baseline_raw_fastapi_post_per_s"]
    raw_consume = r["baseline_raw_kafka_consume_per_s"]
    rows = [
        "| measure | readmit | baseline (same run) | ratio |",
        "|---|---:|---:|---:|",
        f"| ingest, bundles/s ({r['clients']} clients) | {r['ingest_per_s']:.0f} "
        f"| raw FastAPI POST {raw_post:.0f} | {r['ingest_vs_raw_post']:.2f} |",
        f"| scorer, events/s | {r['scorer_per_s']:.0f} "
        f"| raw kafka-python consume {raw_consume:.0f} | {r['scorer_vs_raw_consume']:.2f} |",
        f"| end-to-end p50 / p95 / p99 ms at {at} | {latency} | - | - |",
        f"| latency phase: achieved POST rate, bundles/s | {r['e2e_achieved_rate_per_s']:.1f} "
        f"| target {r['e2e_rate_per_s']:g} | - |",
        f"| scored / sent in latency phase | {r['e2e_scored']} / {r['e2e_sent']} | - | - |",
    ]
    return "\n".join(rows)


def write_outputs(results: dict[str, Any], json_path: Path | None, md_path: Path | None) -> str:
    table = markdown(results)
    if json_path:
        json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    if md_path:
        md_path.write_text(table + "\n")
    return table
