"""The one rule of who sees which ward, used by pages, API and WebSocket alike."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from alerts_web.wards.models import Ward

VIEW_ALL_PERMISSION = "wards.view_all_wards"


def visible_wards(user: Any) -> QuerySet[Ward]:
    """Wards ``user`` may see: all with the view-all permission, else the assigned ones."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Ward.objects.none()
    if user.has_perm(VIEW_ALL_PERMISSION):
        return Ward.objects.all()
    return Ward.objects.filter(nurses=user)


def can_see_ward(user: Any, ward_code: str) -> bool:
    return visible_wards(user).filter(code=ward_code).exists()
