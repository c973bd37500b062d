"""API-key authentication shared by the REST API, FHIR endpoints and CDS Hooks.

Clients send ``Authorization: Api-Key <key>`` (or ``Bearer <key>``, which FHIR and
CDS clients send by habit). A request is either a logged-in user (session, limited
to her wards), an API client (limited to its scopes and optional ward list) or an
EHR that signed a CDS Hooks JWT (:mod:`alerts_web.cds.client_jwt`, scope ``cds``).

Machines see scores by scope, not by which ward rows exist: a key without a ward list
sees every scored encounter, including one on a Location no ward row names yet. Only
people are limited to wards (nurses to their assigned ones; planners and admins see all).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions

from alerts_web.api.models import ApiClient, hash_key
from alerts_web.wards.access import VIEW_ALL_PERMISSION, visible_wards
from alerts_web.wards.models import Ward

_SCHEMES = ("api-key", "bearer")
LAST_USED_RESOLUTION = timedelta(minutes=1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientPrincipal:
    """The ``request.user`` of an API-key request: looks enough like a user for DRF."""

    client: ApiClient
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    pk: Any = None

    def get_username(self) -> str:
        return f"api:{self.client.prefix}"

    def has_perm(self, perm: str) -> bool:
        return False


@dataclass(frozen=True)
class ExternalPrincipal:
    """A caller trusted by a signature rather than a key row (an EHR's CDS Hooks JWT)."""

    label: str
    scopes: frozenset[str]
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    pk: Any = None

    def get_username(self) -> str:
        return self.label

    def has_perm(self, perm: str) -> bool:
        return False


_PRINCIPAL_ATTR = "_readmit_principal"


def remember_principal(request: HttpRequest, principal: Any) -> None:
    """Keep the request's principal, so later readers (the access audit) do not re-verify:
    a JWT's jti is single-use, and a key lookup is a query."""
    setattr(request, _PRINCIPAL_ATTR, principal)


def key_from_header(header: str) -> str | None:
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not key.strip():
        return None
    return key.strip()


def client_for_key(key: str) -> ApiClient | None:
    client = ApiClient.objects.filter(key_hash=hash_key(key), is_active=True).first()
    if client is not None:
        note_use(client)
    return client


def note_use(client: ApiClient) -> None:
    """Record that a key was used, at most once per LAST_USED_RESOLUTION per key.

    ``last_used_at`` tells an admin which keys are idle (to revoke them), which needs
    minutes, not every request: a write per read would make every read depend on the
    database accepting writes (on SQLite a locked database failed reads). The update is
    conditional, so concurrent workers write once between them, and a failed write
    never fails the read it came with.
    """
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if client.last_used_at is not None and client.last_used_at > cutoff:
        return
    try:
        # a savepoint inside a request's transaction: a failed write leaves it usable
        with transaction.atomic():
            ApiClient.objects.filter(pk=client.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)
            ).update(last_used_at=now)
    except DatabaseError:
        log.warning("could not record API key use", extra={"key_prefix": client.prefix})


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[ClientPrincipal, ApiClient] | None:
        key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        if key is None:
            return None
        client = client_for_key(key)
        if client is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return ClientPrincipal(client), client

    def authenticate_header(self, request: Any) -> str:
        return 'Api-Key realm="readmit"'


def principal_for(request: HttpRequest) -> Any:
    """User or ClientPrincipal behind a plain Django request (FHIR, CDS views), or None."""
    if hasattr(request, _PRINCIPAL_ATTR):
        return getattr(request, _PRINCIPAL_ATTR)
    key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if key is not None:
        client = client_for_key(key)
        return ClientPrincipal(client) if client is not None else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return user
    return None


def has_scope(principal: Any, scope: str) -> bool:
    """Users act through their ward access; clients need the scope on their key."""
    if isinstance(principal, ClientPrincipal):
        return principal.client.has_scope(scope)
    if isinstance(principal, ExternalPrincipal):
        return scope in principal.scopes
    return principal is not None and principal.is_authenticated


def wards_for(principal: Any) -> QuerySet[Ward]:
    """Ward rows the principal may list (a ward's alerts); see :func:`may_see_ward` for scores."""
    if isinstance(principal, ClientPrincipal):
        restricted = principal.client.wards.all()
        return restricted if restricted.exists() else Ward.objects.all()
    if isinstance(principal, ExternalPrincipal):
        return Ward.objects.all()
    return visible_wards(principal)


def may_see_ward(principal: Any, ward_code: str) -> bool:
    """Whether the principal may see a score on ``ward_code``, a row for it or not."""
    if isinstance(principal, ClientPrincipal):
        restricted = principal.client.wards.all()
        return not restricted.exists() or restricted.filter(code=ward_code).exists()
    if isinstance(principal, ExternalPrincipal):
        return True
    if principal is None or not principal.is_authenticated or not principal.is_active:
        return False
    if principal.has_perm(VIEW_ALL_PERMISSION):
        return True
    return visible_wards(principal).filter(code=ward_code).exists()
