"""A batch answers each entry alone, mapping errors included (CONTRACT "Bad input").

An unresolved ``urn:uuid:`` reference, an index Encounter without a Patient or with
impossible dates refuse that entry (and the entries belonging to that stay), never
the whole batch; the rest is accepted and scored. The batch is mapped once (linear
cost however many entries are bad); a transaction still fails whole, naming the entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from visit_support import HEADERS, Broker, http_client

import ingest.service
from fhir_mappings.mapper import map_entries

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def client(tmp_path: Any, broker: Broker) -> Iterator[TestClient]:
    with http_client(tmp_path, broker) as c:
        yield c


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _stay(tag: str, *, start: str = "2026-11-20", end: str = "2026-11-24") -> list[dict[str, Any]]:
    """Patient, Encounter and a Condition of the stay, as PUT entries."""
    patient, enc = _urn(), _urn()
    return [
        {
            "fullUrl": patient,
            "resource": {"resourceType": "Patient", "id": f"p{tag}", "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/p{tag}"},
        },
        {
            "fullUrl": enc,
            "resource": {
                "resourceType": "Encounter",
                "id": f"e{tag}",
                "status": "finished",
                "class": {"system": ACT, "code": "IMP"},
                "subject": {"reference": patient},
                "period": {"start": start, "end": end},
            },
            "request": {"method": "PUT", "url": f"Encounter/e{tag}"},
        },
        {
            "fullUrl": _urn(),
            "resource": {
                "resourceType": "Condition",
                "id": f"c{tag}",
                "subject": {"reference": patient},
                "encounter": {"reference": enc},
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "428.0"}]
                },
            },
            "request": {"method": "PUT", "url": f"Condition/c{tag}"},
        },
    ]


def _unresolved(i: int) -> dict[str, Any]:
    return {
        "fullUrl": _urn(),
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": f"x{i}"},
            "subject": {"reference": _urn()},
        },
        "request": {"method": "POST", "url": "Observation"},
    }


def _send(client: TestClient, kind: str, entries: list[dict[str, Any]]) -> Any:
    body = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return client.post("/fhir", content=orjson.dumps(body), headers=HEADERS)


def _statuses(response: Any) -> list[str]:
    return [e["response"]["status"].split()[0] for e in response.json()["entry"]]


def test_unresolved_references_refuse_their_entries_only(client, broker):
    entries = _stay("a") + [_unresolved(i) for i in range(3)]
    answer = _send(client, "batch", entries)
    assert answer.status_code == 200
    assert _statuses(answer) == ["201", "201", "201", "422", "422", "422"]
    issue = answer.json()["entry"][4]["response"]["outcome"]["issue"][0]
    assert issue["code"] == "not-found"
    assert issue["diagnostics"].startswith("Bundle.entry[4]:")  # the index as sent
    assert [e.encounter_id for e in broker.events] == ["ea"]


def test_a_stay_that_cannot_be_mapped_refuses_its_entries_only(client, broker):
    good = _stay("g")
    no_subject = _stay("n", start="2026-11-10", end="2026-11-12")
    del no_subject[1]["resource"]["subject"]
    reversed_dates = _stay("r", start="2026-11-24", end="2026-11-20")
    # a bad entry before the good stay: indexes in the answer are those sent
    answer = _send(client, "batch", [_unresolved(0), *no_subject, *good, *reversed_dates])
    assert answer.status_code == 200
    statuses = _statuses(answer)
    # the subject-less Encounter and its Condition are refused; its Patient stands alone
    assert statuses[:4] == ["422", "201", "422", "422"]
    assert statuses[4:7] == ["201", "201", "201"]
    assert statuses[7:] == ["201", "422", "422"]
    outcomes = [
        e["response"].get("outcome", {}).get("issue", [{}])[0] for e in answer.json()["entry"]
    ]
    assert outcomes[2]["code"] == "required"
    assert "Bundle.entry[2]" in outcomes[2]["diagnostics"]
    assert outcomes[3]["code"] == "business-rule"
    assert "Bundle.entry[3]" in outcomes[3]["diagnostics"]
    assert outcomes[8]["code"] == "business-rule"
    assert "period.end" in outcomes[8]["expression"][0]
    assert [e.encounter_id for e in broker.events] == ["eg"]


def test_a_transaction_still_fails_whole_naming_the_entry(client, broker):
    entries = _stay("t") + _stay("u", start="2026-11-24", end="2026-11-20")
    answer = _send(client, "transaction", entries)
    assert answer.status_code == 422
    assert answer.json()["issue"][0]["diagnostics"].startswith("Bundle.entry[4]:")
    assert broker.events == []


def test_a_batch_is_mapped_once_however_many_entries_are_bad(client, broker, monkeypatch):
    calls: list[int] = []

    def counted(doc: dict[str, Any], **kwargs: Any) -> Any:
        calls.append(len(doc["entry"]))
        return map_entries(doc, **kwargs)

    monkeypatch.setattr(ingest.service, "map_entries", counted)
    entries = _stay("m") + [_unresolved(i) for i in range(50)]
    answer = _send(client, "batch", entries)
    assert _statuses(answer).count("422") == 50
    assert calls == [53]  # one mapping of the whole batch, no re-mapping per bad entry
    assert [e.encounter_id for e in broker.events] == ["em"]


def test_entries_pointing_at_a_refused_entry_are_refused_too():
    """A reference to an entry that was itself left out no longer resolves."""
    first = _unresolved(0)
    second = _unresolved(1)
    second["resource"]["subject"] = {"reference": first["fullUrl"]}
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [first, second]}
    mapped, problems = map_entries(doc)
    assert mapped == []
    assert sorted(problems) == [0, 1]


def test_an_encounter_whose_subject_cannot_resolve_takes_its_entries_with_it():
    stay = _stay("c")
    stay[1]["resource"]["subject"] = {"reference": "#missing"}  # names no contained resource
    doc = {"resourceType": "Bundle", "type": "batch", "entry": stay}
    mapped, problems = map_entries(doc)
    assert mapped == []
    assert sorted(problems) == [1, 2]
    assert problems[1].entry_index == 1
    assert problems[2].status == 422


def test_conditional_references_still_resolve_after_entries_are_left_out():
    """Leaving an entry out re-indexes the document; what conditional references
    resolved to must survive it (else the stay's subject would turn external)."""
    stay = _stay("k")
    stay[0]["resource"]["identifier"] = [{"system": "urn:mrn", "value": "k1"}]
    stay[1]["resource"]["subject"] = {"reference": "Patient?identifier=urn:mrn|k1"}
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [_unresolved(0), *stay]}
    mapped, problems = map_entries(doc)
    assert sorted(problems) == [0]
    assert [(m.encounter_id, m.patient_id) for m in mapped] == [("ek", "pk")]
    assert mapped[0].record.gender == "Male"  # the Patient resolved, not external
