from django.contrib import admin

from alerts_web.alerts.models import Alert, AlertAction


class AlertActionInline(admin.TabularInline):
    model = AlertAction
    extra = 0
    can_delete = False
    readonly_fields = ("user", "kind", "reason", "note", "intervention_code", "assignee", "at")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-mostly: the feed and the worklist change alerts; the audit trail is append-only."""

    list_display = ("pk", "ward", "probability", "band", "status", "close_reason", "created_at")
    list_filter = ("ward", "status", "band", "close_reason")
    search_fields = ("mrn", "patient_name")
    readonly_fields = (
        "encounter_id",
        "patient_id",
        "patient_name",
        "mrn",
        "sex",
        "age_years",
        "unit",
        "room",
        "bed",
        "admitted_at",
        "discharged_at",
        "disposition",
        "model_version",
        "input_key",
        "probability",
        "band",
        "factors",
        "interventions",
        "inputs",
        "computed_at",
        "close_reason",
        "closed_at",
        "superseded_by_encounter",
        "last_action",
        "last_action_at",
    )
    inlines = (AlertActionInline,)
