"""The model registry: versioned artifacts, JSON manifests and a champion pointer.

Layout under ``root``::

    <version>/model.txt         LightGBM: the booster's own text model     } forests:
    <version>/model.ubj         XGBoost: the booster's own UBJSON model    } nothing
    <version>/pipeline.json     forests: encoder, calibrator, bands...     } is unpickled
    <version>/model.joblib      LR, RF, MLP (and versions registered before native files)
    <version>/manifest.json     what it is, what it was trained on, how good it is
    <version>/signature.json    Ed25519 signature over manifest + artifact (model_store/signing.py)
    champion                    one line: the version the scorer serves

The manifest's ``artifact_format`` says which (``models.NATIVE_FORMATS`` or ``joblib``;
absent in older manifests: joblib). The forests are stored natively because their
formats are data, not code (model_store/pipeline_document.py). joblib stays for
scikit-learn's logistic regression, random forest and MLP, which have no format of
their own that is not a pickle, and for versions registered before the native files,
which still load: they are signed like any other, so the key holder vouched for them.

Nothing is deserialized unless the signature verifies with the configured public key
(``READMIT_MODEL_VERIFY_KEY``, kept apart from this directory), the files' sha256 match
the manifest and the manifest's feature-set hash matches the running code's
``model_store.feature_set.feature_set_hash()``. Each file (manifest, artifacts,
``pipeline.json``) is read exactly once into memory; those bytes are hashed, verified and
then deserialized (``joblib.load(io.BytesIO(...))``, the booster from its bytes), never
the file again: whoever can write the directory cannot swap a file between the check
and the use (time-of-check/time-of-use), which once let a swapped pickle run in the
web process.

The champion pointer is replaced atomically, so a scorer polling
:meth:`Registry.champion_version` never reads half a name. It is NOT signed: it only
names a version, and whatever it names must verify, so an attacker who can write the
directory cannot make an unsigned model load, but can point the champion back at an
older, signed version (a rollback, e.g. to a model later withdrawn). Protect the
directory's write permission accordingly; to retire a version for good, delete it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from model_store import signing
from model_store.feature_set import feature_set_hash
from model_store.models import NATIVE_FORMATS
from model_store.pipeline_document import from_document, to_document
from model_store.serving import ScoringModel, TrainedModel
from readmit_core.errors import ReadmitError
from readmit_core.features import FEATURE_SET_NAME

ARTIFACT = "model.joblib"
JOBLIB_FORMAT = "joblib"
PIPELINE = "pipeline.json"
# native format -> the booster's file name
BOOSTER_FILES = {"lightgbm-text": "model.txt", "xgboost-ubj": "model.ubj"}
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
CHAMPION = "champion"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelRegistryError(ReadmitError):
    """A model cannot be stored, found or loaded; the subclass says why."""

    status = 503  # no usable model: the service cannot score, the request was fine


class NoChampionError(ModelRegistryError):
    def __init__(self, root: Path) -> None:
        super().__init__(f"no champion model in {root}; run `readmit train`")
        self.root = root


class UnknownVersionError(ModelRegistryError):
    def __init__(self, version: str, root: Path) -> None:
        super().__init__(f"model version {version!r} not found in {root}")
        self.version = version


class CorruptManifestError(ModelRegistryError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"unreadable manifest {path}: {reason}")
        self.path = path


class TamperedArtifactError(ModelRegistryError):
    """The artifact's bytes are not the ones the manifest recorded: never unpickled."""

    def __init__(self, version: str, expected: str, actual: str) -> None:
        super().__init__(
            f"model {version}: artifact sha256 {actual[:12]}… does not match the manifest "
            f"({expected[:12]}…); refusing to load it"
        )
        self.version = version
        self.expected = expected
        self.actual = actual


