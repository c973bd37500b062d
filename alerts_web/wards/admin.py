"""Admin page where a charge nurse or admin assigns nurses to wards."""

from django.contrib import admin

from alerts_web.wards.models import Ward


@admin.register(Ward)
class WardAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "nurse_count")
    search_fields = ("code", "name")
    filter_horizontal = ("nurses",)

    @admin.display(description="Assigned nurses")
    def nurse_count(self, obj: Ward) -> int:
        return obj.nurses.count()
