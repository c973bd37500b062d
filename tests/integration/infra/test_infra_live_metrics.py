"""Every metric and label the alert rules, the Grafana dashboard and KEDA rely on, against
live /metrics of a real scorer process and of the ingest app (real broker and Redis).

The unit tests compare the same references with the metric objects in the code; this
test proves the processes really export them under those names once traffic flows,
and that the consumer group KEDA watches is the one the scorer commits offsets to.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ingest.app import create_app
from readmit.embedded.services import ManagedProcess, free_port
from readmit.embedded.stack import settings_env
from readmit_core.events import FEATURES_TOPIC
from readmit_core.kafka_clients import ensure_topics
from readmit_core.settings import PROJECT_ROOT, Settings
from scorer.lag import consumer_lag

pytestmark = pytest.mark.integration

EVENTS = 5


def _load(name: str, relative: str) -> ModuleType:
    """Test helpers that live next to other tests (test folders are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


refs = _load("infra_references", "tests/unit/infra/infra_references.py")
stream = _load("stream_support", "tests/integration/streaming/stream_support.py")


def scrape(text: str) -> dict[str, set[str]]:
    """Sample name -> label names seen on it, from a Prometheus text exposition."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


@pytest.fixture
def scorer_metrics(service_settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """A real scorer (`python -m readmit scorer`) on fresh topics, with a metrics port.

    Started directly rather than with stream_support.ScorerProcesses, which always
    passes ``--metrics-port 0`` (metrics off) — the thing under test here.
    """
    port = free_port()
    settings = service_settings.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "scorer_group": f"g{uuid.uuid4().hex[:10]}",
            "scorer_metrics_port": port,
        }
    )
    ensure_topics(settings)
    proc = ManagedProcess(
        "scorer-metrics",
        [sys.executable, "-m", "readmit", "scorer", "--metrics-port", str(port)],
        env=settings_env(settings),
        log_path=tmp_path / "scorer.log",
        cwd=PROJECT_ROOT,
    ).start()
    try:
        yield settings, f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.stop()


def _scorer_samples(url: str) -> dict[str, set[str]]:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return {}
    return scrape(response.text) if response.status_code == 200 else {}


def _ingest_samples(settings: Settings) -> dict[str, set[str]]:
    settings = settings.model_copy(update={"metrics_token": SecretStr("scrape-" + "x" * 24)})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/fhir/metadata").status_code == 200
        response = client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "x" * 24})
    assert response.status_code == 200
    return scrape(response.text)


def test_dashboards_rules_and_keda_match_live_metrics(
    scorer_metrics: tuple[Settings, str],
) -> None:
    settings, url = scorer_metrics
    events = stream.feature_events(EVENTS, tag=f"live{uuid.uuid4().hex[:6]}-")
    payloads = [(e.patient_id.encode(), e.to_bytes()) for e in events]
    payloads.append((None, b"not json: must be dead-lettered"))
    stream.produce(settings, payloads, FEATURES_TOPIC)

    needed = {m for expr in refs.all_expressions() for m in expr.metrics()}
    scorer_side = {m for m in needed if not m.startswith("readmit_ingest_")}
    seen: dict[str, set[str]] = {}

    def scorer_exports_everything() -> bool:
        seen.clear()
        seen.update(_scorer_samples(url))
        scored = "readmit_scorer_events_scored_total" in seen
        return scored and scorer_side <= set(seen) and bool(seen.get("readmit_scorer_consumer_lag"))

    stream.wait_for(scorer_exports_everything, 120, "scorer /metrics with every metric in use")
    samples = {**_ingest_samples(settings), **seen}

    for expr in refs.all_expressions():
        missing = expr.metrics() - set(samples)
        assert not missing, f"{expr.where}: not in any live /metrics: {missing}"
        labels = set(refs.BUILTIN_LABELS)
        for metric in expr.metrics():
            labels |= samples[metric]
        assert expr.grouping_labels() <= labels, f"{expr.where}: {expr.grouping_labels() - labels}"

    assert {"reason"} <= samples["readmit_scorer_dead_letters_total"]
    assert {"topic", "partition"} <= samples["readmit_scorer_consumer_lag"]
    assert {"version"} <= samples["readmit_model_info"]

    # KEDA reads the lag of READMIT_SCORER_GROUP on prefix+features from the broker: the
    # scorer must commit under exactly that group, past every message produced. (Committed
    # offsets are compared with what was produced, not with the broker's end offsets: the
    # embedded Tansu broker under-reports end offsets of multi-record batches.)
    last: list[object] = []

    def group_caught_up() -> bool:
        rows = consumer_lag(
            settings.kafka_bootstrap, settings.scorer_group, settings.topic(FEATURES_TOPIC)
        )
        last[:] = rows
        return sum(r.committed or 0 for r in rows) == len(payloads)

    try:
        stream.wait_for(group_caught_up, 60, "the scorer group's committed offsets")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last lag rows: {last}") from None
