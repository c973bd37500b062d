"""Scope checks: a view names the scope it needs; keys without it get 403."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from alerts_web.api.auth import has_scope


class HasRequiredScope(BasePermission):
    message = "This API key lacks the scope this endpoint requires."

    def has_permission(self, request: Any, view: Any) -> bool:
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return False
        return has_scope(request.user, scope)
