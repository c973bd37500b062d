"""The visit/patient identity key (fhir_mappings.identity), by property: what a send may
change (ids, uuids, identifier order, old identifiers) never changes the key; what names
the visit (the VN / MR identifier) always decides it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings.identity import (
    ID_SYSTEM,
    V2_0203,
    IdentityClaim,
    LocalIdentities,
    business_identifier,
    identity_key,
)

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
systems = st.sampled_from(["https://a.example/vn", "urn:oid:1.2.3", "https://b.example/acct"])
kinds = st.sampled_from(["Encounter", "Patient"])
TYPE_OF = {"Encounter": "VN", "Patient": "MR"}


def _ident(system: str | None, value: str, code: str | None = None, use: str | None = None):
    ident: dict = {"value": value}
    if system:
        ident["system"] = system
    if code:
        ident["type"] = {"coding": [{"system": V2_0203, "code": code}]}
    if use:
        ident["use"] = use
    return ident


plain = st.builds(_ident, systems, text)
old = st.builds(lambda s, v: _ident(s, v, use="old"), systems, text)


@given(kinds, st.lists(plain, min_size=1, max_size=4), text, text)
def test_the_key_ignores_the_resource_id_when_an_identifier_names_it(kind, idents, id_a, id_b):
    a = {"resourceType": kind, "id": id_a, "identifier": idents}
    b = {"resourceType": kind, "id": id_b, "identifier": idents}
    assert identity_key(a, id_a) == identity_key(b, id_b) != (ID_SYSTEM, id_a)


@given(kinds, st.lists(plain, max_size=3), st.lists(plain, max_size=3), systems, text)
def test_the_typed_identifier_wins_wherever_it_is_listed(kind, before, after, system, value):
    typed = _ident(system, value, TYPE_OF[kind])
    resource = {"resourceType": kind, "identifier": [*before, typed, *after]}
    assert business_identifier(resource) == (system, value)


@given(kinds, st.lists(plain, max_size=3), st.lists(old, min_size=1, max_size=3), st.randoms())
def test_old_identifiers_never_key_anything(kind, current, retired, rnd):
    mixed = current + retired
    rnd.shuffle(mixed)
    with_old = {"resourceType": kind, "identifier": mixed}
    without = {"resourceType": kind, "identifier": [i for i in mixed if i.get("use") != "old"]}
    assert identity_key(with_old, "x") == identity_key(without, "x")


@given(kinds, text, st.lists(st.builds(lambda v: {"value": v}, text), max_size=3))
def test_without_a_system_or_type_the_id_is_the_key(kind, rid, unsystemed):
    resource = {"resourceType": kind, "id": rid, "identifier": unsystemed}
    assert identity_key(resource, rid) == (ID_SYSTEM, rid)


@given(st.lists(st.tuples(kinds, text, st.one_of(st.none(), st.tuples(systems, text))), max_size=8))
def test_claims_with_one_key_get_one_id(raw):
    claims = [
        IdentityClaim(kind, local, key if key else (ID_SYSTEM, local)) for kind, local, key in raw
    ]
    ids = LocalIdentities().canonical_ids(claims)
    by_key: dict = {}
    for claim, cid in zip(claims, ids, strict=True):
        assert by_key.setdefault((claim.kind, *claim.key), cid) == cid
