"""Wards come from the EHR's Locations, and every score is visible to those entitled to it.

The issue's case: an encounter on the EHR's own Location (``4west``), not one of the demo
catalog's wards, was scored yet invisible to FHIR and CDS Hooks. Here the feed meets such
Locations the way it meets any score, and each surface is asked as its users would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.test import Client
from test_aw_fhir_cds import _hook

from alerts_web.alerts.feed import store_event
from alerts_web.api.models import ApiClient
from alerts_web.wards.models import Ward, WardOrigin
from alerts_web.wards.registry import UNASSIGNED_NAME, ward_for_location
from alerts_web.worklist.routing import websocket_urlpatterns
from readmit_core.events import UNASSIGNED, WorklistContext

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 5


def _bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _on_4west(event_factory: Any, **kw: Any) -> Any:
    return event_factory("4west", context=WorklistContext(unit="4 West Medicine"), **kw)


def test_a_location_never_seen_becomes_a_ward_named_from_the_ehr(event_factory: Any) -> None:
    assert not Ward.objects.filter(code="4west").exists()
    alert, outcome = store_event(_on_4west(event_factory))
    assert outcome == "created"
    assert alert is not None
    ward = Ward.objects.get(code="4west")
    assert (ward.name, ward.origin, ward.nurses.count()) == ("4 West Medicine", WardOrigin.EHR, 0)
    assert ward.first_seen_at is not None
    assert alert.ward == ward
    store_event(_on_4west(event_factory))
    assert Ward.objects.filter(code="4west").count() == 1


def test_a_low_risk_score_names_its_ward_too(event_factory: Any) -> None:
    event = event_factory(
        "3north", band="low", probability=0.05, context=WorklistContext(unit="3 North")
    )
    alert, outcome = store_event(event)
    assert (alert, outcome) == (None, "skip")
    assert Ward.objects.get(code="3north").name == "3 North"


def test_a_code_named_ward_takes_the_ehrs_name_but_an_admins_name_stays(db: Any) -> None:
    first = ward_for_location("ward-7", None)
    assert first.name == "ward-7"
    assert ward_for_location("ward-7", "  7   South ").name == "7 South"
    Ward.objects.filter(code="ward-7").update(name="7 South (step-down)")
    assert ward_for_location("ward-7", "7 South").name == "7 South (step-down)"
    assert Ward.objects.get(code="ward-7").name == "7 South (step-down)"
    assert ward_for_location(UNASSIGNED, None).name == UNASSIGNED_NAME
    manual = Ward.objects.create(code="seeded", name="Seeded")
    assert ward_for_location("seeded", "Other").pk == manual.pk
    assert Ward.objects.get(code="seeded").origin == WardOrigin.MANUAL


def test_keys_see_every_score_their_scope_covers_even_without_a_ward_row(
    cache: Any, event_factory: Any, api_key: Any
) -> None:
    event = event_factory("ward-3north")  # scored, never through the feed: no ward row
    cache.write([event])
    assert not Ward.objects.filter(code="ward-3north").exists()
    key = api_key("fhir:read", "cds", "scores:read")
    search = Client().get("/fhir/RiskAssessment", {"encounter": event.encounter_id}, **_bearer(key))
    assert search.json()["total"] == 1
    read = Client().get(f"/fhir/RiskAssessment/{event.encounter_id}", **_bearer(key))
    assert read.status_code == 200
    by_patient = Client().get("/fhir/RiskAssessment", {"patient": event.patient_id}, **_bearer(key))
    assert by_patient.json()["total"] == 1
    score = Client().get(f"/api/v1/encounters/{event.encounter_id}/score", **_bearer(key))
    assert score.status_code == 200
    cards = (
        Client()
        .post(
            "/cds-services/readmission-risk",
            _hook(event),
            content_type="application/json",
            **_bearer(key),
        )
        .json()["cards"]
    )
    assert len(cards) == 1


def test_a_ward_restricted_key_sees_only_its_wards(
    cache: Any, event_factory: Any, api_key: Any, wards: Any
) -> None:
    mine, other = event_factory("ward-a"), event_factory("4west")
    cache.write([mine, other])
    key = api_key("fhir:read", name="ward-a-reader")
    ApiClient.objects.get(name="ward-a-reader").wards.add(wards[0])
    assert (
        Client().get(f"/fhir/RiskAssessment/{mine.encounter_id}", **_bearer(key)).status_code == 200
    )
    assert (
        Client().get(f"/fhir/RiskAssessment/{other.encounter_id}", **_bearer(key)).status_code
        == 404
    )


def test_nurses_see_a_new_ward_only_once_assigned_staff_at_once(
    event_factory: Any, cache: Any, staff: User
) -> None:
    event = _on_4west(event_factory)
    cache.write([event])
    store_event(event)
    nurse = User.objects.create_user("nurse_4w", password="pw-4w-123456")
    planner = User.objects.create_user("planner_4w", password="pw-p-123456")
    planner.user_permissions.add(Permission.objects.get(codename="view_all_wards"))
    url = f"/fhir/RiskAssessment/{event.encounter_id}"
    as_nurse, as_staff, as_planner = Client(), Client(), Client()
    as_nurse.force_login(nurse)
    as_staff.force_login(staff)
    as_planner.force_login(planner)
    assert as_nurse.get(url).status_code == 404
    assert as_nurse.get("/wards/4west/").status_code == 404
    assert as_staff.get(url).status_code == 200
    assert as_planner.get(url).status_code == 200
    assert as_staff.get("/wards/4west/").status_code == 200
    Ward.objects.get(code="4west").nurses.add(nurse)
    assert as_nurse.get(url).status_code == 200
    assert as_nurse.get("/wards/4west/").status_code == 200


def _as(user: Any) -> Callable[..., Awaitable[None]]:
    inner = URLRouter(websocket_urlpatterns)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await inner({**scope, "user": user}, receive, send)

    return app


def test_the_new_wards_socket_serves_staff_and_refuses_an_unassigned_nurse(
    event_factory: Any, staff: User
) -> None:
    alert, _ = store_event(_on_4west(event_factory))
    assert alert is not None
    nurse = User.objects.create_user("nurse_ws", password="pw-ws-123456")

    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(staff), "/ws/wards/4west/")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await ws.receive_json_from(timeout=TIMEOUT)
        assert [a["id"] for a in snapshot["alerts"]] == [alert.pk]
        await ws.disconnect()
        refused = WebsocketCommunicator(_as(nurse), "/ws/wards/4west/")
        connected, code = await refused.connect(timeout=TIMEOUT)
        assert (connected, code) == (False, 4403)
        await refused.disconnect()

    async_to_sync(scenario)()


def test_the_admin_lists_new_wards_for_assignment_and_the_card_feedback(
    event_factory: Any, staff: User
) -> None:
    store_event(_on_4west(event_factory))
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/wards/ward/", {"origin__exact": WardOrigin.EHR})
    assert listing.status_code == 200
    assert "4 West Medicine" in listing.content.decode()
    ward = Ward.objects.get(code="4west")
    assert admin.get(f"/admin/wards/ward/{ward.pk}/change/").status_code == 200
    for page in ("/admin/cds/issuedcard/", "/admin/cds/cardfeedback/"):
        assert admin.get(page).status_code == 200
    assert admin.get("/admin/cds/cardfeedback/add/").status_code == 403
