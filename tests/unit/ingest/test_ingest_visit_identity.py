"""Visit identity and late/corrected data through the real ingest service (SQLite state,
in-memory broker): one visit is one score whatever ids a send gives it; a change within
the re-score window is a new input version; identical content never re-scores."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from late_support import late_condition, race_two_late_conditions
from visit_support import (
    HEADERS,
    VISITS,
    VN,
    Broker,
    Clock,
    discharged,
    encounter,
    http_client,
    regenerated,
    service,
    visit,
    with_ids,
)

from fhir_mappings.errors import SubjectMismatch
from ingest.service import IngestService

HOUR = 3600.0


@pytest.fixture
def broker() -> Broker:
    return Broker()


def _ingest(tmp_path: Path, broker: Broker, at: float) -> tuple[IngestService, Clock]:
    clock = Clock(at)
    return service(tmp_path, clock, broker), clock


def test_a_resend_with_regenerated_uuids_is_the_same_visit(tmp_path, broker):
    bundle = visit()
    ingest, _ = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    first = ingest.accept(bundle)
    again = ingest.accept(regenerated(bundle))
    assert len(broker.events) == 1
    assert first.published == (encounter(bundle)["id"],)
    assert again.published == ()
    assert again.duplicates == (encounter(bundle)["id"],)


def test_the_same_visit_number_under_a_new_id_is_the_same_visit(tmp_path, broker):
    bundle = visit()
    original = encounter(bundle)["id"]
    ingest, _ = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    resent = regenerated(bundle)
    renamed = encounter(resent)
    renamed["id"] = "engine-generated-77"
    for entry in resent["entry"]:
        if entry["resource"] is renamed:
            entry["request"]["url"] = "Encounter/engine-generated-77"
    outcome = ingest.accept(resent)
    assert len(broker.events) == 1
    (stay,) = outcome.stays
    assert (stay.outcome, stay.encounter_id, stay.resource_id) == (
        "duplicate",
        original,
        "engine-generated-77",
    )


def test_a_new_meta_version_with_identical_features_never_rescores(tmp_path, broker):
    bundle = visit()
    ingest, _ = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    resent = copy.deepcopy(bundle)
    encounter(resent)["meta"] = {"versionId": "2", "lastUpdated": "2026-12-01T00:00:00Z"}
    assert ingest.accept(resent).published == ()
    assert len(broker.events) == 1


def _late_condition(bundle: dict) -> dict:
    enc = encounter(bundle)
    return {
        "resourceType": "Condition",
        "id": "late-hf",
        "subject": {"reference": f"Patient/{enc['subject']['reference'] and _patient(bundle)}"},
        "encounter": {"reference": f"Encounter/{enc['id']}"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I50.9"}]},
    }


def _patient(bundle: dict) -> str:
    return next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )


def test_a_late_condition_within_the_window_is_a_new_input_version(tmp_path, broker):
    bundle = visit()
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    clock.at += 20 * HOUR
    late = ingest.accept(_late_condition(bundle))
    assert late.published == (encounter(bundle)["id"],)
    first, second = broker.events
    assert (first.input_version, second.input_version) == (1, 2)
    assert second.record.number_diagnoses == first.record.number_diagnoses + 1
    assert "428" in {second.record.diag_1, second.record.diag_2, second.record.diag_3}
    # the same late Condition again changes nothing
    assert ingest.accept(_late_condition(bundle)).published == ()
    assert len(broker.events) == 2


def test_a_late_condition_outside_the_window_is_kept_and_says_why(tmp_path, broker):
    bundle = visit()
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    clock.at = discharged(bundle) + 80 * HOUR
    late = ingest.accept(_late_condition(bundle))
    assert late.published == ()
    assert len(broker.events) == 1
    assert "72 h" in late.summary()
    assert "re-score window" in late.summary()


def test_a_corrected_bundle_outside_the_window_is_not_rescored(tmp_path, broker):
    bundle = visit()
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    clock.at = discharged(bundle) + 100 * HOUR
    corrected = copy.deepcopy(bundle)
    encounter(corrected)["hospitalization"]["dischargeDisposition"] = _disposition("01")
    (stay,) = ingest.accept(corrected).stays
    assert stay.outcome == "not-rescored"
    assert "outside the 72 h re-score window" in stay.reason
    assert len(broker.events) == 1


def _disposition(nubc: str) -> dict:
    return {
        "coding": [{"system": "https://www.nubc.org/CodeSystem/PatDischargeStatus", "code": nubc}]
    }


def test_a_corrected_disposition_keeping_its_version_id_rescores(tmp_path, broker):
    """Expired (NUBC 20) corrected to home (01), posted alone with the same versionId."""
    bundle = with_ids(visit())
    enc = encounter(bundle)
    enc["meta"] = {"versionId": "1"}
    enc["hospitalization"]["dischargeDisposition"] = _disposition("20")
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    corrected = copy.deepcopy(enc)
    corrected["hospitalization"]["dischargeDisposition"] = _disposition("01")
    clock.at += 2 * HOUR
    assert ingest.accept(corrected).published == (enc["id"],)
    first, second = broker.events
    assert (first.record.discharge_disposition_id, second.record.discharge_disposition_id) == (
        11,
        1,
    )
    assert second.input_version == 2
    # diagnoses and labs of the stay were kept: only the disposition changed
    assert second.record.model_copy(update={"discharge_disposition_id": 11}) == first.record


def test_a_stay_remembered_and_carried_in_a_document_under_another_id_counts_once(tmp_path, broker):
    earlier = visit(0, "V-1")
    ingest, clock = _ingest(tmp_path, broker, discharged(earlier) + HOUR)
    ingest.accept(earlier)
    later = regenerated(visit(0, "V-2"))
    index = encounter(later)
    index["id"] = "later-stay"
    index["period"] = {"start": "1999-03-01T08:00:00-05:00", "end": "1999-03-04T08:00:00-05:00"}
    for entry in later["entry"]:
        if entry["resource"] is index:
            entry["request"]["url"] = "Encounter/later-stay"
    history = copy.deepcopy(encounter(earlier))
    history["id"] = "export-copy-of-earlier"  # the same stay as another system exported it
    history["subject"] = index["subject"]
    history.pop("location", None)
    history.pop("diagnosis", None)
    later["entry"].append(
        {
            "fullUrl": "urn:uuid:0b5e3c1e-1111-4000-8000-00000000e001",
            "resource": history,
            "request": {"method": "PUT", "url": "Encounter/export-copy-of-earlier"},
        }
    )
    clock.at = discharged(later) + HOUR
    ingest.accept(later)
    latest = broker.events[-1]
    assert latest.encounter_id == "later-stay"
    assert latest.record.prior_encounters == 1
    assert latest.record.number_inpatient == 1


def test_identifiers_of_the_visit_number_type_win(tmp_path, broker):
    """Two identifiers: the visit number keys the visit, not the first one listed."""
    bundle = visit()
    enc = encounter(bundle)
    enc["identifier"] = [
        {"system": "https://ehr.example.org/account", "value": "ACC-1"},
        {"type": VN, "system": VISITS, "value": "V-9"},
    ]
    ingest, _ = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    resent = regenerated(bundle)
    encounter(resent)["identifier"][0]["value"] = "ACC-2"  # a new account, the same visit
    encounter(resent)["id"] = "other-id"
    for entry in resent["entry"]:
        if entry["resource"]["resourceType"] == "Encounter":
            entry["request"]["url"] = "Encounter/other-id"
    assert ingest.accept(resent).duplicates == (enc["id"],)


def test_a_corrected_patient_rescores_the_recent_stay(tmp_path, broker):
    """A birth date corrected after discharge moves the age band: a new version."""
    bundle = with_ids(visit())
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    patient = copy.deepcopy(
        next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    )
    born = int(patient["birthDate"][:4])
    patient["birthDate"] = f"{born - 20}{patient['birthDate'][4:]}"
    clock.at += HOUR
    assert ingest.accept(patient).published == (encounter(bundle)["id"],)
    first, second = broker.events
    assert first.record.age != second.record.age
    assert second.input_version == 2


@pytest.mark.parametrize("system", [VISITS, None], ids=["same-system", "no-system"])
def test_a_visit_number_reused_for_another_patient_is_another_visit(tmp_path, broker, system):
    """Patient B's discharge carrying patient A's visit number must never move A's score or
    worklist row onto B: the visit number names a visit within its patient."""
    first, second = visit(0, "V-SHARED"), visit(1, "V-SHARED")
    if system is None:
        for bundle in (first, second):
            encounter(bundle)["identifier"] = [{"type": VN, "value": "V-SHARED"}]
    a_patient = first["entry"][0]["resource"]
    b_patient = second["entry"][0]["resource"]
    assert a_patient["resourceType"] == b_patient["resourceType"] == "Patient"
    assert a_patient.get("identifier") != b_patient.get("identifier")  # two people
    ingest, _ = _ingest(tmp_path, broker, max(discharged(first), discharged(second)) + HOUR)
    a = ingest.accept(first)
    b = ingest.accept(second)
    assert len(broker.events) == 2  # both scored
    assert a.published != b.published
    assert broker.events[0].patient_id != broker.events[1].patient_id
    assert broker.events[0].encounter_id != broker.events[1].encounter_id


def test_two_late_conditions_of_one_stay_at_once_both_reach_the_score(tmp_path):
    """The second merge of the stay document sees the first (no lost update)."""
    events = race_two_late_conditions(tmp_path)
    latest = max(events, key=lambda e: e.input_version or 0)
    assert [e.input_version for e in events] == [1, 2, 3]
    codes = {latest.record.diag_1, latest.record.diag_2, latest.record.diag_3}
    assert {"250.01", "585"} <= codes


def test_a_late_condition_of_another_patient_naming_the_stay_is_refused(tmp_path, broker):
    bundle = visit()
    ingest, _ = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    with pytest.raises(SubjectMismatch) as refused:
        ingest.accept(late_condition(bundle, "403.91", patient="someone-else"))
    assert refused.value.expression == "Condition.subject"
    assert refused.value.status == 422
    assert len(broker.events) == 1
    # the stay's own patient, by any id it was sent under, is still merged
    assert ingest.accept(late_condition(bundle, "403.91")).published


def _version(enc: dict, number: str, updated: str | None, nubc: str) -> dict:
    out = copy.deepcopy(enc)
    out["meta"] = {"versionId": number, **({"lastUpdated": updated} if updated else {})}
    out["hospitalization"]["dischargeDisposition"] = _disposition(nubc)
    return out


def test_an_older_version_arriving_after_a_newer_one_changes_nothing(tmp_path, broker):
    """meta.lastUpdated decides: version 2 (an hour older) after version 3 is not taken."""
    bundle = with_ids(visit())
    enc = encounter(bundle)
    ingest, clock = _ingest(tmp_path, broker, discharged(bundle) + HOUR)
    ingest.accept(bundle)
    clock.at += HOUR
    newer = _version(enc, "3", "2026-12-01T10:00:00Z", "20")
    assert ingest.accept(newer).published == (enc["id"],)
    older = _version(enc, "2", "2026-12-01T09:00:00+00:00", "01")
    outcome = ingest.accept(older)
    assert outcome.published == ()
    assert outcome.is_stale(f"Encounter/{enc['id']}")
    assert "older than what we have" in outcome.summary()
    assert [e.record.discharge_disposition_id for e in broker.events][1:] == [11]
    # the newer version is still the stay's: a late diagnosis is merged with it
    late = ingest.accept(_late_condition(bundle))
    assert late.published == (enc["id"],)
    assert broker.events[-1].record.discharge_disposition_id == 11
    # without meta.lastUpdated the later arrival wins, as before
    assert ingest.accept(_version(enc, "4", None, "01")).published == (enc["id"],)
    assert broker.events[-1].record.discharge_disposition_id == 1


def test_over_http_an_older_version_is_200_says_so_and_keeps_the_newer_version(tmp_path):
    bundle = with_ids(visit())
    enc = encounter(bundle)
    end = datetime.now(UTC) - timedelta(hours=2)
    enc["period"] = {
        "start": (end - timedelta(days=3)).isoformat(),
        "end": end.isoformat(),
    }
    recorder = Broker()
    with http_client(tmp_path, recorder) as client:
        assert client.post("/fhir", content=orjson.dumps(bundle), headers=HEADERS).status_code < 300
        path = f"/fhir/Encounter/{enc['id']}"
        newer = _version(enc, "3", end.isoformat(), "20")
        first = client.put(path, content=orjson.dumps(newer), headers=HEADERS)
        assert first.status_code == 200
        older = _version(enc, "2", (end - timedelta(hours=1)).isoformat(), "01")
        stale = client.put(path, content=orjson.dumps(older), headers=HEADERS)
    assert stale.status_code == 200
    assert stale.headers["etag"] == first.headers["etag"]  # no version recorded for it
    issue = stale.json()["issue"][0]
    assert issue["severity"] == "information"
    assert "older than what we have" in issue["diagnostics"]
    assert len(recorder.events) == 2  # the stay, then the newer version: nothing more
    assert recorder.events[-1].record.discharge_disposition_id == 11
