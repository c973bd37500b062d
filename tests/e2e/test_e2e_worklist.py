"""The discharge-planning worklist and the alert lifecycle, in headless Chromium.

The real web server (daphne), the real alert feed consuming ``risk.scored`` from the
broker, PostgreSQL and Redis; scores are produced onto the topic as the scorer would
(with the FHIR worklist context), so the test controls corrections and readmissions.
The web server is killed and restarted to watch the dashboard reconnect. Screenshots
at 1280 px and at tablet width (768 px) go to tests/e2e/artifacts/ (and docs/screenshots/
with READMIT_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

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

from readmit.embedded.stack import Stack
from readmit_core.events import SCORED_TOPIC, Factor, Intervention, ScoreEvent, WorklistContext
from readmit_core.features import FeatureRecord
from readmit_core.kafka_clients import make_producer

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

NOW = datetime.now(UTC).replace(microsecond=0)
LIVE_S = 30_000  # ms: a score produced -> on the page


def _event(ward: str, n: int, **kw: Any) -> ScoreEvent:
    discharged = kw.pop("discharged_at", NOW - timedelta(hours=2 + n))
    admitted = kw.pop("admitted_at", discharged - timedelta(days=2, hours=22))
    ctx = WorklistContext(
        patient_name=kw.pop("name", f"Patient{n:02d}, Test"),
        mrn=f"MRN-{1000 + n}",
        sex="female" if n % 2 else "male",
        age_years=50 + n,
        unit="Cardiology ward",
        bed=f"{n}A",
        admitted_at=admitted,
        discharged_at=discharged,
        disposition="Discharged to home",
    )
    values: dict[str, Any] = {
        "encounter_id": f"e2e-enc-{n}",
        "patient_id": f"e2e-pat-{n}",
        "ward": ward,
        "input_key": f"e2e-enc-{n}|1",
        "probability": 0.5 + n / 100,
        "band": "high",
        "model_version": "lr-e2e",
        "factors": (Factor(feature="number_inpatient", label="2 earlier stays", contribution=0.2),),
        "interventions": (
            Intervention(
                code="call-48h", title="Phone call within 48 hours", rationale="r", source="s"
            ),
        ),
        "discharged_at": discharged,
        "context": ctx,
        "record": FeatureRecord(
            encounter_id=f"e2e-enc-{n}", patient_nbr=f"e2e-pat-{n}", discharge_disposition_id=1
        ),
    }
    values.update(kw)
    return ScoreEvent.model_validate(values)


def _rescore(event: ScoreEvent, minutes: int, disposition: int, **kw: Any) -> ScoreEvent:
    assert event.record is not None
    return event.model_copy(
        update={
            "input_key": f"{event.input_key}+{minutes}",
            "computed_at": event.computed_at + timedelta(minutes=minutes),
            "record": event.record.model_copy(update={"discharge_disposition_id": disposition}),
            **kw,
        }
    )


class _Scores:
    """Produces ScoreEvents onto the stack's ``risk.scored``, as the scorer does."""

    def __init__(self, stack: Stack) -> None:
        self.settings = stack.settings
        self.producer = make_producer(stack.settings)

    def send(self, *events: ScoreEvent) -> None:
        for event in events:
            self.producer.send(self.settings.topic(SCORED_TOPIC), event.to_bytes())
        self.producer.flush(timeout=30)


def _rows(page: Any) -> Any:
    return page.locator("#alerts-body tr.alert-row")


