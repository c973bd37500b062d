"""Ops page (staff only): rendered once, then refreshed from ``status.json`` every few seconds."""

from __future__ import annotations

from typing import Final

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from alerts_web.ops.history import series
from alerts_web.ops.status import ops_status
from readmit_core.settings import get_settings

# (series key, title) of the last-hour plots; ops.js draws one chart per entry.
PLOTS: Final = (
    ("lag", "Consumer lag (messages)"),
    ("events_per_second", "Events consumed per second"),
    ("latency_ms", "Mean end-to-end latency (ms)"),
    ("dead_letters_per_min", "Dead letters per minute"),
)


@staff_member_required
def ops_page(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    context = {
        "status": ops_status(settings),
        "history": series(),
        "plots": PLOTS,
        "sample_seconds": settings.ops_sample_seconds,
    }
    return render(request, "ops/ops.html", context)


@staff_member_required
def ops_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**ops_status(get_settings()), "history": series()})
