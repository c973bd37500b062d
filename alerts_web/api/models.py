"""Per-client API keys with scopes.

The key is shown once at creation; only its SHA-256 is stored, so a database dump
does not leak working credentials. The first 8 characters (the prefix) identify the
key in the admin and in logs.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import models

from alerts_web.wards.models import Ward


class Scope(models.TextChoices):
    SCORES_READ = "scores:read", "Read encounter and patient scores"
    ALERTS_READ = "alerts:read", "Read ward alerts"
    PREDICT = "predict", "Score a feature record on demand"
    FHIR_READ = "fhir:read", "Read FHIR RiskAssessment resources"
    CDS = "cds", "Call the CDS Hooks service"


ALL_SCOPES = tuple(s.value for s in Scope)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClient(models.Model):
    name = models.CharField(max_length=200, unique=True)
    prefix = models.CharField(max_length=8, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text=f"Any of: {', '.join(ALL_SCOPES)}")
    wards = models.ManyToManyField(
        Ward, blank=True, help_text="Restrict the client to these wards; empty means all wards."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, scopes: list[str]) -> tuple[ApiClient, str]:
        """Create a client and return it with its plaintext key (the only time it exists)."""
        unknown = set(scopes) - set(ALL_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {sorted(unknown)}")
        key = f"rk_{secrets.token_urlsafe(32)}"
        client = cls.objects.create(
            name=name, prefix=key[3:11], key_hash=hash_key(key), scopes=sorted(scopes)
        )
        return client, key

    def has_scope(self, scope: str) -> bool:
        return self.is_active and scope in self.scopes
