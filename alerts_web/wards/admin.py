"""Admin page where a charge nurse or admin assigns nurses to wards.

Wards the EHR's Locations created (``origin`` "ehr") start without nurses; the
filter lists them so an admin finds the new ones to staff.
"""

from django.contrib import admin

from alerts_web.wards.models import Ward


@admin.register(Ward)
class WardAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "origin", "first_seen_at", "nurse_count")
    list_filter = ("origin",)
    search_fields = ("code", "name")
    readonly_fields = ("origin", "first_seen_at")
    filter_horizontal = ("nurses",)

    @admin.display(description="Assigned nurses")
    def nurse_count(self, obj: Ward) -> int:
        return obj.nurses.count()
