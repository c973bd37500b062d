"""Is a feature record inside the feature definition? Checked before a record is scored."""

from __future__ import annotations

from fhir_mappings.codes.dataset_ids import id_tables
from readmit_core.features import INTEGER_RANGES, VALUE_SETS, FeatureRecord


def definition_violations(record: FeatureRecord) -> tuple[list[str], list[str]]:
    """(out-of-range integers, values outside their closed vocabulary) of ``record``.

    A model scores an unknown category as "unknown" and extrapolates an absurd count
    without complaint (an age of ``[900-910)`` once raised a high-risk alert), so the
    scorer refuses such a record instead. A column's default (its missing marker, e.g.
    age ``?``) is always allowed. Each entry names the column and the value.
    """
    values = record.columns()
    fields = FeatureRecord.model_fields
    out_of_range = [
        f"{column}={values[column]!r} not in [{low}, {high}]"
        for column, (low, high) in INTEGER_RANGES.items()
        if not low <= values[column] <= high
    ]
    unknown = []
    for column, allowed in VALUE_SETS.items():
        default = fields[column.replace("-", "_")].default
        if values[column] not in allowed and values[column] != default:
            unknown.append(f"{column}={values[column]!r}")
    for column, table in id_tables().items():
        if values[column] not in table and values[column] != fields[column].default:
            unknown.append(f"{column}={values[column]!r}")
    return out_of_range, unknown
