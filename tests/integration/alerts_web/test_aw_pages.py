"""Pages: login, ward isolation, actions with audit trail, CSRF, downloads, what-if, ops."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from alerts_web.alerts.feed import store_event
from alerts_web.alerts.models import ActionKind, Alert, AlertAction, AlertStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def alert_pair(wards: Any, cache: Any, event_factory: Any) -> tuple[Alert, Alert]:
    """One alert on ward A, one on ward B; their scores are in Redis like the scorer left them."""
    out = []
    for ward in wards:
        event = event_factory(ward.code)
        cache.write([event])
        alert, _ = store_event(event)
        assert alert is not None
        out.append(alert)
    return out[0], out[1]


def _page_urls(alert: Alert) -> list[str]:
    return [
        reverse("wards:index"),
        reverse("wards:dashboard", args=[alert.ward.code]),
        reverse("alerts:encounter", args=[alert.encounter_id]),
        reverse("alerts:encounter-pdf", args=[alert.encounter_id]),
        reverse("alerts:encounter-csv", args=[alert.encounter_id]),
        reverse("whatif:form"),
        reverse("ops:page"),
        reverse("ops:status"),
    ]


def test_anonymous_is_sent_to_login_everywhere(alert_pair: tuple[Alert, Alert]) -> None:
    client = Client()
    for url in _page_urls(alert_pair[0]):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "login" in response["Location"], url
    response = client.post(reverse("alerts:action", args=[alert_pair[0].pk, "acknowledge"]))
    assert response.status_code == 302
    assert not AlertAction.objects.exists()


def test_login_page_logs_a_nurse_in(nurse_a: User) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("login"))
    token = page.cookies["csrftoken"].value
    response = client.post(
        reverse("login"),
        {"username": "nurse_a", "password": "pw-a-123456", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert client.get(reverse("wards:index")).status_code == 200


def test_nurse_sees_only_her_wards(client_a: Client, alert_pair: tuple[Alert, Alert]) -> None:
    mine, theirs = alert_pair
    index = client_a.get(reverse("wards:index")).content.decode()
    assert mine.ward.code in index
    assert theirs.ward.code not in index
    assert client_a.get(reverse("wards:dashboard", args=[mine.ward.code])).status_code == 200
    for url in _page_urls(theirs)[1:5]:
        assert client_a.get(url).status_code == 404, url


def test_nurse_cannot_act_on_another_wards_alert(
    client_a: Client, alert_pair: tuple[Alert, Alert]
) -> None:
    theirs = alert_pair[1]
    response = client_a.post(reverse("alerts:action", args=[theirs.pk, "acknowledge"]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == AlertStatus.OPEN
    assert not AlertAction.objects.exists()


def test_every_action_is_audited_with_user_and_time(
    client_a: Client, nurse_a: User, alert_pair: tuple[Alert, Alert]
) -> None:
    alert = alert_pair[0]

    def act(kind: str, **data: Any) -> None:
        response = client_a.post(reverse("alerts:action", args=[alert.pk, kind]), data)
        assert response.status_code == 302

    act("acknowledge")
    act("assign", assignee=nurse_a.pk)
    act("note", note="Daughter will pick up meds")
    act("intervention_done", intervention_code="med-rec")
    trail = list(AlertAction.objects.filter(alert=alert))
    assert [a.kind for a in trail] == [
        ActionKind.ACKNOWLEDGE,
        ActionKind.ASSIGN,
        ActionKind.NOTE,
        ActionKind.INTERVENTION_DONE,
    ]
    assert {a.user for a in trail} == {nurse_a}
    assert all(a.at is not None for a in trail)
    alert.refresh_from_db()
    assert (alert.status, alert.assigned_to) == (AlertStatus.ACKNOWLEDGED, nurse_a)
    page = client_a.get(reverse("alerts:encounter", args=[alert.encounter_id])).content.decode()
    assert "Daughter will pick up meds" in page
    assert "nurse_a" in page


def test_bad_action_input_is_refused_with_a_message(
    client_a: Client, nurse_b: User, alert_pair: tuple[Alert, Alert]
) -> None:
    alert = alert_pair[0]
    url = reverse("alerts:action", args=[alert.pk, "assign"])
    response = client_a.post(url, {"assignee": nurse_b.pk}, follow=True)
    assert "Choose a nurse of this ward" in response.content.decode()
    client_a.post(reverse("alerts:action", args=[alert.pk, "note"]), {"note": "  "})
    client_a.post(
        reverse("alerts:action", args=[alert.pk, "intervention_done"]),
        {"intervention_code": "not-one-of-them"},
    )
    assert not AlertAction.objects.exists()
    assert client_a.post(reverse("alerts:action", args=[alert.pk, "explode"])).status_code == 404


def test_forms_require_csrf(nurse_a: User, alert_pair: tuple[Alert, Alert]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(nurse_a)
    url = reverse("alerts:action", args=[alert_pair[0].pk, "acknowledge"])
    assert client.post(url).status_code == 403
    assert client.post(reverse("whatif:form"), {}).status_code == 403
    assert not AlertAction.objects.exists()


def test_patient_page_shows_gauge_factors_interventions_history_and_version(
    client_a: Client, alert_pair: tuple[Alert, Alert]
) -> None:
    alert = alert_pair[0]
    html = client_a.get(reverse("alerts:encounter", args=[alert.encounter_id])).content.decode()
    assert 'class="risk-gauge"' in html
    assert f"{round(alert.probability * 100)}%" in html
    assert "2 inpatient stays" in html
    assert "Medication reconciliation" in html
    assert "lr-test-1" in html
    assert 'id="chart-data"' in html
    assert "/static/vendor/chart.js/chart.umd.min.js" in html


def test_pdf_and_csv_downloads(client_a: Client, alert_pair: tuple[Alert, Alert]) -> None:
    alert = alert_pair[0]
    pdf = client_a.get(reverse("alerts:encounter-pdf", args=[alert.encounter_id]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    response = client_a.get(reverse("alerts:encounter-csv", args=[alert.encounter_id]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["encounter_id"] == alert.encounter_id
    assert float(rows[0]["probability"]) == pytest.approx(alert.probability)


def test_whatif_scores_with_the_real_model(client_a: Client, real_model: Any) -> None:
    page = client_a.get(reverse("whatif:form"))
    form = page.context["form"]
    data = {name: str(field.initial) for name, field in form.fields.items()}
    data.update({"age": "[80-90)", "number_inpatient": "6", "time_in_hospital": "9", "diag_1": "8"})
    response = client_a.post(reverse("whatif:form"), data)
    assert response.status_code == 200
    result = response.context["result"]
    assert 0.0 <= result.probability <= 1.0
    assert result.band in ("low", "medium", "high")
    assert result.factors
    assert 'id="whatif-result"' in response.content.decode()


def test_whatif_invalid_values_get_field_messages_not_500(client_a: Client) -> None:
    page = client_a.get(reverse("whatif:form"))
    data = {name: str(field.initial) for name, field in page.context["form"].fields.items()}
    data.update({"time_in_hospital": "-3", "diag_1": "banana"})
    response = client_a.post(reverse("whatif:form"), data)
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"time_in_hospital", "diag_1"}
    html = response.content.decode()
    assert 'data-field="time_in_hospital"' in html
    assert 'data-field="diag_1"' in html
    # every aria-describedby names elements that exist; invalid fields are marked
    import re

    ids = set(re.findall(r' id="([^"]+)"', html))
    described = re.findall(r'aria-describedby="([^"]+)"', html)
    assert described
    assert {ref for refs in described for ref in refs.split()} <= ids
    assert 'id="id_diag_1-error"' in html
    assert html.count('aria-invalid="true"') == 2
    assert 'href="#id_diag_1"' in html  # the error summary links to the field


def test_whatif_after_death_states_that_risk_does_not_apply(
    client_a: Client, real_model: Any
) -> None:
    page = client_a.get(reverse("whatif:form"))
    data = {name: str(field.initial) for name, field in page.context["form"].fields.items()}
    data.update({"age": "[70-80)", "diag_1": "428", "discharge_disposition_id": "13"})
    response = client_a.post(reverse("whatif:form"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="not-applicable"' in html
    assert "risk-gauge" not in html
    assert "Recommended interventions" not in html


def test_ops_page_is_staff_only(client_a: Client, staff: User) -> None:
    assert client_a.get(reverse("ops:page")).status_code == 302
    assert client_a.get(reverse("ops:status")).status_code == 302
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("ops:page"))
    assert page.status_code == 200
    assert "Consumer lag per partition" in page.content.decode()
    status = client.get(reverse("ops:status")).json()
    assert {"lag", "scorers", "events_per_second", "dead_letters_total", "model"} <= set(status)


def test_admin_can_assign_nurses_to_wards(staff: User, wards: Any, nurse_a: User) -> None:
    client = Client()
    client.force_login(staff)
    ward_b = wards[1]
    url = reverse("admin:wards_ward_change", args=[ward_b.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"code": ward_b.code, "name": ward_b.name, "nurses": [nurse_a.pk]})
    assert response.status_code == 302
    assert ward_b.nurses.filter(pk=nurse_a.pk).exists()


def test_rescoring_below_high_closes_the_alert_with_a_system_audit_row(
    client_a: Client, alert_pair: tuple[Alert, Alert], cache: Any
) -> None:
    from datetime import timedelta

    from alerts_web.alerts.feed import FeedCounts, handle_messages
    from readmit_core.events import ScoreEvent

    alert = alert_pair[0]
    lower = ScoreEvent.model_validate(
        {
            **cache.latest(alert.encounter_id).model_dump(),
            "input_key": alert.input_key + "-labs",
            "probability": 0.12,
            "band": "medium",
            "computed_at": alert.computed_at + timedelta(hours=1),
        }
    )
    counts = FeedCounts()
    changed = handle_messages([lower.to_bytes(), lower.to_bytes()], counts)
    assert [a.pk for a in changed] == [alert.pk]
    assert (counts.downgraded, counts.unchanged) == (1, 1)  # the second is a redelivery
    alert.refresh_from_db()
    assert (alert.status, alert.band) == (AlertStatus.CLOSED, "medium")
    (action,) = AlertAction.objects.filter(alert=alert)
    assert (action.kind, action.user, action.actor) == (ActionKind.RESCORED, None, "system")
    cache.write([lower])
    page = client_a.get(reverse("alerts:encounter", args=[alert.encounter_id])).content.decode()
    assert "Rescored at 12%" in page


def test_page_and_pdf_carry_the_rows_demographics_and_the_records_gaps(
    client_a: Client, wards: Any, cache: Any, event_factory: Any, tmp_path: Any
) -> None:
    """Redis keeps neither the who-and-where nor the inputs: both come from the alert row."""
    import subprocess

    from readmit_core.events import WorklistContext
    from readmit_core.features import FeatureRecord

    event = event_factory(
        wards[0].code,
        context=WorklistContext(patient_name="Okafor, Chidi", mrn="MRN-881", bed="12B"),
        record=FeatureRecord(encounter_id="e-dq", patient_nbr="p-dq", payer_code="?"),
    )
    cache.write([event])
    assert cache.latest(event.encounter_id).context is None  # what the cache holds
    store_event(event)
    html = client_a.get(reverse("alerts:encounter", args=[event.encounter_id])).content.decode()
    assert 'id="data-quality"' in html
    assert "Payer not recorded" in html
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(
        client_a.get(reverse("alerts:encounter-pdf", args=[event.encounter_id])).content
    )
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    text = " ".join(text.split())
    assert "Name Okafor, Chidi" in text
    assert "Bed 12B" in text
    assert "Payer not recorded" in text


def test_a_score_waiting_for_its_factors_says_explaining_then_shows_them(
    client_a: Client, wards: Any, cache: Any, event_factory: Any
) -> None:
    """While the explainer stage works, the page says so instead of "no explanation"; once
    the factors are in the cached score the page shows them."""
    done = event_factory(wards[0].code)
    pending = done.model_copy(update={"factors": (), "interventions": (), "factors_pending": True})
    cache.write([pending])
    store_event(pending)
    url = reverse("alerts:encounter", args=[done.encounter_id])
    html = client_a.get(url).content.decode()
    assert 'id="factors-pending"' in html
    assert "No explanation available" not in html
    assert "Recommended with the factors, which are being computed." in html
    assert done.interventions[0].title not in html
    assert cache.add_factors([done]) == [True]
    html = client_a.get(url).content.decode()
    assert 'id="factors-pending"' not in html
    assert done.factors[0].label in html
    assert 'id="interventions-pending"' not in html
    assert done.interventions[0].title in html


def test_a_pending_score_lists_no_advice_even_if_it_carries_some(
    client_a: Client, wards: Any, cache: Any, event_factory: Any
) -> None:
    """A pending score published before the scorer dropped band-only advice still carries
    it: the page withholds it, as that advice is withdrawn when the factors arrive."""
    pending = event_factory(wards[0].code, factors=(), factors_pending=True)
    cache.write([pending])
    store_event(pending)
    html = client_a.get(reverse("alerts:encounter", args=[pending.encounter_id])).content.decode()
    assert 'id="interventions-pending"' in html
    assert pending.interventions[0].title not in html
    assert "More may follow" not in html
