"""Shared fixtures: one small logistic-regression model trained once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model_store import dataset
from model_store.encounter_clock import fit_encounter_clock
from model_store.registry import Registry
from model_store.serving import ScoringModel
from model_store.train import train_models
from readmit_core.settings import PROJECT_ROOT

DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


@pytest.fixture(scope="session")
def data_path() -> Path:
    return DATA


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3,000 rows of the development data as a plain CSV file."""
    path = tmp_path_factory.mktemp("data") / "small.csv"
    pd.read_csv(DATA, nrows=3000, dtype=str, keep_default_na=False).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_frame(small_csv: Path) -> pd.DataFrame:
    """``small_csv`` loaded and validated, with history columns computed within the file."""
    frame = dataset.load_dataset(small_csv)
    return dataset.add_history(frame, fit_encounter_clock(frame, frame["patient_nbr"].unique()))


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    train_models(DATA, root, ("lr",), sample_patients=8000, seed=7)
    return root


@pytest.fixture(scope="session")
def champion(registry_root: Path) -> ScoringModel:
    return Registry(registry_root).load_champion()
