"""Cards this service issued and the feedback EHRs sent about them.

A card's uuid is derived from the score input it shows (the same score gives the same
card), so the feedback endpoint can refuse a uuid this service never issued and tie
each outcome to the encounter, patient and ward the card was about (who may send it,
and the audit trail, follow from that).
"""

from __future__ import annotations

from django.db import models


class IssuedCard(models.Model):
    uuid = models.UUIDField(primary_key=True)
    service = models.CharField(max_length=64)
    encounter_id = models.CharField(max_length=64, db_index=True)
    patient_id = models.CharField(max_length=64)
    ward = models.CharField(max_length=64)
    input_key = models.CharField(max_length=255)
    suggestion_uuids = models.JSONField(default=list)
    first_issued_at = models.DateTimeField(auto_now_add=True)
    last_issued_at = models.DateTimeField()
    last_issued_to = models.CharField(max_length=150)

    class Meta:
        ordering = ("-last_issued_at",)

    def __str__(self) -> str:
        return f"{self.service} card {self.uuid}"


class Outcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    OVERRIDDEN = "overridden", "Overridden"


class CardFeedback(models.Model):
    """One Feedback entry (CDS Hooks 2.0): what the clinician did with a card."""

    card = models.ForeignKey(IssuedCard, on_delete=models.PROTECT, related_name="feedback")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    accepted_suggestions = models.JSONField(default=list)
    override_reason = models.JSONField(null=True, blank=True, help_text="The reason's Coding.")
    user_comment = models.TextField(blank=True)
    outcome_at = models.DateTimeField(help_text="outcomeTimestamp: when the user acted.")
    received_at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=150, help_text="The EHR (ehr:<iss>) or api:<key>.")

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.outcome} {self.card_id} by {self.actor}"
