"""Our own key pair as a SMART Backend Services client of the EHR's FHIR server.

The EHR registers the public half (a JWKS) for our client id; we sign each client
assertion with the private half (a PEM file only ingest reads). RS384 (RSA, at least
2048 bits) and ES384 (P-384) are the two algorithms the SMART Backend Services profile
requires servers to support, so those are the only two offered. The key id is the
RFC 7638 thumbprint of the public key: the same key always has the same ``kid``, so the
JWKS printed at registration and the assertion header can never disagree.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from readmit_core.errors import ReadmitError

SIGNING_ALGORITHMS = ("ES384", "RS384")
MIN_RSA_BITS = 2048

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class UnusableKey(ReadmitError):
    """The configured private key cannot sign SMART client assertions (and why)."""

    status = 500
    issue_code = "exception"

    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"EHR client key {path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    private: PrivateKey
    algorithm: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with the members the EHR's registration needs."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig", "key_ops": ["verify"]}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def _thumbprint(private: PrivateKey) -> str:
    """RFC 7638: SHA-256 of the required public members, sorted, no whitespace."""
    public = private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        full = RSAAlgorithm.to_jwk(public, as_dict=True)
        members = {k: full[k] for k in ("e", "kty", "n")}
    else:
        full = ECAlgorithm.to_jwk(public, as_dict=True)
        members = {k: full[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def signing_key(private: Any, path: Path | None = None) -> SigningKey:
    """A loaded private key → the algorithm it signs with; other key types are refused."""
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise UnusableKey(path, f"RSA key of {private.key_size} bits; at least {MIN_RSA_BITS}")
        return SigningKey(private, "RS384", _thumbprint(private))
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if not isinstance(private.curve, ec.SECP384R1):
            raise UnusableKey(path, f"EC key on {private.curve.name}; ES384 needs P-384")
        return SigningKey(private, "ES384", _thumbprint(private))
    raise UnusableKey(path, "neither an RSA nor an EC private key")


def load_signing_key(path: Path | None) -> SigningKey:
    """The PEM private key of READMIT_EHR_PRIVATE_KEY_FILE (unencrypted PKCS#8 or legacy)."""
    if path is None or not str(path):
        raise UnusableKey(path, "READMIT_EHR_PRIVATE_KEY_FILE is not set")
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise UnusableKey(path, f"cannot be read ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise UnusableKey(path, f"is not an unencrypted PEM private key ({exc})") from None
    return signing_key(private, path)


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise UnusableKey(None, f"algorithm {algorithm!r}; use one of {', '.join(SIGNING_ALGORITHMS)}")


def private_pem(private: PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
