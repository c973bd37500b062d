"""Reading the UCI dataset format, validating it, and adding the history columns.

Every CSV that enters the model store (training data, ``readmit predict`` input) goes
through :func:`load_dataset`, which either returns a clean, typed frame or raises one
:class:`DatasetError` that names the column and the row at fault — a bad file is the
user's to fix, so the message must say where.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fhir_mappings.history import history_features
from model_store.encounter_clock import EncounterClock
from readmit_core.errors import ReadmitError
from readmit_core.features import (
    DATASET_COLUMNS,
    FEATURE_COLUMNS,
    HISTORY_COLUMNS,
    INTEGER_COLUMNS,
    NON_READMITTABLE_DISPOSITIONS,
    POSITIVE_TARGET,
    TARGET_COLUMN,
    FeatureRecord,
)

TARGET_VALUES = ("<30", ">30", "NO")
_INPUT_INTEGERS = tuple(c for c in DATASET_COLUMNS if c in INTEGER_COLUMNS)


class DatasetError(ReadmitError, ValueError):
    """A dataset file cannot be used; the message names the column and row at fault."""

    status = 422
    issue_code = "invalid"


class EmptyDatasetError(DatasetError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: the file has no data rows")
        self.path = path


class MissingColumnsError(DatasetError):
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        super().__init__(f"{path}: missing column(s): {', '.join(columns)}")
        self.path = path
        self.columns = tuple(columns)


class UnknownColumnsError(DatasetError):
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        super().__init__(f"{path}: unknown column(s): {', '.join(columns)}")
        self.path = path
        self.columns = tuple(columns)


class InvalidValueError(DatasetError):
    """``row`` is the 1-based data row (the file line is ``row + 1``, after the header)."""

    def __init__(self, path: Path, column: str, row: int, value: str, expected: str) -> None:
        super().__init__(
            f"{path}: column {column!r}, row {row} (line {row + 1}): "
            f"cannot read {value!r} as {expected}"
        )
        self.path = path
        self.column = column
        self.row = row
        self.value = value


def file_sha256(path: Path) -> str:
    """Fingerprint of the training file, stored in every manifest."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(path: Path, *, require_target: bool = True) -> pd.DataFrame:
    """Read a CSV in the dataset's original format, validated and typed.

    Categorical values are kept as the dataset's strings (``?``, ``None`` included);
    unknown *values* are not an error (the encoder maps them to "unknown"), unknown or
    missing *columns* and unparseable numbers are.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError as exc:
        raise EmptyDatasetError(path) from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    required = [c for c in DATASET_COLUMNS if c != TARGET_COLUMN or require_target]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MissingColumnsError(path, missing)
    unknown = [c for c in frame.columns if c not in DATASET_COLUMNS]
    if unknown:
        raise UnknownColumnsError(path, unknown)
    if frame.empty:
        raise EmptyDatasetError(path)
    for column in (*_INPUT_INTEGERS, "encounter_id", "patient_nbr"):
        frame[column] = _parse_integers(path, frame, column)
    if TARGET_COLUMN in frame.columns:
        bad = ~frame[TARGET_COLUMN].isin(TARGET_VALUES)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidValueError(
                path, TARGET_COLUMN, row + 1, frame[TARGET_COLUMN].iloc[row], "<30, >30 or NO"
            )
    duplicated = frame["encounter_id"].duplicated()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise InvalidValueError(
            path, "encounter_id", row + 1, str(frame["encounter_id"].iloc[row]), "a unique id"
        )
    return frame.reset_index(drop=True)


def _parse_integers(path: Path, frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column].str.strip()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna() | (parsed != parsed.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InvalidValueError(path, column, row + 1, frame[column].iloc[row], "an integer")
    return parsed.astype(np.int64)


def add_history(frame: pd.DataFrame, clock: EncounterClock | None) -> pd.DataFrame:
    """Add HISTORY_COLUMNS from each patient's rows with a smaller encounter_id.

    Calls :func:`fhir_mappings.history.history_features` — the function serving calls —
    with the patient's earlier records in encounter order and the ``clock``'s estimate
    of the days since the previous one was admitted (``None``: unknown); never a label,
    never a later row. Computed on the full file, before any exclusion or split, because
    at serving time the system has seen every earlier stay, whatever its outcome.
    """
    columns = [c for c in FEATURE_COLUMNS if c not in HISTORY_COLUMNS]
    names = ["encounter_id", "patient_nbr", *columns]
    ordered = frame.sort_values(["patient_nbr", "encounter_id"], kind="stable")
    repeat = ordered["patient_nbr"].duplicated(keep=False).to_numpy()
    prior: list[FeatureRecord] = []
    current_patient: object = None
    previous_id = 0
    rows: list[dict[str, int]] = []
    for values, keep in zip(ordered[names].itertuples(index=False, name=None), repeat, strict=True):
        if values[1] != current_patient:
            current_patient, prior = values[1], []
        days = clock.days_between(previous_id, values[0]) if prior and clock else None
        rows.append(history_features(prior, days))
        if keep:  # only patients with a later stay need the record kept
            prior.append(record_from_values(dict(zip(names, values, strict=True))))
            previous_id = values[0]
    history = pd.DataFrame(rows, index=ordered.index).reindex(frame.index)
    out = frame.copy()
    for column in HISTORY_COLUMNS:
        out[column] = history[column].to_numpy(dtype=np.int64)
    return out


def record_from_values(data: dict[str, Any]) -> FeatureRecord:
    """A dataset row (dataset column names) as the FeatureRecord serving would receive."""
    data = dict(data)
    data["encounter_id"] = str(data["encounter_id"])
    data["patient_nbr"] = str(data["patient_nbr"])
    data.pop(TARGET_COLUMN, None)
    return FeatureRecord.model_validate(data)


def readmittable(frame: pd.DataFrame) -> pd.Series:
    """Rows whose discharge allows a readmission (not death, not hospice)."""
    return ~frame["discharge_disposition_id"].isin(sorted(NON_READMITTABLE_DISPOSITIONS))


def target(frame: pd.DataFrame) -> np.ndarray:
    """1 for a readmission within 30 days, else 0."""
    return (frame[TARGET_COLUMN] == POSITIVE_TARGET).to_numpy(dtype=np.int64)


def sample_patients(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """All encounters of ``n`` randomly chosen patients (sampling never splits a patient)."""
    patients = frame["patient_nbr"].unique()
    if n >= len(patients):
        return frame
    chosen = np.random.default_rng(seed).choice(patients, size=n, replace=False)
    return frame[frame["patient_nbr"].isin(chosen)].reset_index(drop=True)


def feature_tuples(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as value tuples in FEATURE_COLUMNS order for :meth:`FeatureEncoder.encode_tuples`.

    Python scalars (not numpy ones), exactly the values a FeatureRecord would hold.
    """
    return list(frame[list(FEATURE_COLUMNS)].itertuples(index=False, name=None))
