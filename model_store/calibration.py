"""Calibration: mapping a model's raw probability to one that means what it says.

Fitted on *out-of-fold* predictions of the training patients (grouped K-fold), never on
the test set and never on in-sample predictions (which are over-confident). Platt
scaling on the log-odds is the default because it is monotonic and smooth, so it keeps
the model's ranking (ROC-AUC) exactly; isotonic regression is available and chosen
automatically when Platt leaves the out-of-fold calibration error above target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


@dataclass(frozen=True)
class Calibrator:
    """``platt``: sigmoid(a·logit(p) + b). ``isotonic``: piecewise-linear through knots."""

    method: str
    slope: float = 1.0
    intercept: float = 0.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def transform(self, raw: np.ndarray) -> np.ndarray:
        if self.method == "platt":
            z = self.slope * _logit(raw) + self.intercept
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        if self.method == "isotonic":
            return np.asarray(
                np.interp(raw, np.asarray(self.knots_x), np.asarray(self.knots_y)),
                dtype=np.float64,
            )
        return np.asarray(raw, dtype=np.float64)

    def describe(self) -> dict[str, object]:
        if self.method == "platt":
            return {"method": "platt", "slope": self.slope, "intercept": self.intercept}
        return {"method": self.method, "knots": len(self.knots_x)}


def fit_platt(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Logistic regression of the label on the raw log-odds (essentially unregularised)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(_logit(raw).reshape(-1, 1), y)
    return Calibrator("platt", float(model.coef_[0, 0]), float(model.intercept_[0]))


def fit_isotonic(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    model.fit(raw, y)
    return Calibrator(
        "isotonic",
        knots_x=tuple(float(x) for x in model.X_thresholds_),
        knots_y=tuple(float(v) for v in model.y_thresholds_),
    )


def fit_calibrator(raw_oof: np.ndarray, y: np.ndarray, *, target_ece: float = 0.02) -> Calibrator:
    """Platt unless its out-of-fold ECE misses ``target_ece`` and isotonic does better."""
    from model_store.evaluation import expected_calibration_error

    platt = fit_platt(raw_oof, y)
    platt_ece = expected_calibration_error(y, platt.transform(raw_oof))
    if platt_ece <= target_ece:
        return platt
    isotonic = fit_isotonic(raw_oof, y)
    if expected_calibration_error(y, isotonic.transform(raw_oof)) < platt_ece:
        return isotonic
    return platt
