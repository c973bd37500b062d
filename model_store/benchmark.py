"""Scoring benchmark (``readmit bench scoring`` calls :func:`measure_scoring`).

Measures, in one run on the same records:

* single-event latency of the serving path, including feature construction (encoding a
  ``FeatureRecord``) — probability only, and the full ``score`` with explanation and
  interventions;
* batch throughput (rows/s on one core) of ``predict_proba`` and of ``score``;
* for comparison, the conventional path: a one-row pandas DataFrame built from the
  record, encoded through the data-frame path and passed to the estimator's scikit-learn
  ``predict_proba`` as a named-column DataFrame.

A benchmark, not a test: it reports numbers, it asserts nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from model_store.serving import ScoringModel
from readmit_core.features import FeatureRecord


def _median_ms(
    action: Callable[[FeatureRecord], object], records: Sequence[FeatureRecord]
) -> float:
    timings = []
    for record in records:
        started = time.perf_counter()
        action(record)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000.0


def _rows_per_second(action: Callable[[], object], rows: int, repeat: int = 5) -> float:
    """Median throughput of ``repeat`` runs of a whole batch."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    return rows / median if median > 0 else float("inf")


def _dataframe_path(model: ScoringModel) -> Callable[[FeatureRecord], object]:
    import pandas as pd

    from model_store.dataset import feature_tuples

    trained = model.trained
    names = trained.encoder.feature_names

    def predict(record: FeatureRecord) -> object:
        frame = pd.DataFrame([record.columns()])
        matrix = trained.encoder.encode_tuples(feature_tuples(frame))
        raw = trained.model.pipeline_proba(pd.DataFrame(matrix, columns=names))
        return trained.calibrator.transform(raw)

    return predict


def measure_scoring(
    model: ScoringModel, records: Sequence[FeatureRecord], *, single_events: int = 500
) -> dict[str, Any]:
    """Latency and throughput of the serving path next to the pandas/sklearn path.

    A LightGBM model is measured twice: with LightGBM's own predictor, then compiled to
    native code as a long-running scorer uses it (compile time reported).
    """
    import warnings

    if not records:
        raise ValueError("measure_scoring needs at least one record")
    sample = list(records[:single_events])
    model.score(sample[:5])  # warm caches (lru, lookup tables, membership matrix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feature-name warnings of the comparison path
        dataframe_ms = _median_ms(_dataframe_path(model), sample[:100])
    result: dict[str, Any] = {
        "model_version": model.version,
        "model": model.trained.name,
        "records": len(records),
        "sklearn_one_row_dataframe_ms_median": dataframe_ms,
        "serving": _serving_numbers(model, records, sample, dataframe_ms),
    }
    compile_seconds = model.trained.model.compile_trees()
    if compile_seconds is not None:
        compiled = _serving_numbers(model, records, sample, dataframe_ms)
        result["compile_seconds"] = compile_seconds
        result["serving_compiled"] = compiled
        result["compiled_batch_speedup"] = (
            compiled["batch_predict_proba_rows_per_s"]
            / result["serving"]["batch_predict_proba_rows_per_s"]
        )
    return result


def _serving_numbers(
    model: ScoringModel,
    records: Sequence[FeatureRecord],
    sample: Sequence[FeatureRecord],
    dataframe_ms: float,
) -> dict[str, float]:
    single_ms = _median_ms(lambda r: model.predict_proba([r]), sample)
    return {
        "single_predict_proba_ms_median": single_ms,
        "single_speedup_vs_sklearn_dataframe": dataframe_ms / single_ms,
        "single_score_explained_ms_median": _median_ms(lambda r: model.score([r]), sample),
        "batch_predict_proba_rows_per_s": _rows_per_second(
            lambda: model.predict_proba(records), len(records)
        ),
        "batch_score_explained_rows_per_s": _rows_per_second(
            lambda: model.score(records), len(records), repeat=1
        ),
    }
