"""``python -m alerts_web resolve_alerts``: close alerts whose 30-day window has ended.

The alert feed runs the same rule at most once a minute while it consumes; this command
is for a cron job or an operator (for example after the feed was stopped for a while).
It prints how many alerts it resolved, never which (identifiers stay out of logs).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from alerts_web.alerts.feed import broadcast, resolve_expired


class Command(BaseCommand):
    help = "Resolve open alerts whose 30-day readmission window has ended."

    def handle(self, *args: Any, **opts: Any) -> None:
        resolved = resolve_expired()
        for alert in resolved:
            try:
                broadcast(alert, kind="update")
            except Exception:  # noqa: BLE001 - stored anyway; dashboards catch up on reconnect
                self.stderr.write("live update not sent (channel layer unavailable)")
                break
        self.stdout.write(f"resolved={len(resolved)}")
