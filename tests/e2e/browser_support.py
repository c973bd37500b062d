"""Shared by the browser tests: Chromium flags, screenshots, logging in, seed_demo output."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from readmit.embedded.stack import Stack
from readmit_core.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium missing: apt-get install -y chromium chromium-driver")


def seed_output(stack: Stack) -> str:
    """What ``seed_demo`` printed (the stack keeps it off log files: it holds passwords)."""
    text = getattr(stack, "web_credentials", None)
    assert text, "the stack did not keep seed_demo's output"
    return str(text)


def printed_password(stack: Stack, user: str) -> str:
    match = re.search(rf"^\s*{user} / (\S+)", seed_output(stack), re.MULTILINE)
    assert match, f"seed_demo printed no password for {user}"
    return match.group(1)


def nurse_wards(stack: Stack) -> list[str]:
    line = re.search(r"wards: (.*)$", seed_output(stack), re.MULTILINE)
    assert line is not None, "seed_demo printed no ward list"
    return line.group(1).split(", ")


def shot(page: Any, name: str, *, docs: bool = True) -> Path:
    """Screenshots always go to the artifacts; to docs/ only when asked to refresh them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("READMIT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    return path


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