def test_worklist_lifecycle_reconnect_and_tablet(stack_with: Any) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    stack = stack_with(0)
    base = stack.settings.web_url
    ward = nurse_wards(stack)[0]
    scores = _Scores(stack)
    patients = [_event(ward, n) for n in range(1, 13)]
    okafor = _event(
        ward, 20, name="Okafor, Chidi", probability=0.64, discharged_at=NOW - timedelta(days=16)
    )
    medium = _event(ward, 30, name="Medium, Person", band="medium", probability=0.3)
    scores.send(*patients, okafor, medium)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, "nurse", printed_password(stack, "nurse"))
        page.goto(f"{base}/wards/{ward}/")
        expect(page.locator("#live-status")).to_have_text("Live", timeout=15_000)
        expect(page.locator("#worklist-summary")).to_contain_text("of 13", timeout=LIVE_S)
        assert not errors, errors
        first = _rows(page).first
        expect(first).to_contain_text("Okafor, Chidi")  # highest risk first
        expect(first).to_contain_text("MRN-1020 · 70 y · male")
        expect(first).to_contain_text("bed 20A")
        expect(first).to_contain_text("Discharged to home")
        expect(first).to_contain_text("stay 2 d")
        expect(page.locator("th[data-sort=discharged]")).to_contain_text("(UTC)")
        shot(page, "worklist-1280")

        # search, band on demand, sort
        page.fill("#f-q", "MRN-1003")
        expect(_rows(page)).to_have_count(1)
        expect(_rows(page).first).to_contain_text("Patient03, Test")
        page.fill("#f-q", "")
        page.select_option("#f-band", "medium")
        expect(_rows(page)).to_have_count(1)
        expect(_rows(page).first).to_contain_text("Medium, Person")
        page.select_option("#f-band", "high")
        page.click("th[data-sort=name]")
        expect(_rows(page).first).to_contain_text("Okafor, Chidi")
        expect(page.locator("th[data-sort=name]")).to_have_attribute("aria-sort", "ascending")
        page.click("th[data-sort=name]")
        expect(_rows(page).first).to_contain_text("Patient12, Test")
        page.select_option("#f-sort", "risk")
        page.select_option("#f-page-size", "25")
        assert "page_size=25" in page.url  # filters survive a reload

        # a wrong "expired" disposition closes it live; the correction reopens it live
        okafor_row = page.locator('tr:has-text("Okafor, Chidi")')
        expired = _rescore(okafor, 1, 11, probability=0.4, non_readmittable=True)
        scores.send(expired)
        expect(okafor_row).to_have_count(0, timeout=LIVE_S)
        expect(page.locator("#worklist-summary")).to_contain_text("of 12")
        page.select_option("#f-status", "closed")
        expect(okafor_row.locator("[data-field=status]")).to_contain_text(
            "Closed: Readmission risk does not apply"
        )
        page.select_option("#f-status", "active")
        scores.send(_rescore(okafor, 2, 1, probability=0.52))
        expect(okafor_row).to_have_count(1, timeout=LIVE_S)
        expect(okafor_row).to_contain_text("52%")
        expect(okafor_row.locator(".last-action")).to_contain_text("Alert reopened")

        okafor_row.get_by_role("link", name="Okafor, Chidi").click()
        trail = page.locator("#audit-trail")
        expect(trail).to_contain_text("Expired → Discharged to home")
        expect(trail).to_contain_text("Alert reopened: the latest score is high risk again.")
        expect(trail).to_contain_text("UTC")
        expect(page.locator("#patient-name")).to_have_text("Okafor, Chidi")
        page.select_option("select[name=assignee]", label="nurse")
        page.get_by_role("button", name="Assign").click()
        page.get_by_role("button", name="Unassign").click()
        expect(trail).to_contain_text("Unassigned (was nurse)")
        page.select_option("select[name=intervention_code]", index=0)
        page.get_by_role("button", name="Mark done").click()
        expect(trail).to_contain_text("Intervention done: Phone call within 48 hours")
        assert "call-48h" not in trail.inner_text()
        page.select_option("select[name=reason]", "follow_up_arranged")
        page.fill("input[name=note][id^=close-note]", "GP appointment Friday")
        page.get_by_role("button", name="Close alert").click()
        expect(page.locator("[data-field=status]")).to_have_text("Closed: Follow-up arranged")
        expect(trail).to_contain_text("Closed: Follow-up arranged — “GP appointment Friday”")
        page.get_by_role("button", name="Reopen").click()
        expect(page.locator("[data-field=status]")).to_have_text("Open")
        shot(page, "patient-lifecycle")

        # readmitted 10 days after that discharge: one row for the patient, the earlier linked
        assert okafor.discharged_at is not None
        again = _event(
            ward,
            20,
            name="Okafor, Chidi",
            encounter_id="e2e-enc-20b",
            input_key="e2e-enc-20b|1",
            probability=0.58,
            admitted_at=okafor.discharged_at + timedelta(days=10),
            discharged_at=okafor.discharged_at + timedelta(days=14),
        )
        scores.send(again)
        page.goto(f"{base}/wards/{ward}/")
        expect(page.locator('tr:has-text("Okafor, Chidi")')).to_have_count(1, timeout=LIVE_S)
        expect(page.locator('tr:has-text("Okafor, Chidi")')).to_contain_text(
            "1 earlier stay", timeout=LIVE_S
        )

        # the server goes away: a truthful badge, then a snapshot with what was missed
        web = stack.process("web")
        web.kill()
        badge = page.locator("#live-status")
        expect(badge).to_have_attribute("data-state", "reconnecting", timeout=15_000)
        expect(badge).to_have_text(re.compile(r"Reconnecting in \d+ s"))
        scores.send(_event(ward, 40, name="Missed, While-Down", probability=0.9))
        web.start()
        expect(badge).to_have_text("Live", timeout=60_000)
        expect(_rows(page).first).to_contain_text("Missed, While-Down", timeout=LIVE_S)
        expect(page.locator("#announcer")).to_contain_text(
            "New high-risk discharge: Missed, While-Down"
        )
        assert page.evaluate("window.readmitDashboard.reconnectCount()") >= 1
        context.set_offline(True)  # the tablet loses its network
        expect(badge).to_have_attribute("data-state", "offline", timeout=10_000)
        expect(badge).to_contain_text("Offline")
        context.set_offline(False)
        expect(badge).to_have_text("Live", timeout=30_000)
        delays = page.evaluate("[0,1,2,3,8].map((n) => window.readmitDashboard.backoffDelay(n))")
        assert 500 <= delays[0] <= 1000  # equal jitter: half fixed, half random
        assert 4000 <= delays[3] <= 8000
        assert 15000 <= delays[4] <= 30000  # capped

        # the tablet in portrait: everything on the page, no sideways scrolling
        tablet = browser.new_context(viewport={"width": 768, "height": 1024})
        tpage = tablet.new_page()
        login(tpage, base, "nurse", printed_password(stack, "nurse"))
        tpage.goto(f"{base}/wards/{ward}/")
        expect(_rows(tpage).first).to_contain_text("Missed, While-Down", timeout=LIVE_S)
        assert tpage.evaluate("document.documentElement.scrollWidth") <= 768
        overflow = tpage.evaluate(
            "(() => { const t = document.querySelector('.table-responsive');"
            " return t.scrollWidth - t.clientWidth; })()"
        )
        assert overflow <= 0, f"the worklist table scrolls sideways by {overflow}px at 768"
        shot(tpage, "worklist-768")

        # a planner sees every ward on one list
        planner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        login(planner, base, "admin", printed_password(stack, "admin"))
        planner.goto(f"{base}/worklist/")
        expect(planner.locator("#live-status")).to_have_text("Live", timeout=15_000)
        expect(_rows(planner).first).to_contain_text(f"ward {ward}", timeout=LIVE_S)
        shot(planner, "worklist-all-wards")
        browser.close()
    assert not errors, errors

    assert stack.log_dir is not None
    for name in ("web", "alerts-consumer"):
        text = (stack.log_dir / f"{name}.log").read_text()
        for secret in ("Okafor", "MRN-1020", "Missed, While-Down", "e2e-pat-20"):
            assert secret not in text, f"{secret!r} in {name}.log"


