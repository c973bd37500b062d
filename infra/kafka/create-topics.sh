#!/bin/bash
# Create readmit's topics with their documented partition counts and retention
# (infra/OPERATIONS.md, "Capacity model"). Idempotent: existing topics are left alone
# (raising partitions later is a deliberate `kafka-topics.sh --alter`, see RUNBOOK.md).
# Runs in the apache/kafka image: docker compose `topic-init`, Kubernetes Job `readmit-topics`.
#
# Topic names are READMIT_TOPIC_PREFIX + the logical names in readmit_core/events.py.
set -euo pipefail

BOOTSTRAP="${READMIT_KAFKA_BOOTSTRAP:-kafka:9092}"
PREFIX="${READMIT_TOPIC_PREFIX:-readmit.}"
REPLICATION="${TOPIC_REPLICATION_FACTOR:-1}"
MIN_ISR="${TOPIC_MIN_INSYNC_REPLICAS:-1}"
KAFKA_TOPICS=/opt/kafka/bin/kafka-topics.sh

DAY_MS=86400000

# create LOGICAL_NAME PARTITIONS RETENTION_MS
create() {
  local topic="${PREFIX}$1"
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$2" --replication-factor "$REPLICATION" \
    --config "retention.ms=$3" --config "min.insync.replicas=$MIN_ISR"
  echo "topic $topic: $2 partitions requested, retention $(($3 / DAY_MS)) days"
}

# features: the scorers' input. Partitions cap scorer parallelism (one partition is read
# by at most one scorer of the group); 7 days of retention is the replay window.
create features "${FEATURES_PARTITIONS:-6}" "$((7 * DAY_MS))"
# risk.scored: the web alert feed's input; same retention, so alerts can be rebuilt.
create risk.scored "${SCORED_PARTITIONS:-6}" "$((7 * DAY_MS))"
# dlq: messages nobody could process, kept 30 days for a human; 1 partition keeps order.
create dlq "${DLQ_PARTITIONS:-1}" "$((30 * DAY_MS))"

"$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --describe --topic "${PREFIX}features"
