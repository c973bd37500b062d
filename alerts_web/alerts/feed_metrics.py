"""Prometheus metrics of the alert feed process (``consume_scores``), on its own port.

Named like the scorer's (``readmit_<component>_…``) so one alert rule shape covers both;
the feed's outcomes are the FeedCounts fields, its dead letters carry the same reasons.
"""

from __future__ import annotations

from prometheus_client import Counter

MESSAGES = Counter(
    "readmit_feed_messages_total", "risk.scored messages the feed handled, by outcome.", ["outcome"]
)
DEAD_LETTERS = Counter(
    "readmit_feed_dead_letters_total",
    "risk.scored messages the feed sent to the dead-letter topic.",
    ["reason"],
)
