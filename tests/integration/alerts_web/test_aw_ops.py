"""The ops page's data from a real broker and a real Prometheus endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from alerts_web.ops import views as ops_views
from readmit.embedded.services import free_port
from readmit_core.events import FEATURES_TOPIC, SCORED_TOPIC
from readmit_core.kafka_clients import ensure_topics
from readmit_core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def scorer_metrics_url() -> str:
    """A scorer-like /metrics endpoint with the scorer's metric names."""
    registry = CollectorRegistry()
    Counter("readmit_scorer_events_consumed", "c", registry=registry).inc(40)
    Counter("readmit_scorer_events_scored", "s", registry=registry).inc(39)
    dlq = Counter("readmit_scorer_dead_letters", "d", ["reason"], registry=registry)
    dlq.labels(reason="undecodable").inc(2)
    Gauge("readmit_model_info", "m", ["version"], registry=registry).labels(version="lr-9").set(1)
    latency = Histogram("readmit_end_to_end_seconds", "e", registry=registry)
    latency.observe(0.2)
    latency.observe(0.4)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join()


def test_ops_status_reads_lag_and_scorer_metrics(
    staff: User,
    service_settings: Settings,
    scorer_metrics_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = service_settings.model_copy(
        update={"scorer_metrics_urls": f"{scorer_metrics_url},http://127.0.0.1:9/metrics"}
    )
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for i in range(3):
        producer.send(settings.topic(FEATURES_TOPIC), key=str(i).encode(), value=b"{}")
    producer.flush()
    producer.close()
    monkeypatch.setattr(ops_views, "get_settings", lambda: settings)
    client = Client()
    client.force_login(staff)
    status: dict[str, Any] = client.get(reverse("ops:status")).json()
    assert status["lag_error"] is None, status["lag_error"]
    features = [r for r in status["lag"] if r["topic"] == settings.topic(FEATURES_TOPIC)]
    assert len(features) == settings.topic_partitions
    assert {r["group"] for r in features} == {settings.scorer_group}
    scored = {r["group"] for r in status["lag"] if r["topic"] == settings.topic(SCORED_TOPIC)}
    assert scored == {settings.explainer_group, settings.alerts_group}
    assert sum(r["end_offset"] for r in features) >= 1  # nobody consumed: all of it is lag
    assert all(r["lag"] == r["end_offset"] - (r["committed"] or 0) for r in status["lag"])
    assert status["total_lag"] == sum(r["lag"] for r in status["lag"]) > 0
    assert status["events_consumed_total"] == 40
    assert status["dead_letters_total"] == 2
    assert status["model_versions"] == ["lr-9"]
    assert [s["up"] for s in status["scorers"]] == [True, False]
    page = client.get(reverse("ops:page")).content.decode()
    assert "lr-9" in page


def test_unreachable_broker_is_reported_not_a_500(
    staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", scorer_metrics_urls="")
    monkeypatch.setattr(ops_views, "get_settings", lambda: settings)
    client = Client()
    client.force_login(staff)
    status = client.get(reverse("ops:status")).json()
    assert "no broker answers" in status["lag_error"]
    assert status["lag"] == []


def test_ops_page_plots_the_sampled_hour(
    staff: User,
    service_settings: Settings,
    scorer_metrics_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.cache import cache

    from alerts_web.ops import history
    from alerts_web.ops.status import ops_status

    settings = service_settings.model_copy(update={"scorer_metrics_urls": scorer_metrics_url})
    monkeypatch.setattr(ops_views, "get_settings", lambda: settings)
    monkeypatch.setattr(history, "HISTORY_KEY", f"ops:history:test:{free_port()}")
    status = ops_status(settings)
    assert status["latency_count"] == 2
    history.record({**status, "latency_count": 0, "latency_sum": 0}, now=1000.0)
    history.record(status, now=1015.0)
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("ops:page")).content.decode()
    for key, _ in ops_views.PLOTS:
        assert f'id="plot-{key}"' in page
    assert "vendor/chart.js/chart.umd.min.js" in page
    series = client.get(reverse("ops:status")).json()["history"]
    assert series["latency_ms"] == [300.0]  # (0.2 s + 0.4 s) / 2
    cache.delete(history.HISTORY_KEY)


def test_alerts_waiting_for_factors_are_counted_and_a_stale_one_is_called_out(
    staff: User, wards: Any, event_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scorer deployed without any explainer: its high-risk alerts stay "Explaining…";
    the ops page counts them, names the oldest one's age and asks whether one runs."""
    from datetime import timedelta

    from alerts_web.alerts.feed import store_event
    from alerts_web.ops.status import FACTORS_LATE_S

    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", scorer_metrics_urls="")
    monkeypatch.setattr(ops_views, "get_settings", lambda: settings)
    client = Client()
    client.force_login(staff)
    fresh = event_factory("ward-a", factors=(), factors_pending=True)
    store_event(fresh)
    store_event(event_factory("ward-a"))  # explained: not counted
    status = client.get(reverse("ops:status")).json()["factors_pending"]
    assert (status["alerts"], status["late"]) == (1, False)
    old = fresh.computed_at - timedelta(seconds=FACTORS_LATE_S + 50)
    store_event(event_factory("ward-b", factors=(), factors_pending=True, computed_at=old))
    status = client.get(reverse("ops:status")).json()["factors_pending"]
    assert (status["alerts"], status["late"]) == (2, True)
    assert status["oldest_seconds"] >= FACTORS_LATE_S + 50
    assert "is an explainer running?" in client.get(reverse("ops:page")).content.decode()
