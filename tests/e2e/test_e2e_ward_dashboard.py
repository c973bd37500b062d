"""End to end in headless Chromium: the whole stack, a nurse, a live alert, a PDF.

Starts the real stack (ingest, scorer, web under daphne, the alert feed) on free
ports against the session's broker, Redis and a throwaway PostgreSQL database; logs
in as the demo nurse with the password ``seed_demo`` printed; replays a high-risk
discharge through the ingest API; waits for the alert to appear live; acknowledges
it; downloads the PDF. Screenshots go to tests/e2e/artifacts/ and, one per page, to
docs/screenshots/ when READMIT_UPDATE_SCREENSHOTS=1 (they illustrate the README).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest

from fhir_mappings.codes.wards import ward_for
from fhir_mappings.features import FEATURE_COLUMNS, HISTORY_COLUMNS, FeatureRecord
from fhir_mappings.synth import read_rows, synthesize_bundle
from model_store.registry import Registry
from readmit.embedded.services import free_port
from readmit.embedded.stack import Stack
from readmit.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

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
CANDIDATE_ROWS = 4000


@pytest.fixture
def web_database(postgres_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the web app of this run, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    base = postgres_dsn.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def stack(
    non_demo_secrets: dict[str, Any],
    kafka_bootstrap: str,
    redis_url: str,
    registry_root: Path,
    web_database: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        database_url=web_database,
        model_dir=registry_root,
        state_dir=tmp_path / "state",
        topic_prefix=f"e2e{uuid.uuid4().hex[:8]}.",
        scorer_group=f"e2e-scorer-{uuid.uuid4().hex[:8]}",
        ingest_port=free_port(),
        web_port=free_port(),
        scorer_metrics_port=free_port(),
        embedded=False,
        replay_rate=0,
        **non_demo_secrets,
    )
    settings.scorer_metrics_urls = f"http://127.0.0.1:{settings.scorer_metrics_port}/metrics"
    with Stack(settings, scorers=1, start_broker=False) as running:
        yield running


def _seed_output(stack: Stack) -> str:
    """What ``seed_demo`` printed (the stack keeps it off log files: it holds passwords)."""
    text = getattr(stack, "web_credentials", None)
    assert text, "the stack did not keep seed_demo's output"
    return str(text)


def _printed_password(stack: Stack, user: str) -> str:
    match = re.search(rf"^\s*{user} / (\S+)", _seed_output(stack), re.MULTILINE)
    assert match, f"seed_demo printed no password for {user}"
    return match.group(1)


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


def _shot(page: Any, name: str, *, docs: bool = True) -> None:
    """Screenshots always go to the artifacts; to docs/ only when asked to refresh them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if docs and os.environ.get("READMIT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_nurse_sees_a_live_alert_acknowledges_it_and_downloads_the_pdf(
    stack: Stack, registry_root: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium missing: apt-get install -y chromium chromium-driver")
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    s = stack.settings
    base = s.web_url
    nurse_pw = _printed_password(stack, "nurse")
    admin_pw = _printed_password(stack, "admin")
    wards_line = re.search(r"wards: (.*)$", _seed_output(stack), re.MULTILINE)
    assert wards_line is not None
    nurse_wards = set(wards_line.group(1).split(", "))
    rows = _high_risk_rows(registry_root, nurse_wards)
    ward = ward_for(rows[0]["medical_specialty"], rows[0]["age"]).id
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        _shot(page, "login")
        _login(page, base, "nurse", nurse_pw)
        _shot(page, "wards")

        page.goto(f"{base}/wards/{ward}/")
        expect(page.locator("#live-status")).to_have_text("live", timeout=15_000)
        replayed_at = time.monotonic()
        for i, row in enumerate(rows):
            response = httpx.post(
                f"{s.ingest_url}/fhir",
                json=synthesize_bundle(row, seed=i),
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
        _shot(page, "ward-dashboard")

        # pin the row by id: ".first" is lazy and may point at a newer, riskier alert
        alert_id = row_locator.get_attribute("data-alert-id")
        acknowledged = page.locator(f'tr[data-alert-id="{alert_id}"]')
        acknowledged.locator("button[data-action=acknowledge]").click()
        expect(acknowledged.locator("[data-field=status]")).to_have_text(
            "acknowledged", timeout=15_000
        )
        _shot(page, "ward-dashboard-acknowledged", docs=False)

        acknowledged.get_by_role("link", name="Details").click()
        expect(page.locator(".risk-gauge")).to_be_visible()
        expect(page.locator("#audit-trail")).to_contain_text("Acknowledged")
        page.wait_for_function("document.querySelector('#factor-chart')?.width > 0")
        _shot(page, "patient-risk")
        with page.expect_download() as download_info:
            page.click("#download-pdf")
        pdf = ARTIFACTS / "readmission-risk.pdf"
        download_info.value.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF-")

        page.goto(f"{base}/what-if/")
        page.select_option("#id_age", "[80-90)")
        page.fill("#id_number_inpatient", "5")
        page.fill("#id_time_in_hospital", "0")
        page.click("#whatif-form button[type=submit]")
        expect(page.locator("[data-field=time_in_hospital]")).to_be_visible()
        _shot(page, "what-if-invalid", docs=False)
        page.fill("#id_time_in_hospital", "8")
        page.click("#whatif-form button[type=submit]")
        expect(page.locator("#whatif-result")).to_be_visible()
        _shot(page, "what-if")

        page.goto(f"{base}/api/docs/")
        expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)
        _shot(page, "api-docs")

        page.goto(f"{base}/ops/")
        assert "/admin/login/" in page.url  # nurses are not staff
        admin = context.browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[union-attr]
        admin_page = admin.new_page()
        _login(admin_page, base, "admin", admin_pw)
        admin_page.goto(f"{base}/ops/")
        expect(admin_page.locator("#ops-model")).not_to_have_text("—")
        _shot(admin_page, "ops")
        admin_page.goto(f"{base}/admin/wards/ward/")
        _shot(admin_page, "admin-wards")
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
