"""Alert lifecycle from the latest score, and the worklist query (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from alerts_web.alerts.actions import ActionError, apply_action
from alerts_web.alerts.feed import FeedCounts, handle_messages, resolve_expired, store_event
from alerts_web.alerts.models import Alert, AlertStatus, CloseReason
from readmit_core.events import ScoreEvent, WorklistContext
from readmit_core.features import FeatureRecord

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime.now(UTC)


def _record(event: ScoreEvent, **values: Any) -> FeatureRecord:
    return FeatureRecord(encounter_id=event.encounter_id, patient_nbr=event.patient_id, **values)


def _next(event: ScoreEvent, minutes: float = 5, **changes: Any) -> ScoreEvent:
    data = {**event.model_dump(), "computed_at": event.computed_at + timedelta(minutes=minutes)}
    data["input_key"] = event.input_key + f"+{minutes}"
    return ScoreEvent.model_validate({**data, **changes})


def _trail(alert: Alert) -> list[str]:
    return [a.describe() for a in alert.actions.select_related("user", "assignee", "alert")]


def test_a_correction_that_makes_it_high_again_reopens_the_alert(
    wards: Any, event_factory: Any
) -> None:
    first = event_factory("ward-a", probability=0.6, discharged_at=NOW - timedelta(days=1))
    first = _next(first, 0, record=_record(first, discharge_disposition_id=1))
    alert, outcome = store_event(first)
    assert alert is not None
    assert (outcome, alert.status) == ("created", AlertStatus.OPEN)
    expired = _next(
        first,
        5,
        probability=0.4,
        non_readmittable=True,
        record=_record(first, discharge_disposition_id=11),
    )
    assert store_event(expired)[1] == "downgraded"
    alert.refresh_from_db()
    assert (alert.status, alert.close_reason) == (AlertStatus.CLOSED, CloseReason.NOT_READMITTABLE)
    corrected = _next(
        first, 10, probability=0.52, record=_record(first, discharge_disposition_id=1)
    )
    assert store_event(corrected)[1] == "reopened"
    alert.refresh_from_db()
    assert (alert.status, alert.close_reason, alert.probability) == (AlertStatus.OPEN, "", 0.52)
    trail = _trail(alert)
    assert len(trail) == 2  # every rescore audited, in words
    assert trail[0].startswith(
        "Rescored at 40% (high risk; readmission risk does not apply), was 60%"
    )
    assert "Discharge disposition: Discharged to home → Expired" in trail[0]
    assert "Alert closed automatically" in trail[0]
    assert "was 40%" in trail[1]
    assert "Expired → Discharged to home" in trail[1]
    assert trail[1].endswith("Alert reopened: the latest score is high risk again.")
    assert alert.last_action.startswith("Rescored at 52%")


def test_a_person_closed_alert_stays_closed_on_a_high_rescore(
    wards: Any, event_factory: Any, nurse_a: User
) -> None:
    event = event_factory("ward-a", probability=0.7)
    alert, _ = store_event(event)
    assert alert is not None
    with pytest.raises(ActionError) as no_reason:
        apply_action(alert, nurse_a, "close", {})
    assert no_reason.value.field == "reason"
    with pytest.raises(ActionError):
        apply_action(alert, nurse_a, "close", {"reason": "other"})  # "other" needs a note
    apply_action(alert, nurse_a, "close", {"reason": "follow_up_arranged", "note": "GP on Friday"})
    assert store_event(_next(event, probability=0.8, model_version="lr-test-2"))[1] == "updated"
    alert.refresh_from_db()
    assert (alert.status, alert.close_reason) == (AlertStatus.CLOSED, "follow_up_arranged")
    assert alert.model_version == "lr-test-2"
    trail = _trail(alert)
    assert trail[0] == "Closed: Follow-up arranged — “GP on Friday”"
    assert "model lr-test-2 (was model lr-test-1)" in trail[1]
    assert trail[1].endswith("Stays closed (follow-up arranged).")
    with pytest.raises(ActionError):
        apply_action(alert, nurse_a, "acknowledge", {})  # closed: reopen first
    apply_action(alert, nurse_a, "reopen", {"note": "family called"})
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_assign_unassign_and_intervention_are_audited_without_codes(
    wards: Any, event_factory: Any, nurse_a: User
) -> None:
    alert, _ = store_event(event_factory("ward-a"))
    assert alert is not None
    apply_action(alert, nurse_a, "assign", {"assignee": str(nurse_a.pk)})
    apply_action(alert, nurse_a, "unassign", {})
    with pytest.raises(ActionError):
        apply_action(alert, nurse_a, "unassign", {})
    apply_action(alert, nurse_a, "intervention_done", {"intervention_code": "follow-up-7d"})
    assert alert.assigned_to is None
    assert _trail(alert) == [
        "Assigned to nurse_a",
        "Unassigned (was nurse_a)",
        "Intervention done: Follow-up within 7 days",
    ]
    assert alert.last_action == "Intervention done: Follow-up within 7 days · nurse_a"


def test_medium_rows_stay_listed_and_a_drop_below_high_closes(
    wards: Any, event_factory: Any
) -> None:
    medium = event_factory("ward-a", band="medium", probability=0.3)
    assert store_event(medium)[1] == "created"
    assert store_event(_next(medium, probability=0.32))[1] == "updated"
    assert Alert.objects.get(encounter_id=medium.encounter_id).status == AlertStatus.OPEN
    high = event_factory("ward-a")
    store_event(high)
    assert store_event(_next(high, band="medium", probability=0.3))[1] == "downgraded"
    assert Alert.objects.get(encounter_id=high.encounter_id).close_reason == CloseReason.RISK_FELL
    assert store_event(event_factory("ward-a", band="low", probability=0.05)) == (None, "skip")


def _stay(
    event_factory: Any, patient: str, admitted: datetime, days: int = 3, **kw: Any
) -> ScoreEvent:
    discharged = admitted + timedelta(days=days)
    context = WorklistContext(patient_name="Doe, Jane", mrn="MRN-1", admitted_at=admitted)
    return event_factory(
        "ward-a", patient_id=patient, discharged_at=discharged, context=context, **kw
    )


def test_a_later_stay_supersedes_the_earlier_row(wards: Any, event_factory: Any) -> None:
    early = _stay(event_factory, "p-re", NOW - timedelta(days=40))
    store_event(early)
    readmitted = _stay(event_factory, "p-re", NOW - timedelta(days=25))  # 12 days after discharge
    counts = FeedCounts()
    changed = handle_messages([readmitted.to_bytes()], counts)
    assert (counts.stored, counts.superseded) == (1, 1)
    assert len(changed) == 2
    old = Alert.objects.get(encounter_id=early.encounter_id)
    assert (old.status, old.close_reason) == (AlertStatus.CLOSED, CloseReason.READMITTED)
    assert old.superseded_by_encounter == readmitted.encounter_id
    assert "12 days after this discharge" in _trail(old)[0]
    late = _stay(event_factory, "p-re", NOW - timedelta(days=60))  # older, arrives last
    store_event(late)
    row = Alert.objects.get(encounter_id=late.encounter_id)
    assert (row.status, row.close_reason) == (AlertStatus.CLOSED, CloseReason.LATER_STAY)
    much_later = _stay(event_factory, "p-re", NOW)  # 22 days after the second stay ended
    store_event(much_later)
    second = Alert.objects.get(encounter_id=readmitted.encounter_id)
    assert second.close_reason == CloseReason.READMITTED
    assert Alert.objects.filter(patient_id="p-re", superseded_by_encounter="").count() == 1


def test_the_30_day_window_resolves_open_alerts(wards: Any, event_factory: Any) -> None:
    old = event_factory("ward-a", discharged_at=NOW - timedelta(days=31))
    recent = event_factory("ward-a", discharged_at=NOW - timedelta(days=29))
    for event in (old, recent):
        store_event(event)
    assert [a.encounter_id for a in resolve_expired()] == [old.encounter_id]
    row = Alert.objects.get(encounter_id=old.encounter_id)
    assert (row.status, row.close_reason) == (AlertStatus.CLOSED, CloseReason.WINDOW_PASSED)
    assert "with no readmission received" in _trail(row)[0]
    assert Alert.objects.get(encounter_id=recent.encounter_id).status == AlertStatus.OPEN
    # a high rescore after the window does not reopen it
    assert store_event(_next(old, probability=0.9))[1] == "updated"
    assert Alert.objects.get(pk=row.pk).status == AlertStatus.CLOSED
    later = resolve_expired(NOW + timedelta(days=2))
    assert [a.encounter_id for a in later] == [recent.encounter_id]


def test_resolve_alerts_command_reports_a_count(
    wards: Any, event_factory: Any, capsys: Any
) -> None:
    store_event(event_factory("ward-a", discharged_at=NOW - timedelta(days=45)))
    call_command("resolve_alerts")
    assert capsys.readouterr().out.strip() == "resolved=1"


def _data(client: Client, **params: Any) -> dict[str, Any]:
    response = client.get(reverse("wards:worklist-data"), params)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    return dict(response.json())


def test_worklist_pages_honestly_filters_searches_and_sorts(
    client_a: Client, nurse_a: User, wards: Any, event_factory: Any
) -> None:
    rows = []
    for i in range(230):
        ctx = WorklistContext(patient_name=f"Patient {i:03d}", mrn=f"M{i:05d}", bed=str(i))
        rows.append(event_factory("ward-a", probability=0.5 + i / 1000, context=ctx))
    rows.append(event_factory("ward-a", band="medium", probability=0.3))
    hidden = event_factory("ward-b", context=WorklistContext(patient_name="Patient 000 B"))
    handle_messages([e.to_bytes() for e in [*rows, hidden]], FeedCounts())
    page = _data(client_a, page_size=100, page=3)
    assert (page["total"], page["pages"], page["page"], len(page["rows"])) == (230, 3, 3, 30)
    assert (page["first"], page["last"]) == (201, 230)
    assert page["rows"][-1]["patient_name"] == "Patient 000"  # highest risk first
    assert _data(client_a, band="all")["total"] == 231
    assert _data(client_a, band="medium")["total"] == 1
    found = _data(client_a, q="patient 00")
    assert sorted(r["patient_name"] for r in found["rows"]) == [f"Patient 00{i}" for i in range(10)]
    assert _data(client_a, q="M00017")["rows"][0]["bed"] == "17"
    by_name = _data(client_a, sort="name", dir="asc", page_size=25)
    assert by_name["rows"][0]["patient_name"] == "Patient 000"
    assert _data(client_a, ward="ward-b")["total"] == 0  # not her ward: nothing, no error
    target = Alert.objects.get(encounter_id=rows[5].encounter_id)
    apply_action(target, nurse_a, "assign", {"assignee": str(nurse_a.pk)})
    apply_action(target, nurse_a, "acknowledge", {})
    mine = _data(client_a, assignee="me")
    assert [r["id"] for r in mine["rows"]] == [target.pk]
    assert mine["counts"] == {"open": 0, "acknowledged": 1, "closed": 0, "active": 1, "all": 1}
    assert _data(client_a, assignee="none")["total"] == 229
    assert _data(client_a, status="open", sort="bogus")["ignored"] == ["sort"]


def test_planners_see_every_ward_on_one_list(staff: User, wards: Any, event_factory: Any) -> None:
    handle_messages(
        [event_factory(w.code).to_bytes() for w in wards for _ in range(2)], FeedCounts()
    )
    client = Client()
    client.force_login(staff)
    assert {r["ward"] for r in _data(client)["rows"]} == {"ward-a", "ward-b"}
    assert _data(client, ward="ward-b")["total"] == 2
    page = client.get(reverse("wards:worklist")).content.decode()
    assert 'name="ward" value="ward-b"' in page


def test_older_events_without_the_new_parts_still_parse() -> None:
    """Backward compatible: a version-1 score from before context/record still reads."""
    old = {
        "schema_version": 1,
        "encounter_id": "e",
        "patient_id": "p",
        "ward": "w",
        "input_key": "k",
        "probability": 0.5,
        "band": "high",
        "model_version": "m",
    }
    event = ScoreEvent.model_validate(old)
    assert (event.context, event.record) == (None, None)
    ctx = WorklistContext.model_validate({"version": 1, "bed": "3", "added_later": "x"})
    assert ctx.bed == "3"  # fields a newer producer adds are ignored, not refused


def test_an_overlong_or_odd_context_from_any_producer_is_stored_not_replayed(
    wards: Any, event_factory: Any
) -> None:
    ctx = WorklistContext(patient_name="N" * 5000, bed="B" * 999, age_years=-3)
    counts = FeedCounts()
    handle_messages([event_factory("ward-a", context=ctx).to_bytes()], counts)
    assert counts.stored == 1
    row = Alert.objects.get()
    assert (len(row.patient_name), len(row.bed), row.age_years) == (200, 200, None)


def test_an_older_input_version_never_overwrites_a_newer_one(
    wards: Any, event_factory: Any
) -> None:
    """Input versions decide, not the scorer's clock: version 2 scored before version 1
    (a republished old version, a scorer with a skewed clock) keeps version 2."""
    v1 = event_factory("ward-a", probability=0.6, input_version=1)
    v2 = _next(v1, minutes=-30, probability=0.9, input_version=2)
    assert store_event(v1)[1] == "created"
    assert store_event(v2)[1] == "updated"  # newer input although computed "earlier"
    assert store_event(_next(v1, minutes=60))[1] == "unchanged"  # version 1 again, later
    alert = Alert.objects.get(encounter_id=v1.encounter_id)
    assert (alert.input_version, alert.probability) == (2, 0.9)
