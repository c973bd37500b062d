"""The reads the first audit missed: worklist rows, live-socket snapshots, the admin's alert
pages, CDS bodies of any Content-Type; and the address is the client's behind the proxy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from alerts_web.access_audit.models import PatientDataAccess
from alerts_web.alerts.feed import store_event
from alerts_web.alerts.models import Alert
from alerts_web.worklist.routing import websocket_urlpatterns
from readmit_core.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TIMEOUT = 5


@pytest.fixture
def alert(wards: Any, cache: Any, event_factory: Any) -> Alert:
    event = event_factory("ward-a")
    cache.write([event])
    stored, _ = store_event(event)
    assert stored is not None
    return stored


@pytest.fixture
def behind_one_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("READMIT_LOGIN_PROXY_HOPS", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("READMIT_LOGIN_PROXY_HOPS")
    get_settings.cache_clear()


def _rows() -> list[PatientDataAccess]:
    return list(PatientDataAccess.objects.order_by("pk"))


def test_worklist_rows_are_recorded_with_the_filter_they_answered(
    alert: Alert, client_a: Client
) -> None:
    filtered = client_a.get("/worklist/data", {"ward": "ward-a", "q": "Doe"})
    everything = client_a.get("/worklist/data")
    assert (filtered.status_code, everything.status_code) == (200, 200)
    first, second = _rows()
    assert (first.actor, first.channel, first.route, first.ward, first.status) == (
        "nurse_a",
        "worklist",
        "wards:worklist-data",
        "ward-a",
        200,
    )
    assert "q=Doe" in first.query
    assert (second.channel, second.ward, second.query) == ("worklist", "", "")


def test_admin_alert_list_search_and_change_page_are_recorded(alert: Alert, staff: User) -> None:
    admin = Client()
    admin.force_login(staff)
    assert admin.get("/admin/alerts/alert/", {"q": "MRN"}).status_code == 200
    assert admin.get(f"/admin/alerts/alert/{alert.pk}/change/").status_code == 200
    listing, change = _rows()
    assert (listing.channel, listing.route, listing.query) == (
        "admin",
        "admin:alerts_alert_changelist",
        "q=MRN",
    )
    assert (change.actor, change.route, change.encounter_id, change.patient_id, change.ward) == (
        staff.get_username(),
        "admin:alerts_alert_change",
        alert.encounter_id,
        alert.patient_id,
        "ward-a",
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/fhir+json"])
def test_a_cds_body_of_any_content_type_is_audited_as_the_view_read_it(
    alert: Alert, api_key: Any, content_type: str
) -> None:
    hook = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "encounter-discharge",
        "context": {
            "userId": "Practitioner/p1",
            "patientId": alert.patient_id,
            "encounterId": alert.encounter_id,
        },
        "prefetch": {
            "encounter": {
                "resourceType": "Encounter",
                "id": alert.encounter_id,
                "subject": {"reference": f"Patient/{alert.patient_id}"},
            }
        },
    }
    response = Client().post(
        "/cds-services/readmission-risk",
        json.dumps(hook),
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {api_key('cds')}",
    )
    assert len(response.json()["cards"]) == 1, response.content  # the view parsed it...
    (row,) = _rows()  # ...and so did the audit
    assert (row.encounter_id, row.patient_id) == (alert.encounter_id, alert.patient_id)


def test_the_recorded_address_is_the_one_the_proxy_appended(
    alert: Alert, client_a: Client, behind_one_proxy: None
) -> None:
    client_a.get(
        f"/encounters/{alert.encounter_id}/",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7",
    )
    (row,) = _rows()
    assert row.remote_addr == "198.51.100.7"


@pytest.mark.django_db(transaction=True)
def test_socket_snapshots_and_refusals_are_recorded(
    alert: Alert, nurse_a: User, behind_one_proxy: None
) -> None:
    inner = URLRouter(websocket_urlpatterns)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await inner({**scope, "user": nurse_a}, receive, send)

    async def scenario() -> None:
        forwarded = [(b"x-forwarded-for", b"198.51.100.9")]
        for path in ("/ws/wards/ward-a/?since=2026-01-01T00:00:00Z", "/ws/worklist/"):
            ws = WebsocketCommunicator(app, path, headers=forwarded)
            assert (await ws.connect(timeout=TIMEOUT))[0]
            assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
            await ws.disconnect()
        refused = WebsocketCommunicator(app, "/ws/wards/ward-b/")
        assert not (await refused.connect(timeout=TIMEOUT))[0]

    async_to_sync(scenario)()
    ward, planners, refused = _rows()
    assert (ward.actor, ward.channel, ward.route, ward.ward, ward.status) == (
        "nurse_a",
        "socket",
        "ws:wards",
        "ward-a",
        200,
    )
    assert ward.query.startswith("since=")
    assert ward.remote_addr == "198.51.100.9"
    assert (planners.route, planners.ward, planners.status) == ("ws:worklist", "", 200)
    assert (refused.route, refused.ward, refused.status) == ("ws:wards", "ward-b", 403)
