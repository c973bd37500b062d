from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from model_store import dataset
from model_store.explain import factor_label
from model_store.serving import Prediction, ScoringModel, is_non_readmittable
from model_store.train import pipeline_predict_proba
from readmit_core.features import NON_READMITTABLE_DISPOSITIONS, FeatureRecord


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
        if prediction.non_readmittable:
            assert prediction.factors == ()
            assert prediction.interventions == ()
        elif prediction.band == "low":
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


@pytest.mark.parametrize("disposition", sorted(NON_READMITTABLE_DISPOSITIONS))
def test_risk_does_not_apply_after_death_or_hospice(
    champion: ScoringModel, records: list[FeatureRecord], disposition: int
) -> None:
    heavy = records[0].model_copy(
        update={"number_inpatient": 9, "discharge_disposition_id": disposition}
    )
    (prediction,) = champion.score([heavy])
    assert is_non_readmittable(heavy)
    assert prediction.non_readmittable
    assert not prediction.risk_applies
    assert prediction.factors == ()
    assert prediction.interventions == ()
    alive = champion.score([heavy.model_copy(update={"discharge_disposition_id": 1})])[0]
    assert alive.risk_applies
    assert alive.factors


def test_contributions_are_percentage_points_of_the_calibrated_risk(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    heavy = records[0].model_copy(update={"number_inpatient": 9, "prior_encounters": 6})
    (prediction,) = champion.score([heavy])
    assert prediction.factors
    total = sum(f.contribution for f in prediction.factors)
    # each factor is a share of the risk in points: positive, and together not more than
    # the whole risk (they are the pushes *above* the population's baseline)
    assert all(0 < f.contribution <= 100 * prediction.probability for f in prediction.factors)
    assert total < 100


def test_administrative_gaps_are_data_quality_not_factors(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    gaps = records[0].model_copy(
        update={
            "payer_code": "?",
            "admission_type_id": 6,
            "medical_specialty": "?",
            "age": "[70-80)",
        }
    )
    predictions = champion.score([gaps, *records[:300]])
    assert {
        "Payer not recorded",
        "Admission type not recorded",
        "Additional diagnosis not recorded",
    } <= set(predictions[0].data_quality)
    for prediction in predictions:
        labels = [f.label for f in prediction.factors]
        assert not any("not recorded" in label for label in labels), labels
        assert not any(label.startswith("Neonate") for label in labels), labels


def test_newborn_codes_on_an_adult_stay_are_data_quality(
    champion: ScoringModel, records: list[FeatureRecord]
) -> None:
    adult = records[0].model_copy(update={"age": "[60-70)", "discharge_disposition_id": 10})
    (prediction,) = champion.score([adult])
    assert any("newborn code (10) on an adult stay" in n for n in prediction.data_quality)
    assert all(f.feature != "discharge_disposition_id" for f in prediction.factors)


@pytest.mark.parametrize(
    ("column", "code", "words"),
    [
        (
            "diag_1",
            "428",
            "Primary diagnosis: Congestive heart failure; nonhypertensive (ICD-9-CM 428)",
        ),
        ("diag_2", "276", "Secondary diagnosis: Fluid and electrolyte disorders (ICD-9-CM 276)"),
        ("diag_3", "V58", "Additional diagnosis: Other aftercare (ICD-9-CM V58)"),
        ("diag_1", "38", "Primary diagnosis: Septicemia (except in labor) (ICD-9-CM 038)"),
        ("diag_1", "250.13", "Diabetes with ketoacidosis, type I [juvenile type], uncontrolled"),
        ("diag_1", "?", "Primary diagnosis not recorded"),
    ],
)
def test_diagnoses_are_named_by_their_icd9_titles(column: str, code: str, words: str) -> None:
    assert words in factor_label(column, code, {})


def test_a_batch_is_explained_exactly_as_its_rows_one_at_a_time(
    champion: ScoringModel, small_frame: pd.DataFrame, records: list[FeatureRecord]
) -> None:
    """The scorer explains a whole poll batch in one TreeSHAP call; a nurse must read the
    same factors, with the same numbers, as if each discharge had been scored alone."""
    from model_store.models import fit_model

    frame = small_frame[dataset.readmittable(small_frame)]
    x = champion.trained.encoder.encode_tuples(dataset.feature_tuples(frame))
    forest = fit_model("lgbm", {"n_estimators": 40, "num_leaves": 7}, x, dataset.target(frame), 0)
    model = ScoringModel(replace(champion.trained, model=forest), champion.manifest)
    sample = records[:200]
    batch = model.score(sample)
    single = [model.score([r])[0] for r in sample]
    assert sum(1 for p in batch if p.factors) > 50  # the sample exercises explanations
    for together, alone in zip(batch, single, strict=True):
        assert together.band == alone.band
        assert [(f.feature, f.label) for f in together.factors] == [
            (f.feature, f.label) for f in alone.factors
        ]
        np.testing.assert_allclose(
            [f.contribution for f in together.factors],
            [f.contribution for f in alone.factors],
            rtol=0,
            atol=1e-9,
        )
        assert together.interventions == alone.interventions
        assert together.data_quality == alone.data_quality
