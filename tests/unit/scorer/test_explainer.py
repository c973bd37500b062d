"""The explanation stage's rules without a broker: what is pending, and that the factors
it computes are the scorer's inline ones."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from kafka.consumer.fetcher import ConsumerRecord

from model_store import dataset
from model_store.encounter_clock import fit_encounter_clock
from model_store.models import fit_model
from model_store.registry import Registry
from model_store.serving import ScoringModel, needs_explanation
from readmit_core.events import FeatureEvent, ScoreEvent
from readmit_core.features import TARGET_COLUMN, FeatureRecord
from readmit_core.settings import PROJECT_ROOT, Settings
from scorer.consumer import Scorer
from scorer.explainer import (
    NOT_CACHED_WAIT_S,
    PENDING_MARK,
    Explainer,
    _not_cached_wait_s,
    pending_scores,
)

BANDS = Settings().explain_band_set
DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


def _events(n: int) -> list[FeatureEvent]:
    out = []
    with gzip.open(DATA, "rt", newline="") as fh:
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


def test_a_pending_score_written_with_spaces_is_not_skipped_unread() -> None:
    """Another producer's JSON (``json.dumps`` puts a space after each colon) must not
    leave an alert "Explaining…" for ever; explained ones and flagless ones are skipped."""
    score = ScoreEvent(
        encounter_id="e", patient_id="p", ward="w", input_key="e|1", probability=0.5,
        band="high", model_version="m", factors_pending=True,
    )  # fmt: skip
    spaced = json.dumps(json.loads(score.to_bytes())).encode()
    assert PENDING_MARK not in spaced
    done = json.dumps(
        json.loads(
            score.model_copy(update={"factors_pending": False, "input_key": "e|2"}).to_bytes()
        )
    ).encode()
    flagless = json.loads(score.to_bytes())
    del flagless["factors_pending"]
    records = [_record(spaced), _record(done, 1), _record(json.dumps(flagless).encode(), 2)]
    found, _, rejected = pending_scores(records)
    assert [ev.input_key for ev in found] == ["e|1"]
    assert rejected == []


def test_a_backlog_of_uncached_scores_is_not_waited_for() -> None:
    """Scores computed longer ago than the scorer takes to cache one: no wait (a Redis
    flush must not cost every later batch two seconds); a fresh one: the full wait."""
    score = ScoreEvent(
        encounter_id="e", patient_id="p", ward="w", input_key="e|1", probability=0.5,
        band="high", model_version="m", factors_pending=True,
    )  # fmt: skip
    old = score.model_copy(update={"computed_at": datetime.now(UTC) - timedelta(seconds=30)})
    assert _not_cached_wait_s([old]) == 0.0
    assert _not_cached_wait_s([old, score]) == pytest.approx(NOT_CACHED_WAIT_S, abs=0.2)
    assert _not_cached_wait_s([]) == 0.0


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
    # no band-only advice while pending: it would be withdrawn when the factors arrive
    assert all(not s.interventions for s in fast if s.factors_pending)
    pending = [s for s in fast if s.factors_pending]
    done, failed = Explainer(registry, BANDS).explain(pending)
    assert failed == []
    assert any(s.interventions for s in done)
    assert [s.input_key for s in done] == [s.input_key for s in pending]
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


@dataclass
class Versions:
    """Loaded models by version and a champion pointer that can move (a hot reload):
    what the scorer and the explainer ask of a registry."""

    models: dict[str, ScoringModel]
    champion: str

    def load_champion(self) -> ScoringModel:
        return self.models[self.champion]

    def champion_version(self) -> str:
        return self.champion

    def load(self, version: str) -> ScoringModel:
        return self.models[version]


@pytest.fixture(scope="module")
def forest(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    """A small LightGBM forest behind the champion's encoder: TreeSHAP factors, the
    explanation the real champion gives (the session's champion is a logistic regression)."""
    small = tmp_path_factory.mktemp("forest") / "small.csv"
    pd.read_csv(DATA, nrows=3000, dtype=str, keep_default_na=False).to_csv(small, index=False)
    frame = dataset.load_dataset(small)
    frame = dataset.add_history(frame, fit_encounter_clock(frame, frame["patient_nbr"].unique()))
    frame = frame[dataset.readmittable(frame)]
    champion = registry.load_champion()
    x = champion.trained.encoder.encode_tuples(dataset.feature_tuples(frame))
    model = fit_model("lgbm", {"n_estimators": 40, "num_leaves": 7}, x, dataset.target(frame), 0)
    return ScoringModel(
        replace(champion.trained, model=model), {**champion.manifest, "version": "forest-2"}
    )


def _factor_lists(scores: Sequence[ScoreEvent]) -> dict[str, list[tuple[str, str, float]]]:
    return {s.input_key: [(f.feature, f.label, f.contribution) for f in s.factors] for s in scores}


def _assert_same_explanations(got: Sequence[ScoreEvent], want: Sequence[ScoreEvent]) -> None:
    """Factor for factor (feature, label, percentage points to 1e-9) and interventions."""
    by_input = {s.input_key: s for s in want}
    for score in got:
        expected = by_input[score.input_key]
        assert [(f.feature, f.label) for f in score.factors] == [
            (f.feature, f.label) for f in expected.factors
        ], score.input_key
        for a, b in zip(score.factors, expected.factors, strict=True):
            assert a.contribution == pytest.approx(b.contribution, abs=1e-9)
        assert score.interventions == expected.interventions


def test_treeshap_factors_through_the_stage_are_the_inline_ones(forest: ScoringModel) -> None:
    """The same rows through the forest: explained inline by a scorer, and published
    pending then completed by the explainer — identical factor lists, row for row."""
    versions = Versions({forest.version: forest}, forest.version)
    events = _events(400)
    inline, _ = Scorer(versions, BANDS).score(events)  # type: ignore[arg-type]
    fast, _ = Scorer(versions, BANDS, explain_inline=False).score(events)  # type: ignore[arg-type]
    pending = [s for s in fast if s.factors_pending]
    done, failed = Explainer(versions, BANDS).explain(pending)  # type: ignore[arg-type]
    assert failed == []
    assert [s.input_key for s in done] == [s.input_key for s in pending]
    assert len(done) >= 20, "the sample holds scores the stage must explain"
    assert sum(len(s.factors) for s in done) >= 2 * len(done), "real factor lists"
    assert all(s.model_version == "forest-2" and not s.factors_pending for s in done)
    _assert_same_explanations(done, inline)


def test_a_pending_score_is_explained_with_the_model_version_it_names(
    registry: Registry, forest: ScoringModel
) -> None:
    """Scored by the old champion, explained after the forest took over (a hot reload, or
    an explainer catching up on a backlog): the factors are the old model's."""
    old = registry.load_champion()
    versions = Versions({old.version: old, forest.version: forest}, old.version)
    events = _events(400)
    fast, _ = Scorer(versions, BANDS, explain_inline=False).score(events)  # type: ignore[arg-type]
    pending = [s for s in fast if s.factors_pending]
    versions.champion = forest.version  # the forest is promoted before the explainer runs
    explainer = Explainer(versions, BANDS)  # type: ignore[arg-type]
    assert explainer.model is forest
    done, failed = explainer.explain(pending)
    assert failed == []
    assert {s.model_version for s in done} == {old.version}
    by_old, _ = Scorer(Versions({old.version: old}, old.version), BANDS).score(events)  # type: ignore[arg-type]
    by_forest, _ = Scorer(versions, BANDS).score(events)  # type: ignore[arg-type]
    _assert_same_explanations(done, by_old)
    theirs = _factor_lists([s for s in by_forest if s.factors])
    ours = _factor_lists(done)
    assert any(theirs.get(k) not in (None, v) for k, v in ours.items()), (
        "the two models explain differently: the test can tell which one explained"
    )
