"""Metrics on the patient-held-out test set: overall, per subgroup, with confidence intervals.

ROC-AUC confidence intervals use DeLong's variance (DeLong et al. 1988, Biometrics
44:837; the fast midrank algorithm of Sun & Xu 2014, IEEE SPL 21:1389); the largest
subgroup gap gets a bootstrap interval over patients, so gaps can be judged against
their uncertainty. ECE is the expected calibration error over
ten equal-width probability bins (Naeini et al. 2015), weighted by bin size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

SUBGROUP_COLUMNS: Final = ("race", "gender", "age")
MIN_SUBGROUP_SIZE: Final = 500
_Z95: Final = 1.959963984540054


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Size-weighted mean |observed rate - mean predicted| over equal-width bins."""
    if len(y) == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(float(y[mask].mean()) - float(p[mask].mean()))
    return total / len(y)


def _midrank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return np.asarray(rankdata(x), dtype=np.float64)


def delong_auc(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and its DeLong standard error (NaN when one class is absent)."""
    positives, negatives = p[y == 1], p[y == 0]
    m, n = positives.size, negatives.size
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    all_ranks = _midrank(np.concatenate([positives, negatives]))
    tx, ty = _midrank(positives), _midrank(negatives)
    auc = (all_ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (all_ranks[:m] - tx) / n
    v10 = 1.0 - (all_ranks[m:] - ty) / m
    s01 = v01.var(ddof=1) if m > 1 else 0.0
    s10 = v10.var(ddof=1) if n > 1 else 0.0
    return float(auc), float(np.sqrt(s01 / m + s10 / n))


def auc_with_ci(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    auc, se = delong_auc(y, p)
    low, high = max(auc - _Z95 * se, 0.0), min(auc + _Z95 * se, 1.0)
    return {"roc_auc": auc, "roc_auc_se": se, "roc_auc_ci_low": low, "roc_auc_ci_high": high}


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """All headline metrics at one operating point (``p >= threshold`` = flagged)."""
    from sklearn.metrics import average_precision_score, brier_score_loss

    flagged = p >= threshold
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    tn = int(np.sum(~flagged & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = 0 < y.sum() < len(y)
    out: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "prevalence": float(y.mean()) if len(y) else float("nan"),
        "threshold": float(threshold),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "pr_auc": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p),
        "mean_predicted": float(p.mean()) if len(y) else float("nan"),
        "confusion_matrix": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }
    out.update(auc_with_ci(y, p))
    return out


def subgroup_metrics(
    y: np.ndarray,
    p: np.ndarray,
    groups: Mapping[str, Sequence[Any] | np.ndarray],
    threshold: float | None,
    *,
    clusters: Sequence[Any] | np.ndarray | None = None,
    min_size: int = MIN_SUBGROUP_SIZE,
) -> dict[str, dict[str, Any]]:
    """Metrics per value of each grouping column; groups under ``min_size`` get counts only.

    ``threshold=None`` reports ROC-AUC only (for scores whose operating point was fitted
    on the same rows, where threshold metrics would be in-sample). Also reports, per
    column, the largest AUC gap between reported groups with a bootstrap 95 % CI over
    ``clusters`` (patients: one patient's stays are not independent).
    """
    # each row's cluster as 0..k-1, once for every column's bootstrap
    _, units = np.unique(np.arange(len(y)) if clusters is None else clusters, return_inverse=True)
    out: dict[str, dict[str, Any]] = {}
    for column, values in groups.items():
        array = np.asarray(values, dtype=object).astype(str)
        per_value: dict[str, Any] = {}
        for value in sorted(set(array)):
            mask = array == value
            if mask.sum() >= min_size:
                per_value[value] = _group_metrics(y[mask], p[mask], threshold)
            else:
                per_value[value] = {
                    "n": int(mask.sum()),
                    "positives": int(y[mask].sum()),
                    "reported": False,
                }
        out[column] = {"groups": per_value, **auc_gap(y, p, array, units, per_value)}
    return out


def _group_metrics(y: np.ndarray, p: np.ndarray, threshold: float | None) -> dict[str, Any]:
    if threshold is None:
        return {"n": len(y), "positives": int(y.sum()), **auc_with_ci(y, p)}
    metrics = binary_metrics(y, p, threshold)
    metrics.pop("confusion_matrix")
    return metrics


def auc_gap(
    y: np.ndarray,
    p: np.ndarray,
    values: np.ndarray,
    units: np.ndarray,
    per_value: Mapping[str, Mapping[str, Any]],
    *,
    resamples: int = 400,
    seed: int = 0,
) -> dict[str, Any]:
    """The largest AUC difference between reported groups, with a 95 % CI.

    ``units`` numbers each row's cluster 0..k-1. The interval is a percentile bootstrap
    over clusters (patients: one patient's stays
    are correlated) of the signed AUC difference between the two extreme groups. A gap
    whose interval reaches zero is not evidence that the model ranks one group worse
    than another. The pair is picked after looking at the AUCs, so with many groups the
    interval is, if anything, too ready to call a gap real.
    """
    reported = [v for v, m in per_value.items() if "roc_auc" in m and np.isfinite(m["roc_auc"])]
    if len(reported) < 2:
        return {"auc_gap": 0.0}
    aucs = {v: float(per_value[v]["roc_auc"]) for v in reported}
    high, low = max(reported, key=aucs.__getitem__), min(reported, key=aucs.__getitem__)
    prepared = [_prepare_weighted_auc(y, p, units, values == v) for v in (high, low)]
    rng = np.random.default_rng(seed)
    n_units = int(units.max()) + 1
    gaps = np.empty(resamples)
    for b in range(resamples):
        weights = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        gaps[b] = _weighted_auc(prepared[0], weights) - _weighted_auc(prepared[1], weights)
    ci_low, ci_high = np.nanpercentile(gaps, [2.5, 97.5])
    return {
        "auc_gap": aucs[high] - aucs[low],
        "auc_gap_ci_low": float(ci_low),
        "auc_gap_ci_high": float(ci_high),
        "auc_gap_between": [high, low],
    }


def _prepare_weighted_auc(
    y: np.ndarray, p: np.ndarray, unit: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Score ranks (ties share one), labels and cluster of one group's rows, once."""
    distinct, rank = np.unique(p[mask], return_inverse=True)
    return rank, y[mask].astype(bool), unit[mask], distinct.size


def _weighted_auc(
    prepared: tuple[np.ndarray, np.ndarray, np.ndarray, int], cluster_weights: np.ndarray
) -> float:
    """ROC-AUC with each row weighted by its cluster's bootstrap count (ties count half)."""
    rank, positive, unit, size = prepared
    w = cluster_weights[unit].astype(np.float64)
    pos = np.bincount(rank, weights=w * positive, minlength=size)
    neg = np.bincount(rank, weights=w * ~positive, minlength=size)
    denominator = pos.sum() * neg.sum()
    if denominator == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / denominator)
