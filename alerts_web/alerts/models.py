"""High-risk discharge alerts and the audit trail of what people did about them.

An Alert is unique per (encounter, model version): replaying ``risk.scored`` never
creates a second row, and a newer input for the same encounter updates the row.
Every human action is an :class:`AlertAction` row with user and time; actions are
never edited or deleted, so the trail is the record of care.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from alerts_web.wards.models import Ward


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed"


class Alert(models.Model):
    ward = models.ForeignKey(Ward, on_delete=models.PROTECT, related_name="alerts")
    encounter_id = models.CharField(max_length=128, db_index=True)
    patient_id = models.CharField(max_length=128, db_index=True)
    model_version = models.CharField(max_length=128)
    input_key = models.CharField(max_length=256)
    probability = models.FloatField()
    band = models.CharField(max_length=16)
    factors = models.JSONField(default=list)
    interventions = models.JSONField(default=list)
    computed_at = models.DateTimeField()
    discharged_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_alerts",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-probability", "-created_at")
        constraints = (
            models.UniqueConstraint(
                fields=("encounter_id", "model_version"), name="alert_unique_encounter_model"
            ),
        )

    def __str__(self) -> str:
        return f"Alert {self.pk} ({self.band} {self.probability:.0%})"

    def intervention_codes(self) -> list[str]:
        return [str(i.get("code")) for i in self.interventions if isinstance(i, dict)]

    def done_interventions(self) -> set[str]:
        return set(
            self.actions.filter(kind=ActionKind.INTERVENTION_DONE).values_list(
                "intervention_code", flat=True
            )
        )

    def as_message(self) -> dict[str, Any]:
        """The JSON the dashboard renders (WebSocket and catch-up use the same shape)."""
        return {
            "id": self.pk,
            "ward": self.ward.code,
            "encounter_id": self.encounter_id,
            "patient_id": self.patient_id,
            "probability": round(self.probability, 4),
            "band": self.band,
            "model_version": self.model_version,
            "status": self.status,
            "assigned_to": self.assigned_to.get_username() if self.assigned_to else None,
            "top_factor": (self.factors[0].get("label") if self.factors else None),
            "interventions": len(self.interventions),
            "computed_at": self.computed_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class ActionKind(models.TextChoices):
    ACKNOWLEDGE = "acknowledge", "Acknowledged"
    ASSIGN = "assign", "Assigned"
    NOTE = "note", "Note"
    INTERVENTION_DONE = "intervention_done", "Intervention done"
    CLOSE = "close", "Closed"
    RESCORED = "rescored", "Rescored below high risk"


class AlertAction(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="actions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_actions",
        help_text="Who acted; empty for the system (a rescoring closed the alert).",
    )
    kind = models.CharField(max_length=32, choices=ActionKind.choices)
    note = models.TextField(blank=True, default="")
    intervention_code = models.CharField(max_length=64, blank=True, default="")
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
