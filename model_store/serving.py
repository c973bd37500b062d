"""The scoring API the scorer and the web app use: records in, calibrated risk out.

No pandas here: a ``FeatureRecord`` is encoded by :class:`FeatureEncoder` (plain Python
per record), scored by the model's numpy/booster fast path, calibrated, banded,
explained and given interventions. Output equals the training pipeline's
``predict_proba`` to 1e-9 (tested in tests/unit/model_store).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fhir_mappings.features import FeatureRecord
from model_store.bands import BandThresholds
from model_store.calibration import Calibrator
from model_store.encoding import FeatureEncoder, _record_values
from model_store.explain import CodeLabels, top_factors
from model_store.interventions import recommend
from model_store.models import FittedModel
from readmit.events import Factor, Intervention, RiskBand


@dataclass(frozen=True)
class Prediction:
    probability: float
    band: RiskBand
    factors: tuple[Factor, ...]
    interventions: tuple[Intervention, ...]


@dataclass
class TrainedModel:
    """Everything one registry artifact holds: encoder, model, calibrator, bands, labels."""

    name: str
    encoder: FeatureEncoder
    model: FittedModel
    calibrator: Calibrator
    bands: BandThresholds
    code_labels: CodeLabels
    sources: list[str] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources, owner = self.encoder.source_index()
            self.groups = [np.flatnonzero(owner == i) for i in range(len(self.sources))]

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of encoded rows via the fast path."""
        return self.calibrator.transform(self.model.raw_proba(matrix))


class ScoringModel:
    """A loaded, verified model version (see :class:`model_store.registry.Registry`)."""

    def __init__(self, trained: TrainedModel, manifest: dict[str, Any]) -> None:
        self.trained = trained
        self.manifest = manifest
        self.version: str = str(manifest["version"])

    def predict_proba(self, records: Sequence[FeatureRecord]) -> np.ndarray:
        """Calibrated readmission probabilities, one per record (numpy only)."""
        if not records:
            return np.empty(0, dtype=np.float64)
        return self.trained.predict_matrix(self.trained.encoder.encode_records(records))

    def score(self, records: Sequence[FeatureRecord], *, explain: bool = True) -> list[Prediction]:
        """Probability, band, top factors and interventions for each record."""
        if not records:
            return []
        trained = self.trained
        values = [_record_values(r) for r in records]
        matrix = trained.encoder.encode_tuples(values)
        probabilities = trained.predict_matrix(matrix)
        factors: list[tuple[Factor, ...]] = [()] * len(records)
        if explain:
            contributions = trained.model.contributions(matrix, trained.groups)
            factors = top_factors(contributions, trained.sources, values, trained.code_labels)
        out: list[Prediction] = []
        for i, record in enumerate(records):
            probability = float(probabilities[i])
            band = trained.bands.band(probability)
            interventions = recommend(band, factors[i], a1c_result=record.A1Cresult, age=record.age)
            out.append(Prediction(probability, band, factors[i], interventions))
        return out
