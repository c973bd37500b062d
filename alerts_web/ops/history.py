"""The ops page's last hour: a small sampler that keeps one point every few seconds.

The web process samples the same numbers the ops page shows (scorer /metrics, consumer
lag) every ``READMIT_OPS_SAMPLE_SECONDS`` and keeps the last hour in the shared cache
(Redis), so the embedded run has plots without Prometheus. Points hold the *cumulative*
counters; rates (events/s, dead letters per minute, mean latency) are differences
between neighbouring points, and a counter that went down (a scorer restarted) gives
no value for that interval rather than a negative one.
"""

from __future__ import annotations

import logging
import threading
import time
from itertools import pairwise
from typing import Any, Final

from django.core.cache import cache

from readmit_core.settings import Settings

log = logging.getLogger(__name__)

HISTORY_KEY: Final = "ops:history"
WINDOW_SECONDS: Final = 3600
_FIELDS: Final = ("events_consumed_total", "dead_letters_total", "latency_sum", "latency_count")


def record(status: dict[str, Any], now: float | None = None) -> list[dict[str, float]]:
    """Append one point from an ``ops_status`` result; drop points older than an hour."""
    now = time.time() if now is None else now
    point = {"t": now, "lag": float(status.get("total_lag") or 0)}
    point.update({name: float(status.get(name) or 0) for name in _FIELDS})
    points = [p for p in cache.get(HISTORY_KEY) or [] if p["t"] > now - WINDOW_SECONDS]
    points.append(point)
    cache.set(HISTORY_KEY, points, timeout=WINDOW_SECONDS * 2)
    return points


def _rate(a: dict[str, float], b: dict[str, float], name: str) -> float | None:
    elapsed, delta = b["t"] - a["t"], b[name] - a[name]
    return None if elapsed <= 0 or delta < 0 else delta / elapsed


def series(points: list[dict[str, float]] | None = None) -> dict[str, list[Any]]:
    """The plots' data: times (ms since epoch) and one value list per plot."""
    points = (cache.get(HISTORY_KEY) or []) if points is None else points
    out: dict[str, list[Any]] = {
        "t": [], "lag": [], "events_per_second": [], "latency_ms": [], "dead_letters_per_min": []
    }  # fmt: skip
    for a, b in pairwise(points):
        out["t"].append(round(b["t"] * 1000))
        out["lag"].append(b["lag"])
        rate = _rate(a, b, "events_consumed_total")
        out["events_per_second"].append(None if rate is None else round(rate, 2))
        dlq = _rate(a, b, "dead_letters_total")
        out["dead_letters_per_min"].append(None if dlq is None else round(dlq * 60, 2))
        count = b["latency_count"] - a["latency_count"]
        spent = b["latency_sum"] - a["latency_sum"]
        latency = None if count <= 0 or spent < 0 else round(1000 * spent / count, 1)
        out["latency_ms"].append(latency)
    return out


def start_sampler(settings: Settings) -> threading.Thread | None:
    """Sample in a daemon thread of the web process (None when sampling is off)."""
    if settings.ops_sample_seconds <= 0:
        return None
    from alerts_web.ops.status import ops_status

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(settings.ops_sample_seconds):
            try:
                record(ops_status(settings))
            except Exception:  # a failed sample is a gap in the plot, never a dead thread
                log.warning("ops sample failed", exc_info=True)

    thread = threading.Thread(target=loop, name="ops-sampler", daemon=True)
    thread.start()
    return thread
