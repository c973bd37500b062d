"""Risk bands: low / medium / high cut-offs on the calibrated probability.

Documented operating points, chosen on the training patients' *out-of-fold* calibrated
predictions (never on the test set) and stored with the model:

* **high** — the top decile of predicted risk (the 90th percentile): a list short enough
  for a transitions team to call every patient on it;
* **medium** — the threshold that reaches 50 % recall (half of all readmissions are at
  medium or high), unless that is above the high cut-off, then the 70th percentile.

The binary operating point of the confusion matrix and the threshold metrics is the
medium cut-off ("flag" = medium or high).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from readmit_core.events import RiskBand

HIGH_QUANTILE = 0.90
MEDIUM_RECALL = 0.50
FALLBACK_MEDIUM_QUANTILE = 0.70
BAND_RULE = (
    f"high = top {1 - HIGH_QUANTILE:.0%} of out-of-fold calibrated risk; "
    f"medium = threshold reaching {MEDIUM_RECALL:.0%} out-of-fold recall"
)


@dataclass(frozen=True)
class BandThresholds:
    medium: float
    high: float
    rule: str = BAND_RULE

    def band(self, probability: float) -> RiskBand:
        if probability >= self.high:
            return "high"
        if probability >= self.medium:
            return "medium"
        return "low"

    def bands(self, probabilities: np.ndarray) -> list[RiskBand]:
        return [self.band(float(p)) for p in probabilities]

    def as_dict(self) -> dict[str, object]:
        return {"medium": self.medium, "high": self.high, "rule": self.rule}


def threshold_for_recall(y: np.ndarray, p: np.ndarray, recall: float) -> float:
    """Largest threshold t such that predicting p >= t catches ``recall`` of positives."""
    positives = np.sort(p[y == 1])[::-1]
    if positives.size == 0:
        return 1.0
    k = max(int(np.ceil(recall * positives.size)) - 1, 0)
    return float(positives[k])


def choose_bands(y: np.ndarray, p: np.ndarray) -> BandThresholds:
    high = float(np.quantile(p, HIGH_QUANTILE))
    medium = threshold_for_recall(y, p, MEDIUM_RECALL)
    if medium >= high:
        medium = float(np.quantile(p, FALLBACK_MEDIUM_QUANTILE))
    return BandThresholds(medium=medium, high=high)
