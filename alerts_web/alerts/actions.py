"""What a nurse or planner can do with an alert; each action is an audit row, then a broadcast."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from alerts_web.alerts.feed import close, record_action, reopen
from alerts_web.alerts.models import (
    PERSON_ACTIONS,
    PERSON_CLOSE_REASONS,
    ActionKind,
    Alert,
    AlertAction,
    AlertStatus,
    CloseReason,
)
from readmit_core.errors import ReadmitError

NOTE_LIMIT = 2000


class ActionError(ReadmitError, ValueError):
    """The action cannot be applied; ``field`` names the offending input."""

    status = 400
    issue_code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def assignable_users(alert: Alert) -> Any:
    """Who an alert may be assigned to: active nurses of the alert's ward."""
    return alert.ward.nurses.filter(is_active=True).order_by("username")


def _note(data: dict[str, str], *, required: bool) -> str:
    note = data.get("note", "").strip()
    if required and not note:
        raise ActionError("note", "A note cannot be empty.")
    if len(note) > NOTE_LIMIT:
        raise ActionError("note", f"Keep notes under {NOTE_LIMIT} characters.")
    return note


def apply_action(alert: Alert, user: Any, kind: str, data: dict[str, str]) -> AlertAction:
    """Validate and record one action; raises :class:`ActionError` with nothing changed."""
    if kind not in PERSON_ACTIONS:
        raise ActionError("kind", f"unknown action {kind!r}")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().select_related("ward").get(pk=alert.pk)
        fields = _apply(locked, kind, data)
        locked.save()
        action = record_action(locked, user, kind, **fields)
    alert.refresh_from_db()
    return action


def _apply(alert: Alert, kind: str, data: dict[str, str]) -> dict[str, Any]:
    """Change ``alert`` for the action; the audit row's fields."""
    closed = alert.status == AlertStatus.CLOSED
    if kind == ActionKind.REOPEN:
        if not closed:
            raise ActionError("kind", "Only a closed alert can be reopened.")
        if not alert.is_latest_stay:
            raise ActionError("kind", "A later stay of this patient is on the worklist.")
        reopen(alert)
        return {"note": _note(data, required=False)}
    if closed and kind not in (ActionKind.NOTE, ActionKind.INTERVENTION_DONE):
        raise ActionError("kind", "The alert is closed; reopen it first.")
    if kind == ActionKind.ACKNOWLEDGE:
        alert.status = AlertStatus.ACKNOWLEDGED
        return {}
    if kind == ActionKind.ASSIGN:
        alert.assigned_to = _assignee(alert, data.get("assignee", ""))
        return {"assignee": alert.assigned_to}
    if kind == ActionKind.UNASSIGN:
        if alert.assigned_to is None:
            raise ActionError("assignee", "The alert is not assigned.")
        previous, alert.assigned_to = alert.assigned_to, None
        return {"assignee": previous}
    if kind == ActionKind.NOTE:
        return {"note": _note(data, required=True)}
    if kind == ActionKind.INTERVENTION_DONE:
        code = data.get("intervention_code", "")
        if code not in alert.intervention_codes():
            raise ActionError("intervention_code", "Not an intervention of this alert.")
        return {"intervention_code": code}
    reason = data.get("reason", "")
    if reason not in PERSON_CLOSE_REASONS:
        raise ActionError("reason", "Choose why the alert is closed.")
    note = _note(data, required=reason == CloseReason.OTHER)
    close(alert, CloseReason(reason))
    return {"reason": reason, "note": note}


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
