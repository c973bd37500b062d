"""Every read of a patient's data leaves a row: who, what, when, from where; never a log line."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from typing import Any

import pytest
from django.test import Client

from alerts_web.access_audit.models import PatientDataAccess

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def scored(wards: Any, cache: Any, event_factory: Any) -> Any:
    event = event_factory("ward-a")
    cache.write([event])
    return event


def _rows() -> list[PatientDataAccess]:
    return list(PatientDataAccess.objects.order_by("pk"))


@pytest.mark.parametrize(
    ("suffix", "channel"), [("", "page"), ("report.pdf", "pdf"), ("report.csv", "csv")]
)
def test_nurse_reads_are_recorded_with_no_store(
    scored: Any, client_a: Client, suffix: str, channel: str
) -> None:
    response = client_a.get(f"/encounters/{scored.encounter_id}/{suffix}", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    (row,) = _rows()
    assert (row.actor, row.channel, row.encounter_id, row.status) == (
        "nurse_a",
        channel,
        scored.encounter_id,
        200,
    )
    assert row.remote_addr == "10.1.2.3"
    assert row.at is not None


def test_api_client_reads_are_recorded(scored: Any, api_key: Any) -> None:
    key = api_key("scores:read", "fhir:read", "cds")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    client = Client()
    client.get(
        f"/api/v1/encounters/{scored.encounter_id}/score", HTTP_AUTHORIZATION=f"Api-Key {key}"
    )
    client.get(f"/api/v1/patients/{scored.patient_id}/scores", HTTP_AUTHORIZATION=f"Api-Key {key}")
    client.get(f"/fhir/RiskAssessment?patient=Patient/{scored.patient_id}", **bearer)
    hook = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "context": {"patientId": scored.patient_id, "encounterId": scored.encounter_id},
    }
    client.post("/cds-services/readmission-risk", hook, content_type="application/json", **bearer)
    rows = _rows()
    assert [r.channel for r in rows] == ["rest", "rest", "fhir", "cds"]
    assert all(r.actor.startswith("api:") for r in rows)
    assert rows[0].encounter_id == scored.encounter_id
    assert rows[1].patient_id == scored.patient_id
    assert rows[2].patient_id == scored.patient_id  # the FHIR reference, without "Patient/"
    assert (rows[3].patient_id, rows[3].encounter_id) == (scored.patient_id, scored.encounter_id)


def test_refused_reads_are_recorded_too(scored: Any, nurse_b: Any) -> None:
    client = Client()
    client.force_login(nurse_b)  # ward-b nurse, ward-a patient
    status = client.get(f"/encounters/{scored.encounter_id}/").status_code
    (row,) = _rows()
    assert (row.actor, row.status) == ("nurse_b", status)
    assert status in (403, 404)


def test_staff_see_and_export_in_the_admin_and_logs_stay_clean(
    scored: Any, client_a: Client, staff: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client_a.get(f"/encounters/{scored.encounter_id}/")
    assert scored.patient_id not in caplog.text
    assert scored.encounter_id not in caplog.text
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/access_audit/patientdataaccess/")
    assert listing.status_code == 200
    assert scored.encounter_id in listing.content.decode()
    pk = _rows()[0].pk
    export = admin.post(
        "/admin/access_audit/patientdataaccess/",
        {"action": "export_csv", "_selected_action": [pk]},
    )
    assert export["Content-Type"].startswith("text/csv")
    (line,) = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert (line["actor"], line["encounter_id"], line["channel"]) == (
        "nurse_a",
        scored.encounter_id,
        "page",
    )
    # Read-only: nobody edits or deletes the trail from the admin.
    assert admin.get(f"/admin/access_audit/patientdataaccess/{pk}/delete/").status_code == 403
