"""`readmit bench stream`: the streaming path's throughput and latency, against baselines.

Every number is reported next to a baseline measured in the same run on the same
machine, because absolute numbers on a shared 2-core box mean little:

* ingest bundles/s (saturated, N concurrent clients) vs a raw FastAPI POST of the same
  bodies that does no work;
* scorer events/s (one burst drained by the running scorers) vs raw kafka-python
  consume of the same bytes (and produce, for reference);
* end-to-end latency from POST to score-in-Redis at a fixed rate (p50/p95/p99), read
  from the ``cached_at`` the scorer writes with each score; for the scores the
  explainer stage completes, POST → factors and score → factors (its ``explained_at``);
  and, with the web app running, POST to the alert and to its factors on the planners'
  worklist socket (``readmit.benchmarks.screen``): what a nurse's browser receives;
* the mapper alone on a ~400-entry Synthea record vs ``orjson.loads`` of the same bytes.

What makes the numbers trustworthy on a shared machine: every phase is measured after a
warm-up (ingest workers have validated and mapped bundles; the scorers have drained
bursts until two in a row agree, i.e. the forest is compiled), every throughput is the
median of ``repeats`` runs of at least ``MIN_RUN_S`` of work with its min and max next
to it, baselines are repeated the same way in the same run, and the drain monitor reads
committed offsets through one probe consumer every 50 ms instead of opening a client
per look (which took ~20 % of a core from the scorers it measured).
"""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import redis

from fhir_mappings import FHIR_JSON
from readmit.benchmarks.screen import ScreenProbe, session_cookies
from readmit.embedded.services import ManagedProcess, free_port, port_open, wait_until
from readmit_core.events import FEATURES_TOPIC, SCORED_TOPIC, FeatureEvent
from readmit_core.settings import Settings

MIN_RUN_S: Final = 1.0  # least work in one timed run of a baseline
DRAIN_POLL_S: Final = 0.05
WARMUP_AGREEMENT: Final = 0.25  # two warm-up drains within 25 % of each other: warm


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median of repeated runs with its spread: min, max and (max - min) / median."""
    if not values:
        raise ValueError("summary() needs at least one value")
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else float("nan"),
        "runs": list(values),
    }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def agree(a: float, b: float, tolerance: float = WARMUP_AGREEMENT) -> bool:
    """Two rates within ``tolerance`` of the larger one."""
    top = max(a, b)
    return top > 0 and abs(a - b) / top <= tolerance


def flatten(name: str, stats: dict[str, Any]) -> dict[str, Any]:
    """``name`` = the median, ``name_min`` / ``name_max`` / ``name_spread`` / ``name_runs``."""
    return {
        name: stats["median"],
        f"{name}_min": stats["min"],
        f"{name}_max": stats["max"],
        f"{name}_spread": stats["spread"],
        f"{name}_runs": stats["runs"],
    }


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


def saturate(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    clients: int,
    min_seconds: float = 0.0,
) -> float:
    """POST every body once with ``clients`` concurrent connections (then cycle through
    them again until ``min_seconds`` have passed: only for baselines that do no work per
    body); successful requests/s."""
    ok = 0
    lock = threading.Lock()
    chunks = [bodies[i::clients] for i in range(clients)]
    start = time.perf_counter()

    def worker(chunk: Sequence[bytes]) -> None:
        nonlocal ok
        mine = 0
        with httpx.Client(timeout=30) as client:
            while True:
                for body in chunk:
                    if client.post(url, content=body, headers=headers).status_code < 300:
                        mine += 1
                if time.perf_counter() - start >= min_seconds or not chunk:
                    break
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
    """POST at a fixed rate; returns send start times and failures.

    One sender per 10 bundles/s (at least 4): a sender waits for each answer, so 4 of
    them could not keep 100/s once a POST took over 40 ms (the first 100/s run achieved
    41.8/s and measured a lighter load than it named)."""
    sent_at = [0.0] * len(bodies)
    failures = 0
    lock = threading.Lock()
    t0 = time.time() + 0.2
    senders = max(4, math.ceil(rate / 10))

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


def collect_factor_delays(
    client: redis.Redis, prefix: str, ids: Sequence[str], sent_at: Sequence[float], timeout: float
) -> tuple[list[float], list[float]]:
    """For the scores published ``factors_pending``: seconds from POST to their factors
    in Redis, and from the score's own write to its factors, once none is pending."""
    from readmit_core.score_cache import ScoreCache

    cache = ScoreCache(client, prefix, 0)
    deadline = time.monotonic() + timeout
    rows: list[list[bytes | None]] = []
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for enc in ids:
            pipe.hmget(cache.score_key(enc), ["factors_pending", "cached_at", "explained_at"])
        rows = pipe.execute()
        if not any(pending == b"1" for pending, _, _ in rows):
            break
        time.sleep(0.2)
    done = [
        (sent, float(cached or 0), float(explained))
        for sent, (_, cached, explained) in zip(sent_at, rows, strict=True)
        if explained is not None
    ]
    return [e - s for s, _, e in done], [e - c for _, c, e in done]


