"""The element-wise validator (fhir_mappings.validation) gives the models' own answer.

Every resource of the conformance corpus and hundreds of mutations of valid resources
are validated twice: by ``model_validate`` alone (``memo=None``, what ingest did before)
and through the memo, cold and after it has seen the valid originals. The answers must
be equal: accepted by both, or refused by both with the same error class, element and
OperationOutcome issue code.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_mappings import validation
from fhir_mappings.errors import FhirMappingError
from fhir_mappings.synth import read_rows, synthesize_bundle
from fhir_mappings.validation import KnownValid, validate_resource
from readmit_core.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "tests" / "fhir_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())["files"]
DEV_DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"

Outcome = tuple[str, str | None, str] | None


def answer(resource: Any, memo: KnownValid | None) -> Outcome:
    try:
        validate_resource(resource, "r", memo=memo)
    except FhirMappingError as exc:
        return type(exc).__name__, exc.element, exc.issue_code
    return None


def _corpus_resources() -> list[Any]:
    out: list[Any] = []
    for entry in MANIFEST:
        raw = (CORPUS / entry["file"]).read_bytes()
        if entry["file"].endswith(".gz"):
            raw = gzip.decompress(raw)
        try:
            doc = json.loads(raw.decode("utf-8-sig"))
        except ValueError:
            continue  # not JSON: refused before validation
        if not isinstance(doc, dict):
            continue
        if doc.get("resourceType") == "Bundle" and isinstance(doc.get("entry"), list):
            out.extend(e.get("resource") for e in doc["entry"] if isinstance(e, dict))
        else:
            out.append(doc)
    return [r for r in out if r is not None]


@pytest.fixture(scope="module")
def corpus_resources() -> list[Any]:
    return _corpus_resources()


@pytest.fixture(scope="module")
def synth_resources() -> list[dict[str, Any]]:
    rows = list(read_rows(DEV_DATA, 40))
    return [e["resource"] for row in rows for e in synthesize_bundle(row, seed=5)["entry"]]


def test_corpus_resources_get_the_models_answer_cold_and_warm(corpus_resources):
    reference = [answer(r, None) for r in corpus_resources]
    memo = KnownValid()
    cold = [answer(r, memo) for r in corpus_resources]
    warm = [answer(r, memo) for r in corpus_resources]  # every valid one now known
    assert cold == reference
    assert warm == reference
    refused = [r for r in reference if r is not None]
    assert len(corpus_resources) > 2000
    assert len(refused) >= 10, "the corpus carries invalid resources"
    assert {code for _, _, code in refused} >= {"structure"}


_WRONG_VALUES: list[Any] = [None, 1, 1.5, "x", " ", True, [], {}, [None], {"zzz": 1}, [{"zzz": 1}]]


def _mutations(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ways of breaking (or not) one valid resource, each element at a time."""
    names = [k for k in resource if k != "resourceType"]
    for name in names:
        dropped = {k: v for k, v in resource.items() if k != name}
        yield dropped
        for wrong in _WRONG_VALUES:
            yield {**resource, name: wrong}
        value = resource[name]
        if isinstance(value, dict):
            yield {**resource, name: {**value, "zzz": 1}}
            yield {**resource, name: [value]}
            for inner, inner_value in value.items():
                yield {**resource, name: {**value, inner: [inner_value]}}
                yield {**resource, name: {**value, inner: 12}}
            if isinstance(value.get("coding"), list) and value["coding"]:
                coding = value["coding"][0]
                for bad in (" bad code ", 5, None, ""):
                    yield {**resource, name: {**value, "coding": [{**coding, "code": bad}]}}
                yield {**resource, name: {**value, "coding": coding}}
                yield {**resource, name: {**value, "coding": [coding, None]}}
        if isinstance(value, list) and value:
            yield {**resource, name: value[0]}
            yield {**resource, name: [*value, None]}
            if isinstance(value[0], dict):
                yield {**resource, name: [{**value[0], "zzz": 1}, *value[1:]]}
        if isinstance(value, str):
            yield {**resource, name: value + " "}
            yield {**resource, name: [value]}
            yield {**dropped, f"_{name}": {"extension": [{"url": "http://x", "valueString": "y"}]}}
            yield {**dropped, f"_{name}": {"id": "only-an-id"}}
            yield {**resource, f"{name}__ext": {"id": "python-name"}}
        for other in names:
            if other != name:
                yield {**resource, other: value}  # a valid value under the wrong element
    yield {**resource, "zzz": 1}
    yield {**resource, "id": "not a valid id!"}
    yield {**resource, "id": "a" * 300}
    yield {**resource, "valueString": "x"}
    yield {**resource, "valueQuantity": {"value": 1}}
    yield {**resource, "effectivePeriod": {"start": "2001-01-01"}}
    yield {**resource, "status": "done"}  # outside a required binding
    yield {**resource, "contained": [{"resourceType": "Observation"}]}
    yield {**resource, "class_fhir": {"code": "IMP"}}


