"""Ingest readiness follows the broker at once, not the producer's cached metadata."""

from __future__ import annotations

import socket
import time

from ingest.publisher import EventPublisher
from readmit.embedded.services import free_port
from readmit_core.settings import Settings


def test_not_ready_within_a_second_when_no_broker_answers() -> None:
    publisher = EventPublisher(Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}"))
    started = time.monotonic()
    assert publisher.ready() is False
    assert time.monotonic() - started < 1.0


def test_a_listening_port_alone_is_not_ready_when_no_metadata_comes(monkeypatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        publisher = EventPublisher(Settings(kafka_bootstrap=f"127.0.0.1:{port}"))

        class NoMetadata:
            def partitions_for(self, topic: str) -> set[int]:
                return set()

            def close(self, timeout: float = 0) -> None:
                return None

        monkeypatch.setattr(publisher, "_get", lambda: NoMetadata())
        assert publisher.ready() is False
