"""Ed25519 signatures over registered models: authenticity, not only integrity.

A manifest's sha256 only proves the artifact matches the manifest; whoever can write the
registry can rewrite both. So each version also carries ``signature.json``: an Ed25519
signature, by a key the registry's storage never holds, over the exact manifest bytes and
the artifact's sha256. Serving processes hold only the public key
(``READMIT_MODEL_VERIFY_KEY``) and refuse to unpickle anything it does not verify.

The embedded run needs zero configuration: with no key configured, a private key is
generated once in ``READMIT_MODEL_SIGNING_KEY_FILE`` (outside the registry directory) and
its public half verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from readmit_core.errors import ReadmitError
from readmit_core.settings import Settings

# Domain separation: a signature made for a readmit model can never be replayed elsewhere.
SIGNED_CONTEXT = b"readmit-model-signature-v1\n"


class SigningKeyError(ReadmitError):
    """A signing or verification key is missing or malformed; names the setting."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Short fingerprint shown in errors and `readmit models verify`."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def encode_public(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode()


def encode_private(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def _decode32(variable: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyError(variable, "is not base64") from exc
    if len(raw) != 32:
        raise SigningKeyError(variable, f"must be 32 bytes, got {len(raw)}")
    return raw


def parse_public(variable: str, text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_decode32(variable, text))


def parse_private(variable: str, text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_decode32(variable, text))


def new_key_pair() -> tuple[str, str]:
    """(private, public), base64: what `readmit models keygen` prints."""
    key = Ed25519PrivateKey.generate()
    return encode_private(key), encode_public(key.public_key())


def _local_key(path: Path, create: bool) -> Ed25519PrivateKey | None:
    if path.exists():
        return parse_private("READMIT_MODEL_SIGNING_KEY_FILE", path.read_text())
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    private, _ = new_key_pair()
    # O_EXCL: two trainers starting at once keep one key, the loser reads the winner's.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_private("READMIT_MODEL_SIGNING_KEY_FILE", path.read_text())
    with os.fdopen(fd, "w") as handle:
        handle.write(private + "\n")
    return parse_private("READMIT_MODEL_SIGNING_KEY_FILE", private)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs at registration; generated locally only in the embedded run."""
    configured = settings.model_signing_key.get_secret_value()
    if configured.strip():
        return parse_private("READMIT_MODEL_SIGNING_KEY", configured)
    key = _local_key(settings.model_signing_key_file, create=settings.embedded)
    if key is None:
        raise SigningKeyError(
            "READMIT_MODEL_SIGNING_KEY", "is not set; training cannot sign the models it registers"
        )
    return key


def verify_key(settings: Settings) -> Ed25519PublicKey:
    """The one public key every artifact must be signed with."""
    if settings.model_verify_key.strip():
        return parse_public("READMIT_MODEL_VERIFY_KEY", settings.model_verify_key)
    configured = settings.model_signing_key.get_secret_value()
    if configured.strip():
        return parse_private("READMIT_MODEL_SIGNING_KEY", configured).public_key()
    key = _local_key(settings.model_signing_key_file, create=settings.embedded)
    if key is None:
        raise SigningKeyError("READMIT_MODEL_VERIFY_KEY", "is not set; no model can be trusted")
    return key.public_key()


def signed_message(version: str, manifest_bytes: bytes, artifact_sha256: str) -> bytes:
    """What is signed: the version, the exact manifest bytes' hash and the artifact's hash."""
    manifest_hash = hashlib.sha256(manifest_bytes).hexdigest()
    return SIGNED_CONTEXT + f"{version}\n{manifest_hash}\n{artifact_sha256}\n".encode()


@dataclass(frozen=True)
class Signature:
    key_id: str
    value: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "signature": base64.b64encode(self.value).decode(),
        }


def sign(key: Ed25519PrivateKey, message: bytes) -> Signature:
    return Signature(key_id(key.public_key()), key.sign(message))


def verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
