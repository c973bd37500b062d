from django.contrib import admin

from alerts_web.alerts.models import Alert, AlertAction


class AlertActionInline(admin.TabularInline):
    model = AlertAction
    extra = 0
    can_delete = False
    readonly_fields = ("user", "kind", "note", "intervention_code", "assignee", "at")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("pk", "ward", "probability", "band", "status", "model_version", "created_at")
    list_filter = ("ward", "status", "band")
    readonly_fields = (
        "encounter_id",
        "patient_id",
        "model_version",
        "input_key",
        "probability",
        "band",
        "factors",
        "interventions",
        "computed_at",
    )
    inlines = (AlertActionInline,)
