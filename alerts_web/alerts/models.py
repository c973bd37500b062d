"""Discharge-planning worklist rows (alerts) and the audit trail of what happened to them.

One Alert row per index encounter: the encounter's latest score decides its band,
probability and whether it is open (a rescore updates the row in place, a correction
that makes it high again reopens it). A later index stay of the same patient
supersedes the earlier row (``superseded_by_encounter``), so the worklist shows one row
per patient, the latest discharge, with the earlier ones linked. Every human action and
every system decision (rescore, automatic close, reopen) is an :class:`AlertAction`
row; actions are never edited or deleted, so the trail is the record of care.

The row carries the worklist context (name, MRN, age, bed...) from the FHIR input: it
is identifying data, shown only to users who may see the ward, and never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

from alerts_web.wards.models import Ward


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed"


ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


class CloseReason(models.TextChoices):
    """Why an alert was closed; the first group is chosen by people, the second by rules."""

    FOLLOW_UP_ARRANGED = "follow_up_arranged", "Follow-up arranged"
    INTERVENTIONS_DONE = "interventions_done", "Interventions completed"
    NOT_NEEDED = "not_needed", "No action needed (clinical judgement)"
    CARE_TRANSFERRED = "care_transferred", "Care handed to another team"
    PATIENT_DECLINED = "patient_declined", "Patient declined follow-up"
    OTHER = "other", "Other (see note)"
    RISK_FELL = "risk_fell", "Risk fell below high on a new score"
    NOT_READMITTABLE = "not_readmittable", "Readmission risk does not apply (death or hospice)"
    READMITTED = "readmitted", "Patient readmitted"
    LATER_STAY = "later_stay", "A later stay of the patient supersedes this one"
    WINDOW_PASSED = "window_passed", "30-day readmission window ended"


PERSON_CLOSE_REASONS = (
    CloseReason.FOLLOW_UP_ARRANGED,
    CloseReason.INTERVENTIONS_DONE,
    CloseReason.NOT_NEEDED,
    CloseReason.CARE_TRANSFERRED,
    CloseReason.PATIENT_DECLINED,
    CloseReason.OTHER,
)
# closed because of a score: a newer score that is high again reopens the alert
SCORE_CLOSE_REASONS = (CloseReason.RISK_FELL, CloseReason.NOT_READMITTABLE)


class Alert(models.Model):
    ward = models.ForeignKey(Ward, on_delete=models.PROTECT, related_name="alerts")
    encounter_id = models.CharField(max_length=128, unique=True)
    patient_id = models.CharField(max_length=128, db_index=True)
    model_version = models.CharField(max_length=128)
    input_key = models.CharField(max_length=256)
    input_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The stay's input version the score came from."
    )
    probability = models.FloatField()
    band = models.CharField(max_length=16, db_index=True)
    factors = models.JSONField(default=list)
    factors_pending = models.BooleanField(
        default=False, help_text="The explainer stage has yet to add this score's factors."
    )
    interventions = models.JSONField(default=list)
    inputs = models.JSONField(default=dict, help_text="The scored inputs (for rescore audits).")
    computed_at = models.DateTimeField()
    discharged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    admitted_at = models.DateTimeField(null=True, blank=True)
    # worklist context, from the FHIR Patient and Encounter (identifying: never logged)
    patient_name = models.CharField(max_length=200, blank=True, default="", db_index=True)
    mrn = models.CharField(max_length=200, blank=True, default="", db_index=True)
    sex = models.CharField(max_length=16, blank=True, default="")
    age_years = models.PositiveSmallIntegerField(null=True, blank=True)
    unit = models.CharField(max_length=200, blank=True, default="")
    room = models.CharField(max_length=200, blank=True, default="")
    bed = models.CharField(max_length=200, blank=True, default="")
    disposition = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    close_reason = models.CharField(
        max_length=32, choices=CloseReason.choices, blank=True, default=""
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    superseded_by_encounter = models.CharField(
        max_length=128,
        blank=True,
        default="",
        db_index=True,
        help_text="The patient's later index stay; empty while this is the latest.",
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_alerts",
    )
    last_action = models.CharField(max_length=300, blank=True, default="")
    last_action_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-probability", "-created_at")
        indexes = (models.Index(fields=("ward", "status", "band"), name="alert_worklist"),)

    def __str__(self) -> str:
        return f"Alert {self.pk} ({self.band} {self.probability:.0%})"

    @property
    def is_latest_stay(self) -> bool:
        return not self.superseded_by_encounter

    def intervention_codes(self) -> list[str]:
        return [str(i.get("code")) for i in self.interventions if isinstance(i, dict)]

    def intervention_title(self, code: str) -> str:
        for item in self.interventions:
            if isinstance(item, dict) and item.get("code") == code:
                return str(item.get("title") or code)
        return code

    def done_interventions(self) -> set[str]:
        return set(
            self.actions.filter(kind=ActionKind.INTERVENTION_DONE).values_list(
                "intervention_code", flat=True
            )
        )

    def length_of_stay_hours(self) -> float | None:
        if self.admitted_at is None or self.discharged_at is None:
            return None
        return max(0.0, (self.discharged_at - self.admitted_at).total_seconds() / 3600)

    def length_of_stay_text(self) -> str:
        """ "3 d 4 h": the stay as a nurse says it (empty without both times)."""
        hours = self.length_of_stay_hours()
        if hours is None:
            return ""
        days, rest = divmod(round(hours), 24)
        return f"{days} d {rest} h" if days else f"{rest} h"

    def as_message(self, earlier_stays: int | None = None) -> dict[str, Any]:
        """The JSON the worklist renders (WebSocket and the worklist endpoint alike).

        It carries the worklist context: only ever sent to users who may see the ward.
        """
        return {
            "id": self.pk,
            "ward": self.ward.code,
            "ward_name": self.ward.name,
            "encounter_id": self.encounter_id,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name or None,
            "mrn": self.mrn or None,
            "age_years": self.age_years,
            "sex": self.sex or None,
            "unit": self.unit or None,
            "room": self.room or None,
            "bed": self.bed or None,
            "admitted_at": _iso(self.admitted_at),
            "discharged_at": _iso(self.discharged_at),
            "length_of_stay_hours": self.length_of_stay_hours(),
            "disposition": self.disposition or None,
            "probability": round(self.probability, 4),
            "band": self.band,
            "model_version": self.model_version,
            "status": self.status,
            "status_label": self.get_status_display(),
            "close_reason": self.get_close_reason_display() if self.close_reason else None,
            "superseded_by_encounter": self.superseded_by_encounter or None,
            "earlier_stays": earlier_stays,
            "assigned_to": self.assigned_to.get_username() if self.assigned_to else None,
            "last_action": self.last_action or None,
            "last_action_at": _iso(self.last_action_at),
            "top_factor": (self.factors[0].get("label") if self.factors else None),
            "factors_pending": self.factors_pending,
            "interventions": len(self.interventions),
            "computed_at": self.computed_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class ActionKind(models.TextChoices):
    LISTED = "listed", "Listed"
    ACKNOWLEDGE = "acknowledge", "Acknowledged"
    ASSIGN = "assign", "Assigned"
    UNASSIGN = "unassign", "Unassigned"
    NOTE = "note", "Note"
    INTERVENTION_DONE = "intervention_done", "Intervention done"
    CLOSE = "close", "Closed"
    REOPEN = "reopen", "Reopened"
    RESCORED = "rescored", "Rescored"


# what people may do from the pages (the others are recorded by the system)
PERSON_ACTIONS = (
    ActionKind.ACKNOWLEDGE,
    ActionKind.ASSIGN,
    ActionKind.UNASSIGN,
    ActionKind.NOTE,
    ActionKind.INTERVENTION_DONE,
    ActionKind.CLOSE,
    ActionKind.REOPEN,
)


class AlertAction(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="actions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_actions",
        help_text="Who acted; empty for the system (a rescore, an automatic close).",
    )
    kind = models.CharField(max_length=32, choices=ActionKind.choices)
    note = models.TextField(blank=True, default="")
    intervention_code = models.CharField(max_length=64, blank=True, default="")
    reason = models.CharField(max_length=32, choices=CloseReason.choices, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("at", "pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def actor(self) -> str:
        return self.user.get_username() if self.user is not None else "system"

    @property
    def actor_label(self) -> str:
        """Who, for people: a user name, or that a rule of the system did it."""
        return self.user.get_username() if self.user is not None else "System (automatic)"

    def describe(self) -> str:
        """The action as a sentence a nurse reads (no codes)."""
        kind = self.kind
        if kind == ActionKind.ASSIGN and self.assignee is not None:
            text = f"Assigned to {self.assignee.get_username()}"
        elif kind == ActionKind.UNASSIGN:
            who = self.assignee.get_username() if self.assignee is not None else "nobody"
            text = f"Unassigned (was {who})"
        elif kind == ActionKind.INTERVENTION_DONE:
            text = f"Intervention done: {self.alert.intervention_title(self.intervention_code)}"
        elif kind == ActionKind.CLOSE and self.reason:
            text = f"Closed: {self.get_reason_display()}"
        elif kind in (ActionKind.RESCORED, ActionKind.LISTED, ActionKind.NOTE) and self.note:
            return self.note if kind != ActionKind.NOTE else f"Note: \u201c{self.note}\u201d"
        else:
            text = self.get_kind_display()
        return f"{text} \u2014 \u201c{self.note}\u201d" if self.note else text
