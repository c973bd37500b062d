"""What a nurse can do with an alert; each action becomes an audit row, then a broadcast."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from alerts_web.alerts.models import ActionKind, Alert, AlertAction, AlertStatus


class ActionError(ValueError):
    """The action cannot be applied; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def assignable_users(alert: Alert) -> Any:
    """Who an alert may be assigned to: active nurses of the alert's ward."""
    return alert.ward.nurses.filter(is_active=True).order_by("username")


def apply_action(alert: Alert, user: Any, kind: str, data: dict[str, str]) -> AlertAction:
    if kind not in ActionKind.values:
        raise ActionError("kind", f"unknown action {kind!r}")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        action = AlertAction(alert=locked, user=user, kind=kind)
        if kind == ActionKind.ACKNOWLEDGE:
            if locked.status == AlertStatus.OPEN:
                locked.status = AlertStatus.ACKNOWLEDGED
        elif kind == ActionKind.ASSIGN:
            action.assignee = _assignee(locked, data.get("assignee", ""))
            locked.assigned_to = action.assignee
        elif kind == ActionKind.NOTE:
            note = data.get("note", "").strip()
            if not note:
                raise ActionError("note", "A note cannot be empty.")
            if len(note) > 2000:
                raise ActionError("note", "Keep notes under 2000 characters.")
            action.note = note
        elif kind == ActionKind.INTERVENTION_DONE:
            code = data.get("intervention_code", "")
            if code not in locked.intervention_codes():
                raise ActionError("intervention_code", "Not an intervention of this alert.")
            action.intervention_code = code
        elif kind == ActionKind.CLOSE:
            locked.status = AlertStatus.CLOSED
        action.save()
        locked.save()
    alert.refresh_from_db()
    return action


def _assignee(alert: Alert, raw: str) -> Any:
    user_model = get_user_model()
    try:
        pk = int(raw)
    except ValueError as exc:
        raise ActionError("assignee", "Choose a nurse of this ward.") from exc
    assignee = assignable_users(alert).filter(pk=pk).first()
    if assignee is None or not isinstance(assignee, user_model):
        raise ActionError("assignee", "Choose a nurse of this ward.")
    return assignee
