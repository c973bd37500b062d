"""The EHR's signed JWT on a CDS Hooks call (CDS Hooks 2.0, "Trusting CDS Clients").

A CDS Client sends ``Authorization: Bearer <JWT>`` signed with its private key. We
accept it only when every check below passes, else the call is a 401 naming the check:

* ``iss`` is an issuer listed in ``READMIT_CDS_CLIENTS_FILE`` (and ``sub`` one of its
  client ids when the file lists them);
* the header's ``alg`` is ES384 or RS384 (the algorithms the spec asks services to
  support; never ``none`` or an HMAC a public key could forge) and names a ``kid``;
* the key comes from the header's ``jku`` only when that URL is on the issuer's
  allowlist, else from the issuer's first listed JWKS URL or inline keys; the JWKS is
  fetched with a timeout, cached, and re-fetched once when a ``kid`` is unknown
  (key rotation);
* ``aud`` is this service's URL (``READMIT_WEB_PUBLIC_URL`` + the request path, or the
  request's own URL), ``exp``/``iat``/``jti`` are present, ``exp`` is in the future
  and at most five minutes away;
* ``jti`` was never seen from this issuer before its ``exp`` (Redis ``SET NX``, shared
  by every worker): a captured token cannot be replayed.

The result is an :class:`~alerts_web.api.auth.ExternalPrincipal` with scope ``cds``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import httpx
import jwt
import redis

from alerts_web.api.auth import ExternalPrincipal
from alerts_web.api.models import Scope
from readmit_core.errors import ReadmitError
from readmit_core.settings import get_settings

ALGORITHMS: Final = ("ES384", "RS384")
MAX_LIFETIME_S: Final = 300
LEEWAY_S: Final = 30
JWKS_TTL_S: Final = 300
JWKS_REFETCH_MIN_S: Final = 10
FETCH_TIMEOUT_S: Final = 3.0


class CdsAuthError(ReadmitError):
    """A CDS Hooks JWT was refused; ``check`` names the rule it failed."""

    status = 401
    issue_code = "security"

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


@dataclass(frozen=True)
class TrustedEhr:
    """One EHR (issuer) allowed to call the CDS service, from the clients file."""

    iss: str
    jkus: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    subs: frozenset[str] | None = None
    fhir_servers: tuple[str, ...] = ()


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts; our API keys have none."""
    return token.count(".") == 2


def _strings(value: Any, name: str, iss: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{iss}: {name} must be a list of strings")
    return tuple(value)


def parse_trusted(raw: Any) -> dict[str, TrustedEhr]:
    """The issuers of a clients file's JSON (ValueError naming what is malformed)."""
    if not isinstance(raw, dict):
        raise ValueError("expected an object keyed by issuer")
    out: dict[str, TrustedEhr] = {}
    for iss, spec in raw.items():
        if not isinstance(spec, dict):
            raise ValueError(f"{iss}: expected an object")
        jwks = spec.get("jwks")
        if jwks is not None and not isinstance(jwks, dict):
            raise ValueError(f"{iss}: jwks must be a JWK Set object")
        jkus = _strings(spec.get("jku"), "jku", iss)
        if jwks is None and not jkus:
            raise ValueError(f"{iss}: give jku URLs or inline jwks")
        subs = _strings(spec.get("sub"), "sub", iss)
        out[iss] = TrustedEhr(
            iss=iss,
            jkus=jkus,
            jwks=jwks,
            subs=frozenset(subs) if subs else None,
            fhir_servers=tuple(
                s.rstrip("/") for s in _strings(spec.get("fhir_servers"), "fhir_servers", iss)
            ),
        )
    return out


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> dict[str, TrustedEhr]:
    return parse_trusted(json.loads(path.read_text()))


def trusted_ehrs() -> dict[str, TrustedEhr]:
    """The configured issuers (reloaded when the file changes); none without a file."""
    path = get_settings().cds_clients_file
    if path is None:
        return {}
    return _load(path, path.stat().st_mtime_ns)


@dataclass
class _JwksEntry:
    keys: list[dict[str, Any]]
    fetched: float


@dataclass
class JwksCache:
    """JWK Sets by URL, refreshed after ``JWKS_TTL_S`` or on an unknown ``kid``."""

    entries: dict[str, _JwksEntry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, url: str, kid: str) -> jwt.PyJWK:
        entry = self._entry(url, force=False)
        found = _find(entry.keys, kid)
        if found is None and time.monotonic() - entry.fetched >= JWKS_REFETCH_MIN_S:
            found = _find(self._entry(url, force=True).keys, kid)
        if found is None:
            raise CdsAuthError("kid", "no key with this kid in the issuer's JWK Set")
        return found

    def _entry(self, url: str, *, force: bool) -> _JwksEntry:
        with self.lock:
            entry = self.entries.get(url)
            if not force and entry is not None and time.monotonic() - entry.fetched < JWKS_TTL_S:
                return entry
        entry = _JwksEntry(_fetch_jwks(url), time.monotonic())
        with self.lock:
            self.entries[url] = entry
        return entry


def _fetch_jwks(url: str) -> list[dict[str, Any]]:
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT_S, follow_redirects=False)
        response.raise_for_status()
        keys = response.json().get("keys")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise CdsAuthError(
            "jku", f"the JWK Set could not be fetched ({type(exc).__name__})"
        ) from exc
    if not isinstance(keys, list):
        raise CdsAuthError("jku", "the JWK Set has no keys")
    return [k for k in keys if isinstance(k, dict)]


