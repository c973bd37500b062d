"""The five model families, their small tuning grids, and a fast numpy scoring path each.

Each family is fitted as an ordinary scikit-learn-compatible estimator (that is the
"training pipeline" whose ``predict_proba`` is the reference). For serving, a
:class:`FittedModel` also exposes ``raw_proba`` — the same numbers computed without
scikit-learn's per-call validation overhead (plain numpy for the linear model and the
MLP, the booster itself for LightGBM/XGBoost) — and ``contributions`` for explanations.
Tests hold the two paths equal to 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from readmit_core.errors import ReadmitError

if TYPE_CHECKING:
    import pandas as pd

MODEL_NAMES: Final = ("lr", "rf", "xgb", "lgbm", "mlp")
MODEL_LABELS: Final = {
    "lr": "Logistic regression",
    "rf": "Random forest",
    "xgb": "XGBoost",
    "lgbm": "LightGBM",
    "mlp": "Multi-layer perceptron",
}

# Small grids, searched with grouped K-fold on the training patients. Sized so that all
# five families train in well under 10 minutes on 2 cores. No class weights: the 11 %
# positive rate is handled by calibration plus a chosen operating point (bands), which
# keeps probabilities honest.
#
# Boosters run single-threaded on purpose (fits and predictions): OpenMP threads
# busy-wait, and on a shared 2-core machine two threads made a LightGBM fit 7x *slower*
# and a one-row predict 40x slower (11.6 ms vs 0.29 ms, measured); one thread is predictable.
GRIDS: Final[dict[str, list[dict[str, Any]]]] = {
    "lr": [{"C": 0.01}, {"C": 0.1}],
    "rf": [{"n_estimators": 150, "min_samples_leaf": 30, "max_features": "sqrt", "max_depth": 12}],
    "xgb": [
        {"n_estimators": 400, "learning_rate": 0.03, "max_depth": 4, "min_child_weight": 20},
        {"n_estimators": 300, "learning_rate": 0.03, "max_depth": 6, "min_child_weight": 50},
    ],
    "lgbm": [
        {"n_estimators": 400, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 100},
        {"n_estimators": 800, "learning_rate": 0.015, "num_leaves": 15, "min_child_samples": 100},
        {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 7, "min_child_samples": 50},
    ],
    "mlp": [{"hidden_layer_sizes": (32,), "alpha": 1e-2}],
}


# Families whose fitted model has a file format of its own that cannot execute code when
# read: the registry stores these natively (model_store/registry.py), the rest as joblib.
NATIVE_FORMATS: Final = {"lgbm": "lightgbm-text", "xgb": "xgboost-ubj"}


class UnknownModelError(ReadmitError, ValueError):
    status = 400
    issue_code = "not-supported"

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
        self.name = name


def build_estimator(name: str, params: dict[str, Any], seed: int) -> Any:
    """A fresh, unfitted estimator of one family with the given hyper-parameters."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "lr":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed, **params)
        )
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_jobs=2, random_state=seed, **params)
    if name == "xgb":
        from xgboost import XGBClassifier

        return XGBClassifier(
            tree_method="hist",
            n_jobs=1,
            random_state=seed,
            subsample=0.8,
            colsample_bytree=0.5,
            eval_metric="logloss",
            **params,
        )
    if name == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_jobs=1,
            random_state=seed,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.5,
            reg_lambda=5.0,
            verbose=-1,
            **params,
        )
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        return make_pipeline(
            StandardScaler(),
            MLPClassifier(
                early_stopping=True,
                max_iter=30,
                batch_size=512,
                learning_rate_init=1e-3,
                random_state=seed,
                **params,
            ),
        )
    raise UnknownModelError(name)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return np.asarray(expit(z), dtype=np.float64)


