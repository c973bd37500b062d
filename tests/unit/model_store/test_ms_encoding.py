from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_store import dataset
from model_store.encoding import (
    FIXED_CATEGORICALS,
    LEARNED_CATEGORICALS,
    NUMERIC_COLUMNS,
    UNKNOWN,
    FeatureEncoder,
    diagnosis_group,
    icd9_category,
)
from readmit_core.features import (
    DIAGNOSIS_COLUMNS,
    FEATURE_COLUMNS,
    MEDICATION_COLUMNS,
    FeatureRecord,
)


def _records(frame: pd.DataFrame) -> list[FeatureRecord]:
    return [dataset.record_from_values(r) for r in frame.to_dict("records")]


def _encoder(frame: pd.DataFrame) -> FeatureEncoder:
    return FeatureEncoder(min_count=20).fit(dataset.feature_tuples(frame))


@pytest.fixture(scope="module")
def fitted(small_frame: pd.DataFrame) -> FeatureEncoder:
    return _encoder(small_frame)


def test_all_encoding_paths_agree(small_frame: pd.DataFrame) -> None:
    encoder = _encoder(small_frame)
    frame = small_frame.iloc[:500]
    from_tuples = encoder.encode_tuples(dataset.feature_tuples(frame))
    from_records = encoder.encode_records(_records(frame))
    from_rows = encoder.encode_rows(frame[list(FEATURE_COLUMNS)].to_dict("records"))
    assert from_tuples.shape == (500, encoder.width)
    np.testing.assert_array_equal(from_tuples, from_records)
    np.testing.assert_array_equal(from_tuples, from_rows)


def test_each_categorical_block_is_one_hot(small_frame: pd.DataFrame) -> None:
    encoder = _encoder(small_frame)
    matrix = encoder.encode_tuples(dataset.feature_tuples(small_frame.iloc[:200]))
    for column in FIXED_CATEGORICALS + LEARNED_CATEGORICALS:
        slots = list(encoder.vocabularies[column].values())
        np.testing.assert_array_equal(matrix[:, slots].sum(axis=1), 1.0)


def test_unknown_values_go_to_the_unknown_slot(small_frame: pd.DataFrame) -> None:
    encoder = _encoder(small_frame)
    record = _records(small_frame.iloc[:1])[0].model_copy(
        update={"race": "Martian", "payer_code": "ZZ", "admission_type_id": 999, "diag_1": "X1"}
    )
    row = encoder.encode_records([record])[0]
    for column in ("race", "payer_code", "admission_type_id"):
        assert row[encoder.vocabularies[column][UNKNOWN]] == 1.0
    assert row[encoder.vocabularies["diag_1_category"][UNKNOWN]] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    race=st.text(max_size=12),
    medical_specialty=st.text(max_size=20),
    diag=st.text(max_size=8),
    age=st.text(max_size=8),
    count=st.integers(min_value=0, max_value=10_000),
)
def test_arbitrary_category_strings_never_crash(
    race: str, medical_specialty: str, diag: str, age: str, count: int
) -> None:
    encoder = FeatureEncoder(min_count=1).fit([_default_tuple()])
    record = FeatureRecord(
        encounter_id="1",
        patient_nbr="1",
        race=race,
        medical_specialty=medical_specialty,
        diag_1=diag,
        diag_2=diag,
        age=age,
        num_medications=count,
    )
    row = encoder.encode_records([record])[0]
    assert np.isfinite(row).all()
    assert row[encoder.feature_names.index("num_medications")] == count


def _default_tuple() -> tuple[object, ...]:
    record = FeatureRecord(encounter_id="0", patient_nbr="0")
    return tuple(record.columns()[c] for c in FEATURE_COLUMNS)


