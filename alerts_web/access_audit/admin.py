"""Staff read (never edit) the access audit, and export a selection as CSV."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from alerts_web.access_audit.models import PatientDataAccess
from alerts_web.csv_cells import FormulaSafeWriter

EXPORT_COLUMNS = (
    "at",
    "actor",
    "channel",
    "route",
    "encounter_id",
    "patient_id",
    "ward",
    "query",
    "remote_addr",
    "status",
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """An audit trail's admin: listed and searched, never added to, edited or deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PatientDataAccess)
class PatientDataAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "channel", "encounter_id", "patient_id", "ward", "status")
    list_filter = ("channel", "status", "at")
    search_fields = ("actor", "encounter_id", "patient_id", "ward", "remote_addr")
    date_hierarchy = "at"
    actions = ["export_csv"]

    @admin.action(description="Export selected accesses as CSV")
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[PatientDataAccess]
    ) -> HttpResponse:
        out = io.StringIO()
        writer = FormulaSafeWriter(out)
        writer.writerow(EXPORT_COLUMNS)
        for row in queryset.order_by("at").values_list(*EXPORT_COLUMNS):
            writer.writerow(
                [value.isoformat() if hasattr(value, "isoformat") else value for value in row]
            )
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="patient-data-access.csv"'
        response["Cache-Control"] = "no-store"
        return response
