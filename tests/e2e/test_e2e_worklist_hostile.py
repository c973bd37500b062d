"""The worklist page under hostile rows, in headless Chromium, without the stack (seconds).

The page is the real template and dashboard.js; Playwright answers the data endpoint
with rows any EHR could send (markup, 200-character unbroken names, MRNs and beds,
mixed scripts), and the WebSocket cannot connect at all (as behind a proxy that blocks
it). What must hold: the rows still load, every text is text, and at tablet width
(768 px) the page does not scroll sideways.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

from alerts_web.testing import configure_django_for_tests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STATIC = Path(__file__).resolve().parents[2] / "alerts_web" / "static"
EVIL = '<img src=x onerror="window.PWNED=1">'
LONG = "\u0174" * 200


def _page_html() -> str:
    configure_django_for_tests()
    from django.contrib.auth.models import AnonymousUser
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from alerts_web.worklist import rows as worklist

    class Ward:
        code = "ward-a"
        name = EVIL

    request = RequestFactory().get("/wards/ward-a/")
    request.user = AnonymousUser()
    context = {
        "ward": Ward(),
        "wards": [Ward()],
        "close_reasons": [],
        "status_filters": worklist.STATUS_FILTERS,
        "page_sizes": worklist.PAGE_SIZES,
    }
    return render_to_string("wards/dashboard.html", context, request=request)


def _row(n: int, name: str, mrn: str, bed: str) -> dict[str, Any]:
    at = "2026-11-25T10:00:00+00:00"
    return {
        "id": n,
        "ward": "ward-a",
        "ward_name": EVIL,
        "encounter_id": 'x"><script>window.PWNED=3</script>',
        "patient_id": "p",
        "patient_name": name,
        "mrn": mrn,
        "age_years": 70,
        "sex": "female",
        "unit": LONG,
        "room": EVIL,
        "bed": bed,
        "admitted_at": "2026-11-20T10:00:00+00:00",
        "discharged_at": at,
        "length_of_stay_hours": 120,
        "disposition": EVIL,
        "probability": 0.7,
        "band": "high",
        "model_version": "m",
        "status": "open",
        "status_label": "Open",
        "close_reason": None,
        "superseded_by_encounter": None,
        "earlier_stays": 1,
        "assigned_to": EVIL,
        "last_action": EVIL + LONG,
        "last_action_at": at,
        "top_factor": EVIL,
        "interventions": 1,
        "computed_at": at,
        "created_at": at,
        "updated_at": at,
    }


def test_hostile_rows_load_without_a_socket_as_text_and_fit_a_tablet() -> None:
    require_chromium()
    from playwright.sync_api import Route, sync_playwright

    html = _page_html()
    rows = [
        _row(1, EVIL, EVIL, EVIL),
        _row(2, LONG, "M" * 200, "B" * 200),
        _row(3, "\u00d6l\u00e7ek, \u674e \u660e", "</script><script>window.PWNED=2</script>", "12"),
    ]
    counts = {"open": 3, "acknowledged": 0, "closed": 0, "active": 3, "all": 3}
    data = {"total": 3, "counts": counts, "page": 1, "pages": 1, "page_size": 50}
    data |= {"first": 1, "last": 3, "rows": rows, "ignored": []}

    def answer(route: Route) -> None:
        path = route.request.url.split("test.invalid", 1)[1].split("?")[0]
        if path.startswith("/static/"):
            file = STATIC / path.removeprefix("/static/")
            kind = "text/css" if file.suffix == ".css" else "application/javascript"
            route.fulfill(body=file.read_bytes() if file.is_file() else b"", content_type=kind)
        elif path.startswith("/worklist/data"):
            route.fulfill(body=json.dumps(data), content_type="application/json")
        else:
            route.fulfill(body=html, content_type="text/html")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 768, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.route("http://test.invalid/**", answer)
            page.goto("http://test.invalid/wards/ward-a/")
            page.wait_for_selector("tr.alert-row", timeout=10_000)  # no socket needed
            assert page.locator("tr.alert-row").count() == 3
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "worklist-hostile-768.png"), full_page=True)
            assert page.evaluate("window.PWNED") is None
            assert dialogs == []
            assert page.locator("#alerts-body img, #alerts-body script").count() == 0
            assert EVIL in page.locator("#alerts-body").inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 768
        finally:
            browser.close()
