"""Read-only admin of issued cards and their feedback (an audit trail is never edited)."""

from __future__ import annotations

from django.contrib import admin

from alerts_web.access_audit.admin import ReadOnlyAdmin
from alerts_web.cds.models import CardFeedback, IssuedCard


@admin.register(IssuedCard)
class IssuedCardAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "service", "ward", "last_issued_at", "last_issued_to")
    search_fields = ("uuid", "encounter_id")


@admin.register(CardFeedback)
class CardFeedbackAdmin(ReadOnlyAdmin):
    list_display = ("card", "outcome", "outcome_at", "received_at", "actor")
    list_filter = ("outcome",)
