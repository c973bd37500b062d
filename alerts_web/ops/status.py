"""What the ops page shows: consumer lag, scorer throughput, DLQ count, model in service,
and the alerts still waiting for their factors (the explainer stage's backlog).

Each source can fail on its own (a scorer down, the broker unreachable); the page
shows what it could read and names what it could not, instead of failing whole.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from django.core.cache import cache
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from model_store.registry import ModelRegistryError, Registry
from readmit_core.errors import ServiceUnavailable
from readmit_core.events import FEATURES_TOPIC, SCORED_TOPIC
from readmit_core.kafka_clients import broker_reachable
from readmit_core.settings import Settings
from scorer import metrics as scorer_metrics
from scorer.lag import consumer_lag


# family names as the text exposition parser reports them (counters without "_total"),
# taken from the scorer's metric objects so a rename there cannot break this page
def _family(metric: Any) -> str:
    return str(next(iter(metric.describe())).name)


CONSUMED = _family(scorer_metrics.EVENTS_CONSUMED)
SCORED = _family(scorer_metrics.EVENTS_SCORED)
DEAD_LETTERS = _family(scorer_metrics.DEAD_LETTERS)
MODEL_INFO = _family(scorer_metrics.MODEL_INFO)
END_TO_END = _family(scorer_metrics.END_TO_END_SECONDS)
_RATE_KEY = "ops:last-sample"
FACTORS_LATE_S = 10.0  # the pages' "factors delayed" threshold too (dashboard.js, pending.js)


@dataclass
class ScorerSample:
    url: str
    up: bool
    consumed: float = 0.0
    scored: float = 0.0
    dead_letters: float = 0.0
    latency_sum: float = 0.0  # end-to-end seconds, histogram _sum and _count
    latency_count: float = 0.0
    model_versions: list[str] = field(default_factory=list)
    error: str | None = None


def parse_metrics(url: str, text: str) -> ScorerSample:
    sample = ScorerSample(url=url, up=True)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{CONSUMED}_total":
                sample.consumed += s.value
            elif s.name == f"{SCORED}_total":
                sample.scored += s.value
            elif s.name == f"{DEAD_LETTERS}_total":
                sample.dead_letters += s.value
            elif s.name == f"{END_TO_END}_sum":
                sample.latency_sum += s.value
            elif s.name == f"{END_TO_END}_count":
                sample.latency_count += s.value
            elif s.name == MODEL_INFO and s.value == 1 and "version" in s.labels:
                sample.model_versions.append(s.labels["version"])
    return sample


def scrape(url: str, timeout: float = 2.0) -> ScorerSample:
    try:
        response = httpx.get(url, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return ScorerSample(url=url, up=False, error=type(exc).__name__)
    return parse_metrics(url, response.text)


def lag_rows(settings: Settings) -> tuple[list[dict[str, Any]], str | None]:
    if not broker_reachable(settings):
        return [], f"lag unavailable: no broker answers at {settings.kafka_bootstrap}"

    rows: list[dict[str, Any]] = []
    wanted = (
        (settings.scorer_group, settings.topic(FEATURES_TOPIC)),
        (settings.explainer_group, settings.topic(SCORED_TOPIC)),
        (settings.alerts_group, settings.topic(SCORED_TOPIC)),
    )
    try:
        for group, topic in wanted:
            for p in consumer_lag(settings.kafka_bootstrap, group, topic):
                rows.append(
                    {
                        "group": group,
                        "topic": p.topic,
                        "partition": p.partition,
                        "end_offset": p.end_offset,
                        "committed": p.committed,
                        "lag": p.lag,
                    }
                )
    except (ServiceUnavailable, KafkaError, OSError) as exc:  # show it, do not 500 the page
        return rows, f"lag unavailable: {exc}"
    return rows, None


def events_per_second(consumed: float, now: float) -> float | None:
    """Rate from the previous sample kept in the cache (shared by all web workers)."""
    previous = cache.get(_RATE_KEY)
    cache.set(_RATE_KEY, (consumed, now), timeout=600)
    if not previous:
        return None
    prev_consumed, prev_time = previous
    elapsed = now - prev_time
    if elapsed <= 0 or consumed < prev_consumed:
        return None
    return (consumed - prev_consumed) / elapsed


def model_summary(settings: Settings) -> dict[str, Any]:
    """The champion's version and its evaluation metrics, from the registry manifest."""
    try:
        registry = Registry(settings.model_dir)
        version = registry.champion_version()
        if version is None:
            return {"error": "no champion model in the registry"}
        manifest = registry.manifest(version)
    except (ModelRegistryError, OSError) as exc:  # a broken registry must not 500 the page
        return {"error": f"registry unreadable: {type(exc).__name__}"}
    metrics = manifest.get("metrics", {})
    return {"version": version, "metrics": flatten_metrics(metrics)}


def flatten_metrics(metrics: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, Any]:
    """``{"test": {"roc_auc": .7}}`` → ``{"test.roc_auc": .7}`` (scalars, two levels deep)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 1:
            flat.update(flatten_metrics(value, f"{name}.", depth - 1))
        elif isinstance(value, bool | int | float | str):
            flat[name] = round(value, 4) if isinstance(value, float) else value
    return flat


def factors_pending(now: float | None = None) -> dict[str, Any]:
    """Active alerts shown "Explaining…" and how old the oldest one's score is.

    The factors are due within a second; an oldest age of more than ``FACTORS_LATE_S``
    means no explainer keeps up — or none runs (a scorer deployed without one): the page
    says so instead of leaving the nurses' "Explaining…" unexplained.
    """
    from django.db.models import Count, Min

    from alerts_web.alerts.models import ACTIVE_STATUSES, Alert

    found = Alert.objects.filter(factors_pending=True, status__in=ACTIVE_STATUSES).aggregate(
        n=Count("pk"), oldest=Min("computed_at")
    )
    oldest = found["oldest"]
    age = max(0.0, (now or time.time()) - oldest.timestamp()) if oldest else 0.0
    return {"alerts": found["n"], "oldest_seconds": round(age, 1), "late": age > FACTORS_LATE_S}


def ops_status(settings: Settings) -> dict[str, Any]:
    urls = settings.scorer_metrics_url_list
    scorers = [scrape(u) for u in urls]
    up = [s for s in scorers if s.up]
    consumed = sum(s.consumed for s in up)
    lags, lag_error = lag_rows(settings)
    return {
        "latency_sum": sum(s.latency_sum for s in up),
        "latency_count": sum(s.latency_count for s in up),
        "generated_at": time.time(),
        "scorers": [asdict(s) for s in scorers],
        "events_consumed_total": consumed,
        "events_scored_total": sum(s.scored for s in scorers if s.up),
        "events_per_second": events_per_second(consumed, time.time()),
        "dead_letters_total": sum(s.dead_letters for s in scorers if s.up),
        "model_versions": sorted({v for s in scorers for v in s.model_versions}),
        "lag": lags,
        "lag_error": lag_error,
        "total_lag": sum(r["lag"] or 0 for r in lags),
        "model": model_summary(settings),
        "factors_pending": factors_pending(),
    }
