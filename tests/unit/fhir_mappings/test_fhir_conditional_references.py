"""Conditional references (``Type?identifier=...``) resolve by FHIR token search among
the document's resources: exactly one match, else a refusal naming the entry."""

from __future__ import annotations

import pytest

from fhir_mappings.bundle import conditional_targets
from fhir_mappings.errors import AmbiguousReference, UnresolvedReference, UnsupportedInteraction

MRN = "http://hospital.example.org/mrn"
WITH_SYSTEM = {"resourceType": "Patient", "id": "a", "identifier": [{"system": MRN, "value": "1"}]}
NO_SYSTEM = {"resourceType": "Patient", "id": "b", "identifier": [{"value": "2"}]}


def _resolve(reference: str) -> tuple[dict, dict]:
    holder = {"resourceType": "Condition", "id": "c", "subject": {"reference": reference}}
    return conditional_targets([(0, WITH_SYSTEM), (1, NO_SYSTEM), (2, holder)])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"identifier={MRN}|1", "a"),  # system and value
        ("identifier=1", "a"),  # value, any system
        ("identifier=|2", "b"),  # value without a system
        (f"identifier={MRN}|", "a"),  # any value of the system
        (f"identifier={MRN}|9,|2", "b"),  # commas are OR
        (f"identifier={MRN}|1&identifier=1", "a"),  # repeats are AND
        ("identifier=http%3A%2F%2Fhospital.example.org%2Fmrn%7C1", "a"),  # URL-encoded
    ],
)
def test_token_forms_find_the_one_resource(query: str, expected: str) -> None:
    resolved, problems = _resolve(f"Patient?{query}")
    assert problems == {}
    assert resolved[f"Patient?{query}"]["id"] == expected


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("identifier=|1", UnresolvedReference),  # "a" has a system
        ("identifier=3", UnresolvedReference),
        ("identifier=1,2", AmbiguousReference),
        ("name=x", UnsupportedInteraction),
        ("", UnsupportedInteraction),
    ],
)
def test_anything_but_one_match_is_refused_with_the_entry_index(query: str, kind: type) -> None:
    resolved, problems = _resolve(f"Patient?{query}")
    assert resolved == {}
    assert list(problems) == [2]
    assert isinstance(problems[2], kind)
    assert problems[2].entry_index == 2
    assert problems[2].element == "Bundle.entry[2].resource.subject"


@pytest.mark.parametrize(
    "holder",
    [
        # deep inside an element, in a list, beside escaped text: the serialization
        # prefilter must still send the resource to the walk
        {
            "resourceType": "Condition",
            "id": "c",
            "evidence": [{"detail": [{"reference": "Patient?identifier=1"}]}],
        },
        {
            "resourceType": "Condition",
            "id": "c",
            "note": [{"text": 'a "quoted" \\ note'}],
            "subject": {"reference": "Patient?identifier=1"},
        },
    ],
)
def test_nested_conditional_references_are_found(holder: dict) -> None:
    resolved, problems = conditional_targets([(0, WITH_SYSTEM), (1, holder)])
    assert problems == {}
    assert resolved == {"Patient?identifier=1": WITH_SYSTEM}


def test_a_conditional_reference_matching_nothing_is_still_refused_when_nested() -> None:
    holder = {
        "resourceType": "Encounter",
        "id": "e",
        "diagnosis": [{"condition": {"reference": "Patient?identifier=nobody"}}],
    }
    _, problems = conditional_targets([(0, WITH_SYSTEM), (1, holder)])
    assert isinstance(problems[1], UnresolvedReference)
