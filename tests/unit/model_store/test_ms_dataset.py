from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model_store import dataset


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "in.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def rows(small_csv: Path) -> pd.DataFrame:
    return pd.read_csv(small_csv, nrows=20, dtype=str, keep_default_na=False)


def test_valid_file_is_typed(small_csv: Path) -> None:
    frame = dataset.load_dataset(small_csv)
    assert frame["time_in_hospital"].dtype.kind == "i"
    assert all(isinstance(v, str) for v in frame["diag_1"].head(50))
    assert set(frame["A1Cresult"]) <= {"None", "Norm", ">7", ">8"}


def test_missing_column_is_named(tmp_path: Path, rows: pd.DataFrame) -> None:
    with pytest.raises(dataset.MissingColumnsError, match="num_medications"):
        dataset.load_dataset(_write(tmp_path, rows.drop(columns=["num_medications"])))


def test_unknown_column_is_named(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows["shoe_size"] = "42"
    with pytest.raises(dataset.UnknownColumnsError, match="shoe_size"):
        dataset.load_dataset(_write(tmp_path, rows))


def test_unparseable_value_names_column_and_row(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows.loc[6, "time_in_hospital"] = "three"
    with pytest.raises(dataset.InvalidValueError) as error:
        dataset.load_dataset(_write(tmp_path, rows))
    assert error.value.column == "time_in_hospital"
    assert error.value.row == 7
    assert "'three'" in str(error.value)


def test_bad_target_value_is_refused(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows.loc[0, "readmitted"] = "maybe"
    with pytest.raises(dataset.InvalidValueError, match="readmitted"):
        dataset.load_dataset(_write(tmp_path, rows))


def test_target_is_optional_for_scoring(tmp_path: Path, rows: pd.DataFrame) -> None:
    path = _write(tmp_path, rows.drop(columns=["readmitted"]))
    assert len(dataset.load_dataset(path, require_target=False)) == 20
    with pytest.raises(dataset.MissingColumnsError, match="readmitted"):
        dataset.load_dataset(path)


@pytest.mark.parametrize("content", ["", "encounter_id,patient_nbr\n"])
def test_empty_inputs(tmp_path: Path, content: str, rows: pd.DataFrame) -> None:
    path = tmp_path / "empty.csv"
    if content:
        content = ",".join(rows.columns) + "\n"
    path.write_text(content)
    with pytest.raises(dataset.EmptyDatasetError):
        dataset.load_dataset(path)


def test_duplicate_encounter_is_refused(tmp_path: Path, rows: pd.DataFrame) -> None:
    rows.loc[3, "encounter_id"] = rows.loc[1, "encounter_id"]
    with pytest.raises(dataset.InvalidValueError, match="row 4"):
        dataset.load_dataset(_write(tmp_path, rows))


def test_non_readmittable_dispositions_are_flagged(small_csv: Path) -> None:
    frame = dataset.load_dataset(small_csv)
    keep = dataset.readmittable(frame)
    dropped = set(frame.loc[~keep, "discharge_disposition_id"])
    assert dropped
    assert dropped <= {11, 13, 14, 19, 20, 21}


def test_sampling_keeps_whole_patients(small_csv: Path) -> None:
    frame = dataset.load_dataset(small_csv)
    sample = dataset.sample_patients(frame, 100, seed=1)
    assert sample["patient_nbr"].nunique() == 100
    for patient, count in sample["patient_nbr"].value_counts().items():
        assert count == (frame["patient_nbr"] == patient).sum()
