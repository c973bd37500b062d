"""The fast check of urn:uuid:/urn:oid: references agrees with the element-path walk."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.bundle import Document, _local_references_resolve, _references
from fhir_mappings.errors import UnresolvedReference

KEYS: dict[str, Any] = {"urn:uuid:known": {}, "urn:oid:1.2.3": {}}


def _walk_resolves(resource: dict[str, Any]) -> bool:
    return all(
        t in KEYS for _, t in _references(resource, "") if t.startswith(("urn:uuid:", "urn:oid:"))
    )


@pytest.mark.parametrize(
    "resource",
    [
        {"subject": {"reference": "urn:uuid:known"}},
        {"subject": {"reference": "urn:uuid:unknown"}},
        {"a": [{"b": [{"reference": "urn:oid:1.2.3"}, {"reference": "urn:oid:9"}]}]},
        {"subject": {"reference": "Patient/1"}, "x": {"reference": "urn:other"}},
        {"text": {"div": '<div>"reference":"urn:uuid:unknown"</div>'}},  # inside a string
        {"subject": {"reference": 'urn:uuid:known"'}},  # an escaped quote in the value
        {"subject": {"reference": "urn:uuid:known\\x"}},
        {"subject": {"reference": "urn:uuid:knöwn"}},
        {"contained": [{"resourceType": "X", "y": {"reference": "urn:uuid:unknown"}}]},
        {"reference": "urn:uuid:unknown"},
    ],
)
def test_fast_check_never_passes_what_the_walk_refuses(resource):
    fast = _local_references_resolve(resource, KEYS)
    assert not fast or _walk_resolves(resource)  # "True" is only said when it is so
    if _walk_resolves(resource) and "\\" not in str(resource) and '"' not in str(resource):
        assert fast


def test_an_unresolved_reference_is_named_with_its_element():
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:p",
                "resource": {"resourceType": "Patient", "id": "p"},
            },
            {
                "fullUrl": "urn:uuid:o",
                "resource": {
                    "resourceType": "Observation",
                    "subject": {"reference": "urn:uuid:p"},
                    "hasMember": [{"reference": "urn:uuid:gone"}],
                },
            },
        ],
    }
    with pytest.raises(UnresolvedReference) as refused:
        Document(bundle, validate=False)
    assert refused.value.element == "hasMember"
    assert refused.value.resource_type == "Observation"
