"""Metrics on the patient-held-out test set: overall, per subgroup, with confidence intervals.

ROC-AUC confidence intervals use DeLong's variance (DeLong et al. 1988, Biometrics
44:837; the fast midrank algorithm of Sun & Xu 2014, IEEE SPL 21:1389), so subgroup
gaps can be judged against their uncertainty. ECE is the expected calibration error over
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
    threshold: float,
    *,
    min_size: int = MIN_SUBGROUP_SIZE,
) -> dict[str, dict[str, Any]]:
    """Metrics per value of each grouping column; groups under ``min_size`` get counts only.

    Also reports, per column, the largest AUC gap between reported groups.
    """
    out: dict[str, dict[str, Any]] = {}
    for column, values in groups.items():
        array = np.asarray(values, dtype=object)
        per_value: dict[str, Any] = {}
        for value in sorted({str(v) for v in array}):
            mask = array.astype(str) == value
            if mask.sum() >= min_size:
                metrics = binary_metrics(y[mask], p[mask], threshold)
                metrics.pop("confusion_matrix")
                per_value[value] = metrics
            else:
                per_value[value] = {
                    "n": int(mask.sum()),
                    "positives": int(y[mask].sum()),
                    "reported": False,
                }
        out[column] = {"groups": per_value, **auc_gap(per_value)}
    return out


def auc_gap(per_value: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The largest AUC difference between reported groups, with a 95 % CI.

    The groups are disjoint, so the two AUCs are independent and the gap's DeLong
    variance is the sum of theirs. The interval says how much of a gap the test split's
    size alone could produce — a gap whose CI spans zero is not evidence of a difference.
    """
    reported = {
        value: m
        for value, m in per_value.items()
        if "roc_auc" in m and np.isfinite(m["roc_auc"]) and np.isfinite(m["roc_auc_se"])
    }
    if len(reported) < 2:
        return {"auc_gap": 0.0}
    high = max(reported, key=lambda v: reported[v]["roc_auc"])
    low = min(reported, key=lambda v: reported[v]["roc_auc"])
    gap = float(reported[high]["roc_auc"] - reported[low]["roc_auc"])
    se = float(np.hypot(reported[high]["roc_auc_se"], reported[low]["roc_auc_se"]))
    return {
        "auc_gap": gap,
        "auc_gap_ci_low": gap - _Z95 * se,
        "auc_gap_ci_high": gap + _Z95 * se,
        "auc_gap_between": [high, low],
    }
