"""Structured JSON logs without patient identifiers.

Every process logs one JSON object per line (what log shippers want). Fields passed
through ``extra=`` are included unless their name marks them as identifying (patient
ids, names, birth dates...): those are dropped here, centrally, so a careless log call
cannot leak PHI.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
# objects frameworks attach to records (Django's request, Channels' scope): their text
# carries the request path, which names patients and encounters
_FRAMEWORK = {"request", "scope", "server_time"}
_IDENTIFYING = ("patient", "name", "birth", "address", "phone", "mrn", "ssn", "email", "token")
# Libraries whose INFO lines carry what the formatter cannot drop: httpx/httpcore log each
# request's full URL ("HTTP Request: GET .../Encounter/enc-1"), naming the encounter or
# patient; kafka is chatty. Every process (ingest, scorer, the web's LOGGING) keeps them
# at WARNING.
QUIET_LOGGERS = ("kafka", "httpx", "httpcore")


def _safe(key: str) -> bool:
    lowered = key.lower()
    return not any(marker in lowered for marker in _IDENTIFYING)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _FRAMEWORK and _safe(key):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str = "INFO") -> None:
    """Install the JSON formatter on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
