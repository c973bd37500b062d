from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_store.models import GRIDS, UnknownModelError
from model_store.registry import Registry
from model_store.train import ensure_champion, prepare, train_models, training_steps
from readmit_core.features import NON_READMITTABLE_DISPOSITIONS
from readmit_core.settings import Settings


@pytest.fixture(scope="module")
def prepared(data_path: Path):  # type: ignore[no-untyped-def]
    return prepare(data_path, sample_patients=3000, seed=3)


def test_split_is_by_patient_and_excludes_non_readmittable(prepared) -> None:  # type: ignore[no-untyped-def]
    train_patients = set(prepared.train["patient_nbr"])
    assert not train_patients & set(prepared.test["patient_nbr"])
    for frame in (prepared.train, prepared.test):
        assert not set(frame["discharge_disposition_id"]) & NON_READMITTABLE_DISPOSITIONS
    patients = prepared.train["patient_nbr"].to_numpy()
    for fit_index, held_index in prepared.folds:
        assert not set(patients[fit_index]) & set(patients[held_index])
    assert prepared.data_info["excluded_non_readmittable"] > 0


def test_preparation_is_reproducible(data_path: Path, prepared) -> None:  # type: ignore[no-untyped-def]
    again = prepare(data_path, sample_patients=3000, seed=3)
    np.testing.assert_array_equal(again.x_test, prepared.x_test)
    np.testing.assert_array_equal(again.y_train, prepared.y_train)


def test_manifest_holds_honest_metrics(registry_root: Path) -> None:
    reg = Registry(registry_root)
    version = reg.champion_version()
    assert version is not None
    manifest = reg.manifest(version)
    metrics = manifest["metrics"]
    assert 0.5 < metrics["test"]["roc_auc"] < 0.9
    assert metrics["test"]["ece"] < 0.05
    assert set(metrics["subgroups"]) == {"race", "gender", "age"}
    assert "roc_auc" in metrics["baseline_lace"]
    assert manifest["bands"]["medium"] < manifest["bands"]["high"]
    assert manifest["training_data"]["sample_patients"] == 8000


def test_unknown_model_name_is_refused(data_path: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="svm"):
        train_models(data_path, tmp_path, ("svm",))


def test_ensure_champion_keeps_a_loadable_champion(registry_root: Path) -> None:
    settings = Settings(model_dir=registry_root, data_path=Path("/nonexistent.csv"))
    assert ensure_champion(settings) == Registry(registry_root).champion_version()


def test_ensure_champion_trains_lightgbm_when_missing(
    small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(model_dir=tmp_path / "models", data_path=small_csv)
    version = ensure_champion(settings)
    assert version.startswith("lgbm-")
    bar = capsys.readouterr().err
    assert f"{training_steps(('lgbm',), quick=True)}/{training_steps(('lgbm',), quick=True)}" in bar
    manifest = Registry(tmp_path / "models").load(version).manifest
    assert manifest["hyperparameters"] == GRIDS["lgbm"][0]
    assert Registry(tmp_path / "models").load_champion().version == version
    assert ensure_champion(settings) == version  # second call: nothing retrained
    assert len(Registry(tmp_path / "models").list()) == 1
