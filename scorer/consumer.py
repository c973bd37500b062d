"""The scorer: a Kafka consumer-group worker that turns feature events into cached scores.

One process per partition share (run N processes for N-way parallelism). Each loop:
poll a batch → decode and validate → drop inputs already scored → score the batch in
one vectorised model call → publish ``risk.scored`` (acks=all) → write Redis in one
pipeline (the cached score records its input, which makes redelivery a no-op) →
**then** commit offsets. Any failure before the
commit rewinds to the batch's first offsets and retries after a back-off, so nothing is lost
(at-least-once) and the idempotent writes make repeats harmless. Messages that can
never be processed go to the dead-letter topic with the reason, and the partition
moves on.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson
import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from pydantic import ValidationError

from model_store.registry import Registry
from model_store.serving import Prediction, ScoringModel, needs_explanation
from readmit_core.backoff import Backoff
from readmit_core.errors import ServiceUnavailable
from readmit_core.events import (
    DEAD_LETTER_TOPIC,
    FEATURE_EVENT_VERSION,
    FEATURES_TOPIC,
    SCORE_EVENT_VERSION,
    SCORED_TOPIC,
    DeadLetter,
    DeadLetterReason,
    FeatureEvent,
    ScoreEvent,
    older_input,
    utcnow,
)
from readmit_core.kafka_clients import discard, rewind
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings
from scorer import metrics
from scorer.record_checks import definition_violations

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0
RELOAD_CHECK_S = 5.0
# Kafka failing this long without one good batch: replace the clients, not just retry.
KAFKA_REBUILD_AFTER_S = 10.0
# Tracked allocations between young collections (CPython's default: 700). A batch of
# 500 events allocates ~15,000 container objects that all live until the batch is done:
# at 700 each batch triggered ~20 young collections that copied its live objects on into
# older generations, ~8 us an event (measured with gc.callbacks in a saturated loop).
GC_YOUNG_THRESHOLD = 100_000


@dataclass(frozen=True)
class Rejected:
    record: ConsumerRecord
    reason: DeadLetterReason
    detail: str


def decode(record: ConsumerRecord) -> FeatureEvent | Rejected:
    """A message as a FeatureEvent, or why it cannot be one (never raises).

    Beyond the schema, the record must lie within the feature definition (ranges and
    closed vocabularies): the model would score anything else without complaint.

    One pass: pydantic-core parses and validates the bytes together (an event of ours
    is read once, not parsed to a dict and then validated); only a message that fails
    is taken apart again to name the reason for its dead letter.
    """
    try:
        event = FeatureEvent.model_validate_json(record.value)
    except (ValidationError, TypeError):
        return _rejection(record)
    out_of_range, unknown = definition_violations(event.record)
    if out_of_range:
        return Rejected(record, "out_of_range", "; ".join(out_of_range)[:200])
    if unknown:
        return Rejected(record, "unknown_category", "; ".join(unknown)[:200])
    return event


def _rejection(record: ConsumerRecord) -> Rejected:
    """Why a message is not a valid FeatureEvent, in the dead-letter reasons' terms."""
    try:
        payload = orjson.loads(record.value)
    except (orjson.JSONDecodeError, TypeError) as exc:
        return Rejected(record, "undecodable", str(exc)[:200])
    if not isinstance(payload, dict):
        return Rejected(record, "schema_invalid", "event is not a JSON object")
    if payload.get("schema_version") != FEATURE_EVENT_VERSION:
        return Rejected(
            record, "unknown_version", f"schema_version={payload.get('schema_version')!r}"
        )
    try:
        FeatureEvent.model_validate(payload)
    except ValidationError as exc:
        fields = ",".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        return Rejected(record, "schema_invalid", f"invalid fields: {fields}")
    # valid as a dict but not as JSON bytes: cannot happen for orjson-decodable input
    return Rejected(record, "schema_invalid", "event failed validation")


