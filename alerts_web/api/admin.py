"""Admin for integrator keys: the key is generated on save and shown once, never stored."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import admin, messages

from alerts_web.api.models import ALL_SCOPES, ApiClient, hash_key


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scopes", "is_active", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    filter_horizontal = ("wards",)

    def save_model(self, request: Any, obj: ApiClient, form: Any, change: bool) -> None:
        unknown = set(obj.scopes) - set(ALL_SCOPES)
        if unknown:
            messages.error(request, f"Unknown scopes ignored: {', '.join(sorted(unknown))}")
            obj.scopes = sorted(set(obj.scopes) & set(ALL_SCOPES))
        if not change:
            key = f"rk_{secrets.token_urlsafe(32)}"
            obj.prefix, obj.key_hash = key[3:11], hash_key(key)
            messages.warning(request, f"API key for {obj.name} (shown once, copy it now): {key}")
        super().save_model(request, obj, form, change)