def _samples(synth_resources, corpus_resources) -> list[dict[str, Any]]:
    """One valid resource per type from the synthesizer and from the corpus."""
    by_type: dict[str, dict[str, Any]] = {}
    for r in [*synth_resources, *corpus_resources]:
        if isinstance(r, dict) and answer(r, None) is None:
            by_type.setdefault(str(r.get("resourceType")), r)
    wanted = ("Observation", "Condition", "Encounter", "Patient", "MedicationRequest",
              "Procedure", "Coverage", "Location", "Practitioner", "Organization")  # fmt: skip
    return [by_type[t] for t in wanted if t in by_type]


def test_mutated_resources_get_the_models_answer(synth_resources, corpus_resources):
    samples = _samples(synth_resources, corpus_resources)
    assert len(samples) >= 8
    memo = KnownValid()
    for resource in [*samples, *synth_resources]:
        assert answer(resource, memo) is None  # the memo now vouches for their elements
    checked = refused = 0
    for sample in samples:
        for mutant in _mutations(copy.deepcopy(sample)):
            want = answer(mutant, None)
            assert answer(mutant, memo) == want, mutant
            assert answer(mutant, memo) == want, mutant  # again, with the mutant known
            checked += 1
            refused += want is not None
    assert checked > 1000
    assert 0.3 * checked < refused < checked


@pytest.mark.parametrize(
    ("change", "code", "element"),
    [
        (lambda o: o.update(status="done"), "code-invalid", "Observation.status"),
        (lambda o: o.pop("code"), "structure", "Observation.code"),
        (lambda o: o.pop("status"), "structure", "Observation.status"),
        (lambda o: o.update(valueString="x"), "structure", None),
        (lambda o: o["valueQuantity"].update(value="abc"), "structure", None),
        (lambda o: o.update(category=[None]), "structure", "Observation.category"),
        (lambda o: o["code"].update(coding=o["code"]["coding"][0]), "structure", None),
        (lambda o: o.update(effectiveDateTime="2001-02-30"), "structure", None),
        (lambda o: o.update(foo=1), "structure", "Observation.foo"),
    ],
)
def test_invalid_observations_are_refused_after_valid_ones_were_seen(
    synth_resources, change, code, element
):
    memo = KnownValid()
    observations = [r for r in synth_resources if r["resourceType"] == "Observation"]
    for observation in observations:
        assert answer(observation, memo) is None
    bad = copy.deepcopy(observations[0])
    change(bad)
    got = answer(bad, memo)
    assert got == answer(bad, None)
    assert got is not None
    assert got[2] == code
    if element is not None:
        assert f"Observation.{got[1]}" == element or got[1] == element


def test_repeated_elements_skip_the_model(synth_resources, monkeypatch):
    memo = KnownValid()
    observation = next(r for r in synth_resources if r["resourceType"] == "Observation")
    assert answer(observation, memo) is None
    model = validation.model_class("Observation")
    calls: list[Any] = []
    original = model.model_validate

    def counting(obj: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(obj)
        return original(obj, *args, **kwargs)

    monkeypatch.setattr(model, "model_validate", counting)
    assert answer({**observation, "id": "another-id"}, memo) is None
    assert answer({**observation, "valueQuantity": {"value": 2.5, "unit": "%"}}, memo) is None
    assert calls == []  # new values checked element by element, the shape already known
    assert answer({**observation, "valueString": "x"}, memo) is not None
    assert calls, "an unseen shape goes to the model"


def test_memo_is_bounded():
    memo = KnownValid(limit_bytes=10_000)
    for i in range(10_000):
        memo.add([f"key-{i:06d}".encode()])
    assert len(memo) * len(b"key-000000") <= 10_000
    assert b"key-009999" in memo
    assert b"key-000000" not in memo
