"""Training: patient-level split, grouped-CV tuning, calibration, evaluation, registration.

The rules (also in model_store/README.md):

* encounters discharged to death or hospice (``NON_READMITTABLE_DISPOSITIONS``) are
  excluded from training and evaluation — they cannot be readmitted;
* history columns are computed on the whole file first, from each patient's *earlier*
  encounters only (``fhir_mappings.history``), as serving computes them;
* 20 % of *patients* are held out as the test set (GroupShuffleSplit, fixed seed); the
  other 80 % are split into 4 patient-grouped, stratified folds for tuning and for the
  out-of-fold predictions that fit the calibrator and the band thresholds;
* the test set is used for reporting only — not for tuning, calibration, bands or the
  choice of champion;
* champion = the model of the run with the highest out-of-fold ROC-AUC; it replaces the
  registry's champion when it beats that champion's out-of-fold ROC-AUC, or when the
  current champion cannot be loaded (e.g. trained on an older feature set).
"""

from __future__ import annotations

import logging
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from fhir_mappings.codes.dataset_ids import id_tables
from model_store.bands import choose_bands
from model_store.calibration import fit_calibrator
from model_store.encoding import FeatureEncoder
from model_store.encounter_clock import EncounterClock, fit_encounter_clock
from model_store.evaluation import (
    SUBGROUP_COLUMNS,
    binary_metrics,
    delong_auc,
    expected_calibration_error,
    subgroup_metrics,
)
from model_store.models import GRIDS, MODEL_LABELS, MODEL_NAMES, UnknownModelError, fit_model
from model_store.registry import ModelRegistryError, Registry
from model_store.serving import TrainedModel

if TYPE_CHECKING:
    import pandas as pd

    from readmit_core.settings import Settings

log = logging.getLogger(__name__)

TEST_FRACTION = 0.2
N_FOLDS = 4
EMBEDDED_CHAMPION: Final = "lgbm"  # the family ``ensure_champion`` trains on a fresh machine
Progress = Callable[[str], None]
WORKERS = 2  # processes for cross-validation folds (the target machine has 2 cores)


@dataclass
class PreparedData:
    """The split, encoded data every model of a run shares."""

    train: pd.DataFrame
    test: pd.DataFrame
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    encoder: FeatureEncoder
    clock: EncounterClock
    data_info: dict[str, Any]


