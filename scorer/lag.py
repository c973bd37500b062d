"""Consumer lag per partition (log-end offset - committed offset), from the broker itself.

Used by ``readmit lag``, the web app's ops page and tests. It asks the broker rather
than a scorer's metrics so it is right even when every scorer is down — which is
exactly when ops needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from readmit.errors import ServiceUnavailable


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed: int | None
    lag: int


def consumer_lag(bootstrap: str, group: str, topic: str) -> list[PartitionLag]:
    """Lag of ``group`` on every partition of ``topic`` (committed None = never committed)."""
    try:
        probe = KafkaConsumer(
            bootstrap_servers=[s.strip() for s in bootstrap.split(",") if s.strip()],
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=5000,
        )
    except KafkaError as exc:
        raise ServiceUnavailable("Kafka", f"no broker answers at {bootstrap}") from exc
    try:
        partitions = probe.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = probe.end_offsets(tps) if tps else {}
        out = []
        for tp in tps:
            committed = probe.committed(tp)
            end = int(ends.get(tp, 0))
            # clamped: a broker may report the last batch's base offset as the end (Tansu
            # does), which would make a fully caught-up group look "negatively" lagged
            lag = max(0, end - (committed or 0))
            out.append(PartitionLag(topic, tp.partition, end, committed, lag))
        return out
    except KafkaError as exc:
        raise ServiceUnavailable("Kafka", f"lag query failed: {type(exc).__name__}") from exc
    finally:
        probe.close(autocommit=False)
