from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fhir_mappings.features import FeatureRecord
from model_store import dataset
from model_store.serving import Prediction, ScoringModel
from model_store.train import pipeline_predict_proba


@pytest.fixture(scope="module")
def records(small_frame: pd.DataFrame) -> list[FeatureRecord]:
    return [dataset.record_from_values(r) for r in small_frame.iloc[:800].to_dict("records")]


def test_serving_equals_training_pipeline(
    champion: ScoringModel, small_frame: pd.DataFrame, records: list[FeatureRecord]
) -> None:
    served = champion.predict_proba(records)
    reference = pipeline_predict_proba(champion.trained, small_frame.iloc[:800])
    assert served.shape == (800,)
    np.testing.assert_allclose(served, reference, rtol=0, atol=1e-9)
    one_by_one = np.array([champion.predict_proba([r])[0] for r in records[:50]])
    np.testing.assert_allclose(one_by_one, reference[:50], rtol=0, atol=1e-9)


def test_probabilities_are_calibrated_probabilities(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    p = champion.predict_proba(records)
    assert ((p > 0) & (p < 1)).all()
    assert 0.03 < p.mean() < 0.25


def test_score_bands_factors_and_interventions(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    predictions = champion.score(records[:300])
    bands = champion.trained.bands
    assert all(isinstance(p, Prediction) for p in predictions)
    for prediction in predictions:
        assert prediction.band == bands.band(prediction.probability)
        contributions = [f.contribution for f in prediction.factors]
        assert contributions == sorted(contributions, reverse=True)
        assert all(f.label and "=" not in f.label for f in prediction.factors)
        if prediction.band == "low":
            assert prediction.interventions == ()
        else:
            assert prediction.interventions
            assert all(i.source and i.rationale for i in prediction.interventions)
    assert {p.band for p in predictions} >= {"low"}


def test_score_without_explanations(champion: ScoringModel, records: list[FeatureRecord]) -> None:
    fast = champion.score(records[:20], explain=False)
    full = champion.score(records[:20])
    assert [p.probability for p in fast] == [p.probability for p in full]
    assert all(p.factors == () for p in fast)


def test_empty_batches(champion: ScoringModel) -> None:
    assert champion.predict_proba([]).shape == (0,)
    assert champion.score([]) == []


def test_many_inpatient_stays_is_named_in_plain_language(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    heavy = records[0].model_copy(update={"number_inpatient": 9, "prior_encounters": 6})
    prediction = champion.score([heavy])[0]
    labels = " | ".join(f.label for f in prediction.factors)
    assert "9 inpatient stays in the prior year" in labels or "6 earlier admissions" in labels
    assert prediction.probability > champion.predict_proba([records[0]])[0]


def test_a_forest_compiled_in_the_background_scores_the_same(
    champion: ScoringModel, small_frame: pd.DataFrame, records: list[FeatureRecord]
) -> None:
    from model_store.models import fit_model

    frame = small_frame[dataset.readmittable(small_frame)]
    x = champion.trained.encoder.encode_tuples(dataset.feature_tuples(frame))
    forest = fit_model("lgbm", {"n_estimators": 20, "num_leaves": 7}, x, dataset.target(frame), 0)
    model = ScoringModel(replace(champion.trained, model=forest), champion.manifest)
    before = model.predict_proba(records)
    skipped = model.compile_in_background(lambda: False)  # left service before its turn
    assert skipped is not None
    skipped.join(timeout=120)
    assert "compiled" not in forest._fast
    thread = model.compile_in_background()
    assert thread is not None
    thread.join(timeout=120)
    assert "compiled" in forest._fast
    np.testing.assert_allclose(model.predict_proba(records), before, rtol=0, atol=1e-9)
    assert champion.compile_in_background() is None  # logistic regression: nothing to compile
