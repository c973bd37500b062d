"""One row per read of a patient's data (HIPAA §164.312(b) audit controls)."""

from __future__ import annotations

from django.db import models


class Channel(models.TextChoices):
    PAGE = "page", "Patient page"
    PDF = "pdf", "PDF report"
    CSV = "csv", "CSV export"
    REST = "rest", "REST API"
    FHIR = "fhir", "FHIR RiskAssessment"
    CDS = "cds", "CDS Hooks"
    WARD = "ward", "Ward dashboard"
    WORKLIST = "worklist", "Worklist rows"
    SOCKET = "socket", "Live worklist (WebSocket)"
    ADMIN = "admin", "Admin alert pages"


class PatientDataAccess(models.Model):
    """Who (user or API client), what (encounter/patient/ward), when, from where, answer."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True, help_text="username or api:<key>")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    route = models.CharField(max_length=80)
    encounter_id = models.CharField(max_length=64, blank=True, db_index=True)
    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    ward = models.CharField(max_length=64, blank=True)
    # a listing names no one patient: the filter and search it answered (?ward=&q=...)
    query = models.CharField(max_length=200, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-at"]
        verbose_name = "patient data access"
        verbose_name_plural = "patient data accesses"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.channel}"
