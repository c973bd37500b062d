from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings.features import FEATURE_COLUMNS, FeatureRecord
from model_store import dataset
from model_store.encoding import (
    FIXED_CATEGORICALS,
    LEARNED_CATEGORICALS,
    UNKNOWN,
    FeatureEncoder,
    diagnosis_group,
    icd9_category,
)


def _records(frame: pd.DataFrame) -> list[FeatureRecord]:
    return [dataset.record_from_values(r) for r in frame.to_dict("records")]


def _encoder(frame: pd.DataFrame) -> FeatureEncoder:
    return FeatureEncoder(min_count=20).fit(dataset.feature_tuples(frame))


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
