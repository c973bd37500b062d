"""The web and alert-feed processes log one JSON object per line, like ingest and scorer."""

from __future__ import annotations

import logging
import logging.config
from types import SimpleNamespace

import orjson
import pytest
from django.conf import settings
from django.test import RequestFactory


def test_django_logging_is_json_without_identifiers(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(settings.LOGGING)
    try:
        logging.getLogger("alerts_web.alerts.feed").warning(
            "alert stored", extra={"ward": "ward-a", "patient_id": "p-1"}
        )
        request = RequestFactory().get("/patients/p-1/")
        request.resolver_match = SimpleNamespace(route="patients/<str:patient_id>/")  # type: ignore[assignment]
        # as django.utils.log.log_response logs a 404
        logging.getLogger("django.request").warning(
            "%s: %s", "Not Found", request.path, extra={"status_code": 404, "request": request}
        )
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert next(line["msg"] for line in lines) == "alert stored"
    assert lines[0]["ward"] == "ward-a"
    assert "patient_id" not in lines[0]
    assert "p-1" not in orjson.dumps(lines[1]).decode()
    assert lines[1]["msg"] == "Not Found: /patients/<str:patient_id>/"
    assert {"ts", "level", "logger"} <= set(lines[1])
