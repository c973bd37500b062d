"""Which address a failed login counts against (django-axes' ``AXES_CLIENT_IP_CALLABLE``).

Lockout is per user name *and* address, so an attacker guessing one nurse's password is
stopped without locking the nurse out of every other ward PC. Behind the reverse proxy
the TCP peer is the proxy itself; with ``READMIT_LOGIN_PROXY_HOPS`` = n the address n
entries from the right of X-Forwarded-For (the one the nearest trusted proxy appended)
counts instead. Entries further left are the client's to forge and are never read.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from readmit_core.settings import get_settings


def client_address(request: HttpRequest) -> str:
    peer = str(request.META.get("REMOTE_ADDR") or "")
    hops = get_settings().login_proxy_hops
    if hops == 0:
        return peer
    chain = [a.strip() for a in str(request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
    chain = [a for a in chain if a]
    return chain[-hops] if len(chain) >= hops else peer


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The lockout page in the app's layout (429), not axes' bare text answer.

    It names neither the user nor the address (the person at the keyboard typed the first
    and cannot change the second), only how many failures locked it and for how long.
    """
    settings = get_settings()
    context = {
        "failure_limit": settings.login_failure_limit,
        "minutes": settings.login_lockout_minutes,
    }
    return render(request, "registration/locked_out.html", context, status=429)
