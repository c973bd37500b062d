"""Bearer tokens: reading them from requests, and the static read token of /scores.

FHIR write routes are guarded by ``ingest.smart.SmartAuthority`` (SMART backend-services
access tokens, plus the static READMIT_INGEST_TOKENS in the embedded default);
``require_token`` guards the score read endpoint with READMIT_API_TOKEN. Tokens are
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from readmit_core.errors import ReadmitError


class AuthError(ReadmitError):
    """Missing, invalid or insufficient credentials (401/403, per instance)."""

    issue_code = "security"

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
