"""Helpers for the streaming tests: events from dataset rows, scorer processes, waiting."""

from __future__ import annotations

import csv
import gzip
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from readmit.embedded.services import ManagedProcess
from readmit.embedded.stack import settings_env
from readmit_core.events import SCORED_TOPIC, FeatureEvent
from readmit_core.features import TARGET_COLUMN, FeatureRecord
from readmit_core.settings import PROJECT_ROOT, Settings

DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def dataset_rows(n: int, skip: int = 0) -> list[dict[str, str]]:
    with gzip.open(DATA, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        out = []
        for i, row in enumerate(reader):
            if i < skip:
                continue
            if len(out) == n:
                break
            out.append(row)
    return out


def feature_events(n: int, skip: int = 0, tag: str = "") -> list[FeatureEvent]:
    events = []
    for row in dataset_rows(n, skip):
        values = {k: v for k, v in row.items() if k != TARGET_COLUMN}
        values["encounter_id"] = f"{tag}{values['encounter_id']}"
        record = FeatureRecord.model_validate(values)
        events.append(
            FeatureEvent(
                encounter_id=record.encounter_id,
                patient_id=record.patient_nbr,
                ward="ward-test",
                input_key=f"{record.encounter_id}|v1",
                record=record,
            )
        )
    return events


class ScorerProcesses:
    """Real scorer processes (``python -m readmit scorer``) the test can kill and restart."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: list[ManagedProcess] = []

    def start(self, name: str = "scorer") -> ManagedProcess:
        return self._start(name, ["scorer", "--metrics-port", "0"])

    def start_explainer(self, name: str = "explainer") -> ManagedProcess:
        """An explainer process (``python -m readmit explainer``) beside the scorers."""
        return self._start(name, ["explainer", "--metrics-port", "0"])

    def _start(self, name: str, command: list[str]) -> ManagedProcess:
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", "readmit", *command],
            env=settings_env(self.settings),
            log_path=self.log_dir / f"{name}-{len(self.procs)}.log",
            cwd=PROJECT_ROOT,
        ).start()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.procs:
            p.stop()


def read_topic(
    settings: Settings,
    topic: str,
    expect: int,
    timeout: float = 30.0,
    *,
    until: Callable[[list[bytes]], bool] | None = None,
) -> list[bytes]:
    """Read from the start of a topic until ``expect`` messages — or, with ``until``, until
    the messages read satisfy it (when repeats make the count meaningless) — or ``timeout``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout * 1000),
    )
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        done = until or (lambda read: len(read) >= expect)
        while not done(out) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend(m.value for m in batch)
    finally:
        consumer.close()
    return out


def produce(settings: Settings, payloads: list[tuple[bytes | None, bytes]], topic: str) -> None:
    from readmit_core.kafka_clients import make_producer

    producer = make_producer(settings)
    for key, value in payloads:
        producer.send(settings.topic(topic), key=key, value=value)
    producer.flush()
    producer.close()


def _score_identity(message: dict[str, Any]) -> tuple[str, str, str]:
    return (message["input_key"], message["model_version"], message["computed_at"])


def score_publications(messages: Sequence[bytes]) -> list[dict[str, Any]]:
    """The ``risk.scored`` messages the scorers published, decoded: an explainer's
    completion of a pending score (same input, model version and ``computed_at``, now
    with its factors) is the second half of that score, not another score."""
    decoded = [orjson.loads(m) for m in messages]
    pending = {_score_identity(d) for d in decoded if d.get("factors_pending")}
    return [d for d in decoded if d.get("factors_pending") or _score_identity(d) not in pending]


def unexplained(messages: Sequence[bytes]) -> set[str]:
    """Input keys of the pending scores on ``risk.scored`` that no completion followed."""
    decoded = [orjson.loads(m) for m in messages]
    done = {_score_identity(d) for d in decoded if not d.get("factors_pending")}
    return {
        d["input_key"]
        for d in decoded
        if d.get("factors_pending") and _score_identity(d) not in done
    }


def lost_and_repeated(
    settings: Settings, wanted: set[str], *, explained: bool = False
) -> tuple[int, int, int]:
    """Read ``risk.scored`` until every wanted input key is on it — and, with
    ``explained``, every pending score of them completed by an explainer — (or 30 s):
    how many of them never arrived, how many scorer publications repeat an input
    already there, and how many wanted pending scores were never completed."""

    def complete(read: list[bytes]) -> bool:
        keys = {d["input_key"] for d in score_publications(read)}
        return keys >= wanted and not (explained and unexplained(read) & wanted)

    read = read_topic(settings, SCORED_TOPIC, 0, timeout=30, until=complete)
    keys = [d["input_key"] for d in score_publications(read)]
    return len(wanted - set(keys)), len(keys) - len(set(keys)), len(unexplained(read) & wanted)
