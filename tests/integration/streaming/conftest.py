"""Fixtures for the streaming path: per-test topics, a score cache, scorer processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from stream_support import ScorerProcesses

from readmit_core.kafka_clients import ensure_topics
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings


@pytest.fixture
def stream_settings(service_settings: Settings) -> Settings:
    """Fresh topics, keys and consumer groups for one test, so offsets, DLQ counts and
    group membership (no rebalance waiting on another test's departed scorers or
    explainers) are its own."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    s = service_settings.model_copy(
        update={
            "topic_prefix": prefix,
            "scorer_group": f"{prefix}scorer",
            "explainer_group": f"{prefix}explainer",
        }
    )
    ensure_topics(s)
    return s


@pytest.fixture
def cache(stream_settings: Settings) -> ScoreCache:
    client = redis.Redis.from_url(stream_settings.redis_url)
    return ScoreCache(client, stream_settings.topic_prefix, stream_settings.score_ttl_seconds)


@pytest.fixture
def scorer_processes(
    stream_settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., ScorerProcesses]]:
    made: list[ScorerProcesses] = []

    def make(settings: Settings | None = None) -> ScorerProcesses:
        sp = ScorerProcesses(settings or stream_settings, tmp_path)
        made.append(sp)
        return sp

    yield make
    for sp in made:
        sp.stop_all()
