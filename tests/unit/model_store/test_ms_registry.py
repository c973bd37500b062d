from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_store import registry as registry_module
from model_store.registry import (
    BadSignatureError,
    FeatureSetMismatchError,
    ModelRegistryError,
    NoChampionError,
    Registry,
    TamperedArtifactError,
    UnknownVersionError,
)


def _rewrite_signed(reg: Registry, version: str, manifest: dict[str, object]) -> None:
    """Rewrite a manifest as a trusted trainer would: signed again with the registry's key."""
    from model_store import signing

    text = json.dumps(manifest, indent=2)
    message = signing.signed_message(version, text.encode(), str(manifest["artifact_sha256"]))
    signature = signing.sign(reg.signing_key(), message)
    (reg.root / version / "signature.json").write_text(json.dumps(signature.to_json()))
    (reg.root / version / "manifest.json").write_text(text)


@pytest.fixture
def copy(registry_root: Path, tmp_path: Path) -> Registry:
    """A private copy of the session registry, safe to damage."""
    target = tmp_path / "reg"
    shutil.copytree(registry_root, target)
    return Registry(target)


def test_champion_pointer_and_manifest(registry_root: Path) -> None:
    reg = Registry(registry_root)
    version = reg.champion_version()
    assert version is not None
    manifest = reg.manifest(version)
    for key in (
        "version",
        "created_at",
        "training_data",
        "feature_set",
        "library_versions",
        "hyperparameters",
        "metrics",
        "bands",
        "artifact_sha256",
    ):
        assert key in manifest
    assert len(manifest["training_data"]["sha256"]) == 64
    assert [m["version"] for m in reg.list() if m["champion"]] == [version]


def test_empty_registry_has_no_champion(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "nothing")
    assert reg.champion_version() is None
    assert reg.list() == []
    with pytest.raises(NoChampionError):
        reg.load_champion()


def test_tampered_artifact_is_never_unpickled(
    copy: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = copy.champion_version()
    assert version is not None
    artifact = copy.root / version / "model.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("joblib.load called on an unverified file")

    monkeypatch.setattr("joblib.load", forbidden)
    # the signature covers the artifact's bytes: a changed byte fails it before unpickling
    with pytest.raises(BadSignatureError):
        copy.load_champion()
    # and a manifest re-signed over the tampered file still names the old sha256
    manifest = json.loads((copy.root / version / "manifest.json").read_text())
    _rewrite_signed(copy, version, manifest)
    signing_message = registry_module.signing.signed_message
    monkeypatch.setattr(
        registry_module.signing,
        "signed_message",
        lambda v, m, _sha: signing_message(v, m, str(manifest["artifact_sha256"])),
    )
    with pytest.raises(TamperedArtifactError):
        copy.load_champion()


def test_feature_set_mismatch_is_refused(copy: Registry) -> None:
    version = copy.champion_version()
    assert version is not None
    path = copy.root / version / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["feature_set"]["hash"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(BadSignatureError):  # an edited manifest no longer verifies
        copy.load(version)
    _rewrite_signed(copy, version, manifest)  # a signed model trained on other features
    with pytest.raises(FeatureSetMismatchError):
        copy.load(version)


def test_unknown_and_malicious_versions(copy: Registry) -> None:
    with pytest.raises(UnknownVersionError):
        copy.load("lr-nope")
    with pytest.raises(UnknownVersionError):
        copy.load("../../etc")
    with pytest.raises(ModelRegistryError):
        copy.promote("lr-nope")


def test_promote_moves_the_pointer(copy: Registry, champion: object) -> None:
    version = copy.champion_version()
    assert version is not None
    clone = f"{version}-copy"
    shutil.copytree(copy.root / version, copy.root / clone)
    manifest_path = copy.root / clone / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = clone
    _rewrite_signed(copy, clone, manifest)
    copy.promote(clone)
    assert copy.champion_version() == clone
    assert copy.load_champion().version == clone


def test_sha_helper_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "x"
    path.write_bytes(b"abc" * 1000)
    assert registry_module.sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
