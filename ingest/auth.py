"""Who may push data: bearer tokens checked on every FHIR route.

The embedded default accepts the static tokens listed in READMIT_INGEST_TOKENS
(documented in the README); anything without a valid token gets 401 and an
OperationOutcome. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_token(request: Request, accepted: frozenset[str]) -> None:
    """Raise AuthError(401) unless the request carries one of ``accepted`` tokens."""
    token = bearer_token(request)
    if token is None:
        raise AuthError(401, "Missing bearer token (Authorization: Bearer <token>)")
    if not any(hmac.compare_digest(token, t) for t in accepted):
        raise AuthError(401, "Invalid bearer token")