def test_a_pending_alert_says_explaining_until_its_factors_arrive(stack_with: Any) -> None:
    """The scorer publishes a high score at once, factors pending; the explainer's
    completion follows. Meanwhile the worklist row and the patient page say "Explaining…"
    (never "no explanation"); when the completion arrives both show the factors by
    themselves — the patient page is not reloaded by the test."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    stack = stack_with(0)
    base = stack.settings.web_url
    ward = nurse_wards(stack)[0]
    scores = _Scores(stack)
    done = _event(ward, 40, name="Pending, Pat")
    pending = done.model_copy(update={"factors": (), "factors_pending": True})
    scores.send(pending)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, "nurse", printed_password(stack, "nurse"))
        page.goto(f"{base}/wards/{ward}/")
        row = _rows(page).filter(has_text="Pending, Pat")
        expect(row.locator(".factors-pending")).to_contain_text("Explaining", timeout=LIVE_S)
        shot(page, "worklist-explaining", docs=False)
        patient = page.context.new_page()
        patient.goto(f"{base}/encounters/{done.encounter_id}/")
        expect(patient.locator("#factors-pending")).to_contain_text("Explaining this score")
        expect(patient.locator("#interventions-pending")).to_be_visible()
        assert patient.get_by_text("No explanation available").count() == 0
        shot(patient, "encounter-explaining", docs=False)

        scores.send(done)  # the explainer's completion: same input, model and computed_at
        expect(patient.locator("#factor-chart")).to_be_visible(timeout=LIVE_S)
        expect(patient.locator("#factors-pending")).to_have_count(0)
        expect(patient.locator("#explanation")).to_contain_text("2 earlier stays")
        shot(patient, "encounter-explained", docs=False)
        expect(row).to_contain_text("Top factor: 2 earlier stays", timeout=LIVE_S)
        expect(row.locator(".factors-pending")).to_have_count(0)
        assert not errors, errors
        browser.close()
