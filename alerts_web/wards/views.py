"""Ward list and the live ward dashboard (the list itself arrives over the WebSocket)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from alerts_web.alerts.models import AlertStatus
from alerts_web.wards.access import visible_wards


@login_required
def index(request: HttpRequest) -> HttpResponse:
    wards = visible_wards(request.user).annotate(
        open_alerts=Count("alerts", filter=Q(alerts__status=AlertStatus.OPEN))
    )
    return render(request, "wards/index.html", {"wards": wards})


@login_required
def dashboard(request: HttpRequest, code: str) -> HttpResponse:
    ward = visible_wards(request.user).filter(code=code).first()
    if ward is None:
        # 404, not 403: a nurse must not learn which other wards exist.
        raise Http404("No such ward.")
    return render(request, "wards/dashboard.html", {"ward": ward})
