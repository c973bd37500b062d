"""Keep patient and encounter identifiers out of request logs.

Django logs ``"<reason>: <path>"`` for every 4xx/5xx, and our paths carry encounter
and patient ids. The filter swaps the path for the matched URL pattern, which tells
an operator which endpoint failed without naming anyone.
"""

from __future__ import annotations

import logging


class RedactRequestPath(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is None or not isinstance(record.args, tuple) or len(record.args) < 2:
            return True
        match = getattr(request, "resolver_match", None)
        route = getattr(match, "route", None) or "<unmatched>"
        record.args = (record.args[0], f"/{route}", *record.args[2:])
        return True
