"""On-demand scoring for the what-if form and ``POST /api/v1/predict``.

Loads the registry's champion once per process (a model is tens of MB; loading per
request would be slow) and reloads when :func:`reset_model` is called.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from model_store.registry import ModelRegistryError, Registry
from readmit_core.errors import ReadmitError
from readmit_core.events import Factor, Intervention
from readmit_core.features import FeatureRecord
from readmit_core.settings import get_settings


class ModelUnavailable(ReadmitError, RuntimeError):
    """No champion model could be loaded (none trained yet, or the registry is broken)."""

    status = 503
    issue_code = "transient"

    def __init__(self, reason: str) -> None:
        super().__init__(f"no scoring model available: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ScoreResult:
    probability: float
    band: str
    model_version: str
    factors: tuple[Factor, ...]
    interventions: tuple[Intervention, ...]
    non_readmittable: bool = False
    data_quality: tuple[str, ...] = ()


_lock = threading.Lock()
_model: Any = None


def load_champion() -> Any:
    """The registry's champion ScoringModel (separate so unit tests can replace it)."""
    try:
        return Registry(get_settings().model_dir).load_champion()
    except (ModelRegistryError, OSError) as exc:
        raise ModelUnavailable(str(exc)) from exc


def _champion_changed(model: Any) -> bool:
    """True when the registry promoted another version since ``model`` was loaded."""
    current = Registry(get_settings().model_dir).champion_version()
    return current is not None and current != model_version(model)


def champion() -> Any:
    global _model
    with _lock:
        if _model is None or _champion_changed(_model):
            _model = load_champion()
        return _model


def reset_model() -> None:
    global _model
    with _lock:
        _model = None


def model_version(model: Any) -> str:
    for attr in ("version", "model_version"):
        value = getattr(model, attr, None)
        if value:
            return str(value)
    manifest = getattr(model, "manifest", None)
    return str(getattr(manifest, "version", None) or "unknown")


def _as_factor(f: Any) -> Factor:
    return f if isinstance(f, Factor) else Factor.model_validate(f, from_attributes=True)


def _as_intervention(i: Any) -> Intervention:
    if isinstance(i, Intervention):
        return i
    return Intervention.model_validate(i, from_attributes=True)


def score_record(record: FeatureRecord) -> ScoreResult:
    model = champion()
    (prediction,) = model.score([record], explain=True)
    return ScoreResult(
        probability=float(prediction.probability),
        band=str(prediction.band),
        model_version=model_version(model),
        factors=tuple(_as_factor(f) for f in prediction.factors),
        interventions=tuple(_as_intervention(i) for i in prediction.interventions),
        non_readmittable=bool(getattr(prediction, "non_readmittable", False)),
        data_quality=tuple(getattr(prediction, "data_quality", ())),
    )
