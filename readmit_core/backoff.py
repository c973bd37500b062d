"""The pause after a failure, shared by every retry loop (scorer, alert feed, `readmit up`).

A consumer that cannot store a batch (Redis, PostgreSQL or Kafka down) rewinds and
tries again; pausing with a doubling, capped delay keeps a dependency outage from
turning into a hot loop of failing retries, and the cap bounds the extra delay once the
dependency is back.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_PAUSE_S = 0.1


@dataclass
class Backoff:
    """Doubling pause from ``first_s`` up to ``cap_s``; back to zero on success."""

    cap_s: float = 2.0
    current_s: float = 0.0
    first_s: float = FIRST_PAUSE_S

    def failed(self) -> float:
        """Record a failure; returns how long to pause before the next attempt."""
        self.current_s = min(self.cap_s, max(self.first_s, self.current_s * 2))
        return self.current_s

    def succeeded(self) -> None:
        self.current_s = 0.0
