"""Prometheus metrics of a scorer process (served on READMIT_SCORER_METRICS_PORT /metrics).

Names here are the contract with ``infra/`` (alert rules, Grafana, KEDA): change one
and the structural tests in tests/unit/infra fail.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("readmit_scorer_events_consumed_total", "Feature events read from Kafka.")
EVENTS_SCORED = Counter("readmit_scorer_events_scored_total", "Encounters scored and cached.")
DUPLICATES_SKIPPED = Counter(
    "readmit_scorer_duplicates_total", "Events skipped because this exact input was scored."
)
DEAD_LETTERS = Counter(
    "readmit_scorer_dead_letters_total", "Messages sent to the dead-letter topic.", ["reason"]
)
BATCH_SIZE = Histogram(
    "readmit_scorer_batch_size",
    "Events per scoring batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
BATCH_SECONDS = Histogram(
    "readmit_scorer_batch_seconds",
    "Wall time to score, cache and publish one batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
END_TO_END_SECONDS = Histogram(
    "readmit_end_to_end_seconds",
    "From the ingest API accepting an encounter to its score being in Redis.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "readmit_scorer_consumer_lag",
    "Log-end offset minus committed offset, per partition assigned to this scorer.",
    ["topic", "partition"],
)
REDIS_ERRORS = Counter(
    "readmit_scorer_redis_errors_total", "Failed cache writes (the batch is retried)."
)
MODEL_INFO = Gauge(
    "readmit_model_info", "The model version this scorer serves (value 1).", ["version"]
)
CLIENT_REBUILDS = Counter(
    "readmit_scorer_client_rebuilds_total",
    "Times the scorer replaced its Kafka clients after they stopped working.",
)

# the explainer stage (scorer.explainer)
EXPLAINED = Counter("readmit_explainer_explained_total", "Pending scores explained and published.")
EXPLAIN_SKIPPED = Counter(
    "readmit_explainer_skipped_total",
    "Pending scores not explained: superseded by a newer score, or explained already (replay).",
)
EXPLAIN_NOT_CACHED = Counter(
    "readmit_explainer_not_cached_total",
    "Explained scores whose cached score had changed or gone: published, cache left alone.",
)
EXPLAIN_DELAY_SECONDS = Histogram(
    "readmit_explainer_delay_seconds",
    "Score computed -> its factors published.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EXPLAIN_BATCH_SECONDS = Histogram(
    "readmit_explainer_batch_seconds", "Wall time of one explainer batch."
)
