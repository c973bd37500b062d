"""The explanation stage: factors for scores the scorers published ``factors_pending``.

Exact TreeSHAP costs ~2.4 ms a row for the 800-tree champion: inline, it capped a scorer
at a few thousand events/s. With ``READMIT_SCORER_EXPLAIN_INLINE=false`` the scorers
publish every score at once and leave the factors to this consumer group on
``risk.scored``. Each loop: poll → keep the pending scores (a byte test before any
parse: most messages are not pending) → skip those the cache shows superseded (a newer
input or model) or already explained (a replay) → explain with the model version named
in the event, through the very ``ScoringModel.score`` the scorer calls inline → publish
the completed score on ``risk.scored`` (same key, input and ``computed_at``: the alert
feed fills in the alert's factors) → write the factors into the cached score (only while
it is still that score) → **then** commit. A failure before the commit rewinds and
retries (at-least-once; replays are no-ops or republish identical factors); a score that
can never be explained goes to the dead-letter topic (``unexplainable``) with the reason.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Final

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from model_store.registry import Registry
from model_store.serving import ScoringModel
from readmit_core.events import SCORED_TOPIC, ScoreEvent
from readmit_core.kafka_clients import ensure_topics, make_consumer, make_producer
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings
from scorer import metrics
from scorer.consumer import Rejected, ScorerWorker
from scorer.health import HealthServer
from scorer.lag import LagMonitor
from scorer.main import limit_blas_threads

log = logging.getLogger(__name__)

# How the scorers write the flag (compact JSON): a message with the false mark, or
# without the key (its default is false), is not parsed. A key written otherwise (JSON
# with spaces, from some other producer) is parsed to decide: never skipped unread.
PENDING_MARK: Final = b'"factors_pending":true'
EXPLAINED_MARK: Final = b'"factors_pending":false'
PENDING_KEY: Final = b'"factors_pending"'
# The scorer publishes before it writes Redis: a pending score not cached yet is waited
# for this long, then explained and published anyway (the alert gets its factors; the
# cache, flushed or expired meanwhile, is refilled by the scorers).
NOT_CACHED_WAIT_S: Final = 2.0
NOT_CACHED_POLL_S: Final = 0.01
MODELS_KEPT: Final = 2  # the champion and the one before it, during a hot reload


def _may_be_pending(value: bytes | None) -> bool:
    """Whether a ``risk.scored`` message must be parsed to know if it awaits factors
    (a key inside a JSON string is escaped, so the byte tests see keys only)."""
    if value is None:
        return False
    if PENDING_MARK in value:
        return True
    return PENDING_KEY in value and EXPLAINED_MARK not in value


def pending_scores(
    records: Sequence[ConsumerRecord],
) -> tuple[list[ScoreEvent], dict[str, ConsumerRecord], list[Rejected]]:
    """The pending scores among polled ``risk.scored`` records (the last of each input)
    with the record each came from, and the pending-marked messages that are not valid
    scores. Other messages are the alert feed's business (it dead-letters the invalid
    ones): they are skipped here."""
    found: dict[str, ScoreEvent] = {}
    source: dict[str, ConsumerRecord] = {}
    rejected: list[Rejected] = []
    for rec in records:
        if not _may_be_pending(rec.value):
            continue
        try:
            event = ScoreEvent.model_validate_json(rec.value)
        except ValidationError as exc:
            rejected.append(Rejected(rec, "schema_invalid", str(exc)[:200]))
            continue
        if event.factors_pending:
            found[event.input_key] = event
            source[event.input_key] = rec
    return list(found.values()), source, rejected


class Explainer:
    """Explains pending scores with the model version each one names.

    The champion is loaded at start (a loop turn proves the registry works); another
    version is loaded on first use and the ``MODELS_KEPT`` most recent kept. No forest
    compile: TreeSHAP runs on LightGBM's booster either way, and the predictions it
    repeats are a small part of its cost.
    """

    def __init__(self, registry: Registry, explain_bands: frozenset[str] | None) -> None:
        self.registry = registry
        self.explain_bands = explain_bands
        self.model: ScoringModel = registry.load_champion()
        self._models: dict[str, ScoringModel] = {self.model.version: self.model}

    def ready(self) -> bool:
        return True

    def maybe_reload(self) -> None:
        """Nothing to follow: each event names its model version."""

    def model_for(self, version: str) -> ScoringModel:
        model = self._models.get(version)
        if model is None:
            model = self.registry.load(version)
            self._models[version] = model
            while len(self._models) > MODELS_KEPT:
                del self._models[next(iter(self._models))]
        return model

    def explain(
        self, events: Sequence[ScoreEvent]
    ) -> tuple[list[ScoreEvent], list[tuple[ScoreEvent, str]]]:
        """The completed scores, and the ones that cannot be explained with the reason.

        ``ScoringModel.score`` with ``explain_bands=None`` explains every readmittable
        row it is given: the scorer already chose which scores need factors.
        """
        done: list[ScoreEvent] = []
        failed: list[tuple[ScoreEvent, str]] = []
        by_version: dict[str, list[ScoreEvent]] = {}
        for ev in events:
            if ev.record is None:
                failed.append((ev, "the score carries no record to explain"))
            else:
                by_version.setdefault(ev.model_version, []).append(ev)
        for version, group in by_version.items():
            try:
                model = self.model_for(version)
                preds = model.score([ev.record for ev in group if ev.record is not None])
            except Exception as exc:  # noqa: BLE001 - the reason goes to the DLQ
                why = f"model {version}: {type(exc).__name__}: {str(exc)[:200]}"
                failed.extend((ev, why) for ev in group)
                continue
            done.extend(
                ev.model_copy(
                    update={
                        "factors": p.factors,
                        "interventions": p.interventions,
                        "factors_pending": False,
                    }
                )
                for ev, p in zip(group, preds, strict=True)
            )
        return done, failed


class ExplainerWorker(ScorerWorker):
    """The scorer's consume loop (fail → rewind → back off, client rebuilds, clean
    shutdown) around the explanation step instead of the scoring one."""

    def process(self, records: Sequence[ConsumerRecord]) -> None:
        explainer = self.scorer
        assert isinstance(explainer, Explainer)
        started = time.perf_counter()
        events, source, rejected = pending_scores(records)
        todo = self._still_needed(events)
        done, failed = explainer.explain(todo) if todo else ([], [])
        rejected.extend(Rejected(source[ev.input_key], "unexplainable", why) for ev, why in failed)
        self._publish(done, rejected)
        written = self.cache.add_factors(done)
        self.consumer().commit()
        metrics.EXPLAINED.inc(len(done))
        metrics.EXPLAIN_SKIPPED.inc(len(events) - len(todo))
        metrics.EXPLAIN_NOT_CACHED.inc(written.count(False))
        now = datetime.now(UTC)
        for ev in done:
            metrics.EXPLAIN_DELAY_SECONDS.observe(max(0.0, (now - ev.computed_at).total_seconds()))
        metrics.EXPLAIN_BATCH_SECONDS.observe(time.perf_counter() - started)

    def _still_needed(self, events: Sequence[ScoreEvent]) -> list[ScoreEvent]:
        """The scores whose factors are still wanted: cached and pending, or not cached
        yet after ``NOT_CACHED_WAIT_S`` (see there); superseded or explained ones are not."""
        todo: list[ScoreEvent] = []
        waiting = list(events)
        deadline = time.monotonic() + _not_cached_wait_s(events)
        while waiting:
            states = self.cache.pending_states(waiting)
            todo.extend(ev for ev, st in zip(waiting, states, strict=True) if st == "pending")
            waiting = [ev for ev, st in zip(waiting, states, strict=True) if st == "not_yet"]
            if waiting and (time.monotonic() >= deadline or self.stop_event.is_set()):
                todo.extend(waiting)
                break
            if waiting:
                self.stop_event.wait(NOT_CACHED_POLL_S)
        return todo


def _not_cached_wait_s(events: Sequence[ScoreEvent]) -> float:
    """How long a score not yet cached is still worth waiting for: until the newest of
    the batch is ``NOT_CACHED_WAIT_S`` old. The scorer caches a score right after
    publishing it, so an older one is not coming (Redis was flushed or the score expired
    while the explainer was behind): a backlog is explained without a wait per batch."""
    if not events:
        return 0.0
    age = (datetime.now(UTC) - max(ev.computed_at for ev in events)).total_seconds()
    return min(NOT_CACHED_WAIT_S, max(0.0, NOT_CACHED_WAIT_S - age))


def build_explainer(settings: Settings, name: str | None = None) -> ExplainerWorker:
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    cache = ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds)
    explainer = Explainer(Registry(settings.model_dir), settings.explain_band_set)

    def new_consumer(listener: ConsumerRebalanceListener) -> KafkaConsumer:
        ensure_topics(settings)
        return make_consumer(
            settings, settings.explainer_group, [settings.topic(SCORED_TOPIC)], listener=listener
        )

    return ExplainerWorker(
        settings,
        cache,
        explainer,
        new_consumer=new_consumer,
        new_producer=lambda: make_producer(settings),
        name=name or f"explainer-{os.getpid()}",
    )


def run(settings: Settings, metrics_port: int | None = None) -> None:
    """Run until SIGTERM/SIGINT: finish the batch, commit, leave the group.

    The port serves the scorer's probes (``scorer.health``) for the explainer group:
    ``/healthz`` (the loop turns), ``/readyz`` (Redis, broker, partitions owned, progress
    on its backlog of ``risk.scored``) and ``/metrics`` (``readmit_explainer_*``), so an
    explainer that is down or stuck is seen like a scorer (infra/OPERATIONS.md).
    """
    limit_blas_threads()
    worker = build_explainer(settings)
    monitor = LagMonitor(
        settings,
        settings.topic(SCORED_TOPIC),
        lambda: worker.ownership.owned,
        group=settings.explainer_group,
    ).start()
    port = settings.explainer_metrics_port if metrics_port is None else metrics_port
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
        monitor.stop()
        if health is not None:
            health.stop()
