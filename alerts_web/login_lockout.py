"""Which address a failed login counts against (django-axes' ``AXES_CLIENT_IP_CALLABLE``).

Lockout is per user name *and* address, so an attacker guessing one nurse's password is
stopped without locking the nurse out of every other ward PC. The address is the one
``READMIT_LOGIN_PROXY_HOPS`` names (:mod:`readmit_core.client_address`, the rule the
access audit records too).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from readmit_core.client_address import client_address as forwarded_client
from readmit_core.settings import get_settings


def client_address(request: HttpRequest) -> str:
    return forwarded_client(
        str(request.META.get("REMOTE_ADDR") or ""),
        str(request.META.get("HTTP_X_FORWARDED_FOR") or ""),
        get_settings().login_proxy_hops,
    )


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
