"""The what-if form and the predict serializer accept the same values, name bad fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts_web.api.serializers import FeatureRecordSerializer
from alerts_web.feature_fields import (
    InsufficientInformation,
    check_minimum_information,
    diagnosis_input,
    field_specs,
    record_from_values,
)
from alerts_web.whatif.forms import WhatIfForm
from fhir_mappings.codes.icd9_titles import is_known_code
from readmit_core.features import FEATURE_COLUMNS, VALUE_SETS, FeatureRecord


def _valid_post() -> dict[str, str]:
    form = WhatIfForm()
    data = {name: str(field.initial) for name, field in form.fields.items()}
    return data | {"age": "[70-80)", "diag_1": "428"}


def test_every_feature_column_has_exactly_one_field() -> None:
    assert [s.column for s in field_specs()] == list(FEATURE_COLUMNS)


def test_defaults_make_a_valid_form_and_record() -> None:
    form = WhatIfForm(_valid_post())
    assert form.is_valid(), form.errors
    record = form.record
    assert isinstance(record, FeatureRecord)
    assert record.admission_type_id == 1  # the population's typical stay: emergency
    assert record.diag_1 == "428"


def test_a_record_without_age_or_diagnosis_is_refused_on_those_fields() -> None:
    data = _valid_post() | {"age": "?", "diag_1": ""}
    form = WhatIfForm(data)
    assert not form.is_valid()
    assert set(form.errors) == {"age", "diag_1"}
    with pytest.raises(InsufficientInformation) as refused:
        check_minimum_information(FeatureRecord(encounter_id="e", patient_nbr="p"))
    assert set(refused.value.fields) == {"age", "diag_1", "number_diagnoses"}


def test_value_set_fields_are_selects_with_the_dataset_vocabulary() -> None:
    form = WhatIfForm()
    for column, values in VALUE_SETS.items():
        spec = next(s for s in field_specs() if s.column == column)
        choices = [c for c, _ in form.fields[spec.name].choices]
        default = str(FeatureRecord.model_fields[spec.name].default)
        extra = [] if default in values else [default]
        assert choices == [*extra, *values]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_in_hospital", "0"),
        ("num_medications", "-1"),
        ("number_inpatient", "many"),
        ("race", "Martian"),
        ("diag_1", "DROP TABLE"),
        ("admission_type_id", "99"),
    ],
)
def test_invalid_values_give_a_message_on_that_field(field: str, value: str) -> None:
    data = _valid_post()
    data[field] = value
    form = WhatIfForm(data)
    assert not form.is_valid()
    assert set(form.errors) == {field}


def test_serializer_uses_dataset_column_names_and_names_bad_fields() -> None:
    ok = FeatureRecordSerializer(data={"glyburide-metformin": "Up", "age": "[70-80)"})
    assert ok.is_valid(), ok.errors
    record = record_from_values(ok.validated_data)
    assert record.glyburide_metformin == "Up"
    assert record.age == "[70-80)"
    bad = FeatureRecordSerializer(data={"age": "old", "num_lab_procedures": 10_000, "bogus": 1})
    assert not bad.is_valid()
    assert "bogus" in bad.errors


def test_serializer_reports_each_bad_field() -> None:
    bad = FeatureRecordSerializer(data={"age": "old", "num_lab_procedures": 10_000})
    assert not bad.is_valid()
    assert set(bad.errors) == {"age", "num_lab_procedures"}


def test_every_diagnosis_code_of_the_dataset_is_accepted_as_written() -> None:
    """Real rows: the dataset's own spelling (``38``, ``8``, ``V58``, ``250.83``) passes
    unchanged; the canonical spelling (``038``) is stored as streaming stores it."""
    import pandas as pd

    from readmit_core.settings import PROJECT_ROOT

    data_path = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"
    frame = pd.read_csv(data_path, usecols=["diag_1", "diag_2", "diag_3"], dtype=str)
    codes = set(frame.stack().dropna().unique())
    assert {"38", "8", "41", "70"} <= codes
    assert {code: diagnosis_input(code) for code in codes} == {code: code for code in codes}
    assert diagnosis_input("038") == "38"
    assert diagnosis_input("250.00") == "250"


@given(st.text(max_size=8))
def test_diagnosis_input_never_accepts_what_is_not_icd9(text: str) -> None:
    try:
        code = diagnosis_input(text)
    except ValueError:
        return
    assert code == "?" or is_known_code(code)
    data = _valid_post()
    data["diag_2"] = code
    assert WhatIfForm(data).is_valid()


@given(
    st.text(min_size=1, max_size=12).filter(
        lambda s: s.strip().upper() not in ("", "?") and not is_known_code(s)
    )
)
def test_anything_else_in_a_diagnosis_is_refused(code: str) -> None:
    data = _valid_post()
    data["diag_3"] = code
    form = WhatIfForm(data)
    assert not form.is_valid()
    assert "diag_3" in form.errors


def test_openapi_schema_generates_without_warnings(tmp_path) -> None:
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "MedicationDoseEnum" in text
    assert "ApiKeyAuth" in text
