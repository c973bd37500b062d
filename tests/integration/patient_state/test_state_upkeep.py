"""The scorers' upkeep prunes state past the history horizon once per interval across
processes, and marks a whole cache on its first tick."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from patient_state.store import VisitRow, open_store
from readmit_core.kafka_clients import ensure_topics
from readmit_core.settings import Settings
from scorer.state_upkeep import StateUpkeep

pytestmark = pytest.mark.integration

OLD = VisitRow("p1", "e-old", "IMP", "2001-01-01T00:00:00+00:00", None, True)
NEW = VisitRow("p1", "e-new", "IMP", "2099-01-01T00:00:00+00:00", None, True)


def test_prunes_once_per_interval_whichever_scorer_comes_first(
    service_settings: Settings, tmp_path: Path
) -> None:
    prefix = f"up{uuid.uuid4().hex[:8]}."
    s = service_settings.model_copy(
        update={
            "topic_prefix": prefix,
            "state_dir": tmp_path,
            "database_url": "",
            "state_prune_interval_s": 600.0,
        }
    )
    ensure_topics(s)
    store = open_store("", tmp_path, prefix)
    store.remember([OLD, NEW], [], [])
    first, second = StateUpkeep(s), StateUpkeep(s)  # two scorers
    client = redis.Redis.from_url(s.redis_url)
    try:
        first.tick()
        assert [v.encounter_id for v in store.visits("p1")] == ["e-new"]
        assert client.exists(f"{prefix}cache:generation")
        store.remember([OLD], [], [])
        second.tick()  # within the interval: nobody prunes again
        first.tick()
        assert {v.encounter_id for v in store.visits("p1")} == {"e-old", "e-new"}
        client.delete(first.prune_key)  # the interval passed
        second.tick()
        assert [v.encounter_id for v in store.visits("p1")] == ["e-new"]
    finally:
        first.stop()
        second.stop()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
