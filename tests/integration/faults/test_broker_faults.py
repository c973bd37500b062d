"""The broker stops and comes back (empty: the embedded broker keeps memory only) while
the scorer runs: the same scorer process must score everything sent after the restart,
its readiness must say "not ready" while the broker is gone, and nothing is scored twice.
"""

from __future__ import annotations

import time

import pytest
from stream_support import feature_events, lost_and_repeated, produce, wait_for
from test_scorer_faults import ProbeLog, Scorer, _cache, _scored

from readmit.embedded.services import free_port, port_open, start_broker
from readmit_core.events import FEATURES_TOPIC
from readmit_core.kafka_clients import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_broker_restart_under_load(stream_settings, tmp_path):
    port = free_port()
    broker = start_broker(port, tmp_path / "broker.log")
    settings = stream_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    ensure_topics(settings)
    scorer = Scorer(settings, tmp_path, "scorer-r")
    cache = _cache(settings)
    before = feature_events(500, skip=30000, tag="br-a-")
    after = feature_events(500, skip=30500, tag="br-b-")
    try:
        wait_for(lambda: scorer.probe("/readyz")[0] == 200, 60, "scorer ready")
        produce(settings, [(e.patient_id.encode(), e.to_bytes()) for e in before], FEATURES_TOPIC)
        wait_for(lambda: _scored(cache, before) == len(before), 60, "first 500 scored")
        with ProbeLog(scorer) as probes:
            broker.stop()
            stopped = time.monotonic()
            wait_for(lambda: scorer.probe("/readyz")[0] == 503, 15, "scorer not ready")
            not_ready_after = time.monotonic() - stopped
            broker = start_broker(port, tmp_path / "broker2.log")
            assert port_open("127.0.0.1", port)
            ensure_topics(settings)  # what the deployment's topic job does for a new cluster
            produce(
                settings, [(e.patient_id.encode(), e.to_bytes()) for e in after], FEATURES_TOPIC
            )
            wait_for(lambda: _scored(cache, after) == len(after), 90, "all sent after restart")
            recovered = time.monotonic() - stopped
            wait_for(lambda: scorer.probe("/readyz")[0] == 200, 30, "scorer ready again")
        wanted = {e.input_key for e in after}
        lost, repeats, _ = lost_and_repeated(settings, wanted)
        print(
            f"\nbroker restart: inputs {len(before)} before + {len(after)} after, lost {lost}, "
            f"risk.scored repeats {repeats}, not ready {not_ready_after:.1f} s after the stop, "
            f"all scored {recovered:.1f} s after the stop; scorer {probes.summary()}"
        )
        assert lost == 0
        assert repeats == 0
        assert scorer.proc.alive, "recovered without a process restart"
    finally:
        scorer.proc.stop()
        broker.stop()


def test_lag_counts_every_record_of_the_last_batch(stream_settings):
    """Tansu reports the last batch's base offset + 1 as the log end: lag read low."""
    from kafka import KafkaProducer, TopicPartition

    from readmit_core.kafka_clients import log_end_offsets, make_probe_consumer
    from scorer.lag import consumer_lag

    topic = stream_settings.topic(FEATURES_TOPIC)
    producer = KafkaProducer(bootstrap_servers=stream_settings.kafka_bootstrap, linger_ms=100)
    for i in range(25):  # one batch
        producer.send(topic, value=b"%d" % i, partition=0)
    producer.flush()
    producer.close()
    probe = make_probe_consumer(stream_settings, None)
    try:
        ends = log_end_offsets(probe, [TopicPartition(topic, 0)])
    finally:
        probe.close()
    lag = consumer_lag(stream_settings.kafka_bootstrap, stream_settings.scorer_group, topic)
    assert ends[TopicPartition(topic, 0)] == 25
    assert [row.lag for row in lag if row.partition == 0] == [25]