def prepare(data_path: Path, *, sample_patients: int | None, seed: int) -> PreparedData:
    """Load, split by patient, add history, exclude non-readmittable stays, encode."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    from model_store import dataset

    frame = dataset.load_dataset(data_path)
    rows_total = len(frame)
    if sample_patients is not None:  # whole patients, so their history stays complete
        frame = dataset.sample_patients(frame, sample_patients, seed)
    keep = dataset.readmittable(frame).to_numpy()
    y = dataset.target(frame[keep])
    patients = frame.loc[keep, "patient_nbr"].to_numpy()
    splitter = GroupShuffleSplit(n_splits=1, test_size=TEST_FRACTION, random_state=seed)
    train_index, test_index = next(splitter.split(patients, y, groups=patients))
    # The clock is fitted on the training patients only; history then uses every stay.
    clock = fit_encounter_clock(frame, set(patients[train_index]))
    frame = dataset.add_history(frame, clock)[keep].reset_index(drop=True)
    train, test = frame.iloc[train_index], frame.iloc[test_index]
    train_tuples = dataset.feature_tuples(train)
    encoder = FeatureEncoder().fit(train_tuples)
    x_train = encoder.encode_tuples(train_tuples)
    x_test = encoder.encode_tuples(dataset.feature_tuples(test))
    y_train, y_test = y[train_index], y[test_index]
    folds_splitter = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    folds = list(folds_splitter.split(x_train, y_train, groups=patients[train_index]))
    info = {
        "path": str(data_path),
        "sha256": dataset.file_sha256(data_path),
        "rows_in_file": rows_total,
        "excluded_non_readmittable": int((~keep).sum()),
        "rows_used": len(frame),
        "patients_used": len(np.unique(patients)),
        "sample_patients": sample_patients,
        "encounter_clock": clock.to_json(),
        "seed": seed,
        "split": {
            "method": "GroupShuffleSplit by patient_nbr",
            "test_fraction": TEST_FRACTION,
            "train_rows": len(train),
            "test_rows": len(test),
            "train_positive_rate": float(y_train.mean()),
            "test_positive_rate": float(y_test.mean()),
            "cv": f"StratifiedGroupKFold({N_FOLDS}) by patient_nbr on the training patients",
        },
    }
    return PreparedData(train, test, x_train, x_test, y_train, y_test, folds, encoder, clock, info)


def _fold_predictions(
    name: str,
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    fit_index: np.ndarray,
    held_index: np.ndarray,
    seed: int,
) -> np.ndarray:
    model = fit_model(name, params, x[fit_index], y[fit_index], seed, n_jobs=1)
    return model.raw_proba(x[held_index])


def out_of_fold(
    name: str,
    params: dict[str, Any],
    data: PreparedData,
    seed: int,
    workers: int = WORKERS,
    progress: Progress | None = None,
) -> np.ndarray:
    """Raw out-of-fold probabilities on the training patients (grouped folds).

    Folds are fitted in ``workers`` processes, one thread each (joblib memory-maps the
    training matrix, so it is not copied per fold).
    """
    from joblib import Parallel, delayed

    arguments = [
        (name, params, data.x_train, data.y_train, fit_index, held_index, seed)
        for fit_index, held_index in data.folds
    ]
    if workers > 1:
        results = Parallel(n_jobs=workers, return_as="generator")(
            delayed(_fold_predictions)(*a) for a in arguments
        )
    else:
        results = (_fold_predictions(*a) for a in arguments)
    oof = np.zeros(len(data.y_train), dtype=np.float64)
    for i, ((_, held_index), predictions) in enumerate(zip(data.folds, results, strict=True)):
        oof[held_index] = predictions
        if progress is not None:
            progress(f"{name} fold {i + 1}/{len(data.folds)}")
    return oof


def tune(
    name: str,
    data: PreparedData,
    seed: int,
    *,
    quick: bool = False,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    """Grid search by grouped-CV ROC-AUC; returns best params, their OOF, all results.

    ``quick`` evaluates only the grid's first entry (the baseline ``readmit up`` trains).
    """
    best: tuple[float, dict[str, Any], np.ndarray] | None = None
    results = []
    for params in GRIDS[name][:1] if quick else GRIDS[name]:
        oof = out_of_fold(name, params, data, seed, progress=progress)
        auc, _ = delong_auc(data.y_train, oof)
        results.append({"params": params, "cv_roc_auc": auc})
        log.info("model %s params %s: grouped-CV ROC-AUC %.4f", name, params, auc)
        if best is None or auc > best[0]:
            best = (auc, params, oof)
    assert best is not None
    return best[1], best[2], results


def lace_baseline(data: PreparedData) -> dict[str, Any]:
    """LACE on the test patients: raw score AUC, and a Platt-calibrated probability."""
    from model_store.calibration import fit_platt
    from model_store.lace import LACE_HIGH_RISK, LACE_RULE, lace_scores

    def scores(frame: pd.DataFrame) -> np.ndarray:
        return lace_scores(
            frame["time_in_hospital"].to_numpy(),
            frame["admission_type_id"].to_numpy(),
            frame["admission_source_id"].to_numpy(),
            frame[["diag_1", "diag_2", "diag_3"]].to_numpy(),
            frame["number_emergency"].to_numpy(),
        )

    train_scores, test_scores = scores(data.train), scores(data.test)
    # LACE is a points score; a logistic map fitted on the *training* patients turns it
    # into a probability so Brier/ECE are comparable, centred on the usual cut-off.
    to_prob = fit_platt(1 / (1 + np.exp(-(train_scores - LACE_HIGH_RISK))), data.y_train)
    p_test = to_prob.transform(1 / (1 + np.exp(-(test_scores - LACE_HIGH_RISK))))
    threshold = float(to_prob.transform(np.array([0.5]))[0])
    metrics = binary_metrics(data.y_test, p_test, threshold)
    metrics["rule"] = LACE_RULE
    return metrics


def _library_versions() -> dict[str, str]:
    import joblib
    import lightgbm
    import sklearn
    import xgboost

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
        "xgboost": xgboost.__version__,
        "joblib": joblib.__version__,
    }


def train_one(
    name: str,
    data: PreparedData,
    seed: int,
    lace: dict[str, Any],
    *,
    quick: bool = False,
    progress: Progress | None = None,
) -> tuple[TrainedModel, dict[str, Any]]:
    """Tune, fit on all training patients, calibrate on OOF, evaluate on test."""
    started = time.perf_counter()
    params, oof_raw, tuning = tune(name, data, seed, quick=quick, progress=progress)
    model = fit_model(name, params, data.x_train, data.y_train, seed)
    if progress is not None:
        progress(f"{name} fitted")
    calibrator = fit_calibrator(oof_raw, data.y_train)
    oof = calibrator.transform(oof_raw)
    bands = choose_bands(data.y_train, oof)
    trained = TrainedModel(
        name=name,
        encoder=data.encoder,
        clock=data.clock,
        model=model,
        calibrator=calibrator,
        bands=bands,
        code_labels=id_tables(),
    )
    raw_test = model.raw_proba(data.x_test)
    p_test = calibrator.transform(raw_test)
    test = binary_metrics(data.y_test, p_test, bands.medium)
    test["ece_uncalibrated"] = expected_calibration_error(data.y_test, raw_test)
    test["band_counts"] = {
        band: int(sum(1 for b in bands.bands(p_test) if b == band))
        for band in ("low", "medium", "high")
    }
    subgroups = subgroup_metrics(
        data.y_test,
        p_test,
        {c: data.test[c].to_numpy() for c in SUBGROUP_COLUMNS},
        bands.medium,
        clusters=data.test["patient_nbr"].to_numpy(),
    )
    # AUCs on the out-of-fold predictions: four times the patients of the test split, so
    # a gap that is only the test split's sampling noise shows as such here. AUC only:
    # the calibrator and bands were fitted on these very scores.
    subgroups_cv = subgroup_metrics(
        data.y_train,
        oof_raw,
        {c: data.train[c].to_numpy() for c in SUBGROUP_COLUMNS},
        None,
        clusters=data.train["patient_nbr"].to_numpy(),
    )
    cv_auc, _ = delong_auc(data.y_train, oof_raw)
    created = datetime.now(UTC)
    manifest: dict[str, Any] = {
        "version": f"{name}-{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "model": name,
        "model_label": MODEL_LABELS[name],
        "created_at": created.isoformat(),
        "training_data": data.data_info,
        "library_versions": _library_versions(),
        "hyperparameters": params,
        "tuning": tuning,
        "calibration": calibrator.describe(),
        "bands": bands.as_dict(),
        "encoder": {"width": data.encoder.width, "min_count": data.encoder.min_count},
        "metrics": {
            "cv": {
                "roc_auc": cv_auc,
                "ece_calibrated": expected_calibration_error(data.y_train, oof),
                "ece_uncalibrated": expected_calibration_error(data.y_train, oof_raw),
            },
            "test": test,
            "subgroups": subgroups,
            "subgroups_cv": subgroups_cv,
            "baseline_lace": lace,
        },
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    return trained, manifest


def _cv_auc(manifest: dict[str, Any]) -> float:
    return float(manifest.get("metrics", {}).get("cv", {}).get("roc_auc", float("-inf")))


def _should_promote(registry: Registry, candidate: dict[str, Any]) -> bool:
    current = registry.champion_version()
    if current is None:
        return True
    try:
        champion = registry.load(current).manifest
    except ModelRegistryError:
        return True
    return _cv_auc(candidate) > _cv_auc(champion)


def train_models(
    data_path: Path,
    registry_root: Path,
    models: Sequence[str] = ("lr",),
    *,
    sample_patients: int | None = None,
    seed: int = 42,
    promote: bool = True,
    quick: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Train, evaluate and register each model; promote the best by the champion rule.

    ``quick`` skips the hyper-parameter search (first grid entry only). ``progress`` is
    called once per step (see :func:`training_steps`) with what was just done.
    """
    for name in models:
        if name not in MODEL_NAMES:
            raise UnknownModelError(name)
    started = time.perf_counter()
    data = prepare(Path(data_path), sample_patients=sample_patients, seed=seed)
    lace = lace_baseline(data)
    if progress is not None:
        progress("data prepared")
    registry = Registry(Path(registry_root))
    saved: list[tuple[str, dict[str, Any]]] = []
    for name in models:
        trained, manifest = train_one(name, data, seed, lace, quick=quick, progress=progress)
        manifest["run_seconds_so_far"] = round(time.perf_counter() - started, 2)
        version = registry.save(trained, manifest)
        if progress is not None:
            progress(f"{name} evaluated and registered")
        saved.append((version, manifest))
        log.info(
            "registered %s (test ROC-AUC %.4f)", version, manifest["metrics"]["test"]["roc_auc"]
        )
    if promote and saved:
        version, manifest = max(saved, key=lambda item: _cv_auc(item[1]))
        if _should_promote(registry, manifest):
            registry.promote(version)
            log.info("promoted %s to champion", version)
    return [version for version, _ in saved]


