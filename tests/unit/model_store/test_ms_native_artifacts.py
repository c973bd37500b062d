"""Forests are stored in their own formats and load without unpickling, scoring identically.

LightGBM's text model and XGBoost's UBJSON are data, not code; everything around the
booster is ``pipeline.json``. Versions registered before (one joblib file) still load:
they are signed and verified like any other. Scores over the whole development file must
equal the in-memory model's (and the joblib copy's) to 1e-12.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fhir_mappings.codes.dataset_ids import id_tables
from model_store import dataset, signing
from model_store.bands import choose_bands
from model_store.calibration import fit_isotonic, fit_platt
from model_store.models import fit_model
from model_store.pipeline_document import PipelineDocumentError, from_document, to_document
from model_store.registry import (
    ARTIFACT,
    BadSignatureError,
    Registry,
    UnknownVersionError,
    sha256_file,
)
from model_store.serving import TrainedModel
from model_store.train import prepare

SMALL = {
    "lgbm": {"n_estimators": 60, "num_leaves": 15, "min_child_samples": 50},
    "xgb": {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.1},
}
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def forests(data_path: Path) -> tuple[dict[str, TrainedModel], np.ndarray]:
    """Both forests trained on a sample; the whole development file encoded for scoring."""
    data = prepare(data_path, sample_patients=6000, seed=3)
    trained = {}
    for name, params in SMALL.items():
        model = fit_model(name, params, data.x_train, data.y_train, seed=3)
        raw = model.raw_proba(data.x_train)
        fit = fit_platt if name == "lgbm" else fit_isotonic  # both calibrators' fields
        trained[name] = TrainedModel(
            name=name,
            encoder=data.encoder,
            clock=data.clock,
            model=model,
            calibrator=fit(raw, data.y_train),
            bands=choose_bands(data.y_train, raw),
            code_labels=id_tables(),
        )
    frame = dataset.add_history(dataset.load_dataset(data_path), data.clock)
    return trained, data.encoder.encode_tuples(dataset.feature_tuples(frame))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    key = Ed25519PrivateKey.generate()
    return Registry(tmp_path / "models", verify_key=key.public_key(), signing_key=key)


def _save_legacy(registry: Registry, trained: TrainedModel, version: str) -> None:
    """What registration wrote before native files: one signed joblib file."""
    directory = registry.root / version
    directory.mkdir(parents=True)
    joblib.dump(trained, directory / ARTIFACT, compress=3)
    saved = Registry(registry.root, registry.verify_key(), registry.signing_key())
    manifest = {"version": version, "feature_set": {"hash": _running_hash()}}
    manifest["artifact_sha256"] = sha256_file(directory / ARTIFACT)
    text = json.dumps(manifest, indent=2)
    message = signing.signed_message(version, text.encode(), manifest["artifact_sha256"])
    signature = signing.sign(saved.signing_key(), message)
    (directory / "signature.json").write_text(json.dumps(signature.to_json()))
    (directory / "manifest.json").write_text(text)


def _running_hash() -> str:
    from model_store.feature_set import feature_set_hash

    return feature_set_hash()


def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a forest was unpickled")

    for target in ("joblib.load", "pickle.load", "pickle.loads"):
        monkeypatch.setattr(target, forbidden)


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)))


@pytest.mark.parametrize("name", list(SMALL))
def test_forest_is_stored_natively_and_scores_identically_without_pickle(
    name: str,
    forests: tuple[dict[str, TrainedModel], np.ndarray],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trained, matrix = forests
    version = registry.save(trained[name], {"version": f"{name}-native"})
    directory = registry.root / version
    booster_file = {"lgbm": "model.txt", "xgb": "model.ubj"}[name]
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [booster_file, "pipeline.json", "manifest.json", "signature.json"]
    )
    manifest = registry.manifest(version)
    assert manifest["artifact_format"] == {"lgbm": "lightgbm-text", "xgb": "xgboost-ubj"}[name]
    assert set(manifest["artifact_files"]) == {booster_file, "pipeline.json"}
    head = (directory / booster_file).read_bytes()[:5]
    assert head.startswith(b"tree\n" if name == "lgbm" else b"{")  # text / UBJSON object

    _no_unpickling(monkeypatch)
    loaded = registry.load(version)
    reference = trained[name].predict_matrix(matrix)
    assert matrix.shape[0] > 90_000  # the whole development file
    assert _max_difference(loaded.trained.predict_matrix(matrix), reference) <= TOLERANCE
    groups = trained[name].groups
    assert (
        _max_difference(
            loaded.trained.model.contributions(matrix[:500], groups),
            trained[name].model.contributions(matrix[:500], groups),
        )
        <= TOLERANCE
    )
    assert loaded.trained.bands == trained[name].bands
    assert loaded.trained.calibrator == trained[name].calibrator


@pytest.mark.parametrize("name", list(SMALL))
def test_a_joblib_forest_registered_before_still_loads_identically(
    name: str, forests: tuple[dict[str, TrainedModel], np.ndarray], registry: Registry
) -> None:
    trained, matrix = forests
    _save_legacy(registry, trained[name], f"{name}-legacy")
    assert registry.verify(f"{name}-legacy")["artifact_sha256"]
    loaded = registry.load(f"{name}-legacy")
    native = registry.load(registry.save(trained[name], {"version": f"{name}-native"}))
    assert (
        _max_difference(
            loaded.trained.predict_matrix(matrix), native.trained.predict_matrix(matrix)
        )
        <= TOLERANCE
    )


@pytest.mark.parametrize("changed", ["model.txt", "pipeline.json"])
def test_a_changed_native_file_is_refused(
    changed: str, forests: tuple[dict[str, TrainedModel], np.ndarray], registry: Registry
) -> None:
    version = registry.save(forests[0]["lgbm"], {"version": "lgbm-native"})
    path = registry.root / version / changed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] = ord("7") if data[len(data) // 2] != ord("7") else ord("8")
    path.write_bytes(bytes(data))
    with pytest.raises(BadSignatureError):
        registry.load(version)
    path.unlink()
    with pytest.raises(UnknownVersionError):
        registry.load(version)


def test_a_pipeline_swapped_after_verification_is_not_what_loads(
    forests: tuple[dict[str, TrainedModel], np.ndarray],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pipeline.json and the booster are parsed from the bytes that were verified: a
    document rewritten between the check and the use changes nothing that is served."""
    trained = forests[0]["lgbm"]
    version = registry.save(trained, {"version": "lgbm-native"})
    path = registry.root / version / "pipeline.json"
    document = json.loads(path.read_text())
    document["bands"]["high"] = 0.0  # every patient "high": an attacker's edit
    swapped = json.dumps(document).encode()
    real_verifies = signing.verifies

    def verify_then_swap(key: Any, value: bytes, message: bytes) -> bool:
        ok = real_verifies(key, value, message)
        path.write_bytes(swapped)
        return ok

    monkeypatch.setattr(signing, "verifies", verify_then_swap)
    loaded = registry.load(version)
    assert path.read_bytes() == swapped
    assert loaded.trained.bands == trained.bands
    monkeypatch.setattr(signing, "verifies", real_verifies)
    with pytest.raises(BadSignatureError):
        registry.load(version)


