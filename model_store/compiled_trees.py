"""LightGBM forests compiled to native code (lleaves) for the scorer's hot path.

LightGBM walks its trees through a generic interpreter: on this machine that caps a
400-tree champion at about 60,000 rows/s on one core, and it is the larger half of the
batch scoring cost. lleaves turns the same model text into machine code through LLVM
(about 3.8x faster here, equal to LightGBM's own numbers to ~1e-15; tests hold it to
1e-9 of the training pipeline's ``predict_proba``).

Compiling takes seconds per hundred trees, so it happens in memory when a scorer loads
a model — in the background, before the scorer takes partitions or swaps a reloaded
champion in (``scorer.consumer.Scorer.ready``) — and never from a file: a cached native
object would be code loaded from disk without the registry's sha256 check, which is
exactly what the registry exists to prevent.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import lightgbm

log = logging.getLogger(__name__)


class CompiledForest:
    """A LightGBM booster's forest as native code; ``predict`` returns probabilities."""

    def __init__(self, booster: lightgbm.Booster) -> None:
        import lleaves

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="readmit-forest-") as tmp:
            path = Path(tmp) / "model.txt"
            path.write_text(booster.model_to_string())
            self._model = lleaves.Model(model_file=str(path))
            self._model.compile()
        self.compile_seconds = time.perf_counter() - started

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of the positive class, computed in the calling thread."""
        return np.asarray(self._model.predict(matrix, n_jobs=1), dtype=np.float64)