def _find(keys: list[dict[str, Any]], kid: str) -> jwt.PyJWK | None:
    for jwk in keys:
        if jwk.get("kid") == kid:
            try:
                return jwt.PyJWK(jwk)
            except jwt.PyJWTError as exc:
                raise CdsAuthError("kid", "the key with this kid is not usable") from exc
    return None


JWKS = JwksCache()


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2
    )


def _claim_jti(iss: str, jti: str, exp: int) -> None:
    digest = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
    key = f"{get_settings().topic_prefix}cds-jti:{digest}"
    ttl = max(1, exp - int(time.time()) + LEEWAY_S)
    if not _redis().set(key, b"1", nx=True, ex=ttl):
        raise CdsAuthError("jti", "this token was already used (replay)")


def _signing_key(ehr: TrustedEhr, header: dict[str, Any]) -> Any:
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CdsAuthError("kid", "the JWT header must name a kid")
    jku = header.get("jku")
    if jku is not None:
        if jku not in ehr.jkus:
            raise CdsAuthError("jku", "the JWT's jku is not on this issuer's allowlist")
        return JWKS.key(jku, kid).key
    if ehr.jwks is not None:
        found = _find([k for k in ehr.jwks.get("keys", []) if isinstance(k, dict)], kid)
        if found is not None:
            return found.key
        if not ehr.jkus:
            raise CdsAuthError("kid", "no key with this kid in the issuer's JWK Set")
    return JWKS.key(ehr.jkus[0], kid).key


def verify(token: str, audience: str) -> tuple[ExternalPrincipal, TrustedEhr]:
    """The EHR behind a signed CDS Hooks JWT addressed to ``audience`` (see module rules)."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise CdsAuthError("jwt", "not a well-formed JWT") from exc
    ehr = trusted_ehrs().get(str(unverified.get("iss", "")))
    if ehr is None:
        raise CdsAuthError("iss", "the issuer is not a trusted CDS client")
    if header.get("alg") not in ALGORITHMS:
        raise CdsAuthError("alg", f"alg must be one of {', '.join(ALGORITHMS)}")
    key = _signing_key(ehr, header)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=ehr.iss,
            leeway=LEEWAY_S,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.InvalidAudienceError as exc:
        raise CdsAuthError("aud", "the JWT is addressed to another service URL") from exc
    except jwt.ExpiredSignatureError as exc:
        raise CdsAuthError("exp", "the JWT has expired") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise CdsAuthError(exc.claim, "required claim missing") from exc
    except jwt.PyJWTError as exc:
        raise CdsAuthError("signature", f"the JWT was refused ({type(exc).__name__})") from exc
    if int(claims["exp"]) - int(time.time()) > MAX_LIFETIME_S + LEEWAY_S:
        raise CdsAuthError("exp", "the JWT lives longer than five minutes")
    sub = claims.get("sub")
    if ehr.subs is not None and sub not in ehr.subs:
        raise CdsAuthError("sub", "the client id is not registered for this issuer")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise CdsAuthError("jti", "jti must be a non-empty string")
    _claim_jti(ehr.iss, claims["jti"], int(claims["exp"]))
    label = f"ehr:{ehr.iss}" + (f"#{sub}" if isinstance(sub, str) and sub else "")
    return ExternalPrincipal(label=label[:150], scopes=frozenset({Scope.CDS.value})), ehr
