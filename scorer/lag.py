"""Consumer lag per partition (log-end offset - committed offset), from the broker itself.

Used by ``readmit lag``, the web app's ops page and tests. It asks the broker rather
than a scorer's metrics so it is right even when every scorer is down — which is
exactly when ops needs it. A running scorer keeps the same numbers fresh with a
``LagMonitor``: its own thread and its own client, because a broker call that hangs on
the poll thread starves the group membership (a scorer once sat for minutes in
``committed()`` while its partitions went unscored and its health said green).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from readmit_core.errors import ServiceUnavailable
from readmit_core.kafka_clients import check_broker, discard, log_end_offsets, make_probe_consumer
from readmit_core.settings import Settings
from scorer import metrics

log = logging.getLogger(__name__)

LAG_REFRESH_S = 2.0
OFFSET_TIMEOUT_MS = 3000


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed: int | None
    lag: int


def read_lag(probe: KafkaConsumer, topic: str) -> list[PartitionLag]:
    """Lag of the probe's group on every partition of ``topic``; raises KafkaError."""
    partitions = probe.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    ends = log_end_offsets(probe, tps, OFFSET_TIMEOUT_MS)
    out = []
    for tp in tps:
        committed = probe.committed(tp, timeout_ms=OFFSET_TIMEOUT_MS)
        end = int(ends.get(tp, 0))
        lag = max(0, end - (committed or 0))
        out.append(PartitionLag(topic, tp.partition, end, committed, lag))
    return out


def consumer_lag(bootstrap: str, group: str, topic: str) -> list[PartitionLag]:
    """Lag of ``group`` on every partition of ``topic`` (committed None = never committed)."""
    settings = Settings(kafka_bootstrap=bootstrap)
    check_broker(settings)  # one refused connection says it at once (the client retries ~30 s)
    probe = make_probe_consumer(settings, group)
    try:
        return read_lag(probe, topic)
    except KafkaError as exc:
        raise ServiceUnavailable("Kafka", f"lag query failed: {type(exc).__name__}") from exc
    finally:
        probe.close(autocommit=False)


@dataclass(frozen=True)
class PartitionProgress:
    """A partition as last seen, and since when it has waited at this committed offset."""

    lag: PartitionLag
    waiting_since: float | None  # monotonic; None while there is no backlog


class LagMonitor:
    """Reads the group's lag every ``interval_s`` in a thread of its own.

    It feeds the lag gauge (for the partitions this process owns) and the readiness
    check: a partition with a backlog whose committed offset has not moved for a while
    is not making progress.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        owned: Callable[[], frozenset[TopicPartition]],
        interval_s: float = LAG_REFRESH_S,
        *,
        group: str | None = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.group = group or settings.scorer_group  # the explainer watches its own group
        self.owned = owned
        self.interval_s = interval_s
        self.partitions: dict[int, PartitionProgress] = {}
        self.refreshed_at: float | None = None
        self._probe: KafkaConsumer | None = None
        self._stop = threading.Event()
        self._gauged: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="lag-monitor", daemon=True)

    def start(self) -> LagMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=OFFSET_TIMEOUT_MS / 1000 + 2)

    def fresh(self) -> bool:
        """Whether the broker answered the last few offset queries."""
        return (
            self.refreshed_at is not None
            and time.monotonic() - self.refreshed_at < 3 * self.interval_s + 1
        )

    def stalled(
        self, partitions: frozenset[TopicPartition], owned_since: float, window_s: float
    ) -> list[int]:
        """Of ``partitions``, those with a backlog and no commit for ``window_s`` (owned
        since ``owned_since``: a partition just taken over gets the whole window)."""
        now = time.monotonic()
        out = []
        for tp in partitions:
            state = self.partitions.get(tp.partition)
            if state is None or state.waiting_since is None:
                continue
            if now - max(state.waiting_since, owned_since) > window_s:
                out.append(tp.partition)
        return sorted(out)

    def refresh(self) -> None:
        """One reading; on failure the client is replaced and the last reading ages."""
        try:
            if self._probe is None:
                self._probe = make_probe_consumer(self.settings, self.group)
            lags = read_lag(self._probe, self.topic)
        except (KafkaError, ServiceUnavailable, AssertionError):
            log.debug("lag refresh failed", exc_info=True)
            self._close_probe()
            return
        now = time.monotonic()
        updated: dict[int, PartitionProgress] = {}
        for lag in lags:
            before = self.partitions.get(lag.partition)
            since: float | None = None
            if lag.lag > 0:
                kept = before.waiting_since if before is not None else None
                same = before is not None and before.lag.committed == lag.committed
                since = kept if same and kept is not None else now
            updated[lag.partition] = PartitionProgress(lag, since)
        self.partitions = updated
        self.refreshed_at = now
        self._gauge()

    def _gauge(self) -> None:
        owned = {tp.partition for tp in self.owned()}
        for partition in self._gauged - owned:
            metrics.CONSUMER_LAG.remove(self.topic, str(partition))
        for partition in owned:
            state = self.partitions.get(partition)
            if state is not None:
                metrics.CONSUMER_LAG.labels(self.topic, str(partition)).set(state.lag.lag)
        self._gauged = owned & set(self.partitions)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval_s)
        self._close_probe()

    def _close_probe(self) -> None:
        if self._probe is not None:
            probe = self._probe
            discard(lambda: probe.close(autocommit=False, timeout_ms=1000), "lag probe")
            self._probe = None