def raw_kafka(
    settings: Settings, payloads: Sequence[bytes], repeats: int = 3
) -> tuple[list[float], list[float]]:
    """kafka-python alone on the same bytes: (produce msgs/s, consume msgs/s) per run.

    Each consume run reads the topic from the beginning again and again (one consumer,
    assigned partitions) until it has done ``MIN_RUN_S`` of work: a single pass over a
    burst took 35-150 ms and swung 4x between runs."""
    from kafka import KafkaConsumer, TopicPartition

    from readmit_core.kafka_clients import ensure_topics, make_producer

    raw = settings.model_copy(update={"topic_prefix": f"rawbench{uuid.uuid4().hex[:6]}."})
    ensure_topics(raw, [FEATURES_TOPIC])
    topic = raw.topic(FEATURES_TOPIC)
    producer = make_producer(raw, linger_ms=5)
    produced = []
    for _ in range(repeats):
        start = time.perf_counter()
        futures = [producer.send(topic, value=p) for p in payloads]
        producer.flush()
        for f in futures:
            f.get(timeout=30)
        produced.append(len(payloads) / (time.perf_counter() - start))
    producer.close()
    total = len(payloads) * repeats
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=settings.scorer_batch_max,
    )
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumed = []
    for _ in range(repeats):
        seen, start, deadline = 0, 0.0, time.monotonic() + 120
        while time.monotonic() < deadline:
            consumer.seek_to_beginning(*tps)
            pass_seen = 0
            while pass_seen < total and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=100).values():
                    if not start:
                        start = time.perf_counter()
                    pass_seen += len(batch)
            seen += pass_seen
            if start and time.perf_counter() - start >= MIN_RUN_S:
                break
        consumed.append(seen / (time.perf_counter() - start) if start else 0.0)
    consumer.close()
    return produced, consumed


class CommittedOffsets:
    """A group's committed offsets on a topic (default: the scorers' on the features
    topic), through one probe consumer for the whole benchmark (a new client per look
    cost ~20 % of a core)."""

    def __init__(self, settings: Settings, group: str | None = None, topic: str = "") -> None:
        from kafka import TopicPartition

        from readmit_core.kafka_clients import make_probe_consumer

        self._probe = make_probe_consumer(settings, group or settings.scorer_group)
        topic = topic or settings.topic(FEATURES_TOPIC)
        partitions = self._probe.partitions_for_topic(topic) or set()
        self._tps = [TopicPartition(topic, p) for p in sorted(partitions)]

    def total(self) -> int:
        return sum(self._probe.committed(tp, timeout_ms=3000) or 0 for tp in self._tps)

    def log_end(self) -> int:
        return sum(self._probe.end_offsets(self._tps).values())

    def close(self) -> None:
        self._probe.close(autocommit=False)


