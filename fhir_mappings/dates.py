"""FHIR date/dateTime strings -> Python values, for partial dates too.

A dateTime without offset (or a bare date) is taken as UTC; calendar-day arithmetic
(length of stay, age) uses the date as written, in the sender's own time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


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