def test_diagnosis_groups_follow_strack() -> None:
    assert diagnosis_group("428.0") == "Circulatory"
    assert diagnosis_group("785") == "Circulatory"
    assert diagnosis_group("250.83") == "Diabetes"
    assert diagnosis_group("486") == "Respiratory"
    assert diagnosis_group("V57") == "Other"
    assert diagnosis_group("?") == "Missing"
    assert diagnosis_group("820") == "Injury"
    assert diagnosis_group("715") == "Musculoskeletal"
    assert diagnosis_group("599") == "Genitourinary"
    assert diagnosis_group("162") == "Neoplasms"
    assert icd9_category("428.0") == "428"


def test_encoder_survives_pickling(small_frame: pd.DataFrame) -> None:
    import pickle

    encoder = _encoder(small_frame)
    tuples = dataset.feature_tuples(small_frame.iloc[:50])
    before = encoder.encode_tuples(tuples)
    clone = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(clone.encode_tuples(tuples), before)


def _reference_row(encoder: FeatureEncoder, record: FeatureRecord) -> np.ndarray:
    """The encoding spelled out by feature name, one value at a time: the oracle."""
    values = record.columns()
    names = encoder.feature_names
    row = np.zeros(encoder.width)
    for column in NUMERIC_COLUMNS:
        row[names.index(column)] = float(values[column])
    age = str(values["age"]).strip("[)").split("-")
    row[names.index("age_years")] = (
        (float(age[0]) + float(age[1])) / 2
        if len(age) == 2 and all(_number(a) for a in age)
        else 65.0
    )
    row[names.index("utilisation_total")] = float(
        values["number_outpatient"] + values["number_emergency"] + values["number_inpatient"]
    )
    medications = [values[m] for m in MEDICATION_COLUMNS]
    row[names.index("medications_given")] = sum(v != "No" for v in medications)
    row[names.index("medications_changed")] = sum(v in ("Up", "Down") for v in medications)
    keyed = {c: values[c] for c in FIXED_CATEGORICALS + LEARNED_CATEGORICALS}
    keyed |= {f"{c}_group": diagnosis_group(str(values[c])) for c in DIAGNOSIS_COLUMNS}
    keyed["diag_1_category"] = icd9_category(str(values["diag_1"]))
    for key, value in keyed.items():
        slots = encoder.vocabularies[key]
        row[slots.get(value, slots[UNKNOWN])] = 1.0
    return row


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_MEDICATION_VALUE = st.sampled_from(["No", "Steady", "Up", "Down", "unknown", "Sideways"])


@settings(max_examples=80, deadline=None)
@given(
    batch=st.lists(
        st.fixed_dictionaries(
            {
                "race": st.sampled_from(["Caucasian", "AfricanAmerican", "?", "Martian"]),
                "age": st.sampled_from(["[70-80)", "[0-10)", "?", "[x-y)", ""]),
                "payer_code": st.sampled_from(["MC", "?", "ZZ"]),
                "admission_type_id": st.integers(0, 30),
                "diag_1": st.sampled_from(["428.0", "250.83", "V57", "?", "E878", ""]),
                "diag_2": st.sampled_from(["486", "?", "999.9"]),
                "number_inpatient": st.integers(0, 40),
                "number_emergency": st.integers(0, 40),
                "days_since_last_discharge": st.integers(0, 365),
                "insulin": _MEDICATION_VALUE,
                "metformin": _MEDICATION_VALUE,
                "glyburide_metformin": _MEDICATION_VALUE,
            }
        ),
        min_size=1,
        max_size=12,
    )
)
def test_batch_encoding_equals_the_encoding_spelled_out_per_row(
    fitted: FeatureEncoder, batch: list[dict[str, object]]
) -> None:
    records = [
        FeatureRecord(encounter_id=str(i), patient_nbr="p", **values)  # type: ignore[arg-type]
        for i, values in enumerate(batch)
    ]
    matrix = fitted.encode_records(records)
    expected = np.array([_reference_row(fitted, r) for r in records])
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(fitted.encode_records(records[:1]), expected[:1])
