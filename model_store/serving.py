"""The scoring API the scorer and the web app use: records in, calibrated risk out.

No pandas here: a ``FeatureRecord`` is encoded by :class:`FeatureEncoder` (plain Python
per record), scored by the model's numpy/booster fast path, calibrated, banded,
explained and given interventions. Output equals the training pipeline's
``predict_proba`` to 1e-9 (tested in tests/unit/model_store).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_store.bands import BandThresholds
from model_store.calibration import Calibrator
from model_store.encoding import FeatureEncoder, _record_values
from model_store.encounter_clock import EncounterClock
from model_store.explain import CodeLabels, Explanation, explain_rows
from model_store.interventions import recommend
from model_store.models import FittedModel
from readmit_core.events import Factor, Intervention, RiskBand
from readmit_core.features import NON_READMITTABLE_DISPOSITIONS, FeatureRecord

log = logging.getLogger(__name__)

# Compiles peak at ~0.6 GB each: two at once (a hot reload during a compile) could push a
# scorer past its memory limit.
_ONE_COMPILE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class Prediction:
    """One scored record.

    ``non_readmittable``: the discharge disposition (death, hospice: the dataset's
    ``NON_READMITTABLE_DISPOSITIONS``) makes a 30-day readmission impossible, so the
    risk does not apply. Such a prediction carries the model's number for the audit
    trail but no factors and no interventions, and no surface may present it as a risk
    (:attr:`risk_applies`). ``data_quality``: gaps in the record that are not risk
    factors ("Payer not recorded").
    """

    probability: float
    band: RiskBand
    factors: tuple[Factor, ...]
    interventions: tuple[Intervention, ...]
    non_readmittable: bool = False
    data_quality: tuple[str, ...] = ()

    @property
    def risk_applies(self) -> bool:
        return not self.non_readmittable


def is_non_readmittable(record: FeatureRecord) -> bool:
    """The one rule: readmission risk does not apply after death or hospice."""
    return record.discharge_disposition_id in NON_READMITTABLE_DISPOSITIONS


@dataclass
class TrainedModel:
    """Everything one registry artifact holds: encoder, model, calibrator, bands, labels."""

    name: str
    encoder: FeatureEncoder
    clock: EncounterClock  # dates the history of dataset-format input (``readmit predict``)
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


def needs_explanation(
    band: str, non_readmittable: bool, explain_bands: Collection[str] | None
) -> bool:
    """Whether a score in ``band`` gets factors under ``explain_bands`` (None: every band).

    The one rule: the scorer explaining inline and the scorer marking a score
    ``factors_pending`` for the explainer stage must agree on which scores carry factors.
    """
    return not non_readmittable and (explain_bands is None or band in explain_bands)


class ScoringModel:
    """A loaded, verified model version (see :class:`model_store.registry.Registry`)."""

    def __init__(self, trained: TrainedModel, manifest: dict[str, Any]) -> None:
        self.trained = trained
        self.manifest = manifest
        self.version: str = str(manifest["version"])

    def compile_in_background(
        self, still_wanted: Callable[[], bool] = lambda: True
    ) -> threading.Thread | None:
        """Compile a LightGBM forest to native code while this model keeps scoring.

        For long-running scorers only: compiling costs seconds of one core per hundred
        trees (~35 s and ~0.6 GB at peak for 800 trees) and pays off after about a million
        scored rows. One compile runs at a time per process, and a queued one is skipped
        when ``still_wanted()`` says the model has left service meanwhile (a hot reload).
        ``None`` when the family has nothing to compile.
        """
        if self.trained.model.name != "lgbm":
            return None
        thread = threading.Thread(
            target=self._compile, args=(still_wanted,), name="compile-forest", daemon=True
        )
        thread.start()
        return thread

    def _compile(self, still_wanted: Callable[[], bool]) -> None:
        with _ONE_COMPILE_AT_A_TIME:
            if not still_wanted():
                log.info("forest compilation skipped", extra={"model_version": self.version})
                return
            try:
                seconds = self.trained.model.compile_trees()
            except Exception:  # the interpreter keeps scoring; compiled code is an optimisation
                log.exception("forest compilation failed", extra={"model_version": self.version})
                return
        log.info(
            "forest compiled",
            extra={"model_version": self.version, "seconds": round(seconds or 0.0, 1)},
        )

    def predict_proba(self, records: Sequence[FeatureRecord]) -> np.ndarray:
        """Calibrated readmission probabilities, one per record (numpy only)."""
        if not records:
            return np.empty(0, dtype=np.float64)
        return self.trained.predict_matrix(self.trained.encoder.encode_records(records))

    def score(
        self,
        records: Sequence[FeatureRecord],
        *,
        explain: bool = True,
        explain_bands: Collection[str] | None = None,
    ) -> list[Prediction]:
        """Probability, band, top factors and interventions for each record.

        ``explain_bands`` limits the (costly: TreeSHAP is ~2.5 ms a row for the 800-tree
        champion) explanations to scores in those bands; the others carry no factors, and
        their interventions follow from the band alone. Non-readmittable records are
        never explained and get no interventions (see :class:`Prediction`).
        """
        if not records:
            return []
        trained = self.trained
        values = [_record_values(r) for r in records]
        matrix = trained.encoder.encode_tuples(values)
        raw = trained.model.raw_proba(matrix)
        probabilities = trained.calibrator.transform(raw)
        bands = [trained.bands.band(float(p)) for p in probabilities]
        closed = [is_non_readmittable(r) for r in records]
        explained: list[Explanation | None] = [None] * len(records)
        if explain:
            rows = [
                i for i, b in enumerate(bands) if needs_explanation(b, closed[i], explain_bands)
            ]
            if rows:
                found = explain_rows(
                    trained.model.contributions(matrix[rows], trained.groups),
                    trained.sources,
                    [values[i] for i in rows],
                    trained.code_labels,
                    raw[rows],
                    trained.calibrator.transform,
                )
                for i, explanation in zip(rows, found, strict=True):
                    explained[i] = explanation
        return [
            self._prediction(record, float(probabilities[i]), bands[i], explained[i], closed[i])
            for i, record in enumerate(records)
        ]

    @staticmethod
    def _prediction(
        record: FeatureRecord,
        probability: float,
        band: RiskBand,
        explanation: Explanation | None,
        non_readmittable: bool,
    ) -> Prediction:
        if non_readmittable:
            return Prediction(probability, band, (), (), non_readmittable=True)
        factors = explanation.factors if explanation else ()
        interventions = recommend(band, factors, a1c_result=record.A1Cresult, age=record.age)
        quality = explanation.data_quality if explanation else ()
        return Prediction(probability, band, factors, interventions, data_quality=quality)
