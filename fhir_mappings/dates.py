"""FHIR date/dateTime strings -> Python values, for partial dates too.

A dateTime without offset (or a bare date) is taken as UTC; calendar-day arithmetic
(length of stay, age) uses the date as written, in the sender's own time zone.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time


def _first_day(value: str) -> str:
    """FHIR partial dates (``YYYY``, ``YYYY-MM``) completed to their first day."""
    if len(value) == 4:
        return f"{value}-01-01"
    if len(value) == 7:
        return f"{value}-01"
    return value


def parse_datetime(value: str | None) -> datetime | None:
    """``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or a full dateTime -> aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(_first_day(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_partial(value: str | None) -> bool:
    """A year (``YYYY``) or a month (``YYYY-MM``): a range of days, not a day."""
    return bool(value) and len(str(value)) in (4, 7)


def latest_datetime(value: str | None) -> datetime | None:
    """The last instant a (possibly partial) date/dateTime can stand for: ``2024-03``
    -> 2024-03-31 23:59:59.999999 UTC; a full dateTime is itself."""
    if not is_partial(value):
        return parse_datetime(value)
    first = parse_datetime(value)
    if first is None:
        return None
    month = first.month if len(str(value)) == 7 else 12
    day = calendar.monthrange(first.year, month)[1]
    return datetime.combine(date(first.year, month, day), time.max, tzinfo=UTC)


def local_date(value: str | None) -> date | None:
    """The calendar date as written (partial dates -> first day)."""
    if not value:
        return None
    try:
        return date.fromisoformat(_first_day(value)[:10])
    except ValueError:
        return None


def years_between(born: date, on: date) -> int:
    """Completed years of age on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def effective_time(resource: dict) -> str | None:
    """The clinically relevant time of an Observation/Procedure/Medication* resource."""
    for key in ("effectiveDateTime", "performedDateTime", "authoredOn", "recordedDate"):
        value = resource.get(key)
        if value:
            return str(value)
    for key in ("effectivePeriod", "performedPeriod"):
        period = resource.get(key) or {}
        if period.get("start"):
            return str(period["start"])
    return None
