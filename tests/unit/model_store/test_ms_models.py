"""Every family's fast serving path equals its scikit-learn predict_proba; explanations add up."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from model_store import dataset
from model_store.encoding import FeatureEncoder
from model_store.models import MODEL_NAMES, fit_model

SMALL = {
    "lr": {"C": 0.1},
    "rf": {"n_estimators": 20, "min_samples_leaf": 20, "max_depth": 6},
    "xgb": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.1},
    "lgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 20},
    "mlp": {"hidden_layer_sizes": (8,), "alpha": 1e-2},
}


@pytest.fixture(scope="module")
def encoded(small_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    frame = small_frame[dataset.readmittable(small_frame)]
    tuples = dataset.feature_tuples(frame)
    encoder = FeatureEncoder(min_count=30).fit(tuples)
    _, owner = encoder.source_index()
    groups = [np.flatnonzero(owner == i) for i in range(owner.max() + 1)]
    return encoder.encode_tuples(tuples), dataset.target(frame), groups


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fast_path_equals_pipeline(
    name: str, encoded: tuple[np.ndarray, np.ndarray, list[np.ndarray]]
) -> None:
    x, y, groups = encoded
    model = fit_model(name, SMALL[name], x, y, seed=0, n_jobs=1)
    np.testing.assert_allclose(model.raw_proba(x[:300]), model.pipeline_proba(x[:300]), atol=1e-9)
    np.testing.assert_allclose(model.raw_proba(x[:1]), model.pipeline_proba(x[:1]), atol=1e-9)
    contributions = model.contributions(x[:40], groups)
    assert contributions.shape == (40, len(groups))
    assert np.isfinite(contributions).all()


@pytest.mark.parametrize("name", ["lgbm", "xgb", "lr"])
def test_additive_explanations_sum_to_the_log_odds(
    name: str, encoded: tuple[np.ndarray, np.ndarray, list[np.ndarray]]
) -> None:
    x, y, groups = encoded
    model = fit_model(name, SMALL[name], x, y, seed=0, n_jobs=1)
    p = model.raw_proba(x[:50])
    logit = np.log(p / (1 - p))
    total = model.contributions(x[:50], groups).sum(axis=1)
    offset = logit - total  # the expected value / intercept: the same for every row
    np.testing.assert_allclose(offset, offset[0], atol=1e-5)


def test_compiled_forest_equals_pipeline_and_is_never_pickled(
    encoded: tuple[np.ndarray, np.ndarray, list[np.ndarray]],
) -> None:
    x, y, _ = encoded
    model = fit_model("lgbm", SMALL["lgbm"], x, y, seed=0, n_jobs=1)
    seconds = model.compile_trees()
    assert seconds is not None
    assert seconds > 0
    assert "compiled" in model._fast
    np.testing.assert_allclose(model.raw_proba(x), model.pipeline_proba(x), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.raw_proba(x[:1]), model.pipeline_proba(x[:1]), atol=1e-9)
    restored = pickle.loads(pickle.dumps(model))
    assert "compiled" not in restored._fast  # a loaded artifact compiles its own code
    np.testing.assert_allclose(restored.raw_proba(x[:300]), model.raw_proba(x[:300]), atol=1e-12)


@pytest.mark.parametrize("name", ["lr", "xgb"])
def test_only_lightgbm_has_a_forest_to_compile(
    name: str, encoded: tuple[np.ndarray, np.ndarray, list[np.ndarray]]
) -> None:
    x, y, _ = encoded
    assert fit_model(name, SMALL[name], x, y, seed=0, n_jobs=1).compile_trees() is None
