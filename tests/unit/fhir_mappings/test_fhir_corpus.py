"""The real-world conformance corpus (tests/fhir_corpus): public FHIR written by others.

Each file of ``manifest.json`` is mapped as the ingest API would receive it; the
outcome must be the one the manifest records (accepted with the listed key features,
or refused with the listed OperationOutcome issue code), never anything else. The
terminology coverage of the corpus is checked too: the share of real Conditions whose
code maps to an ICD-9-CM diagnosis, and of diabetes-drug orders that reach their column.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.bundle import Document, load_json
from fhir_mappings.codes.rxnorm import SYNONYMS
from fhir_mappings.condition import concept_code
from fhir_mappings.errors import FhirMappingError
from fhir_mappings.mapper import map_document
from fhir_mappings.medication import identify
from readmit_core.features import MEDICATION_COLUMNS
from readmit_core.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "tests" / "fhir_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())["files"]


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_corpus_is_large_and_has_provenance():
    files = {e["file"] for e in MANIFEST}
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()} - {
        "manifest.json"
    }
    assert files == on_disk, "every corpus file is in the manifest and vice versa"
    assert len(files) >= 150
    records = [e for e in MANIFEST if e["kind"].startswith("synthea")]
    assert len(records) >= 10
    for entry in MANIFEST:
        assert entry["source"]
        assert entry["licence"]
        assert len(entry["commit"]) == 40
    assert any(e["expected"]["outcome"] == "refused" for e in MANIFEST)


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_corpus_file_has_its_expected_outcome(entry):
    expected = entry["expected"]
    body = _bytes(CORPUS / entry["file"])
    if expected["outcome"] == "refused":
        with pytest.raises(FhirMappingError) as refused:
            map_document(body)
        assert refused.value.issue_code == expected["issue_code"]
        assert refused.value.status == expected["status"]
        assert refused.value.to_operation_outcome()["issue"][0]["code"] == expected["issue_code"]
        return
    mapped = map_document(body)
    assert expected["outcome"] == "accepted"
    assert len(mapped) == expected["encounters"]
    for want, got in zip(expected.get("records", ()), mapped, strict=False):
        columns = got.record.columns()
        assert got.encounter_id == want["encounter_id"]
        for key, value in want.items():
            if key == "medications":
                given = {c: columns[c] for c in MEDICATION_COLUMNS if columns[c] != "No"}
                assert given == value
            elif key != "encounter_id":
                assert columns[key] == value, key


@cache
def _documents() -> list[Document]:
    """Every document of the corpus the mapper accepts, read as the mapper reads it."""
    return [
        Document(load_json(_bytes(CORPUS / e["file"])), validate=False)
        for e in MANIFEST
        if e["expected"]["outcome"] == "accepted"
    ]


def condition_coverage() -> tuple[int, Counter[str]]:
    """(coded Conditions in the corpus, how many each code source mapped)."""
    sources: Counter[str] = Counter()
    for doc in _documents():
        for resource in doc.of_type("Condition"):
            if (resource.get("code") or {}).get("coding"):
                sources[concept_code(resource["code"])[1]] += 1
    return sum(sources.values()), sources


def medication_coverage() -> tuple[int, int, int, int]:
    """(MedicationRequests, identified as some drug, naming a dataset drug, mapped to it)."""
    total = identified = named = mapped = 0
    for doc in _documents():
        for request in doc.of_type("MedicationRequest"):
            total += 1
            column, key = identify(request, doc.resolve)
            identified += column is not None or key[0] in ("rx", "text")
            if any(word in " ".join(_names(request, doc)) for word in SYNONYMS):
                named += 1
                mapped += column is not None
    return total, identified, named, mapped


def _names(request: dict[str, Any], doc: Document) -> list[str]:
    """Every drug name the order carries (its concept, or its Medication's)."""
    concept = request.get("medicationCodeableConcept")
    if concept is None:
        medication = doc.resolve(request.get("medicationReference"), request) or {}
        concept = medication.get("code") or {}
    texts = [concept.get("text") or ""] + [
        c.get("display") or "" for c in concept.get("coding") or ()
    ]
    return [t.lower() for t in texts]


def test_conditions_of_the_corpus_map_to_diagnoses():
    total, sources = condition_coverage()
    assert total >= 200
    assert 1 - sources["none"] / total >= 0.95, sources
    assert sources["text"] / total < 0.05, "the text fallback is a last resort, not the rule"


def test_diabetes_drug_orders_of_the_corpus_reach_their_column():
    total, identified, named, mapped = medication_coverage()
    assert total >= 200
    assert identified == total
    assert named >= 10
    assert mapped == named
