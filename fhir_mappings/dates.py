"""FHIR date/dateTime strings -> Python values, for partial dates too.

A dateTime without offset (or a bare date) is taken as UTC; calendar-day arithmetic
(length of stay, age) uses the date as written, in the sender's own time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def parse_datetime(value: str | None) -> datetime | None:
    """``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or a full dateTime -> aware datetime."""
    if not value:
        return None
    if len(value) == 4:
        value = f"{value}-01-01"
    elif len(value) == 7:
        value = f"{value}-01"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local_date(value: str | None) -> date | None:
    """The calendar date as written (partial dates -> first day)."""
    if not value:
        return None
    if len(value) == 4:
        value = f"{value}-01-01"
    elif len(value) == 7:
        value = f"{value}-01"
    try:
        return date.fromisoformat(value[:10])
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
