"""Helpers of `readmit bench redis-memory` (the measurement itself needs Redis)."""

from __future__ import annotations

from collections import Counter

from readmit.benchmarks.redis_memory import (
    FALLBACK_BANDS,
    _band_for,
    _kind,
    fhir_id,
    with_updates,
)
from readmit_core.events import ScoreEvent


def _score(encounter: str) -> ScoreEvent:
    return ScoreEvent(
        encounter_id=encounter,
        patient_id="p",
        ward="w",
        input_key=f"{encounter}/_history/1",
        probability=0.3,
        band="medium",
        model_version="m",
    )


def test_fhir_ids_are_stable_uuid_length_and_distinct_per_kind() -> None:
    assert fhir_id("Encounter", "42") == fhir_id("Encounter", "42")
    assert fhir_id("Encounter", "42") != fhir_id("Patient", "42")
    assert len(fhir_id("Patient", "42")) == 36


def test_updates_add_new_versions_of_the_same_encounters() -> None:
    scores = [_score("a"), _score("b")]
    out = with_updates(scores, 3)
    assert len(out) == 6
    assert {s.encounter_id for s in out} == {"a", "b"}
    assert len({s.input_key for s in out}) == 6
    assert with_updates(scores, 1) == scores


def test_fallback_bands_follow_the_declared_shares() -> None:
    counts = Counter(_band_for(i) for i in range(1000))
    for band, share in FALLBACK_BANDS:
        assert abs(counts[band] / 1000 - share) < 0.02, band


def test_key_kind_is_the_segment_after_the_prefix() -> None:
    assert _kind(b"benchmemab.score:enc-1", "benchmemab.") == "score"
    assert _kind(b"benchmemab.patient:p:scores", "benchmemab.") == "patient"
    assert _kind(b"benchmemab.done:enc/_history/2", "benchmemab.") == "done"
