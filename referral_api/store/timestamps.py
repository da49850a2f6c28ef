"""The one stored time format, and the one parser of ISO 8601 instants into it.

Stored times are UTC text with milliseconds and ``Z`` (``2026-11-23T18:00:00.123Z``): fixed
width, so text order is time order (range filters compare text), and part of the hashed rows.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["parse_instant", "utc_timestamp"]

#: Length of ``YYYY-MM-DD``: a bare date, which covers a whole UTC day.
_DATE_LENGTH = 10


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2026-11-23T18:00:00.123Z``.

    Fixed width (the year is always four digits), so text order equals time order. A naive
    ``moment`` is taken as UTC. Raises ``OverflowError`` when the instant falls outside years
    1–9999 once converted to UTC.
    """
    moment = moment or dt.datetime.now(dt.UTC)
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_instant(value: str | dt.datetime, *, end_of_day: bool = False) -> str:
    """An ISO 8601 date or date-time (or a datetime) as stored UTC text.

    A date-time without an offset is UTC (the contract). A bare date covers the whole UTC day:
    its first millisecond, or with ``end_of_day`` its last, so ``until=2026-11-23`` includes
    decisions made on 23 November. Raises ``ValueError`` when it is neither, or when it falls
    outside the years 1 to 9999 in UTC.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == _DATE_LENGTH:
                day = dt.date.fromisoformat(text)
                moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
            else:
                moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO 8601 date or date-time") from None
    else:
        raise ValueError("not an ISO 8601 date or date-time")
    try:
        return utc_timestamp(moment)
    except OverflowError:
        raise ValueError("outside the years 1 to 9999") from None


def utc_now() -> dt.datetime:
    """The current time in UTC: the default clock of the log (tests inject their own)."""
    return dt.datetime.now(dt.UTC)
