"""Fixtures of the browser tests: a throwaway web database and the running stack."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from readmit.embedded.services import free_port
from readmit.embedded.stack import Stack
from readmit_core.settings import Settings


@pytest.fixture
def web_database(postgres_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the web app of this run, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    base = postgres_dsn.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def stack_with(
    non_demo_secrets: dict[str, Any],
    kafka_bootstrap: str,
    redis_url: str,
    registry_root: Path,
    web_database: str,
    tmp_path: Path,
) -> Iterator[Callable[[int], Stack]]:
    """Start the stack with N scorers (0: web, alert feed and ingest only)."""
    started: list[Stack] = []

    def start(scorers: int) -> Stack:
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            database_url=web_database,
            model_dir=registry_root,
            state_dir=tmp_path / "state",
            topic_prefix=f"e2e{uuid.uuid4().hex[:8]}.",
            scorer_group=f"e2e-scorer-{uuid.uuid4().hex[:8]}",
            explainer_group=f"e2e-explainer-{uuid.uuid4().hex[:8]}",
            explainer_metrics_port=free_port(),
            ingest_port=free_port(),
            web_port=free_port(),
            scorer_metrics_port=free_port(),
            feed_metrics_port=free_port(),
            embedded=False,
            replay_rate=0,
            **non_demo_secrets,
        )
        settings.scorer_metrics_urls = f"http://127.0.0.1:{settings.scorer_metrics_port}/metrics"
        stack = Stack(settings, scorers=scorers, start_broker=False).start()
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()