@dataclass
class FittedModel:
    """A fitted estimator of one family plus what serving needs to use it quickly.

    ``reference`` is the training-mean encoded vector: the baseline of occlusion
    explanations for the random forest and the MLP. ``estimator`` is None for a
    LightGBM model read from its native file (:meth:`from_native`): LightGBM cannot
    rebuild its scikit-learn wrapper from a booster, and only the booster is needed.
    """

    name: str
    params: dict[str, Any]
    estimator: Any
    reference: np.ndarray
    _fast: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._fast = self._extract_fast_path()

    # -------------------------------------------------------------- reference path
    def pipeline_proba(self, matrix: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The estimator's own ``predict_proba`` (positive class): the reference numbers.

        Without a wrapper (a natively loaded LightGBM model) the booster's ``predict``,
        which is what ``LGBMClassifier.predict_proba`` returns for a binary objective.
        """
        if self.estimator is None:
            return np.asarray(self._fast["booster"].predict(matrix), dtype=np.float64)
        return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)

    # ---------------------------------------------------------- native model files
    def native_bytes(self) -> bytes:
        """The booster in its own format (``NATIVE_FORMATS``): data, never code."""
        if self.name == "lgbm":
            return str(self._fast["booster"].model_to_string()).encode()
        if self.name == "xgb":
            return bytes(self._fast["booster"].save_raw(raw_format="ubj"))
        raise UnknownModelError(self.name)

    @classmethod
    def from_native(
        cls, name: str, params: dict[str, Any], data: bytes, reference: np.ndarray
    ) -> FittedModel:
        """A forest from :meth:`native_bytes`; predicts exactly as the model that wrote it."""
        if name == "lgbm":
            import lightgbm

            model = cls(name, params, None, reference)
            model._fast = {"booster": lightgbm.Booster(model_str=data.decode())}
            return model
        if name == "xgb":
            from xgboost import XGBClassifier

            estimator = XGBClassifier(n_jobs=1)
            estimator.load_model(bytearray(data))
            return cls(name, params, estimator, reference)
        raise UnknownModelError(name)

    # ------------------------------------------------------------------ fast path
    def _extract_fast_path(self) -> dict[str, Any]:
        if self.estimator is None:  # from_native sets the booster itself
            return {}
        if self.name == "lr":
            scaler, model = self.estimator[0], self.estimator[-1]
            return {
                "mean": scaler.mean_,
                "scale": scaler.scale_,
                "coef": model.coef_[0].copy(),
                "intercept": float(model.intercept_[0]),
            }
        if self.name == "mlp":
            scaler, model = self.estimator[0], self.estimator[-1]
            return {
                "mean": scaler.mean_,
                "scale": scaler.scale_,
                "weights": [w.copy() for w in model.coefs_],
                "biases": [b.copy() for b in model.intercepts_],
            }
        if self.name == "lgbm":
            return {"booster": self.estimator.booster_}
        if self.name == "xgb":
            booster = self.estimator.get_booster()
            booster.set_param({"nthread": 1})
            return {"booster": booster}
        if self.name == "rf":
            self.estimator.set_params(n_jobs=1)
        return {}

    def raw_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated probability of readmission, equal to :meth:`pipeline_proba`."""
        fast = self._fast
        if self.name == "lr":
            z = ((matrix - fast["mean"]) / fast["scale"]) @ fast["coef"] + fast["intercept"]
            return _sigmoid(z)
        if self.name == "mlp":
            return _sigmoid(self._mlp_logit(matrix))
        if self.name == "lgbm":
            compiled = fast.get("compiled")
            if compiled is not None:
                return compiled.predict(matrix)
            return np.asarray(fast["booster"].predict(matrix, num_threads=1), dtype=np.float64)
        if self.name == "xgb":
            return np.asarray(
                fast["booster"].inplace_predict(matrix, validate_features=False),
                dtype=np.float64,
            )
        return self.pipeline_proba(matrix)

    def compile_trees(self) -> float | None:
        """Compile a LightGBM forest to native code (``model_store.compiled_trees``).

        ``raw_proba`` switches to it once it is set; returns the compile time in seconds,
        or ``None`` for families with nothing to compile.
        """
        if self.name != "lgbm":
            return None
        from model_store.compiled_trees import CompiledForest

        forest = CompiledForest(self._fast["booster"])
        self._fast["compiled"] = forest
        return forest.compile_seconds

    def __getstate__(self) -> dict[str, Any]:
        """Native code is never pickled: a loaded model compiles its own (see above)."""
        state = dict(self.__dict__)
        state["_fast"] = {k: v for k, v in self._fast.items() if k != "compiled"}
        return state

    def _mlp_logit(self, matrix: np.ndarray) -> np.ndarray:
        fast = self._fast
        activation = (matrix - fast["mean"]) / fast["scale"]
        layers = list(zip(fast["weights"], fast["biases"], strict=True))
        for weights, bias in layers[:-1]:
            activation = np.maximum(activation @ weights + bias, 0.0)
        weights, bias = layers[-1]
        return np.asarray((activation @ weights + bias)[:, 0], dtype=np.float64)

    # -------------------------------------------------------------- explanations
    def contributions(self, matrix: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
        """Per-record contribution of each feature group to the log-odds, shape (n, groups).

        LightGBM/XGBoost: exact TreeSHAP (``pred_contrib``), summed per group. Logistic
        regression: coefficient x standardised value (relative to the training mean),
        summed per group. Random forest and MLP: occlusion — log-odds minus the log-odds
        with the group's features set to the training mean (one batch per group).
        """
        if self.name == "lr":
            fast = self._fast
            per_feature = (matrix - fast["mean"]) / fast["scale"] * fast["coef"]
            return self._sum_groups(per_feature, groups)
        if self.name == "lgbm":
            shap = self._fast["booster"].predict(matrix, pred_contrib=True, num_threads=1)[:, :-1]
            return self._sum_groups(np.asarray(shap), groups)
        if self.name == "xgb":
            from xgboost import DMatrix

            shap = self._fast["booster"].predict(DMatrix(matrix, nthread=1), pred_contribs=True)[
                :, :-1
            ]
            return self._sum_groups(np.asarray(shap), groups)
        base = _logit(self.raw_proba(matrix))
        # one batch: every record repeated once per group, that group set to the reference
        n = matrix.shape[0]
        occluded = np.repeat(matrix[None, :, :], len(groups), axis=0)
        for g, columns in enumerate(groups):
            occluded[g][:, columns] = self.reference[columns]
        flat = _logit(self.raw_proba(occluded.reshape(-1, matrix.shape[1])))
        return np.asarray(base[None, :] - flat.reshape(len(groups), n), dtype=np.float64).T

    def _sum_groups(self, per_feature: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
        membership = self._fast.get("membership")
        if membership is None or membership.shape != (per_feature.shape[1], len(groups)):
            membership = membership_matrix(per_feature.shape[1], groups)
            self._fast["membership"] = membership
        return np.asarray(per_feature @ membership, dtype=np.float64)


def membership_matrix(width: int, groups: Sequence[np.ndarray]) -> np.ndarray:
    """0/1 matrix (features x groups): summing per group becomes one matrix product."""
    membership = np.zeros((width, len(groups)), dtype=np.float64)
    for g, columns in enumerate(groups):
        membership[columns, g] = 1.0
    return membership


def fit_model(
    name: str,
    params: dict[str, Any],
    matrix: np.ndarray,
    y: np.ndarray,
    seed: int,
    *,
    n_jobs: int | None = None,
) -> FittedModel:
    """Fit one family on encoded features (``n_jobs`` overrides the family's threads)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    estimator = build_estimator(name, params, seed)
    if n_jobs is not None and name == "rf":
        estimator.set_params(n_jobs=n_jobs)
    with warnings.catch_warnings():
        # The MLP's epochs are capped on purpose (training-time budget); early stopping on
        # a validation split guards against over-fitting, so the warning is noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(matrix, y)
    return FittedModel(name, dict(params), estimator, matrix.mean(axis=0))