def to_score_event(
    event: FeatureEvent, pred: Prediction, model_version: str, *, factors_pending: bool = False
) -> ScoreEvent:
    """The score of a validated event, built without validating it a second time.

    Every field comes from a validated FeatureEvent or the model's typed Prediction, so
    assembling it is exact; building the nested event through validation, and later
    ``model_construct``, were per-event costs of the scorer's loop. A pending score carries
    no interventions: without factors they would be the band-only fallback (the 7-day
    call), advice the explainer's completion then withdraws; it recomputes them.
    """
    return ScoreEvent.assembled(
        {
            "schema_version": SCORE_EVENT_VERSION,
            "encounter_id": event.encounter_id,
            "patient_id": event.patient_id,
            "ward": event.ward,
            "input_key": event.input_key,
            "probability": float(pred.probability),
            "band": pred.band,
            "model_version": model_version,
            "factors": pred.factors,
            "interventions": () if factors_pending else pred.interventions,
            "factors_pending": factors_pending,
            "computed_at": utcnow(),
            "discharged_at": event.discharged_at,
            "non_readmittable": pred.non_readmittable,
            "context": event.context,
            "record": event.record,
            "input_version": event.input_version,
        }
    )


class Scorer:
    """Scores batches of decoded events; isolates records the model cannot score.

    ``explain_inline`` False leaves TreeSHAP to the explainer stage (``explainer.worker``):
    scores whose band needs factors are published at once, marked ``factors_pending``.
    """

    def __init__(
        self,
        registry: Registry,
        explain_bands: frozenset[str] | None = None,
        *,
        compile_trees: bool = False,
        explain_inline: bool = True,
    ) -> None:
        self.registry = registry
        self.explain_bands = explain_bands
        self.explain_inline = explain_inline
        self.compile_trees = compile_trees
        self._refused: str | None = None
        self.model: ScoringModel = registry.load_champion()
        # the first model compiles before the worker joins the group (see ``ready``)
        self._compiling = self._compile(self.model)
        # a hot reload's model, compiling while the current one serves; swapped in when done
        self._pending: ScoringModel | None = None
        self._pending_compile: threading.Thread | None = None
        self._checked = time.monotonic()
        metrics.MODEL_INFO.labels(self.model.version).set(1)

    def ready(self) -> bool:
        """Whether the serving model is in its final (compiled) form.

        The worker takes no partitions before: a scorer joining the group with the
        LightGBM interpreter, then compiling 800 trees on the same core, served p99s of
        seconds for the half minute of the compile.
        """
        return self._compiling is None or not self._compiling.is_alive()

    def maybe_reload(self) -> None:
        """Follow the registry's champion pointer; a bad new model keeps the old one serving.

        A new champion is compiled while the current one keeps scoring and is swapped in
        only when compiled, so a reload never serves the slow interpreter.
        """
        if self._pending is not None:
            self._install_if_compiled()
            return
        if time.monotonic() - self._checked < RELOAD_CHECK_S:
            return
        self._checked = time.monotonic()
        current = self.registry.champion_version()
        if current is None or current in (self.model.version, self._refused):
            return
        try:
            new = self.registry.load_champion()
        except Exception:
            # remembered: a refused artifact is not re-hashed every few seconds
            self._refused = current
            log.exception("new champion could not be loaded; keeping the current model")
            return
        self._pending = new
        self._pending_compile = self._compile(new)
        self._install_if_compiled()

    def _install_if_compiled(self) -> None:
        new, compiling = self._pending, self._pending_compile
        if new is None or (compiling is not None and compiling.is_alive()):
            return
        metrics.MODEL_INFO.labels(self.model.version).set(0)
        metrics.MODEL_INFO.labels(new.version).set(1)
        log.info("model reloaded", extra={"old": self.model.version, "new": new.version})
        self.model, self._pending, self._pending_compile = new, None, None

    def _compile(self, model: ScoringModel) -> threading.Thread | None:
        """Compile the model's forest in the background, unless it left service (or the
        queue to serve) before its turn; None when there is nothing to wait for."""
        if not self.compile_trees:
            return None
        return model.compile_in_background(lambda: model is self.model or model is self._pending)

    def score(
        self, events: Sequence[FeatureEvent]
    ) -> tuple[list[ScoreEvent], list[tuple[FeatureEvent, str]]]:
        """Score in one call; if that fails, one by one to find the unscorable ones."""
        model = self.model
        try:
            return self._score(model, events), []
        except Exception:
            log.warning("batch scoring failed; isolating", exc_info=True)
        good: list[ScoreEvent] = []
        bad: list[tuple[FeatureEvent, str]] = []
        for e in events:
            try:
                good.extend(self._score(model, [e]))
            except Exception as exc:  # noqa: BLE001 - the reason goes to the DLQ
                bad.append((e, f"{type(exc).__name__}: {str(exc)[:200]}"))
        return good, bad

    def _score(self, model: ScoringModel, events: Sequence[FeatureEvent]) -> list[ScoreEvent]:
        records = [e.record for e in events]
        if self.explain_inline:
            preds = model.score(records, explain_bands=self.explain_bands)
            return [to_score_event(e, p, model.version) for e, p in zip(events, preds, strict=True)]
        preds = model.score(records, explain=False)
        return [
            to_score_event(
                e,
                p,
                model.version,
                factors_pending=needs_explanation(p.band, p.non_readmittable, self.explain_bands),
            )
            for e, p in zip(events, preds, strict=True)
        ]


