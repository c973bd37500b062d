"""Ward list, the ward worklist, the planners' multi-ward worklist and its JSON.

The pages are a shell (filters, headings, the live-connection badge); the rows come
from :func:`worklist_data`, which the page fetches on load, on every filter change and
after every live update or reconnect, so the counts it shows are always the database's.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from alerts_web.alerts.models import PERSON_CLOSE_REASONS, AlertStatus, CloseReason
from alerts_web.wards.access import visible_wards
from alerts_web.worklist import rows as worklist


@login_required
def index(request: HttpRequest) -> HttpResponse:
    wards = visible_wards(request.user).annotate(
        open_alerts=Count(
            "alerts",
            filter=Q(
                alerts__status=AlertStatus.OPEN,
                alerts__band="high",
                alerts__superseded_by_encounter="",
            ),
        )
    )
    return render(request, "wards/index.html", {"wards": wards})


def _page(request: HttpRequest, ward: object | None) -> HttpResponse:
    wards = visible_wards(request.user)
    context = {
        "ward": ward,
        "wards": wards,
        "close_reasons": [(r.value, CloseReason(r).label) for r in PERSON_CLOSE_REASONS],
        "status_filters": worklist.STATUS_FILTERS,
        "page_sizes": worklist.PAGE_SIZES,
    }
    return render(request, "wards/dashboard.html", context)


@login_required
@require_GET
def dashboard(request: HttpRequest, code: str) -> HttpResponse:
    # a code with NUL names no ward (PostgreSQL text cannot even be asked for one)
    ward = None if "\x00" in code else visible_wards(request.user).filter(code=code).first()
    if ward is None:
        # 404, not 403: a nurse must not learn which other wards exist.
        raise Http404("No such ward.")
    return _page(request, ward)


@login_required
@require_GET
def all_wards(request: HttpRequest) -> HttpResponse:
    """Every ward the user may see on one list (discharge planners, multi-ward nurses)."""
    return _page(request, None)


@login_required
@require_GET
def worklist_data(request: HttpRequest) -> JsonResponse:
    query = worklist.WorklistQuery.from_params(request.GET)
    response = JsonResponse(worklist.run(visible_wards(request.user), query, request.user))
    response["Cache-Control"] = "no-store"  # identifying data: no shared cache keeps it
    return response
