"""Control characters FHIR forbids are refused with 400 naming the element; NUL never
reaches the state database (PostgreSQL text cannot hold it: it was a 500)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings.bundle import load_json
from fhir_mappings.errors import InvalidResource

FORBIDDEN = [chr(c) for c in range(32) if c not in (9, 10, 13)]


@pytest.mark.parametrize("where", ["id", "identifier", "reference", "key"])
@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x08", "\x0c"])
def test_forbidden_characters_are_refused_naming_the_element(where: str, char: str) -> None:
    patient: dict = {"resourceType": "Patient", "id": "p1"}
    if where == "id":
        patient["id"] = f"p{char}1"
    elif where == "identifier":
        patient["identifier"] = [{"system": "urn:mrn", "value": f"M{char}1"}]
    elif where == "reference":
        patient["generalPractitioner"] = [{"reference": f"Practitioner/x{char}"}]
    else:
        patient[f"bad{char}key"] = 1
    with pytest.raises(InvalidResource) as refused:
        load_json(orjson.dumps(patient))
    assert refused.value.status == 400
    assert refused.value.element


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_a_string_is_refused_exactly_when_it_holds_a_forbidden_character(text: str) -> None:
    body = orjson.dumps({"resourceType": "Patient", "id": "p", "text": {"div": text}})
    if any(c in text for c in FORBIDDEN):
        with pytest.raises(InvalidResource):
            load_json(body)
    else:
        assert load_json(body)["text"]["div"] == text


def test_a_literal_backslash_u_is_text_not_a_control_character() -> None:
    assert load_json(b'{"resourceType":"Patient","id":"p","x":"C:\\\\u0000"}')["x"] == "C:\\u0000"
