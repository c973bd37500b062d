"""``python -m alerts_web consume_scores``: the alert feed (runs until SIGTERM/SIGINT)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from alerts_web.alerts.kafka_feed import run_feed
from readmit_core.settings import get_settings


class Command(BaseCommand):
    help = "Consume risk.scored, store high-risk alerts and push them to ward dashboards."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        self.stdout.write("alert feed consuming risk.scored")
        self.stdout.flush()
        run_feed(get_settings(), stop)
