"""The worklist and alert lifecycle attacked as an outsider would (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.test import Client
from django.urls import reverse

from alerts_web.alerts.feed import FeedCounts, handle_messages, resolve_expired, store_event
from alerts_web.alerts.models import Alert, AlertStatus, CloseReason
from readmit_core.events import ScoreEvent, WorklistContext

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime.now(UTC)


def _next(event: ScoreEvent, minutes: float = 5, **changes: Any) -> ScoreEvent:
    data = {**event.model_dump(), "computed_at": event.computed_at + timedelta(minutes=minutes)}
    data["input_key"] = event.input_key + f"+{minutes}"
    return ScoreEvent.model_validate({**data, **changes})


def _data(client: Client, **params: Any) -> Any:
    return client.get(reverse("wards:worklist-data"), params)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"assignee": "x\x00"},
        {"ward": "ward-a\x00"},
        {"page": "-5"},
        {"page": "99999999999999999999"},
        {"page": "1e3"},
        {"page_size": "0"},
        {"page_size": "-1"},
        {"page_size": "100000"},
        {"sort": "patient_name; drop table"},
        {"sort": "__class__"},
        {"dir": "sideways"},
        {"status": "deleted"},
        {"band": "low"},
        {"q": "%' OR 1=1 --"},
        {"q": "x" * 10000},
    ],
)
def test_hostile_parameters_never_500(client_a: Client, wards: Any, params: dict[str, str]) -> None:
    response = _data(client_a, **params)
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["total"] == 0


def test_undecodable_query_bytes_never_500(client_a: Client, wards: Any) -> None:
    url = reverse("wards:worklist-data")
    for qs in ("q=%ED%A0%80", "q=%FF%FE", "ward=%C0%80", "page=%00", "sort=%00"):
        assert client_a.get(f"{url}?{qs}").status_code == 200, qs
    assert client_a.get(reverse("wards:dashboard", args=["a\x00b"])).status_code == 404


def test_a_nul_in_any_text_is_stored_not_a_stuck_feed(wards: Any, event_factory: Any) -> None:
    """NUL in the context (text columns) or a factor label (jsonb): stored without it.

    Before: the context raised ValueError out of the feed loop; the label a DataError
    the feed retried forever, holding up every later alert."""
    ctx = WorklistContext(patient_name="Eve\x00il", mrn="M\x00", bed="1\x00", unit="U\x00")
    event = event_factory("ward-a", context=ctx, discharged_at=NOW - timedelta(days=1))
    data = event.model_dump(mode="json")
    data["factors"][0]["label"] = "2 inpatient\x00 stays"
    bad_id = {**data, "encounter_id": "enc\x00x"}
    counts = FeedCounts()
    handle_messages([orjson.dumps(data), orjson.dumps(bad_id)], counts)
    alert = Alert.objects.get(encounter_id=event.encounter_id)
    assert (alert.patient_name, alert.mrn, alert.bed) == ("Eveil", "M", "1")
    assert alert.factors[0]["label"] == "2 inpatient stays"
    assert (counts.stored, counts.invalid) == (1, 1)


def test_nurse_cannot_reach_another_wards_rows(
    client_a: Client, wards: Any, event_factory: Any
) -> None:
    store_event(event_factory("ward-b", context=WorklistContext(patient_name="Secret, B")))
    for params in (
        {},
        {"ward": "ward-b"},
        {"ward": ["ward-a", "ward-b"]},
        {"q": "Secret"},
        {"status": "all", "band": "all"},
        {"page": "2"},
    ):
        body = _data(client_a, **params).json()
        assert (body["total"], body["rows"]) == (0, []), params
        assert body["counts"]["all"] == 0
    assert "Secret" not in client_a.get(reverse("wards:worklist")).content.decode()
    assert client_a.get(reverse("wards:dashboard", args=["ward-b"])).status_code == 404


def test_anonymous_gets_nothing(wards: Any, event_factory: Any) -> None:
    store_event(event_factory("ward-a", context=WorklistContext(patient_name="Secret, A")))
    anon = Client()
    for url in (reverse("wards:worklist-data"), reverse("wards:worklist")):
        response = anon.get(url)
        assert response.status_code in (302, 401, 403)
        assert b"Secret" not in response.content


def test_older_score_arriving_late_changes_nothing(wards: Any, event_factory: Any) -> None:
    first = event_factory("ward-a", probability=0.7)
    newer = _next(first, 10, probability=0.2, band="low")
    store_event(first)
    assert store_event(newer)[1] == "downgraded"
    assert store_event(_next(first, 5, probability=0.9))[1] == "unchanged"
    assert store_event(first)[1] == "unchanged"
    alert = Alert.objects.get(encounter_id=first.encounter_id)
    assert (alert.status, alert.probability) == (AlertStatus.CLOSED, 0.2)


def test_thirty_days_exactly_is_still_open(wards: Any, event_factory: Any) -> None:
    discharged = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    event = event_factory("ward-a", discharged_at=discharged)
    store_event(event)
    assert resolve_expired(discharged + timedelta(days=30)) == []
    assert len(resolve_expired(discharged + timedelta(days=30, seconds=1))) == 1
    alert = Alert.objects.get(encounter_id=event.encounter_id)
    assert alert.close_reason == CloseReason.WINDOW_PASSED


def test_readmission_boundary_in_another_time_zone(wards: Any, event_factory: Any) -> None:
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    first = event_factory("ward-a", discharged_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    store_event(first)
    # 30 days later to the second, stated in New York local time
    began = datetime(2026, 3, 31, 10, 0, tzinfo=UTC).astimezone(ny)
    later = event_factory(
        "ward-a",
        patient_id=first.patient_id,
        discharged_at=began + timedelta(days=3),
        context=WorklistContext(admitted_at=began),
    )
    store_event(later)
    alert = Alert.objects.get(encounter_id=first.encounter_id)
    assert alert.close_reason == CloseReason.READMITTED


def test_a_nul_in_a_page_address_is_not_found_not_500(client_a: Client, wards: Any) -> None:
    for name in ("alerts:encounter", "alerts:encounter-pdf", "alerts:encounter-csv"):
        assert client_a.get(reverse(name, args=["e\x00"])).status_code == 404, name


@pytest.mark.django_db(transaction=True)
def test_migrations_merge_duplicate_rows_of_an_encounter() -> None:
    """A database with rotation duplicates (two models, one encounter) migrates to one row
    per encounter, the latest score kept, every audit row moved onto it."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("alerts", "0001_initial")])
    old = executor.loader.project_state([("alerts", "0001_initial")]).apps
    ward = old.get_model("wards", "Ward").objects.create(code="ward-m", name="M")
    alert_model, action_model = (
        old.get_model("alerts", "Alert"),
        old.get_model("alerts", "AlertAction"),
    )
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [
        alert_model.objects.create(
            ward=ward,
            encounter_id="e-dup",
            patient_id="p",
            model_version=f"m{i}",
            input_key="k",
            probability=p,
            band="high",
            computed_at=t0 + timedelta(minutes=i),
            status=status,
        )
        for i, (p, status) in enumerate([(0.6, "acknowledged"), (0.8, "open"), (0.7, "open")])
    ]
    for row in rows:
        action_model.objects.create(alert=row, kind="note", note=f"on {row.model_version}")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    kept = Alert.objects.get(encounter_id="e-dup")
    assert (kept.model_version, kept.probability) == ("m2", 0.7)
    assert sorted(a.note for a in kept.actions.all()) == ["on m0", "on m1", "on m2"]
