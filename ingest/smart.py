"""SMART Backend Services authorization for EHR clients (client-credentials + JWT assertion).

An EHR registers a public key (JWKS) with us, signs a short-lived JWT with its private
key, and trades it at ``POST /auth/token`` for a short-lived access token with
``system/*.write``-style scopes; FHIR routes then accept that access token. This is
the flow the SMART App Launch "Backend Services" profile describes (private_key_jwt,
RS384/ES384, aud = token endpoint, exp ≤ 5 min, jti never reused).

The embedded default additionally accepts the static tokens of READMIT_INGEST_TOKENS
(documented; turn them off with READMIT_INGEST_STATIC_TOKENS=false in production).
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import redis

from ingest.auth import AuthError
from ingest.capability import ACCEPTED_TYPES
from readmit_core.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ALGORITHMS = ("RS384", "ES384")
ACCESS_ALGORITHM = "HS256"
MAX_ASSERTION_LIFETIME_S = 300
WRITE_SCOPE_PREFIX = "system/"


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    jwks: dict[str, Any]
    scopes: frozenset[str]


def load_clients(path: Path | None) -> dict[str, RegisteredClient]:
    """Clients from a JSON file: {"client_id": {"jwks": {...}, "scopes": ["system/*.write"]}}."""
    if path is None or not str(path) or not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {
        cid: RegisteredClient(cid, spec["jwks"], frozenset(spec.get("scopes", ["system/*.write"])))
        for cid, spec in raw.items()
    }


def _parse(scope: str) -> tuple[str, str] | None:
    """``system/Encounter.write`` → ("Encounter", "write"); None for non-system scopes."""
    if not scope.startswith(WRITE_SCOPE_PREFIX):
        return None
    target, _, access = scope[len(WRITE_SCOPE_PREFIX) :].partition(".")
    return target, access


def _grants_write(access: str) -> bool:
    # SMART v1 ("write", "*") and v2 ("c", "cu", "cud", "cruds": must include create)
    return access in ("write", "*") or (
        bool(access) and set(access) <= set("cruds") and "c" in access
    )


def scope_covers(scope: str, resource_type: str) -> bool:
    parsed = _parse(scope)
    return parsed is not None and _grants_write(parsed[1]) and parsed[0] in ("*", resource_type)


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may write; static tokens may write everything."""

    client_id: str
    scopes: tuple[str, ...]

    def require_write(self, resource_types: set[str]) -> None:
        denied = sorted(
            t for t in resource_types if not any(scope_covers(s, t) for s in self.scopes)
        )
        if denied:
            raise AuthError(403, f"token scope does not allow writing {', '.join(denied)}")


STATIC_PRINCIPAL = Principal("static-token", ("system/*.write",))


class SmartAuthority:
    """Issues and checks access tokens; verifies client assertions."""

    def __init__(self, settings: Settings, replay_guard: redis.Redis | None = None) -> None:
        self.settings = settings
        self.clients = load_clients(settings.smart_clients_file)
        self._secret = settings.access_token_secret.get_secret_value()
        self._static = settings.ingest_token_set if settings.ingest_static_tokens else frozenset()
        self._redis = replay_guard
        self.token_url = f"{settings.ingest_public_url or settings.ingest_url}/auth/token"

    # -- token endpoint -----------------------------------------------------------------
    def issue(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise AuthError(400, "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise AuthError(400, f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        client = self._verify_assertion(assertion)
        requested = form.get("scope", "system/*.write").split()
        granted = [s for s in requested if self._permitted(client, s)]
        if not granted:
            raise AuthError(403, "none of the requested scopes is permitted for this client")
        now = int(time.time())
        ttl = self.settings.access_token_ttl_seconds
        token = jwt.encode(
            {
                "iss": self.token_url,
                "sub": client.client_id,
                "iat": now,
                "exp": now + ttl,
                "scope": " ".join(granted),
            },
            self._secret,
            algorithm=ACCESS_ALGORITHM,
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": " ".join(granted),
        }

    @staticmethod
    def _permitted(client: RegisteredClient, requested: str) -> bool:
        """A requested scope is granted when a registered scope covers the same writes."""
        parsed = _parse(requested)
        if parsed is None or not _grants_write(parsed[1]):
            return False
        return any(scope_covers(allowed, parsed[0]) for allowed in client.scopes)

    def _verify_assertion(self, assertion: str) -> RegisteredClient:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"client_assertion is not a JWT: {exc}") from exc
        client = self.clients.get(str(unverified.get("iss", "")))
        if client is None or unverified.get("sub") != client.client_id:
            raise AuthError(401, "unknown client (iss/sub)")
        if header.get("alg") not in CLIENT_ALGORITHMS:
            raise AuthError(401, f"alg must be one of {', '.join(CLIENT_ALGORITHMS)}")
        key = self._client_key(client, header.get("kid"))
        try:
            claims = jwt.decode(
                assertion,
                key=key,
                algorithms=list(CLIENT_ALGORITHMS),
                audience=self.token_url,
                options={"require": ["exp", "jti", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"client_assertion rejected: {exc}") from exc
        if int(claims["exp"]) - int(time.time()) > MAX_ASSERTION_LIFETIME_S:
            raise AuthError(401, "client_assertion lives longer than 5 minutes")
        self._check_replay(client.client_id, str(claims["jti"]), int(claims["exp"]))
        return client

    def _client_key(self, client: RegisteredClient, kid: str | None) -> Any:
        keys = client.jwks.get("keys", [])
        for jwk in keys:
            if kid is None or jwk.get("kid") == kid:
                return jwt.PyJWK(jwk).key
        raise AuthError(401, "no registered key matches the assertion's kid")

    def _check_replay(self, client_id: str, jti: str, exp: int) -> None:
        if self._redis is None:
            return
        ttl = max(1, exp - int(time.time()))
        key = f"{self.settings.topic_prefix}jti:{client_id}:{jti}"
        if not self._redis.set(key, b"1", nx=True, ex=ttl):
            raise AuthError(401, "client_assertion jti was already used")

    # -- protecting routes ------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        """A static token (if enabled) or a valid, unexpired access token we issued."""
        if token is None:
            raise AuthError(401, "Missing bearer token (Authorization: Bearer <token>)")
        if any(hmac.compare_digest(token, t) for t in self._static):
            return STATIC_PRINCIPAL
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ACCESS_ALGORITHM], issuer=self.token_url
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, "Invalid or expired bearer token") from exc
        return Principal(str(claims["sub"]), tuple(str(claims.get("scope", "")).split()))

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ALGORITHMS),
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": [
                "system/*.write",
                *(f"system/{t}.write" for t in ACCEPTED_TYPES),
            ],
            "capabilities": ["client-confidential-asymmetric"],
        }
