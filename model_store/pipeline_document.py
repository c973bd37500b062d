"""Everything around a forest's booster as plain JSON: a tree champion loads without pickle.

A LightGBM/XGBoost version is stored as the booster's own file (LightGBM's text model,
XGBoost's UBJSON; neither can run code when read) plus this document: the fitted
encoder's vocabularies and feature layout, the encounter clock, the calibrator, the
risk bands, the code labels and the training-mean reference vector. All of it is
numbers, strings and lists, so ``json.loads`` rebuilds it exactly (floats round-trip
through their shortest repr; a vocabulary value keeps its JSON type: int, str, float).

The other families (logistic regression, random forest, MLP) are scikit-learn objects
with no non-executable format of their own and stay joblib (model_store/registry.py).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from model_store.bands import BandThresholds
from model_store.calibration import Calibrator
from model_store.encoding import EncodedFeature, FeatureEncoder
from model_store.encounter_clock import EncounterClock
from model_store.models import FittedModel
from model_store.serving import TrainedModel
from readmit_core.errors import ReadmitError

DOCUMENT_FORMAT: Final = 1
_PLAIN = (str, int, float, bool, type(None))


class PipelineDocumentError(ReadmitError, ValueError):
    """A value that JSON cannot carry exactly, or a document this code cannot read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _plain(value: Any) -> Any:
    """A vocabulary value as the JSON type that compares and hashes equal to it."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _PLAIN) or (isinstance(value, float) and value != value):
        raise PipelineDocumentError(f"vocabulary value {value!r} has no exact JSON form")
    return value


def to_document(trained: TrainedModel) -> dict[str, Any]:
    encoder, calibrator, bands, clock = (
        trained.encoder,
        trained.calibrator,
        trained.bands,
        trained.clock,
    )
    return {
        "format": DOCUMENT_FORMAT,
        "name": trained.name,
        "encoder": {
            "min_count": encoder.min_count,
            "features": [[f.name, f.source] for f in encoder.features],
            "vocabularies": {
                key: [[_plain(value), slot] for value, slot in slots.items()]
                for key, slots in encoder.vocabularies.items()
            },
        },
        "clock": clock.to_json(),
        "calibrator": {
            "method": calibrator.method,
            "slope": calibrator.slope,
            "intercept": calibrator.intercept,
            "knots_x": list(calibrator.knots_x),
            "knots_y": list(calibrator.knots_y),
        },
        "bands": bands.as_dict(),
        "code_labels": {
            column: [[int(code), text] for code, text in labels.items()]
            for column, labels in trained.code_labels.items()
        },
        "model": {
            "name": trained.model.name,
            "params": trained.model.params,
            "reference": [float(x) for x in trained.model.reference],
        },
    }


def from_document(document: dict[str, Any], booster: bytes) -> TrainedModel:
    """The TrainedModel ``to_document`` described, around the booster read from its file."""
    if document.get("format") != DOCUMENT_FORMAT:
        raise PipelineDocumentError(f"pipeline document format {document.get('format')!r}")
    enc = document["encoder"]
    encoder = FeatureEncoder(
        min_count=int(enc["min_count"]),
        vocabularies={
            key: {value: int(slot) for value, slot in pairs}
            for key, pairs in enc["vocabularies"].items()
        },
        features=[EncodedFeature(str(name), str(source)) for name, source in enc["features"]],
    )
    cal = document["calibrator"]
    bands = document["bands"]
    model = document["model"]
    return TrainedModel(
        name=str(document["name"]),
        encoder=encoder,
        clock=EncounterClock(
            tuple(int(e) for e in document["clock"]["era_edges"]),
            tuple(float(r) for r in document["clock"]["ids_per_day"]),
        ),
        model=FittedModel.from_native(
            str(model["name"]),
            dict(model["params"]),
            booster,
            np.asarray(model["reference"], dtype=np.float64),
        ),
        calibrator=Calibrator(
            str(cal["method"]),
            float(cal["slope"]),
            float(cal["intercept"]),
            tuple(float(x) for x in cal["knots_x"]),
            tuple(float(y) for y in cal["knots_y"]),
        ),
        bands=BandThresholds(float(bands["medium"]), float(bands["high"]), str(bands["rule"])),
        code_labels={
            column: {int(code): str(text) for code, text in pairs}
            for column, pairs in document["code_labels"].items()
        },
    )
