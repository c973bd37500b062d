"""Ops page (staff only): rendered once, then refreshed from ``status.json`` every few seconds."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from alerts_web.ops.status import ops_status
from readmit.settings import get_settings


@staff_member_required
def ops_page(request: HttpRequest) -> HttpResponse:
    return render(request, "ops/ops.html", {"status": ops_status(get_settings())})


@staff_member_required
def ops_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(ops_status(get_settings()))
