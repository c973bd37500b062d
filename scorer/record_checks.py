"""Is a feature record inside the feature definition? Checked before a record is scored."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir_mappings.codes.dataset_ids import id_tables
from readmit_core.features import INTEGER_RANGES, VALUE_SETS, FeatureRecord

# (dataset column, attribute, low, high) and (dataset column, attribute, accepted values)
_Ranges = tuple[tuple[str, str, int, int], ...]
_Vocabularies = tuple[tuple[str, str, frozenset[Any]], ...]


@lru_cache(maxsize=1)
def _rules() -> tuple[_Ranges, _Vocabularies]:
    """The checks with every lookup done once: attribute names, and each vocabulary as a
    set that already holds the column's default (its missing marker, always allowed).

    The scorer checks every record it consumes; building the record's column dict and
    scanning tuples cost more than validating the event itself.
    """
    fields = FeatureRecord.model_fields
    attribute = {(f.alias or name): name for name, f in fields.items()}
    ranges = tuple((c, attribute[c], low, high) for c, (low, high) in INTEGER_RANGES.items())
    vocabularies = [
        (c, attribute[c], frozenset(allowed) | {fields[attribute[c]].default})
        for c, allowed in VALUE_SETS.items()
    ]
    vocabularies += [
        (c, attribute[c], frozenset(table) | {fields[attribute[c]].default})
        for c, table in id_tables().items()
    ]
    return ranges, tuple(vocabularies)


def definition_violations(record: FeatureRecord) -> tuple[list[str], list[str]]:
    """(out-of-range integers, values outside their closed vocabulary) of ``record``.

    A model scores an unknown category as "unknown" and extrapolates an absurd count
    without complaint (an age of ``[900-910)`` once raised a high-risk alert), so the
    scorer refuses such a record instead. A column's default (its missing marker, e.g.
    age ``?``) is always allowed. Each entry names the column and the value.
    """
    ranges, vocabularies = _rules()
    values = record.__dict__
    out_of_range = [
        f"{column}={values[name]!r} not in [{low}, {high}]"
        for column, name, low, high in ranges
        if not low <= values[name] <= high
    ]
    unknown = [
        f"{column}={values[name]!r}"
        for column, name, accepted in vocabularies
        if values[name] not in accepted
    ]
    return out_of_range, unknown
