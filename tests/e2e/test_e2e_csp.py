"""Every page works under the Content-Security-Policy, in headless Chromium.

The stack answers with ``script-src 'self'`` and no inline style (alerts_web/settings.py).
A page that still relied on inline script or style would break silently, leaving only a
console message ("Refused to execute inline script because it violates the following
Content Security Policy directive"). This test renders the login page, a ward dashboard
with a live socket, a patient page with its chart, the what-if form, Swagger UI at
/api/docs and the admin, collects every console message and page error, and asserts none
mention the policy. The lockout page is rendered too. A control injects an inline script
to prove violations are caught.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    login,
    nurse_wards,
    printed_password,
    require_chromium,
    shot,
)

from fhir_mappings.codes.wards import ward_for
from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit.embedded.stack import Stack
from readmit_core.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

POLICY_WORDS = ("Content Security Policy", "Content-Security-Policy")


@pytest.fixture
def stack(stack_with: Any) -> Stack:
    return stack_with(1)


def _scored_encounter(stack: Stack) -> tuple[str, str]:
    """Post one discharge on one of the nurse's wards; (encounter, ward) once it is scored."""
    s = stack.settings
    wards = set(nurse_wards(stack))
    rows = read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", 2000)
    row = next(
        r
        for r in rows
        if ward_for(r["medical_specialty"], r["age"]).id in wards
        and int(r["discharge_disposition_id"]) not in (11, 13, 14, 19, 20, 21)
    )
    response = httpx.post(
        f"{s.ingest_url}/fhir",
        json=synthesize_bundle(row, seed=1),
        headers={
            "Authorization": f"Bearer {sorted(s.ingest_token_set)[0]}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    assert response.status_code in (200, 201, 202), response.text
    read = {"Authorization": f"Bearer {s.api_token.get_secret_value()}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # awaits the score: the scorer's answer, not a delay
        if httpx.get(f"{s.ingest_url}/scores/{row['encounter_id']}", headers=read).is_success:
            return row["encounter_id"], ward_for(row["medical_specialty"], row["age"]).id
        time.sleep(0.2)
    raise AssertionError("the discharge was not scored within 60 s")


def _violations(messages: list[str]) -> list[str]:
    return [m for m in messages if any(w.lower() in m.lower() for w in POLICY_WORDS)]


def test_every_page_works_under_the_policy(stack: Stack) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    base = stack.settings.web_url
    encounter, ward = _scored_encounter(stack)
    messages: list[str] = []

    def watch(page: Any) -> Any:
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        return page

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = watch(context.new_page())
        response = page.goto(f"{base}/accounts/login/")
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        shot(page, "csp-login", docs=False)
        # the lockout page (a user name no one has: the nurse's own stays unlocked)
        for _ in range(stack.settings.login_failure_limit):
            page.fill("#id_username", "intruder")
            page.fill("#id_password", "guess")
            page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Login locked")
        shot(page, "csp-login-locked", docs=False)
        login(page, base, "nurse", printed_password(stack, "nurse"))

        page.goto(f"{base}/wards/{ward}/")
        expect(page.locator("#live-status")).to_have_text("Live", timeout=15_000)  # socket
        shot(page, "csp-ward-dashboard", docs=False)

        page.goto(f"{base}/encounters/{encounter}/")
        expect(page.locator(".risk-gauge")).to_be_visible()
        page.wait_for_function("document.querySelector('#factor-chart')?.width > 0")
        shot(page, "csp-patient", docs=False)

        page.goto(f"{base}/what-if/")
        expect(page.locator("#whatif-form")).to_be_visible()

        page.goto(f"{base}/api/docs/")
        expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)
        expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)  # schema loaded
        shot(page, "csp-api-docs", docs=False)

        admin = watch(context.browser.new_context().new_page())  # type: ignore[union-attr]
        login(admin, base, "admin", printed_password(stack, "admin"))
        admin.goto(f"{base}/admin/axes/accessattempt/")
        expect(admin.locator("#content")).to_be_visible()
        admin.goto(f"{base}/ops/")
        expect(admin.locator("#ops-model")).not_to_have_text("—")

        assert _violations(messages) == [], messages
        assert [m for m in messages if m.startswith("pageerror")] == []

        # control: an inline script is refused, and the refusal reaches the console
        with page.expect_console_message(lambda m: bool(_violations([m.text]))):
            page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.__inline = 1'; document.body.appendChild(s); }"
            )
        assert page.evaluate("() => window.__inline") is None
        assert _violations(messages)
        browser.close()
