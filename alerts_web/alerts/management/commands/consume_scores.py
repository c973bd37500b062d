"""``python -m alerts_web consume_scores``: the alert feed (runs until SIGTERM/SIGINT)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand
from prometheus_client import start_http_server

from alerts_web.alerts.kafka_feed import run_feed
from readmit_core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _serve_metrics(settings: Settings) -> None:
    """Serve /metrics on READMIT_FEED_METRICS_PORT; a port in use costs the metrics, not
    the feed (alerts matter more than their counters), and says so."""
    if not settings.feed_metrics_port:
        return
    host = "127.0.0.1" if settings.embedded else "0.0.0.0"
    try:
        start_http_server(settings.feed_metrics_port, addr=host)
    except OSError as exc:
        log.warning(
            "alert feed metrics not served",
            extra={"port": settings.feed_metrics_port, "error": type(exc).__name__},
        )


class Command(BaseCommand):
    help = "Consume risk.scored, store high-risk alerts and push them to ward dashboards."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        settings = get_settings()
        _serve_metrics(settings)
        self.stdout.write("alert feed consuming risk.scored")
        self.stdout.flush()
        run_feed(settings, stop)
