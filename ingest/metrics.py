"""Prometheus metrics of the ingest API (served on its own /metrics).

Names here are the contract with ``infra/`` (alert rules, Grafana): change one and the
structural tests in tests/unit/infra fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

# prometheus_client's own variable: set, every metric below writes to files in that
# directory (one per process) and exposition() sums them.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "readmit_ingest_requests_total", "FHIR requests by route and status.", ["route", "status"]
)
REQUEST_SECONDS = Histogram(
    "readmit_ingest_request_seconds",
    "Request latency by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENTS_PUBLISHED = Counter(
    "readmit_ingest_events_published_total", "Feature events durably handed to Kafka."
)
DUPLICATES = Counter(
    "readmit_ingest_duplicates_total", "Encounter versions already accepted (not republished)."
)
PUBLISH_FAILURES = Counter(
    "readmit_ingest_publish_failures_total", "Publishes that failed (answered 503)."
)
REDIS_FAILURES = Counter(
    "readmit_ingest_redis_failures_total",
    "Requests refused because Redis (score reads, token replay guard) failed (answered 503).",
)
REPUBLISHED_LOST = Counter(
    "readmit_ingest_republished_lost_total",
    "Resent encounter versions published again because the broker no longer held the event.",
)
EHR_TOKEN_REQUESTS = Counter(
    "readmit_ingest_ehr_token_requests_total",
    "Access-token requests to an EHR's token endpoint, by HTTP status (cached tokens are reused).",
    ["status"],
)
EHR_FETCH_FAILURES = Counter(
    "readmit_ingest_ehr_fetch_failures_total",
    "EHR requests that failed after retries (timeout, unreachable, status, unauthorized); "
    "the notification was answered 503.",
    ["reason"],
)
EHR_SEARCHES_TRUNCATED = Counter(
    "readmit_ingest_ehr_searches_truncated_total",
    "EHR searches stopped at READMIT_EHR_MAX_PAGES with more pages left.",
)
NOTIFICATIONS = Counter(
    "readmit_ingest_notifications_total",
    "Subscription notifications handled, by type and payload content.",
    ["type", "payload"],
)


def exposition() -> bytes:
    """The text /metrics answers: this process's metrics, or, when the API runs as several
    worker processes (``READMIT_INGEST_WORKERS`` > 1, ``PROMETHEUS_MULTIPROC_DIR`` set),
    every worker's summed, so a scrape that lands on any worker sees the whole API."""
    if not os.environ.get(MULTIPROC_ENV):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def prepare_multiprocess_dir(path: Path) -> Path:
    """Empty ``path`` (files of an earlier run would be summed in) and return it; set it
    as ``PROMETHEUS_MULTIPROC_DIR`` of the workers before they import this module."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path
