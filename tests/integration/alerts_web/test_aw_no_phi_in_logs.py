"""No patient or encounter identifier reaches a log record, whatever the request does."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from alerts_web.alerts.feed import FeedCounts, handle_messages
from readmit_core.events import WorklistContext

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected() -> Iterator[_Collect]:
    """Every record of every logger, after the loggers' own filters ran."""
    handler = _Collect()
    names = ["", "django.request", "django.server", "alerts_web", "kafka"]
    loggers = [logging.getLogger(n) for n in names]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, old_levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_requests_and_feed_log_no_identifiers(
    collected: _Collect, client_a: Client, wards: Any, event_factory: Any, api_key: Any
) -> None:
    secret_enc, secret_pat = "enc-PHI-4242", "pat-PHI-9191"
    secret_name, secret_mrn = "Zebedee Quintrell", "MRN-PHI-5151"
    context = WorklistContext(patient_name=secret_name, mrn=secret_mrn, bed="B-PHI-7")
    other_ward = event_factory(
        "ward-b", encounter_id=secret_enc, patient_id=secret_pat, context=context
    )
    mine = event_factory("ward-a", context=context.model_copy(update={"mrn": secret_mrn + "A"}))
    handle_messages([other_ward.to_bytes(), mine.to_bytes(), b"garbage"], FeedCounts())
    key = api_key("scores:read", "fhir:read")
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    responses = [
        client_a.get(reverse("alerts:encounter", args=[secret_enc])),
        client_a.get(reverse("alerts:encounter-pdf", args=[secret_enc])),
        Client().get(reverse("api:encounter-score", args=[secret_enc]), **auth),
        Client().get(reverse("api:patient-scores", args=[secret_pat]), **auth),
        Client().get(f"/fhir/RiskAssessment/{secret_enc}", **auth),
        Client().get(f"/fhir/RiskAssessment?patient={secret_pat}", **auth),
        client_a.post(reverse("alerts:action", args=[999999, "acknowledge"]) + f"?x={secret_pat}"),
        client_a.get(reverse("wards:worklist-data"), {"q": secret_name, "ward": "ward-b"}),
        client_a.get(reverse("wards:worklist-data"), {"q": secret_mrn}),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404, 404, 200, 404, 200, 200]
    assert responses[-2].json()["total"] == 0  # ward B's patient stays invisible to nurse A
    assert responses[-1].json()["rows"][0]["mrn"] == secret_mrn + "A"
    text = "\n".join(collected.lines)
    assert "Not Found" in text  # the 404s were logged...
    assert secret_enc not in text  # ...without whom they were about
    assert secret_pat not in text
    for secret in (secret_name, secret_mrn, "B-PHI-7"):
        assert secret not in text
