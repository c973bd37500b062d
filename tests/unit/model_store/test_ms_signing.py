"""Model artifacts are unpickled only when their Ed25519 signature verifies."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from model_store import signing
from model_store.registry import (
    SIGNATURE,
    BadSignatureError,
    Registry,
    UnsignedArtifactError,
)
from readmit.cli import app


@pytest.fixture
def copied(registry_root: Path, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "models"
    shutil.copytree(registry_root, root)
    version = Registry(registry_root).champion_version()
    assert version is not None
    return root, version


def test_the_trained_champion_is_signed_and_loads(copied: tuple[Path, str]) -> None:
    root, version = copied
    data = json.loads((root / version / SIGNATURE).read_text())
    assert data["algorithm"] == "Ed25519"
    assert Registry(root).load(version).version == version


def test_a_rewritten_manifest_with_matching_sha256_is_refused(copied: tuple[Path, str]) -> None:
    """The old attack: swap the artifact, rewrite the manifest's sha256. The pickle never runs."""
    root, version = copied
    artifact = root / version / "model.joblib"
    evil = b"cos\nsystem\n(S'touch /tmp/readmit-pwned'\ntR."  # a pickle that runs a command
    artifact.write_bytes(evil)
    manifest_path = root / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    from model_store.registry import sha256_file

    manifest["artifact_sha256"] = sha256_file(artifact)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    with pytest.raises(BadSignatureError, match="does not verify"):
        Registry(root).load(version)


def test_a_signature_by_another_key_is_refused(copied: tuple[Path, str]) -> None:
    root, version = copied
    other = Ed25519PrivateKey.generate()
    manifest_bytes = (root / version / "manifest.json").read_bytes()
    sha = json.loads(manifest_bytes)["artifact_sha256"]
    forged = signing.sign(other, signing.signed_message(version, manifest_bytes, sha))
    (root / version / SIGNATURE).write_text(json.dumps(forged.to_json()))
    with pytest.raises(BadSignatureError) as refused:
        Registry(root).load(version)
    assert refused.value.signed_by == signing.key_id(other.public_key())


def test_an_unsigned_version_is_refused(copied: tuple[Path, str]) -> None:
    root, version = copied
    (root / version / SIGNATURE).unlink()
    with pytest.raises(UnsignedArtifactError, match=r"no signature\.json"):
        Registry(root).promote(version)


def test_verification_uses_the_configured_key_not_the_registry(copied: tuple[Path, str]) -> None:
    root, version = copied
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BadSignatureError):
        Registry(root, verify_key=stranger).load(version)


def test_models_verify_cli_reports_each_version(copied: tuple[Path, str]) -> None:
    root, version = copied
    runner = CliRunner()
    ok = runner.invoke(app, ["models", "verify", "--registry", str(root)])
    assert ok.exit_code == 0, ok.output
    assert f"ok       {version}" in ok.output
    (root / version / SIGNATURE).unlink()
    bad = runner.invoke(app, ["models", "verify", "--registry", str(root)])
    assert bad.exit_code == 1
    assert f"REFUSED  {version}" in bad.output


def test_keygen_prints_a_working_pair() -> None:
    result = CliRunner().invoke(app, ["models", "keygen"])
    assert result.exit_code == 0
    lines = dict(line.split("=", 1) for line in result.output.split() if "=" in line)
    private = signing.parse_private("x", lines["READMIT_MODEL_SIGNING_KEY"])
    public = signing.parse_public("x", lines["READMIT_MODEL_VERIFY_KEY"])
    assert signing.key_id(private.public_key()) == signing.key_id(public)


class _TouchOnUnpickle:
    """A pickle that, when loaded, creates a file: proof the swapped artifact was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_file_swapped_after_verification_is_never_loaded(
    copied: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the tester won: verify, swap the artifact, load. Only the verified bytes
    are deserialized, so the swapped pickle never runs and the signed model is served."""
    root, version = copied
    artifact = root / version / "model.joblib"
    good = artifact.read_bytes()
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_TouchOnUnpickle(marker))
    real_verifies = signing.verifies
    swaps = []

    def verify_then_swap(key: Any, value: bytes, message: bytes) -> bool:
        ok = real_verifies(key, value, message)
        artifact.write_bytes(evil)  # between the check and the use
        swaps.append(ok)
        return ok

    monkeypatch.setattr(signing, "verifies", verify_then_swap)
    loaded = Registry(root).load(version)
    assert swaps == [True]
    assert not marker.exists()
    assert loaded.version == version
    assert artifact.read_bytes() == evil  # the swap did happen

    monkeypatch.setattr(signing, "verifies", real_verifies)
    with pytest.raises(BadSignatureError):  # the swapped file itself is still refused
        Registry(root).load(version)
    assert not marker.exists()
    artifact.write_bytes(good)
    assert Registry(root).load(version).version == version
