"""The patient (encounter) risk page, its PDF/CSV downloads and the alert actions."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from pydantic import ValidationError

from alerts_web.alerts.actions import ActionError, apply_action
from alerts_web.alerts.feed import broadcast
from alerts_web.alerts.forms import AssignForm, NoteForm
from alerts_web.alerts.gauge import gauge
from alerts_web.alerts.models import (
    PERSON_ACTIONS,
    PERSON_CLOSE_REASONS,
    ActionKind,
    Alert,
    AlertAction,
    CloseReason,
)
from alerts_web.alerts.reports import RiskReport, render_csv, render_pdf, report_filename
from alerts_web.scores import latest_score, patient_history
from alerts_web.wards.access import can_see_ward, visible_wards
from model_store.explain import NOT_APPLICABLE_TEXT, record_data_quality
from readmit_core.events import Factor, Intervention, RiskBand, ScoreEvent, WorklistContext
from readmit_core.features import FeatureRecord


def _event_from_alert(alert: Alert) -> ScoreEvent:
    """The alert's stored score, when the cache no longer holds the encounter."""
    return ScoreEvent(
        encounter_id=alert.encounter_id,
        patient_id=alert.patient_id,
        ward=alert.ward.code,
        input_key=alert.input_key,
        probability=alert.probability,
        band=cast(RiskBand, alert.band),
        model_version=alert.model_version,
        factors=tuple(Factor.model_validate(f) for f in alert.factors),
        interventions=tuple(Intervention.model_validate(i) for i in alert.interventions),
        factors_pending=alert.factors_pending,
        computed_at=alert.computed_at,
        discharged_at=alert.discharged_at,
    )


def _with_stored_details(event: ScoreEvent, alert: Alert) -> ScoreEvent:
    """The score with the who-and-where and the inputs the alert row keeps.

    The Redis cache holds scores without the worklist context (identifying) or the
    inputs; the page and the hand-over PDF need both, from the row of the same input.
    """
    if event.input_key != alert.input_key:
        return event
    context = event.context or WorklistContext(
        patient_name=alert.patient_name or None,
        mrn=alert.mrn or None,
        sex=cast(Any, alert.sex or None),
        age_years=alert.age_years,
        unit=alert.unit or None,
        room=alert.room or None,
        bed=alert.bed or None,
        admitted_at=alert.admitted_at,
        discharged_at=alert.discharged_at,
        disposition=alert.disposition or None,
    )
    record = event.record
    if record is None and alert.inputs:
        try:
            record = FeatureRecord.model_validate(alert.inputs)
        except ValidationError:
            record = None
    return event.model_copy(update={"context": context, "record": record})


def _visible_event(request: HttpRequest, encounter_id: str) -> tuple[ScoreEvent, list[Alert]]:
    if "\x00" in encounter_id:  # names no encounter; PostgreSQL text cannot hold it
        raise Http404("No score for this encounter.")
    alerts = list(
        Alert.objects.filter(encounter_id=encounter_id, ward__in=visible_wards(request.user))
        .select_related("ward", "assigned_to")
        .order_by("-created_at")
    )
    event = latest_score(encounter_id)
    if event is not None and not can_see_ward(request.user, event.ward):
        event = None
    if event is None and alerts:
        event = _event_from_alert(alerts[0])
    if event is None:
        raise Http404("No score for this encounter.")
    if alerts:
        event = _with_stored_details(event, alerts[0])
    return event, alerts


def _report(request: HttpRequest, encounter_id: str) -> tuple[RiskReport, list[Alert]]:
    event, alerts = _visible_event(request, encounter_id)
    history = [
        p
        for p in patient_history(event.patient_id)
        if p.encounter_id == encounter_id or _encounter_visible(request, p.encounter_id)
    ]
    actions = list(
        AlertAction.objects.filter(alert__in=alerts).select_related("user", "assignee", "alert")
    )
    return RiskReport(event=event, history=history, actions=actions), alerts


def _encounter_visible(request: HttpRequest, encounter_id: str) -> bool:
    ev = latest_score(encounter_id)
    return ev is not None and can_see_ward(request.user, ev.ward)


@login_required
@require_GET
def encounter(request: HttpRequest, encounter_id: str) -> HttpResponse:
    report, alerts = _report(request, encounter_id)
    ev = report.event
    factors = () if ev.non_readmittable else ev.factors
    chart = {
        "factors": [{"label": f.label, "value": f.contribution} for f in factors[:10]],
        "history": [
            {"t": p.at.isoformat(), "p": p.probability}
            for p in report.history
            if p.probability is not None
        ],
    }
    context: dict[str, Any] = {
        "event": ev,
        "gauge": gauge(ev.probability),
        "history": report.history,
        "alerts": [
            {
                "alert": a,
                "done": a.done_interventions(),
                "assign_form": AssignForm(a),
                "note_form": NoteForm(),
            }
            for a in alerts
        ],
        "actions": report.actions,
        "chart": chart,
        "row": alerts[0] if alerts else None,
        "stays": _other_stays(request, alerts[0]) if alerts else [],
        "close_reasons": [(r.value, CloseReason(r).label) for r in PERSON_CLOSE_REASONS],
        "not_applicable": NOT_APPLICABLE_TEXT if ev.non_readmittable else "",
        "data_quality": record_data_quality(ev.record),
    }
    return render(request, "alerts/encounter.html", context)


def _other_stays(request: HttpRequest, alert: Alert) -> list[Alert]:
    """The patient's other listed stays the user may see (earlier ones and a later one)."""
    return list(
        Alert.objects.filter(patient_id=alert.patient_id, ward__in=visible_wards(request.user))
        .exclude(pk=alert.pk)
        .select_related("ward")
        .order_by("-discharged_at")
    )


def _download(body: bytes | str, content_type: str, filename: str) -> HttpResponse:
    """An attachment that no shared cache may keep (it carries a patient's data)."""
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def encounter_pdf(request: HttpRequest, encounter_id: str) -> HttpResponse:
    report, _ = _report(request, encounter_id)
    name = report_filename(report.event, "pdf")
    return _download(render_pdf(report), "application/pdf", name)


@login_required
@require_GET
def encounter_csv(request: HttpRequest, encounter_id: str) -> HttpResponse:
    report, _ = _report(request, encounter_id)
    name = report_filename(report.event, "csv")
    return _download(render_csv(report), "text/csv; charset=utf-8", name)


@login_required
@require_POST
def alert_action(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    alert = get_object_or_404(
        Alert.objects.select_related("ward"), pk=pk, ward__in=visible_wards(request.user)
    )
    if kind not in PERSON_ACTIONS:
        raise Http404("No such action.")
    try:
        apply_action(alert, request.user, kind, {k: str(v) for k, v in request.POST.items()})
    except ActionError as exc:
        messages.error(request, f"{exc.field.replace('_', ' ').capitalize()}: {exc.message}")
    else:
        messages.success(request, f"{ActionKind(kind).label} recorded.")
        broadcast(alert, kind="update")
    return HttpResponseRedirect(_next_url(request, alert))


def _next_url(request: HttpRequest, alert: Alert) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("alerts:encounter", args=[alert.encounter_id])
