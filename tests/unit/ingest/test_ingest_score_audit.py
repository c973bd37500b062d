"""Every ``GET /scores/{encounter}`` leaves an audit row in the state database: who, which
encounter, when, from where (behind the proxy: the address it appended), the answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from fastapi.testclient import TestClient

from ingest.app import create_app
from ingest.publisher import EventPublisher
from ingest.routers.ops import READ_TOKEN_ACTOR
from readmit_core.events import ScoreEvent
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import Settings

READ = "r" * 30


class IdlePublisher:
    def publish(self, events: object) -> None:
        raise AssertionError("nothing is published here")

    def ready(self) -> bool:
        return False

    def close(self) -> None:
        pass


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        embedded=False,
        access_token_secret="a" * 40,
        django_secret_key="k" * 60,
        api_token=READ,
        ingest_tokens="i" * 30,
        web_allowed_hosts="readmit.example.org",
        model_verify_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        redis_url=redis_url,
        state_dir=tmp_path,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        login_proxy_hops=1,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, publisher=cast(EventPublisher, IdlePublisher()))) as c:
        yield c


def test_score_reads_are_audited_with_the_proxied_address(
    settings: Settings, client: TestClient
) -> None:
    event = ScoreEvent.model_validate(
        {
            "encounter_id": "enc-audit-1",
            "patient_id": "pat-audit-1",
            "ward": "ward-a",
            "input_key": "in-audit-1",
            "probability": 0.7,
            "band": "high",
            "model_version": "lr-test-1",
        }
    )
    ScoreCache(redis.Redis.from_url(settings.redis_url), settings.topic_prefix, 60).write([event])
    proxied = {"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}
    read = {"Authorization": f"Bearer {READ}", **proxied}
    assert client.get("/scores/enc-audit-1", headers=read).status_code == 200
    assert client.get("/scores/enc-audit-1", headers=proxied).status_code == 401
    assert client.get("/scores/enc-none", headers=read).status_code == 404
    state = client.app.state.ingest.state  # type: ignore[attr-defined]
    rows = state.score_reads("enc-audit-1")
    assert [(actor, addr, status) for _, actor, _, addr, status in rows] == [
        (READ_TOKEN_ACTOR, "198.51.100.7", 200),
        ("anonymous", "198.51.100.7", 401),
    ]
    assert [r[4] for r in state.score_reads("enc-none")] == [404]
