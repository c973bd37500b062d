"""The lock files: every dependency pinned with hashes, the same versions in the image and
in the tests, and every pin inside the range pyproject.toml declares.

`make lock` regenerates them; these tests catch a hand edit or a forgotten regeneration
(a range changed in pyproject.toml without re-locking).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
LOCKS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)", re.MULTILINE)


def pins(name: str) -> dict[str, str]:
    text = (LOCKS / name).read_text()
    return {canonicalize_name(m[1]): m[2] for m in PIN.finditer(text)}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs.extend(Requirement(r) for r in extra)
    return reqs


@pytest.mark.parametrize("lock", ["build.lock", "dev.lock", "runtime.lock"])
def test_every_pin_has_a_hash(lock: str) -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (LOCKS / lock).read_text())
    entries = [b for b in blocks if PIN.match(b)]
    assert entries, lock
    for block in entries:
        assert "--hash=sha256:" in block, f"{lock}: no hash for {block.splitlines()[0]}"


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    locked = pins("dev.lock")
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is declared in pyproject.toml but not locked"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"{req.name}=={locked[name]} is outside {req.specifier}: run `make lock`"
        )


def test_image_and_tests_run_the_same_versions() -> None:
    dev, runtime = pins("dev.lock"), pins("runtime.lock")
    assert runtime, "runtime.lock is empty"
    differ = {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v}
    assert not differ, f"runtime.lock differs from dev.lock: {differ}"


def test_build_backend_is_locked() -> None:
    build = pins("build.lock")
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for raw in system:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in build, raw
        assert req.specifier.contains(build[name]), raw
