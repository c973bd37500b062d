"""The explanation stage's rules without a broker: what is pending, and that the factors
it computes are the scorer's inline ones."""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from model_store.registry import Registry
from model_store.serving import needs_explanation
from readmit_core.events import FeatureEvent, ScoreEvent
from readmit_core.features import TARGET_COLUMN, FeatureRecord
from readmit_core.settings import PROJECT_ROOT, Settings
from scorer.consumer import Scorer
from scorer.explainer import PENDING_MARK, Explainer, pending_scores

BANDS = Settings().explain_band_set


def _events(n: int) -> list[FeatureEvent]:
    out = []
    with gzip.open(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", "rt", newline="") as fh:
        rows = list(itertools.islice(csv.DictReader(fh), 7000, 7000 + n))
    for row in rows:
        record = FeatureRecord.model_validate({k: v for k, v in row.items() if k != TARGET_COLUMN})
        out.append(
            FeatureEvent(
                encounter_id=record.encounter_id,
                patient_id=record.patient_nbr,
                input_key=f"{record.encounter_id}|v1",
                record=record,
            )
        )
    return out


def _record(value: bytes, offset: int = 0) -> ConsumerRecord:
    fields = dict.fromkeys(ConsumerRecord._fields)
    fields.update(topic="t.risk.scored", partition=0, offset=offset, key=b"k", value=value)
    return ConsumerRecord(**fields)


def test_the_pending_mark_is_how_a_pending_score_serialises() -> None:
    """The explainer skips messages by a byte test: it must match the serializer."""
    score = ScoreEvent(
        encounter_id="e", patient_id="p", ward="w", input_key="e|1", probability=0.5,
        band="high", model_version="m",
    )  # fmt: skip
    assert PENDING_MARK in score.model_copy(update={"factors_pending": True}).to_bytes()
    assert PENDING_MARK not in score.to_bytes()
    pending = score.model_copy(update={"factors_pending": True})
    again = pending.model_copy(update={"probability": 0.6})
    records = [
        _record(score.to_bytes()),
        _record(pending.to_bytes(), 1),
        _record(again.to_bytes(), 2),  # the same input twice: explained once, the last
        _record(b'{"factors_pending":true, "band": 3}', 3),
    ]
    found, source, rejected = pending_scores(records)
    assert found == [again]
    assert source[again.input_key].offset == 2
    assert [(r.record.offset, r.reason) for r in rejected] == [(3, "schema_invalid")]


@pytest.fixture(scope="module")
def registry(registry_root: Path) -> Registry:
    return Registry(registry_root)


def test_the_stage_gives_exactly_the_inline_factors(registry: Registry) -> None:
    events = _events(400)
    inline, _ = Scorer(registry, BANDS).score(events)
    fast, bad = Scorer(registry, BANDS, explain_inline=False).score(events)
    assert bad == []
    wanted = [needs_explanation(s.band, s.non_readmittable, BANDS) for s in inline]
    assert [s.factors_pending for s in fast] == wanted
    assert any(wanted)
    assert all(not s.factors for s in fast if s.factors_pending)
    pending = [s for s in fast if s.factors_pending]
    done, failed = Explainer(registry, BANDS).explain(pending)
    assert failed == []
    expected = {s.input_key: s for s in inline}
    for got in done:
        want = expected[got.input_key]
        assert not got.factors_pending
        assert (got.probability, got.band, got.computed_at) == (
            pytest.approx(want.probability, abs=1e-9),
            want.band,
            pending[done.index(got)].computed_at,
        )
        assert [(f.feature, f.label) for f in got.factors] == [
            (f.feature, f.label) for f in want.factors
        ]
        for a, b in zip(got.factors, want.factors, strict=True):
            assert a.contribution == pytest.approx(b.contribution, abs=1e-9)
        assert got.interventions == want.interventions
    # scores needing no factors are final as the fast path publishes them
    for s in fast:
        if not s.factors_pending:
            want = expected[s.input_key]
            assert (s.factors, s.interventions) == (want.factors, want.interventions)


def test_a_model_version_that_cannot_load_is_a_reason_not_a_crash(registry: Registry) -> None:
    fast, _ = Scorer(registry, BANDS, explain_inline=False).score(_events(60))
    pending = [s.model_copy(update={"model_version": "no-such-model"}) for s in fast]
    done, failed = Explainer(registry, BANDS).explain(pending[:3])
    assert done == []
    assert len(failed) == 3
    assert all("no-such-model" in why for _, why in failed)