def feed_caught_up(settings: Settings, timeout_s: float = 300) -> dict[str, float]:
    """Wait until the alert feed has read every score published so far, so the screen
    figures time today's alerts and not the warm-up's backlog; how long that took and
    the feed's rate meanwhile (messages/s).

    Caught up = its committed offsets reached the log end and did not move for a second
    (the log end alone can lag on some brokers, see ``drain_rate``)."""
    feed = CommittedOffsets(settings, settings.alerts_group, settings.topic(SCORED_TOPIC))
    try:
        start, began = time.perf_counter(), feed.total()
        deadline = time.monotonic() + timeout_s
        last, still_since = began, time.monotonic()
        while time.monotonic() < deadline:
            done = feed.total()
            if done != last:
                last, still_since = done, time.monotonic()
            elif done >= feed.log_end() and time.monotonic() - still_since >= 1.0:
                break
            time.sleep(DRAIN_POLL_S * 4)
        else:
            raise TimeoutError(f"the alert feed did not catch up within {timeout_s:g} s")
        took = time.perf_counter() - start - 1.0
        return {
            "feed_catch_up_s": max(0.0, took),
            "feed_catch_up_messages": last - began,
            "feed_catch_up_per_s": (last - began) / took if took > 0 else float("nan"),
        }
    finally:
        feed.close()


def drain_rate(
    settings: Settings, events: Sequence[FeatureEvent], offsets: CommittedOffsets
) -> float:
    """Burst ``events`` into the features topic and time the running scorers draining it.

    Drained = the group's committed offsets advanced by the burst's size (end offsets are
    not used: some brokers report the last batch's base offset there). Timed from the
    first commit seen, so producing the burst is not counted.
    """
    from readmit_core.kafka_clients import make_producer

    topic = settings.topic(FEATURES_TOPIC)
    before = offsets.total()
    producer = make_producer(settings, linger_ms=20)
    for ev in events:
        producer.send(topic, key=ev.patient_id.encode(), value=ev.to_bytes())
    producer.flush()
    target = before + len(events)
    first: tuple[float, int] | None = None  # (time, committed) when scoring was first seen
    done = before
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now, done = time.perf_counter(), offsets.total()
        if first is None and done > before:
            first = (now, done)
        if done >= target:
            break
        time.sleep(DRAIN_POLL_S)
    producer.close()
    if first is None or done < target:
        raise TimeoutError("the scorers did not drain the burst within 300 s")
    elapsed = time.perf_counter() - first[0]
    return (target - first[1]) / elapsed if elapsed > 0 else float("nan")


