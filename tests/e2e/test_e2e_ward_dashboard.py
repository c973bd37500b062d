"""End to end in headless Chromium: the whole stack, a nurse, a live alert, a PDF.

Starts the real stack (ingest, scorer, web under daphne, the alert feed) on free
ports against the session's broker, Redis and a throwaway PostgreSQL database; logs
in as the demo nurse with the password ``seed_demo`` printed; replays a high-risk
discharge through the ingest API; waits for the alert to appear live; acknowledges
it; downloads the PDF. Screenshots go to tests/e2e/artifacts/ and, one per page, to
docs/screenshots/ when READMIT_UPDATE_SCREENSHOTS=1 (they illustrate the README).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import (
    ARTIFACTS,
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
from model_store.registry import Registry
from readmit.embedded.stack import Stack
from readmit_core.features import FEATURE_COLUMNS, HISTORY_COLUMNS, FeatureRecord
from readmit_core.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

CANDIDATE_ROWS = 4000


@pytest.fixture
def stack(stack_with: Any) -> Stack:
    return stack_with(1)


def _high_risk_rows(registry_root: Path, wards: set[str], n: int = 3) -> list[dict[str, str]]:
    """The dataset rows the champion rates highest, all on one of the nurse's wards."""
    model = Registry(registry_root).load_champion()
    rows = [
        r
        for r in read_rows(PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz", CANDIDATE_ROWS)
        if ward_for(r["medical_specialty"], r["age"]).id in wards
        and int(r["discharge_disposition_id"]) not in (11, 13, 14, 19, 20, 21)
    ]
    records = [
        FeatureRecord.model_validate(
            {c: r[c] for c in FEATURE_COLUMNS if c not in HISTORY_COLUMNS}
            | {"encounter_id": r["encounter_id"], "patient_nbr": r["patient_nbr"]}
        )
        for r in rows
    ]
    scored = sorted(zip(model.predict_proba(records), rows, strict=True), key=lambda x: -x[0])
    ward = ward_for(scored[0][1]["medical_specialty"], scored[0][1]["age"]).id
    return [r for _, r in scored if ward_for(r["medical_specialty"], r["age"]).id == ward][:n]


def _named(bundle: dict[str, Any], family: str) -> dict[str, Any]:
    """What a real EHR adds to the synthesized Patient: a name (the worklist shows it)."""
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"] = [{"use": "official", "family": family, "given": ["Test"]}]
    return bundle


def test_nurse_sees_a_live_alert_acknowledges_it_and_downloads_the_pdf(
    stack: Stack, registry_root: Path
) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    s = stack.settings
    base = s.web_url
    nurse_pw = printed_password(stack, "nurse")
    admin_pw = printed_password(stack, "admin")
    rows = _high_risk_rows(registry_root, set(nurse_wards(stack)))
    ward = ward_for(rows[0]["medical_specialty"], rows[0]["age"]).id
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        shot(page, "login")
        login(page, base, "nurse", nurse_pw)
        shot(page, "wards")

        page.goto(f"{base}/wards/{ward}/")
        expect(page.locator("#live-status")).to_have_text("Live", timeout=15_000)
        replayed_at = time.monotonic()
        for i, row in enumerate(rows):
            response = httpx.post(
                f"{s.ingest_url}/fhir",
                json=_named(synthesize_bundle(row, seed=i), f"Family{i}"),
                headers={
                    "Authorization": f"Bearer {sorted(s.ingest_token_set)[0]}",
                    "Content-Type": "application/fhir+json",
                },
                timeout=30,
            )
            assert response.status_code in (200, 201, 202), response.text
        row_locator = page.locator("tr.alert-row").first
        expect(row_locator).to_be_visible(timeout=60_000)
        alert_latency = time.monotonic() - replayed_at
        expect(row_locator).to_have_class(re.compile("flash"))
        # the name and MRN on the row come from the FHIR Patient the EHR sent
        expect(row_locator).to_contain_text(re.compile(r"Family\d, Test"))
        expect(row_locator).to_contain_text("MRN ")
        # one alert is announced alone, several arriving together in one sentence
        expect(page.locator("#announcer")).to_contain_text(
            re.compile(r"(New|\d+ new) high-risk discharge")
        )
        shot(page, "ward-dashboard")

        # pin the row by id: ".first" is lazy and may point at a newer, riskier alert
        alert_id = row_locator.get_attribute("data-alert-id")
        acknowledged = page.locator(f'tr[data-alert-id="{alert_id}"]')
        acknowledged.locator("button[data-action=acknowledge]").click()
        expect(acknowledged.locator("[data-field=status]")).to_have_text(
            "Acknowledged", timeout=15_000
        )
        shot(page, "ward-dashboard-acknowledged", docs=False)

        acknowledged.get_by_role("link", name="Details").click()
        expect(page.locator(".risk-gauge")).to_be_visible()
        expect(page.locator("#audit-trail")).to_contain_text("Acknowledged")
        page.wait_for_function("document.querySelector('#factor-chart')?.width > 0")
        shot(page, "patient-risk")
        with page.expect_download() as download_info:
            page.click("#download-pdf")
        pdf = ARTIFACTS / "readmission-risk.pdf"
        download_info.value.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF-")

        page.goto(f"{base}/what-if/")
        page.select_option("#id_age", "[80-90)")
        page.fill("#id_diag_1", "428")  # no primary diagnosis: refused as too little to score
        page.fill("#id_number_inpatient", "5")
        page.fill("#id_time_in_hospital", "0")
        page.click("#whatif-form button[type=submit]")
        expect(page.locator("[data-field=time_in_hospital]")).to_be_visible()
        shot(page, "what-if-invalid", docs=False)
        page.fill("#id_time_in_hospital", "8")
        page.click("#whatif-form button[type=submit]")
        expect(page.locator("#whatif-result")).to_be_visible()
        shot(page, "what-if")

        page.goto(f"{base}/api/docs/")
        expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)
        shot(page, "api-docs")

        page.goto(f"{base}/ops/")
        assert "/admin/login/" in page.url  # nurses are not staff
        admin = context.browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[union-attr]
        admin_page = admin.new_page()
        login(admin_page, base, "admin", admin_pw)
        admin_page.goto(f"{base}/ops/")
        expect(admin_page.locator("#ops-model")).not_to_have_text("—")
        shot(admin_page, "ops")
        admin_page.goto(f"{base}/admin/wards/ward/")
        shot(admin_page, "admin-wards")
        browser.close()

    assert stack.log_dir is not None
    for name in ("web", "alerts-consumer"):
        log_text = (stack.log_dir / f"{name}.log").read_text()
        for row in rows:
            assert row["encounter_id"] not in log_text, f"encounter id in {name}.log"
            assert row["patient_nbr"] not in log_text, f"patient id in {name}.log"

    wall = time.monotonic() - started
    (ARTIFACTS / "timings.txt").write_text(
        f"browser test wall time (after stack start): {wall:.1f}s\n"
        f"replay -> alert visible: {alert_latency:.2f}s\n"
    )
