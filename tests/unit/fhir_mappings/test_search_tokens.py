"""The one identifier-search parser: conditional references and conditional create read
``identifier=[system]|[value]`` the same way."""

from __future__ import annotations

import pytest

from fhir_mappings.references import conditional_reference, reference_key
from fhir_mappings.search import identifier_matches, search_pairs, token, tokens
from ingest.conditional import criteria

MRN = "http://hospital.example.org/Identifiers/MRN"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{MRN}|123", (MRN, "123")),
        ("|123", ("", "123")),
        ("123", (None, "123")),
        (f"{MRN}|", (MRN, "")),
        ("a|b|c", ("a", "b|c")),  # a system (a URI) holds no bar
    ],
)
def test_token_forms(value, expected):
    assert token(value) == expected


def test_search_pairs_decode_and_take_the_type_prefix_or_not():
    encoded = "identifier=http%3A%2F%2Fx.org%2Fmrn%7C1&identifier=2"
    assert search_pairs(f"Patient?{encoded}") == search_pairs(encoded)
    assert search_pairs(encoded) == [("identifier", "http://x.org/mrn|1"), ("identifier", "2")]
    assert tokens("a|1,|2") == [("a", "1"), ("", "2")]


def test_identifier_matching_honours_system_none_and_any():
    patient = {"identifier": [{"system": MRN, "value": "1"}, {"value": "2"}]}
    assert identifier_matches(patient, (MRN, "1"))
    assert identifier_matches(patient, (None, "1"))
    assert identifier_matches(patient, ("", "2"))
    assert not identifier_matches(patient, ("", "1"))
    assert identifier_matches(patient, (MRN, ""))
    assert not identifier_matches(patient, ("http://other", ""))


def test_conditional_create_reads_the_same_tokens():
    query = f"identifier={MRN}|123"
    ((_, value),) = search_pairs(query)
    assert criteria(query, "x") == [token(value)]


def test_a_conditional_reference_names_no_literal_id():
    # the system's "/Identifiers/" looked like Type/id before
    target = f"Patient?identifier={MRN}|123"
    assert conditional_reference(target) == ("Patient", f"identifier={MRN}|123")
    assert reference_key(target) is None
    assert conditional_reference("Patient/123") is None