def training_steps(models: Sequence[str], *, quick: bool) -> int:
    """How many times :func:`train_models` calls ``progress`` (for a progress bar)."""
    folds = sum(N_FOLDS * (1 if quick else len(GRIDS[name])) for name in models)
    return 1 + folds + 2 * len(models)


def ensure_champion(settings: Settings) -> str:
    """The champion's version; trains and promotes the LightGBM champion when there is none.

    ``make up`` on a fresh machine serves the model the README and model card describe:
    LightGBM with the first entry of its documented grid (``models.GRIDS``), no search,
    about 110 s on 2 cores, with a progress bar on the terminal.
    """
    from tqdm import tqdm

    registry = Registry(settings.model_dir)
    try:
        return registry.load_champion().version
    except ModelRegistryError as exc:
        log.warning("no usable champion (%s); training the LightGBM champion", exc)
    models = (EMBEDDED_CHAMPION,)
    with tqdm(total=training_steps(models, quick=True), desc="training LightGBM") as bar:

        def step(done: str) -> None:
            bar.set_postfix_str(done)
            bar.update(1)

        train_models(
            settings.data_path, settings.model_dir, models, promote=True, quick=True, progress=step
        )
    version = registry.champion_version()
    if version is None:  # pragma: no cover - train_models promotes when nothing loads
        raise ModelRegistryError("training finished without a champion")
    return version


def pipeline_predict_proba(trained: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """The training pipeline's calibrated probabilities for a dataset frame.

    Encodes through the batch (data-frame) path and scores with the estimator's own
    scikit-learn ``predict_proba``: the reference the serving path must equal.
    """
    from model_store.dataset import feature_tuples

    matrix = trained.encoder.encode_tuples(feature_tuples(frame))
    return trained.calibrator.transform(trained.model.pipeline_proba(matrix))
