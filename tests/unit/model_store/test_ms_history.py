from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fhir_mappings.history import history_features
from model_store import dataset
from model_store.encounter_clock import EncounterClock
from readmit_core.features import DAYS_SINCE_DISCHARGE_CAP, HISTORY_COLUMNS, FeatureRecord


def _record(encounter: int, **values: object) -> FeatureRecord:
    return FeatureRecord(encounter_id=str(encounter), patient_nbr="p", **values)  # type: ignore[arg-type]


def test_no_prior_encounters_gives_zeros_and_no_recent_discharge() -> None:
    expected = dict.fromkeys(HISTORY_COLUMNS, 0) | {
        "days_since_last_discharge": DAYS_SINCE_DISCHARGE_CAP
    }
    assert history_features([]) == expected
    assert history_features([], 12.0) == expected


def test_history_aggregates_only_what_it_is_given() -> None:
    prior = [
        _record(1, time_in_hospital=3, number_inpatient=2, number_emergency=5),
        _record(2, time_in_hospital=4, number_inpatient=1, number_emergency=1),
    ]
    assert history_features(prior, 20.4) == {
        "prior_encounters": 2,
        "prior_days_in_hospital": 7,
        "prior_max_inpatient": 2,
        "prior_emergency_visits": 1,
        "days_since_last_discharge": 16,  # 20 days after admission, minus a 4-day stay
    }


@pytest.mark.parametrize(
    ("days", "expected"),
    [(None, DAYS_SINCE_DISCHARGE_CAP), (2.0, 0), (4.0, 0), (34.0, 30), (900.0, 365)],
)
def test_days_since_discharge_is_clamped_to_a_year(days: float | None, expected: int) -> None:
    prior = [_record(1, time_in_hospital=4)]
    assert history_features(prior, days)["days_since_last_discharge"] == expected


def _three_stays(small_csv: Path, tmp_path: Path) -> pd.DataFrame:
    frame = pd.read_csv(small_csv, nrows=3, dtype=str, keep_default_na=False)
    frame["patient_nbr"] = "42"
    frame["encounter_id"] = ["30", "10", "20"]  # file order is not time order
    frame["time_in_hospital"] = ["5", "2", "3"]
    return frame


def test_training_history_uses_only_earlier_encounters(small_csv: Path, tmp_path: Path) -> None:
    frame = _three_stays(small_csv, tmp_path)
    path = tmp_path / "three.csv"
    frame.to_csv(path, index=False)
    clock = EncounterClock((), (1.0,))  # one id per day
    out = dataset.add_history(dataset.load_dataset(path), clock).set_index("encounter_id")
    assert out.loc[10, "prior_encounters"] == 0
    assert out.loc[20, "prior_encounters"] == 1
    assert out.loc[30, "prior_encounters"] == 2
    assert out.loc[20, "prior_days_in_hospital"] == 2
    assert out.loc[30, "prior_days_in_hospital"] == 5
    assert out.loc[10, "days_since_last_discharge"] == DAYS_SINCE_DISCHARGE_CAP
    assert out.loc[20, "days_since_last_discharge"] == 8  # 10 days between ids, 2-day stay
    assert out.loc[30, "days_since_last_discharge"] == 7


def test_history_ignores_labels_and_later_stays(small_csv: Path, tmp_path: Path) -> None:
    frame = _three_stays(small_csv, tmp_path)
    variant = frame.copy()
    variant["readmitted"] = ["<30", "<30", "<30"]
    variant.loc[variant["encounter_id"] == "30", "time_in_hospital"] = "14"
    results = []
    for name, data in (("a.csv", frame), ("b.csv", variant)):
        data.to_csv(tmp_path / name, index=False)
        out = dataset.add_history(dataset.load_dataset(tmp_path / name), EncounterClock((), (1.0,)))
        results.append(out.set_index("encounter_id")[list(HISTORY_COLUMNS)])
    pd.testing.assert_frame_equal(results[0], results[1])
