"""score_record maps a ScoringModel's Prediction into the web's ScoreResult (fake model)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alerts_web import scoring
from readmit_core.events import Factor, Intervention
from readmit_core.features import FeatureRecord


@dataclass
class _Prediction:
    probability: float
    band: str
    factors: tuple[Factor, ...]
    interventions: tuple[Intervention, ...]


class _FakeModel:
    version = "fake-1"

    def __init__(self) -> None:
        self.seen: list[FeatureRecord] = []

    def score(self, records: list[FeatureRecord], *, explain: bool) -> list[_Prediction]:
        assert explain
        self.seen.extend(records)
        factor = Factor(feature="age", label="Age 80-90", contribution=0.2)
        return [_Prediction(0.31, "medium", (factor,), ())]


def test_score_record_uses_the_champion_and_keeps_the_explanation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeModel()
    monkeypatch.setattr(scoring, "_model", fake)
    monkeypatch.setattr(scoring, "_champion_changed", lambda model: False)
    record = FeatureRecord(encounter_id="w", patient_nbr="w", age="[80-90)")
    result = scoring.score_record(record)
    assert fake.seen == [record]
    assert (result.probability, result.band, result.model_version) == (0.31, "medium", "fake-1")
    assert result.factors[0].label == "Age 80-90"


def test_missing_registry_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from readmit_core.settings import Settings

    monkeypatch.setattr(scoring, "get_settings", lambda: Settings(model_dir=tmp_path / "none"))
    monkeypatch.setattr(scoring, "_model", None)
    with pytest.raises(scoring.ModelUnavailable):
        scoring.champion()
