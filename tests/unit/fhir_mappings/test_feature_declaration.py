"""The feature columns derive from the record's declaration; each has exactly one role."""

from __future__ import annotations

from readmit_core import features as f


def test_columns_follow_the_record_and_the_dataset_order() -> None:
    record_fields = [
        field.alias or name
        for name, field in f.FeatureRecord.model_fields.items()
        if name not in f.IDENTIFIER_COLUMNS
    ]
    assert list(f.FEATURE_COLUMNS) == record_fields
    assert f.FEATURE_COLUMNS[:4] == f.DEMOGRAPHIC_COLUMNS
    assert f.FEATURE_COLUMNS[-len(f.HISTORY_COLUMNS) :] == f.HISTORY_COLUMNS
    assert f.DATASET_COLUMNS[0] == "encounter_id"
    assert f.DATASET_COLUMNS[-1] == "readmitted"


def test_integer_columns_are_the_int_fields() -> None:
    assert set(f.CODED_ID_COLUMNS) <= f.INTEGER_COLUMNS
    assert set(f.COUNT_COLUMNS) <= f.INTEGER_COLUMNS
    assert set(f.HISTORY_COLUMNS) <= f.INTEGER_COLUMNS
    assert not f.INTEGER_COLUMNS & {"race", "diag_1", "payer_code", "insulin"}