class UnsignedArtifactError(ModelRegistryError):
    """No readable signature: the version was not registered by a trusted trainer."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"model {version}: {reason}; refusing to load it")
        self.version = version
        self.reason = reason


class BadSignatureError(ModelRegistryError):
    """The signature does not verify with the configured key: never unpickled."""

    def __init__(self, version: str, signed_by: str, expected: str) -> None:
        why = (
            "the manifest or artifact changed after signing"
            if signed_by == expected
            else f"signed by key {signed_by}, READMIT_MODEL_VERIFY_KEY is key {expected}"
        )
        super().__init__(f"model {version}: signature does not verify ({why}); refusing to load it")
        self.version = version
        self.signed_by = signed_by
        self.expected = expected


class FeatureSetMismatchError(ModelRegistryError):
    def __init__(self, version: str, trained: str, running: str) -> None:
        super().__init__(
            f"model {version} was trained on feature set {trained[:12]}…, the running code "
            f"defines {running[:12]}…; retrain it (`readmit train`)"
        )
        self.version = version


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _artifact_digest(contents: Mapping[str, bytes]) -> str:
    """One sha256 for a version's files, from their bytes in memory (never re-read from
    disk): the file's own for one joblib file (as before native files existed), else the
    hash of the sorted "name sha256" lines."""
    if tuple(contents) == (ARTIFACT,):
        return hashlib.sha256(contents[ARTIFACT]).hexdigest()
    lines = "".join(
        f"{name} {hashlib.sha256(data).hexdigest()}\n" for name, data in sorted(contents.items())
    )
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class _Verified:
    """A version's manifest and artifact files exactly as they were verified: loading
    deserializes these bytes, so a file replaced after the check is never read."""

    manifest: dict[str, Any]
    files: Mapping[str, bytes]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    """Keys default to the process's settings (model_store/signing.py): a caller that only
    reads never needs to pass them, and a test can pass its own."""

    def __init__(
        self,
        root: Path,
        verify_key: Ed25519PublicKey | None = None,
        signing_key: Ed25519PrivateKey | None = None,
    ) -> None:
        self.root = Path(root)
        self._verify_key = verify_key
        self._signing_key = signing_key

    def verify_key(self) -> Ed25519PublicKey:
        if self._verify_key is None:
            from readmit_core.settings import get_settings

            self._verify_key = signing.verify_key(get_settings())
        return self._verify_key

    def signing_key(self) -> Ed25519PrivateKey:
        if self._signing_key is None:
            from readmit_core.settings import get_settings

            self._signing_key = signing.signing_key(get_settings())
        return self._signing_key

    # ------------------------------------------------------------------ reading
    def champion_version(self) -> str | None:
        """The champion's version, or None; cheap (one small file read) for polling."""
        try:
            text = (self.root / CHAMPION).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return text or None

    def manifest(self, version: str) -> dict[str, Any]:
        """The version's manifest, unverified (for listing); :meth:`verify` to trust it."""
        return self._parse_manifest(version, self._manifest_bytes(version))

    def _manifest_bytes(self, version: str) -> bytes:
        self._check_version_name(version)
        path = self.root / version / MANIFEST
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise UnknownVersionError(version, self.root) from exc
        except OSError as exc:
            raise CorruptManifestError(path, str(exc)) from exc

    def _parse_manifest(self, version: str, raw: bytes) -> dict[str, Any]:
        path = self.root / version / MANIFEST
        try:
            data = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            raise CorruptManifestError(path, str(exc)) from exc
        if not isinstance(data, dict) or data.get("version") != version:
            raise CorruptManifestError(path, "version field missing or different")
        return data

    def list(self) -> list[dict[str, Any]]:
        """Manifests of all versions, oldest first, with a ``champion`` flag."""
        if not self.root.exists():
            return []
        champion = self.champion_version()
        out = []
        for child in sorted(self.root.iterdir()):
            if (child / MANIFEST).exists():
                try:
                    manifest = self.manifest(child.name)
                except ModelRegistryError:
                    continue
                manifest["champion"] = child.name == champion
                out.append(manifest)
        return sorted(out, key=lambda m: (str(m.get("created_at", "")), m["version"]))

    def load_champion(self) -> ScoringModel:
        version = self.champion_version()
        if version is None:
            raise NoChampionError(self.root)
        return self.load(version)

    def verify(self, version: str) -> dict[str, Any]:
        """Check signature, sha256 and feature set without unpickling; returns the manifest.

        The signature is checked over the exact manifest bytes and the artifact's actual
        sha256, so neither file can be swapped without the private key.
        """
        return self._read_verified(version).manifest

    def _read_verified(self, version: str) -> _Verified:
        """Read the manifest and every artifact file once, and verify those bytes.

        The returned bytes are the only thing :meth:`load` deserializes: checking one read
        and using another would let a file swapped in between be unpickled.
        """
        manifest_bytes = self._manifest_bytes(version)
        manifest = self._parse_manifest(version, manifest_bytes)
        directory = self.root / version
        contents: dict[str, bytes] = {}
        for name in self._artifact_files(version, manifest):
            try:
                contents[name] = (directory / name).read_bytes()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise UnknownVersionError(version, self.root) from exc
        actual = _artifact_digest(contents)
        self._check_signature(version, manifest_bytes, actual)
        expected = str(manifest.get("artifact_sha256", ""))
        if actual != expected:
            raise TamperedArtifactError(version, expected, actual)
        running = feature_set_hash()
        trained = str(manifest.get("feature_set", {}).get("hash", ""))
        if trained != running:
            raise FeatureSetMismatchError(version, trained, running)
        return _Verified(manifest, contents)

    def _check_signature(self, version: str, manifest_bytes: bytes, artifact_sha: str) -> None:
        path = self.root / version / SIGNATURE
        try:
            data = json.loads(path.read_text())
            value = base64.b64decode(str(data["signature"]), validate=True)
            signed_by = str(data.get("key_id", "?"))
        except FileNotFoundError as exc:
            raise UnsignedArtifactError(version, f"no {SIGNATURE}") from exc
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise UnsignedArtifactError(version, f"unreadable {SIGNATURE}") from exc
        key = self.verify_key()
        message = signing.signed_message(version, manifest_bytes, artifact_sha)
        if not signing.verifies(key, value, message):
            raise BadSignatureError(version, signed_by, signing.key_id(key))

    def _artifact_files(self, version: str, manifest: dict[str, Any]) -> tuple[str, ...]:
        """The files the version's format consists of (the manifest is not yet trusted)."""
        form = manifest.get("artifact_format", JOBLIB_FORMAT)
        if form == JOBLIB_FORMAT:
            return (ARTIFACT,)
        if form in BOOSTER_FILES:
            return (BOOSTER_FILES[str(form)], PIPELINE)
        raise CorruptManifestError(self.root / version / MANIFEST, f"unknown format {form!r}")

    def load(self, version: str) -> ScoringModel:
        """Verify the version (signature, sha256 and feature set), then deserialize the
        very bytes that were verified: the files are not opened again.

        A forest is rebuilt from its booster bytes and ``pipeline.json`` without
        unpickling anything; other families are unpickled (joblib) after verification.
        """
        verified = self._read_verified(version)
        manifest, contents = verified.manifest, verified.files
        directory = self.root / version
        form = manifest.get("artifact_format", JOBLIB_FORMAT)
        if form == JOBLIB_FORMAT:
            import joblib

            model = joblib.load(io.BytesIO(contents[ARTIFACT]))
            if not isinstance(model, TrainedModel):
                raise CorruptManifestError(directory / ARTIFACT, "artifact is not a TrainedModel")
            return ScoringModel(model, manifest)
        booster = contents[BOOSTER_FILES[str(form)]]
        try:
            trained = from_document(json.loads(contents[PIPELINE]), booster)
        except (ValueError, KeyError, TypeError) as exc:  # signed, yet unreadable by this code
            raise CorruptManifestError(directory / PIPELINE, str(exc)) from exc
        return ScoringModel(trained, manifest)

    # ------------------------------------------------------------------ writing
    def save(self, trained: TrainedModel, manifest: dict[str, Any]) -> str:
        """Write artifact + manifest (with artifact sha256 and feature set); returns version.

        Forests (``models.NATIVE_FORMATS``) are written as their booster's own file plus
        ``pipeline.json``; the other families as one joblib file.
        """
        version = str(manifest["version"])
        self._check_version_name(version)
        key = self.signing_key()  # before anything is written: no unsigned half-version
        form = NATIVE_FORMATS.get(trained.model.name, JOBLIB_FORMAT)
        document = to_document(trained) if form != JOBLIB_FORMAT else None  # fails early
        directory = self.root / version
        directory.mkdir(parents=True, exist_ok=False)
        if document is None:
            import joblib

            buffer = io.BytesIO()
            joblib.dump(trained, buffer, compress=3)
            contents = {ARTIFACT: buffer.getvalue()}
        else:
            contents = {
                BOOSTER_FILES[form]: trained.model.native_bytes(),
                PIPELINE: json.dumps(document, indent=1).encode(),
            }
        for name, data in contents.items():  # what is signed is what was produced
            (directory / name).write_bytes(data)
        manifest = dict(manifest)
        manifest["feature_set"] = {"name": FEATURE_SET_NAME, "hash": feature_set_hash()}
        manifest["artifact_format"] = form
        manifest["artifact_files"] = {
            name: hashlib.sha256(data).hexdigest() for name, data in contents.items()
        }
        manifest["artifact_sha256"] = _artifact_digest(contents)
        text = json.dumps(manifest, indent=2, default=str)
        message = signing.signed_message(version, text.encode(), manifest["artifact_sha256"])
        signature = signing.sign(key, message)
        _atomic_write(directory / SIGNATURE, json.dumps(signature.to_json(), indent=2))
        _atomic_write(directory / MANIFEST, text)
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the champion (it must load: verified before the pointer moves)."""
        self.load(version)
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / CHAMPION, version + "\n")

    def _check_version_name(self, version: str) -> None:
        if not _VERSION.match(version):
            raise UnknownVersionError(version, self.root)
