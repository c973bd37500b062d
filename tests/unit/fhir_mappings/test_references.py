"""The one reference parser: relative, absolute, versioned; urn and contained have none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings.references import reference_key, reference_target, search_id

ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
types = st.sampled_from(["Patient", "Encounter", "Location", "Condition"])
bases = st.sampled_from(["", "https://ehr.example/fhir/", "http://h:8080/r4/"])


@given(bases, types, ids, st.one_of(st.none(), st.integers(1, 99)))
def test_literal_references_name_their_type_and_id(
    base: str, kind: str, rid: str, version: int | None
) -> None:
    url = f"{base}{kind}/{rid}" + (f"/_history/{version}" if version else "")
    assert reference_target(url) == (kind, rid)
    assert reference_key(url) == f"{kind}/{rid}"


@pytest.mark.parametrize(
    "url", ["urn:uuid:6d3c", "urn:oid:1.2.3", "#contained-1", "just-an-id", "lower/case", ""]
)
def test_document_local_and_untyped_references_have_no_target(url: str) -> None:
    assert reference_target(url) is None
    assert reference_key(url) is None


@given(ids)
def test_search_parameters_take_bare_or_typed_ids(rid: str) -> None:
    assert search_id(rid, "Patient") == rid
    assert search_id(f"Patient/{rid}", "Patient") == rid
    assert search_id(f"Encounter/{rid}", "Patient") == f"Encounter/{rid}"  # matches nothing