def bursts(events: Sequence[FeatureEvent], size: int, tag: str) -> list[FeatureEvent]:
    """``size`` events cycled from ``events``, each with an input key of its own (the
    scorers' deduplication would otherwise skip the repeats)."""
    cycled = (list(events) * (size // max(1, len(events)) + 1))[:size]
    return [
        ev.model_copy(update={"input_key": f"{ev.input_key}|{tag}{i}"})
        for i, ev in enumerate(cycled)
    ]


def warm_scorers(
    settings: Settings,
    events: Sequence[FeatureEvent],
    offsets: CommittedOffsets,
    size: int,
    log: Callable[[str], None],
    max_bursts: int = 8,
) -> list[float]:
    """Drain bursts until two in a row agree (compiled forest, warm caches); the rates."""
    rates: list[float] = []
    for k in range(max_bursts):
        rates.append(
            drain_rate(settings, bursts(events, size, f"warm{uuid.uuid4().hex[:4]}{k}"), offsets)
        )
        log(f"  warm-up drain {k + 1}: {rates[-1]:.0f} events/s")
        if len(rates) >= 2 and agree(rates[-1], rates[-2]):
            break
    return rates


def scorer_runs(
    settings: Settings,
    events: Sequence[FeatureEvent],
    offsets: CommittedOffsets,
    size: int,
    repeats: int,
    tag: str,
) -> list[float]:
    return [
        drain_rate(settings, bursts(events, size, f"{tag}{uuid.uuid4().hex[:4]}{k}"), offsets)
        for k in range(repeats)
    ]


def echo_server(settings: Settings) -> tuple[ManagedProcess, str]:
    """The raw-FastAPI baseline: same server stack and worker count as ingest, reads the
    body, does nothing."""
    port = free_port()
    proc = ManagedProcess(
        "echo",
        [
            sys.executable, "-m", "uvicorn", "readmit.benchmarks.echo:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(settings.ingest_workers),
            "--log-level", "warning", "--no-access-log",
        ],
    ).start()  # fmt: skip
    wait_until(lambda: port_open("127.0.0.1", port), 30, "echo baseline server")
    return proc, f"http://127.0.0.1:{port}/fhir"


def mapper_figures(record: Path | None, repeats: int) -> dict[str, Any]:
    """Resources/s of mapping a real ~400-entry Synthea record (validation memo cleared
    before each mapping: nothing carried over from the previous one) next to
    ``orjson.loads`` of the same bytes; medians of ``repeats`` runs."""
    import gzip

    from fhir_mappings.throughput import measure_record

    if record is None or not record.exists():
        return {}
    body = record.read_bytes()
    body = gzip.decompress(body) if record.suffix == ".gz" else body
    runs = [measure_record(body, 3) for _ in range(repeats)]
    mapper = summary([r["map_document_resources_per_s"] for r in runs])
    loads = summary([r["orjson_loads_resources_per_s"] for r in runs])
    return {
        **flatten("mapper_record_resources_per_s", mapper),
        **flatten("orjson_record_resources_per_s", loads),
        "mapper_vs_orjson": ratio(mapper["median"], loads["median"]),
        "mapper_record_entries": runs[0]["entries"],
    }


def run(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    saturation_bundles: int,
    scorer_events: int,
    clients: int,
    log: Callable[[str], None],
    repeats: int = 3,
    add_scorer: Callable[[], None] | None = None,
    mapper_record: Path | None = None,
    screen_login: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Run every phase against the stack ``settings`` points at; return the results.

    ``add_scorer`` (the embedded stack's) starts a second scorer after the one-scorer
    runs, for ``two_scorer_ratio``; ``screen_login`` (user, password of an account that
    sees every ward) adds POST → screen figures from the web app at ``settings.web_url``."""
    token = next(iter(sorted(settings.ingest_token_set)))
    headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {token}"}
    latency_n = int(rate * duration)
    warm_n = max(50, clients * 10)
    total = warm_n + saturation_bundles * repeats + latency_n
    log(f"synthesizing {total} bundles ...")
    work = build_workload(settings, total)
    warm_bodies = work.bodies[:warm_n]
    runs_bodies = [
        work.bodies[warm_n + k * saturation_bundles : warm_n + (k + 1) * saturation_bundles]
        for k in range(repeats)
    ]
    lat_from = warm_n + saturation_bundles * repeats
    lat_bodies, lat_ids = work.bodies[lat_from:], work.encounter_ids[lat_from:]
    ingest_url = f"{settings.ingest_url}/fhir"

    log("warm-up: ingest workers and scorers ...")
    saturate(ingest_url, warm_bodies, headers, clients)
    offsets = CommittedOffsets(settings)
    try:
        warm_size = max(1000, scorer_events // 4)
        warmup = warm_scorers(settings, work.events, offsets, warm_size, log)

        probe, feed = None, {}
        if screen_login is not None:
            log("waiting for the alert feed to read the warm-up's scores ...")
            feed = feed_caught_up(settings)
            cookies = session_cookies(settings.web_url, *screen_login)
            probe = ScreenProbe(settings.web_url, cookies).start()
        log(f"latency: {rate:g} bundles/s for {duration:g} s ...")
        sent_at, failures = paced(ingest_url, lat_bodies, headers, rate)
        client = redis.Redis.from_url(settings.redis_url)
        lat = collect_latencies(client, settings.topic_prefix, lat_ids, sent_at, timeout=120)
        post_to_factors, score_to_factors = collect_factor_delays(
            client, settings.topic_prefix, lat_ids, sent_at, timeout=60
        )
        on_screen = screen_figures(probe, lat_ids, sent_at) if probe is not None else {}

        log(f"saturation: ingest, {repeats} runs of {saturation_bundles} distinct bundles ...")
        ingest = summary([saturate(ingest_url, b, headers, clients) for b in runs_bodies])

        log("baseline: raw FastAPI POST of the same bodies ...")
        echo, echo_url = echo_server(settings)
        try:
            saturate(echo_url, warm_bodies, headers, clients)
            raw_post = summary(
                [
                    saturate(echo_url, runs_bodies[0], headers, clients, MIN_RUN_S)
                    for _ in range(repeats)
                ]
            )
        finally:
            echo.stop()

        log(f"scorer: {repeats} drains of {scorer_events} events ...")
        scorer = summary(scorer_runs(settings, work.events, offsets, scorer_events, repeats, "one"))
        two: dict[str, Any] = {}
        if add_scorer is not None:
            log("second scorer: start, warm up, drain ...")
            add_scorer()
            two_warmup = warm_scorers(settings, work.events, offsets, warm_size, log)
            both = summary(
                scorer_runs(settings, work.events, offsets, scorer_events, repeats, "two")
            )
            two = {
                **flatten("two_scorers_per_s", both),
                "two_scorer_ratio": ratio(both["median"], scorer["median"]),
                "two_scorers_warmup_per_s": two_warmup,
            }
    finally:
        offsets.close()

    log("baselines: raw kafka-python produce and consume of the same bytes ...")
    payloads = [ev.to_bytes() for ev in bursts(work.events, scorer_events, "raw")]
    produced, consumed = raw_kafka(settings, payloads, repeats)
    raw_consume, raw_produce = summary(consumed), summary(produced)

    log("mapper: a Synthea record vs orjson of the same bytes ...")
    mapper = mapper_figures(mapper_record, repeats)

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
        **_factor_figures(post_to_factors, score_to_factors),
        **on_screen,
        **feed,
        **flatten("ingest_per_s", ingest),
        **flatten("raw_post_per_s", raw_post),
        "ingest_vs_raw_post": ratio(ingest["median"], raw_post["median"]),
        **flatten("scorer_per_s", scorer),
        "scorer_warmup_per_s": warmup,
        "scorer_events": scorer_events,
        **flatten("raw_consume_per_s", raw_consume),
        **flatten("raw_produce_per_s", raw_produce),
        "scorer_vs_raw_consume": ratio(scorer["median"], raw_consume["median"]),
        **two,
        **mapper,
        "clients": clients,
        "repeats": repeats,
        "ingest_workers": settings.ingest_workers,
        "saturation_bundles": saturation_bundles,
    }


def screen_figures(
    probe: ScreenProbe, ids: Sequence[str], sent_at: Sequence[float]
) -> dict[str, Any]:
    """POST → alert and POST → factors on the worklist socket, for the alerts raised."""
    try:
        probe.wait_for(ids, timeout_s=60)
    finally:
        probe.stop()
    shown, explained = probe.latencies_ms(ids, sent_at)
    out: dict[str, Any] = {
        "screen_alerts": len(shown),
        "screen_explained": len(explained),
        "screen_socket_closed_with": probe.closed_with,
    }
    for name, values in (("screen_alert", shown), ("screen_factors", explained)):
        for q in (50, 95, 99):
            out[f"{name}_p{q}_ms"] = percentile(values, q)
        out[f"{name}_max_ms"] = max(values) if values else float("nan")
    for hop, values in probe.hops_ms(ids, sent_at).items():
        out[f"screen_hop_{hop}_p50_ms"] = percentile(values, 50)
        out[f"screen_hop_{hop}_p99_ms"] = percentile(values, 99)
    return out


def _factor_figures(post: Sequence[float], score: Sequence[float]) -> dict[str, Any]:
    """The explainer stage's delays in ms (none: factors inline, or nothing pending)."""
    post_ms, score_ms = [x * 1000 for x in post], [x * 1000 for x in score]
    return {
        "e2e_explained": len(post_ms),
        "e2e_factors_p50_ms": percentile(post_ms, 50),
        "e2e_factors_p99_ms": percentile(post_ms, 99),
        "score_to_factors_p50_ms": percentile(score_ms, 50),
        "score_to_factors_p99_ms": percentile(score_ms, 99),
        "score_to_factors_max_ms": max(score_ms, default=float("nan")),
    }


def _spread(r: dict[str, Any], name: str, fmt: str = ".0f") -> str:
    return f"{r[name]:{fmt}} [{r[name + '_min']:{fmt}}-{r[name + '_max']:{fmt}}]"


def markdown(results: dict[str, Any]) -> str:
    """The results as a table: medians with [min-max] of the runs, same-run baselines."""
    r = results
    latency = f"{r['e2e_p50_ms']:.1f} / {r['e2e_p95_ms']:.1f} / {r['e2e_p99_ms']:.1f}"
    at = f"{r['e2e_rate_per_s']:g}/s for {r['e2e_duration_s']:g} s"
    n = r["repeats"]
    rows = [
        f"| measure (median [min-max] of {n} runs) | readmit | baseline (same run) | ratio |",
        "|---|---:|---:|---:|",
        f"| ingest, bundles/s ({r['clients']} clients, {r['ingest_workers']} workers) "
        f"| {_spread(r, 'ingest_per_s')} | raw FastAPI POST {_spread(r, 'raw_post_per_s')} "
        f"| {r['ingest_vs_raw_post']:.3f} |",
        f"| scorer, events/s | {_spread(r, 'scorer_per_s')} "
        f"| raw kafka-python consume {_spread(r, 'raw_consume_per_s')} "
        f"| {r['scorer_vs_raw_consume']:.3f} |",
    ]
    if "two_scorer_ratio" in r:
        rows.append(
            f"| 2 scorers, events/s | {_spread(r, 'two_scorers_per_s')} "
            f"| 1 scorer {r['scorer_per_s']:.0f} | {r['two_scorer_ratio']:.2f} |"
        )
    if "mapper_record_resources_per_s" in r:
        rows.append(
            f"| mapper, resources/s of a {r['mapper_record_entries']}-entry Synthea record "
            f"| {_spread(r, 'mapper_record_resources_per_s')} "
            f"| orjson.loads {_spread(r, 'orjson_record_resources_per_s')} "
            f"| {r['mapper_vs_orjson']:.4f} |"
        )
    rows += [
        f"| end-to-end p50 / p95 / p99 ms at {at} | {latency} | - | - |",
        f"| latency phase: achieved POST rate, bundles/s | {r['e2e_achieved_rate_per_s']:.1f} "
        f"| target {r['e2e_rate_per_s']:g} | - |",
        f"| scored / sent in latency phase | {r['e2e_scored']} / {r['e2e_sent']} | - | - |",
        f"| POST → factors p50 / p99 ms ({r['e2e_explained']} explained by the stage) "
        f"| {r['e2e_factors_p50_ms']:.1f} / {r['e2e_factors_p99_ms']:.1f} | - | - |",
        f"| score → factors p50 / p99 / max ms | {r['score_to_factors_p50_ms']:.1f} / "
        f"{r['score_to_factors_p99_ms']:.1f} / {r['score_to_factors_max_ms']:.1f} | - | - |",
    ]
    if "feed_catch_up_per_s" in r:
        rows.append(
            f"| alert feed reading the warm-up's {r['feed_catch_up_messages']} scores, "
            f"messages/s | {r['feed_catch_up_per_s']:.0f} | - | - |"
        )
    if "screen_alerts" in r:
        for what, key, count in (
            ("the alert", "screen_alert", "screen_alerts"),
            ("its factors", "screen_factors", "screen_explained"),
        ):
            ms = " / ".join(f"{r[f'{key}_{q}_ms']:.0f}" for q in ("p50", "p95", "p99", "max"))
            rows.append(
                f"| POST → {what} on the worklist socket, p50 / p95 / p99 / max ms "
                f"({r[count]} alerts) | {ms} | - | - |"
            )
        hops = ", ".join(
            f"{hop} {r[f'screen_hop_{hop}_p50_ms']:.0f}/{r[f'screen_hop_{hop}_p99_ms']:.0f}"
            for hop in ("scored", "stored", "pushed", "received")
        )
        rows.append(f"| the alert's hops, p50/p99 ms | {hops} | - | - |")
    return "\n".join(rows)


def write_outputs(results: dict[str, Any], json_path: Path | None, md_path: Path | None) -> str:
    """Write the JSON (``-``: return it instead of the table, for piping) and the table."""
    table = markdown(results)
    document = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    if md_path:
        md_path.write_text(table + "\n")
    if json_path is not None and str(json_path) == "-":
        return document.decode()
    if json_path:
        json_path.write_bytes(document)
    return table
