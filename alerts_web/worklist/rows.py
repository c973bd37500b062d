"""The discharge-planning worklist query: filters, search, sort and honest paging.

One query for the ward page, the multi-ward planner view and the WebSocket snapshot,
so what the page says ("41-50 of 217") is what the database holds: no silent cap.
Only the latest index stay of a patient is listed; earlier stays are counted per row
and reachable from the patient page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from typing import Any, Final

from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import QueryDict

from alerts_web.alerts.models import ACTIVE_STATUSES, Alert, AlertStatus
from alerts_web.wards.models import Ward

PAGE_SIZES: Final = (25, 50, 100)
DEFAULT_PAGE_SIZE: Final = 50
STATUS_FILTERS: Final = ("active", "open", "acknowledged", "closed", "all")
BAND_FILTERS: Final = ("high", "medium", "all")
SORTS: Final[dict[str, tuple[str, ...]]] = {
    "risk": ("probability",),
    "name": ("patient_name", "mrn"),
    "discharged": ("discharged_at",),
    "los": ("los",),
    "ward": ("ward__code", "bed"),
    "status": ("status",),
    "last_action": ("last_action_at",),
}
DEFAULT_DIRECTION: Final = {"risk": "desc", "discharged": "desc", "last_action": "desc"}
SEARCH_LIMIT: Final = 100


@dataclass(frozen=True)
class WorklistQuery:
    """The filters of one worklist request, each validated (unknown values: the default)."""

    wards: tuple[str, ...] = ()
    status: str = "active"
    band: str = "high"
    assignee: str = ""
    q: str = ""
    sort: str = "risk"
    direction: str = "desc"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    ignored: tuple[str, ...] = field(default=())

    @classmethod
    def from_params(cls, params: QueryDict) -> WorklistQuery:
        ignored: list[str] = []

        def text(name: str) -> str:
            # PostgreSQL text cannot hold NUL: a hostile "%00" would otherwise be a 500
            return params.get(name, "").replace("\x00", "")

        def choice(name: str, allowed: tuple[str, ...] | list[str], default: str) -> str:
            value = params.get(name, default)
            if value not in allowed:
                ignored.append(name)
                return default
            return value

        sort = choice("sort", list(SORTS), "risk")
        return cls(
            wards=tuple(dict.fromkeys(w for w in params.getlist("ward") if w)),
            status=choice("status", STATUS_FILTERS, "active"),
            band=choice("band", BAND_FILTERS, "high"),
            assignee=text("assignee")[:150],
            q=" ".join(text("q").split())[:SEARCH_LIMIT],
            sort=sort,
            direction=choice("dir", ("asc", "desc"), DEFAULT_DIRECTION.get(sort, "asc")),
            page=_positive(params.get("page"), 1),
            page_size=int(choice("page_size", [str(n) for n in PAGE_SIZES], "50")),
            ignored=tuple(ignored),
        )


def _positive(raw: str | None, default: int) -> int:
    try:
        value = int(raw or default)
    except ValueError:
        return default
    return max(1, min(value, 1_000_000))


def _filtered(base: QuerySet[Alert], query: WorklistQuery, user: Any) -> QuerySet[Alert]:
    qs = base.filter(superseded_by_encounter="")
    if query.band != "all":
        qs = qs.filter(band=query.band)
    if query.assignee == "me":
        qs = qs.filter(assigned_to=user)
    elif query.assignee == "none":
        qs = qs.filter(assigned_to__isnull=True)
    elif query.assignee:
        qs = qs.filter(assigned_to__username=query.assignee)
    if query.q:
        qs = qs.filter(Q(patient_name__icontains=query.q) | Q(mrn__icontains=query.q))
    return qs


def _with_status(qs: QuerySet[Alert], status: str) -> QuerySet[Alert]:
    if status == "active":
        return qs.filter(status__in=ACTIVE_STATUSES)
    if status == "all":
        return qs
    return qs.filter(status=status)


def _ordered(qs: QuerySet[Alert], query: WorklistQuery) -> QuerySet[Alert]:
    los = ExpressionWrapper(F("discharged_at") - F("admitted_at"), output_field=DurationField())
    keys = SORTS[query.sort]
    desc = query.direction == "desc"
    order = [F(k).desc(nulls_last=True) if desc else F(k).asc(nulls_last=True) for k in keys]
    return qs.annotate(los=los).order_by(*order, "-probability", "pk")


def run(wards: QuerySet[Ward], query: WorklistQuery, user: Any) -> dict[str, Any]:
    """The page of rows the query asks for, with the counts that make it honest."""
    if query.wards:  # a code with NUL names no ward (and PostgreSQL text cannot hold it)
        wards = wards.filter(code__in=[w for w in query.wards if "\x00" not in w])
    base = Alert.objects.filter(ward__in=wards)
    filtered = _filtered(base, query, user)
    by_status = dict(
        filtered.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    counts = {s.value: by_status.get(s.value, 0) for s in AlertStatus}
    counts["active"] = sum(counts[s] for s in ACTIVE_STATUSES)
    counts["all"] = sum(by_status.values())
    total = counts[query.status]
    pages = max(1, ceil(total / query.page_size))
    page = min(query.page, pages)
    start = (page - 1) * query.page_size
    earlier = (
        base.filter(patient_id=OuterRef("patient_id"))
        .exclude(superseded_by_encounter="")
        .order_by()
        .values("patient_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        _ordered(_with_status(filtered, query.status), query)
        .select_related("ward", "assigned_to")
        .annotate(earlier=Coalesce(Subquery(earlier), 0))[start : start + query.page_size]
    )
    return {
        "total": total,
        "counts": counts,
        "page": page,
        "pages": pages,
        "page_size": query.page_size,
        "first": start + 1 if total else 0,
        "last": min(start + query.page_size, total),
        "rows": [a.as_message(earlier_stays=a.earlier) for a in rows],
        "ignored": list(query.ignored),
    }
