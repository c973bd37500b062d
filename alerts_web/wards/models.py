"""Wards and who may see them.

A nurse sees a ward only when assigned to it (``Ward.nurses``); users with the
``wards.view_all_wards`` permission (discharge planners, admins) see every ward.
Pages, the API and the WebSocket all ask :mod:`alerts_web.wards.access`, so the rule
lives in one place.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class WardOrigin(models.TextChoices):
    """Where a ward row came from: an admin (or the demo seed) or the EHR's own Location."""

    MANUAL = "manual", "Created by an admin or the demo seed"
    EHR = "ehr", "Seen first in a score from the EHR"


class Ward(models.Model):
    code = models.CharField(
        max_length=64, unique=True, help_text="The ward code in events (the EHR's Location id)."
    )
    name = models.CharField(max_length=200)
    # db_default as well: a process of the previous release (rolling upgrade) inserting a
    # ward without this column still gets a valid row
    origin = models.CharField(
        max_length=8,
        choices=WardOrigin.choices,
        default=WardOrigin.MANUAL,
        db_default=WardOrigin.MANUAL,
        editable=False,
    )
    first_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a score first named this ward."
    )
    nurses = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="wards", help_text="Assigned nurses."
    )

    class Meta:
        ordering = ("code",)
        permissions = (("view_all_wards", "Can see every ward (planners, admins)"),)

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def group_name(self) -> str:
        """Channel-layer group of this ward; primary key keeps it valid for any code."""
        return f"ward.{self.pk}.{_GROUP_UNSAFE.sub('_', self.code)[:40]}"
