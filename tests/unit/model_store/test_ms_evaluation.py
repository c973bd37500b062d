from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from model_store.bands import BandThresholds, choose_bands, threshold_for_recall
from model_store.calibration import fit_calibrator, fit_isotonic, fit_platt
from model_store.evaluation import (
    _prepare_weighted_auc,
    _weighted_auc,
    binary_metrics,
    delong_auc,
    expected_calibration_error,
    subgroup_metrics,
)


@pytest.fixture
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.6, 4000)
    y = (rng.uniform(size=4000) < p).astype(np.int64)
    return y, p


def test_delong_auc_matches_sklearn_and_has_sane_se(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    auc, se = delong_auc(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert 0.005 < se < 0.03
    tied = np.round(p, 1)
    assert delong_auc(y, tied)[0] == pytest.approx(roc_auc_score(y, tied), abs=1e-12)


def test_ece_is_small_when_calibrated_and_large_when_not(
    scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scores
    assert expected_calibration_error(y, p) < 0.03
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15


def test_binary_metrics_confusion_matrix(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    m = binary_metrics(y, p, 0.3)
    cm = m["confusion_matrix"]
    assert cm["tp"] + cm["fp"] + cm["fn"] + cm["tn"] == len(y)
    assert m["recall"] == pytest.approx(cm["tp"] / (cm["tp"] + cm["fn"]))
    assert m["roc_auc_ci_low"] < m["roc_auc"] < m["roc_auc_ci_high"]


def test_subgroups_report_only_large_groups(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    groups = np.array(["A"] * 3000 + ["B"] * 900 + ["C"] * 100)
    out = subgroup_metrics(y, p, {"g": groups}, 0.3)["g"]
    assert "roc_auc" in out["groups"]["A"]
    assert "roc_auc" in out["groups"]["B"]
    assert out["groups"]["C"] == {"n": 100, "positives": int(y[3900:].sum()), "reported": False}
    assert out["auc_gap"] == pytest.approx(
        abs(out["groups"]["A"]["roc_auc"] - out["groups"]["B"]["roc_auc"])
    )
    assert out["auc_gap_ci_low"] < out["auc_gap"] < out["auc_gap_ci_high"]
    assert set(out["auc_gap_between"]) == {"A", "B"}


def test_bootstrap_auc_with_unit_weights_is_the_roc_auc() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(600) < 0.3).astype(int)
    p = np.round(rng.random(600) + 0.3 * y, 2)  # rounded: many ties
    prepared = _prepare_weighted_auc(y, p, np.arange(600), np.ones(600, dtype=bool))
    assert _weighted_auc(prepared, np.ones(600)) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    twice = np.ones(600)
    twice[:100] = 2  # a cluster drawn twice counts its rows twice
    doubled = np.concatenate([np.arange(600), np.arange(100)])
    assert _weighted_auc(prepared, twice) == pytest.approx(
        roc_auc_score(y[doubled], p[doubled]), abs=1e-12
    )


def test_only_auc_when_there_is_no_operating_point(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    groups = np.array(["A"] * 2000 + ["B"] * 2000)
    out = subgroup_metrics(y, p, {"g": groups}, None, clusters=np.arange(4000) // 4)["g"]
    assert set(out["groups"]["A"]) == {"n", "positives", "roc_auc", "roc_auc_se",
                                       "roc_auc_ci_low", "roc_auc_ci_high"}  # fmt: skip
    assert out["auc_gap_ci_low"] <= out["auc_gap"] <= out["auc_gap_ci_high"]


def test_gap_interval_separates_a_real_difference_from_noise() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.random(n) < 0.3
    informative = 1 / (1 + np.exp(-np.where(y, rng.normal(1.0, 1, n), rng.normal(0, 1, n))))
    groups = np.array(["A", "B"] * (n // 2))
    same = subgroup_metrics(y.astype(int), informative, {"g": groups}, 0.5)["g"]
    assert same["auc_gap_ci_low"] < 0 < same["auc_gap_ci_high"]  # one model, random halves
    noisy = np.where(groups == "B", rng.random(n), informative)  # B gets pure noise
    different = subgroup_metrics(y.astype(int), noisy, {"g": groups}, 0.5)["g"]
    assert different["auc_gap_between"] == ["A", "B"]
    assert different["auc_gap_ci_low"] > 0.1


def test_calibration_fixes_overconfident_scores(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    skewed = np.clip(p**0.5, 1e-6, 1 - 1e-6)
    assert expected_calibration_error(y, skewed) > 0.1
    for calibrator in (fit_platt(skewed, y), fit_isotonic(skewed, y), fit_calibrator(skewed, y)):
        assert expected_calibration_error(y, calibrator.transform(skewed)) < 0.03
    platt = fit_platt(skewed, y).transform(skewed)
    assert roc_auc_score(y, platt) == pytest.approx(roc_auc_score(y, skewed), abs=1e-12)


def test_bands_follow_the_documented_rule(scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scores
    bands = choose_bands(y, p)
    assert bands.high == pytest.approx(np.quantile(p, 0.9))
    assert (p[y == 1] >= bands.medium).mean() >= 0.5
    assert bands.medium < bands.high
    assert [bands.band(x) for x in (0.0, bands.medium, bands.high)] == ["low", "medium", "high"]
    assert threshold_for_recall(y, p, 1.0) == p[y == 1].min()


def test_band_edges() -> None:
    bands = BandThresholds(medium=0.1, high=0.3)
    assert bands.bands(np.array([0.05, 0.1, 0.29, 0.3])) == ["low", "medium", "medium", "high"]
