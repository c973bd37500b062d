"""Throttle per API client (or per user for browser sessions), not per IP.

Integrators sit behind shared NAT gateways; one noisy client must not exhaust the
budget of another behind the same address.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from alerts_web.api.auth import ClientPrincipal


class PerClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = request.user
        if isinstance(user, ClientPrincipal):
            ident = f"key:{user.client.pk}"
        elif user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