def test_the_document_carries_everything_exactly(
    forests: tuple[dict[str, TrainedModel], np.ndarray],
) -> None:
    original = forests[0]["xgb"]
    document = json.loads(json.dumps(to_document(original)))
    rebuilt = from_document(document, original.model.native_bytes())
    assert rebuilt.encoder == original.encoder
    assert rebuilt.clock == original.clock
    assert rebuilt.calibrator == original.calibrator
    assert rebuilt.bands == original.bands
    assert rebuilt.code_labels == original.code_labels
    np.testing.assert_array_equal(rebuilt.model.reference, original.model.reference)
    assert rebuilt.sources == original.sources
    with pytest.raises(PipelineDocumentError):
        from_document({**document, "format": 99}, b"")


def test_a_value_json_cannot_carry_is_refused_at_registration(
    forests: tuple[dict[str, TrainedModel], np.ndarray], registry: Registry
) -> None:
    trained = pickle.loads(pickle.dumps(forests[0]["lgbm"]))
    trained.encoder.vocabularies["race"][("a", "tuple")] = 999
    with pytest.raises(PipelineDocumentError):
        registry.save(trained, {"version": "lgbm-odd"})
    assert not (registry.root / "lgbm-odd").exists()  # nothing half-written


def test_other_families_stay_joblib(registry_root: Path) -> None:
    registry = Registry(registry_root)
    version = registry.champion_version()
    assert version is not None
    assert registry.manifest(version)["artifact_format"] == "joblib"
    assert (registry_root / version / ARTIFACT).exists()