class Stage(Protocol):
    """What the consume loop needs of its model holder: the scorer's ``Scorer`` or the
    explainer stage's ``scorer.explainer.Explainer``."""

    model: ScoringModel

    def ready(self) -> bool: ...

    def maybe_reload(self) -> None: ...


ConsumerFactory = Callable[[ConsumerRebalanceListener], KafkaConsumer]
ProducerFactory = Callable[[], KafkaProducer]


class Ownership(ConsumerRebalanceListener):
    """Which partitions this process owns and since when, logged at every change.

    Called on the poll thread during a rebalance; read by the health endpoint. ``member``
    is true between an assignment and the next revocation: a member of a settled group
    with no partitions is one the group has none to give (more scorers than partitions).
    """

    def __init__(self) -> None:
        self.owned: frozenset[TopicPartition] = frozenset()
        self.member = False
        self.changed_at = time.monotonic()

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._set(frozenset(), member=False)
        log.info("partitions revoked", extra={"partitions": _numbers(revoked)})

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self._set(frozenset(), member=False)
        log.warning("partitions lost", extra={"partitions": _numbers(lost)})

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._set(frozenset(assigned), member=True)
        log.info("partitions assigned", extra={"partitions": _numbers(assigned)})

    def left(self) -> None:
        """The consumer was closed (shutdown or rebuilt): nothing is owned any more."""
        self._set(frozenset(), member=False)

    def _set(self, owned: frozenset[TopicPartition], *, member: bool) -> None:
        self.owned, self.member, self.changed_at = owned, member, time.monotonic()


def _numbers(partitions: set[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


class ScorerWorker:
    """The consume → score → publish → cache → commit loop of one scorer process.

    The loop only polls, scores and commits: lag and progress are read by a separate
    monitor (``scorer.lag.LagMonitor``) so no slow broker call can stall the group
    membership. Kafka clients are made by factories so the loop can replace them when
    they are beyond repair (an idempotent producer in its fatal state after a broker
    restart, a consumer that no longer gets an assignment) instead of retrying forever.
    """

    def __init__(
        self,
        settings: Settings,
        cache: ScoreCache,
        scorer: Stage,
        *,
        new_consumer: ConsumerFactory,
        new_producer: ProducerFactory,
        name: str = "scorer",
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.scorer = scorer
        self.name = name
        self.ownership = Ownership()
        self.stop_event = threading.Event()
        self.last_loop_at = time.monotonic()
        self.rebuilds = 0
        self._new_consumer = new_consumer
        self._new_producer = new_producer
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._backoff = Backoff(cap_s=MAX_BACKOFF_S)
        self._kafka_failing_since: float | None = None
        self._scored_topic = settings.topic(SCORED_TOPIC)
        self._dlq_topic = settings.topic(DEAD_LETTER_TOPIC)
        self._settled_for: ScoringModel | None = None

    def run(self) -> None:
        log.info("scorer started", extra={"model_version": self.scorer.model.version})
        try:
            while not self.stop_event.is_set():
                self.step()
        finally:
            self._shutdown()

    def step(self) -> int:
        """One poll-and-process cycle; returns the number of messages handled."""
        self.last_loop_at = time.monotonic()
        if not self.scorer.ready():
            self.stop_event.wait(0.1)  # alive (the loop turns) but not yet in the group
            return 0
        self.scorer.maybe_reload()
        if self._settled_for is not self.scorer.model:
            settle_heap()
            self._settled_for = self.scorer.model
        try:
            consumer = self.consumer()
            polled = consumer.poll(
                timeout_ms=self.settings.scorer_poll_timeout_ms,
                max_records=self.settings.scorer_batch_max,
            )
        except (KafkaError, ServiceUnavailable) as exc:
            self._failed(exc, [])
            return 0
        records = [r for batch in polled.values() for r in batch]
        self._rejoin_if_orphaned()
        if not records:
            return 0
        try:
            self.process(records)
        except (redis.RedisError, KafkaError, ServiceUnavailable) as exc:
            self._failed(exc, records)
            return 0
        self._backoff.succeeded()
        self._kafka_failing_since = None
        return len(records)

    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self.ownership.left()  # the wait for an assignment starts now, not at start-up
            self._consumer = self._new_consumer(self.ownership)
        return self._consumer

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._new_producer()
        return self._producer

    def process(self, records: Sequence[ConsumerRecord]) -> None:
        started = time.perf_counter()
        metrics.EVENTS_CONSUMED.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        rejected: list[Rejected] = []
        source: dict[int, ConsumerRecord] = {}
        events: list[FeatureEvent] = []
        for rec in records:
            out = decode(rec)
            if isinstance(out, Rejected):
                rejected.append(out)
            else:
                events.append(out)
                source[id(out)] = rec
        done = self.cache.already_scored(
            [(e.encounter_id, e.input_key, e.input_version) for e in events]
        )
        fresh = _last_per_input([e for e, d in zip(events, done, strict=True) if not d])
        metrics.DUPLICATES_SKIPPED.inc(len(events) - len(fresh))
        assert isinstance(self.scorer, Scorer)
        scored, unscorable = self.scorer.score(fresh) if fresh else ([], [])
        rejected.extend(Rejected(source[id(e)], "unscorable", why) for e, why in unscorable)
        self._publish(scored, rejected)
        self.cache.write(scored)
        self.consumer().commit()
        now = datetime.now(UTC)
        for e in fresh:
            metrics.END_TO_END_SECONDS.observe(max(0.0, (now - e.emitted_at).total_seconds()))
        metrics.EVENTS_SCORED.inc(len(scored))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _publish(self, scored: Sequence[ScoreEvent], rejected: Sequence[Rejected]) -> None:
        """Scores and dead letters acknowledged by the broker, or raise.

        A producer that failed is dropped and the retry gets a new one: kafka-python's
        idempotent producer can reach a fatal state (InitProducerId after a broker
        restart) from which every later send fails.
        """
        try:
            producer = self.producer()
            sends = [
                producer.send(self._scored_topic, key=ev.encounter_id.encode(), value=ev.to_bytes())
                for ev in scored
            ]
            sends.extend(self._dead_letter(producer, rej) for rej in rejected)
            producer.flush(timeout=10)
            for sent in sends:  # flush() does not raise for failed records; their futures do
                sent.get(timeout=10)
        except KafkaError:
            self._drop_producer()
            raise

    def _dead_letter(self, producer: KafkaProducer, rej: Rejected) -> FutureRecordMetadata:
        letter = DeadLetter.of(rej.record, reason=rej.reason, detail=rej.detail, consumer=self.name)
        sent = producer.send(self._dlq_topic, value=letter.to_bytes())
        metrics.DEAD_LETTERS.labels(rej.reason).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "reason": rej.reason,
                "partition": rej.record.partition,
                "offset": rej.record.offset,
            },
        )
        return sent

    def _failed(self, exc: Exception, records: Sequence[ConsumerRecord]) -> None:
        """Rewind the batch, back off; after a long run of Kafka failures, new clients."""
        if records and self._consumer is not None:
            rewind(self._consumer, records)
        if isinstance(exc, redis.RedisError):
            metrics.REDIS_ERRORS.inc()
        elif self._kafka_failing_since is None:
            self._kafka_failing_since = time.monotonic()
        elif time.monotonic() - self._kafka_failing_since > KAFKA_REBUILD_AFTER_S:
            self._rebuild(f"Kafka failing for over {KAFKA_REBUILD_AFTER_S:.0f} s")
        pause = self._backoff.failed()
        log.warning(
            "batch failed; rewound and backing off",
            extra={"error": type(exc).__name__, "backoff_s": pause},
        )
        self.stop_event.wait(pause)

    def _rejoin_if_orphaned(self) -> None:
        """A consumer left without an assignment for long is rebuilt (it would sit idle
        while its former partitions go unscored); a fresh one joins the group again."""
        if self.ownership.member:
            return
        if time.monotonic() - self.ownership.changed_at > self._rejoin_after_s():
            self._rebuild("no partition assignment")

    def _rejoin_after_s(self) -> float:
        return 3 * self.settings.consumer_session_timeout_ms / 1000

    def _rebuild(self, why: str) -> None:
        self.rebuilds += 1
        metrics.CLIENT_REBUILDS.inc()
        log.warning("rebuilding Kafka clients", extra={"reason": why})
        self._drop_producer()
        if self._consumer is not None:
            consumer = self._consumer
            discard(lambda: consumer.close(autocommit=False, timeout_ms=2000), "consumer")
            self._consumer = None
        self.ownership.left()
        self._kafka_failing_since = None

    def _drop_producer(self) -> None:
        if self._producer is not None:
            discard(self._producer.close, "producer")
            self._producer = None

    def _shutdown(self) -> None:
        """Leave the group cleanly so partitions move to the other scorers at once."""
        try:
            if self._producer is not None:
                self._producer.flush(timeout=5)
        finally:
            if self._consumer is not None:
                self._consumer.close(autocommit=False)
            self.ownership.left()
            if self._producer is not None:
                self._producer.close(timeout=5)
            log.info("scorer stopped")


def settle_heap() -> None:
    """Move everything alive now (modules, the loaded and compiled model) out of the
    cyclic GC's reach, and let young collections wait for a batch's worth of garbage.

    Called when a model enters service (start, hot reload). Without it every full
    collection walked all long-lived objects (~190,000 in the benchmark's process, the
    model among them): 30-70 us of a ~150 us event in a saturated loop. ``unfreeze``
    first so a replaced model's cycles can still be collected; frozen objects are still
    freed by reference counting.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _last_per_input(events: Sequence[FeatureEvent]) -> list[FeatureEvent]:
    """A batch may hold the same input twice (redelivery), or two input versions of one
    stay; score each input once and never a version older than one beside it."""
    seen: dict[str, FeatureEvent] = {}
    newest: dict[str, int] = {}
    for e in events:
        seen[e.input_key] = e
        if e.input_version is not None:
            newest[e.encounter_id] = max(newest.get(e.encounter_id, 0), e.input_version)
    return [
        e for e in seen.values() if not older_input(e.input_version, newest.get(e.encounter_id))
    ]


def topics(settings: Settings) -> list[str]:
    return [settings.topic(FEATURES_TOPIC)]
