"""FHIR R4 ``Condition.onset[x]`` (all five forms) as an interval of calendar dates.

Pure module. ``onset[x]`` may be a ``dateTime``, an ``Age``, a ``Period``, a ``Range`` (of ages)
or a ``string``. Each readable form becomes the interval ``[earliest, latest]`` in which the
condition began; callers pick the end that matters to them:

* the **symptom duration** counts from the *earliest* possible onset (how long the complaint
  may have lasted, as 2026.1.0 did with ``onsetPeriod.start``);
* a **recency window** (criteria 2026.2.0 §10.1) and ``days_since_injury`` use the *latest*
  possible onset: a red flag that may have begun inside its window counts, because unknown is
  not absent.

How each form maps (``birth`` is the Patient's birthDate; without it the age forms are not
readable and callers fall back to ``recordedDate``):

========================  ====================================================================
``onsetDateTime``         the date; a partial date spans its year or month (``2012`` →
                          2012-01-01 … 2012-12-31)
``onsetAge``              ``birth`` + the age. Whole years (UCUM ``a``) span that year of life
                          (age 52 → from the 52nd birthday to the day before the 53rd); months
                          (``mo``) likewise; weeks, days, hours, minutes are a point.
``onsetPeriod``           ``start`` … ``end`` (a missing end: the start alone; a missing start:
                          the end alone)
``onsetRange``            the ages ``low`` … ``high`` as for ``onsetAge`` (one bound missing:
                          the other alone)
``onsetString``           a date written in the text: ISO ``YYYY-MM-DD``/``YYYY-MM``, "November
                          2012", "Nov 2012" or a bare year (``approximately November 2012`` →
                          November 2012); anything else ("since childhood") is not readable
========================  ====================================================================

An interval is never later than ``today`` (an onset in the future is a data error; it is read
as today) and never earlier than ``birth``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

UCUM_SYSTEM = "http://unitsofmeasure.org"

#: Age units: UCUM codes and the unit texts EHRs send without a code.
_YEARS = frozenset({"a", "ann", "yr", "yrs", "year", "years", "y"})
_MONTHS = frozenset({"mo", "month", "months", "mos"})
_POINT_DAYS = {
    "wk": 7.0, "week": 7.0, "weeks": 7.0, "w": 7.0,
    "d": 1.0, "day": 1.0, "days": 1.0,
    "h": 1 / 24, "hr": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
    "min": 1 / 1440, "minute": 1 / 1440, "minutes": 1 / 1440,
}
_MONTH_NAMES = {name.lower(): index for index, name in enumerate(calendar.month_name) if name}
_MONTH_NAMES.update({name.lower(): index for index, name in enumerate(calendar.month_abbr)
                     if name})
_ISO_IN_TEXT = re.compile(r"\b(\d{4})-(\d{2})(?:-(\d{2}))?\b")
_MONTH_YEAR = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{4})\b")
_YEAR = re.compile(r"\b(1[89]\d{2}|2\d{3})\b")


@dataclass(frozen=True)
class OnsetInterval:
    """The dates between which a condition began, and the ``onset[x]`` form they came from."""

    earliest: date
    latest: date
    form: str


def parse_fhir_date(value: Any) -> date | None:
    """A FHIR date or dateTime as a UTC date (partial dates take their first day)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 1)
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the contract: a time without an offset is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _date_span(value: Any) -> tuple[date, date] | None:
    """A FHIR date/dateTime as the span of days it names (partial dates span their unit)."""
    if not isinstance(value, str):
        return None
    day = parse_fhir_date(value)
    if day is None:
        return None
    text = value.strip()
    if len(text) == 4:
        return day, date(day.year, 12, 31)
    if len(text) == 7:
        return day, _month_end(day.year, day.month)
    return day, day


def _add_months(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _unit_of(quantity: Mapping[str, Any]) -> str | None:
    """The UCUM code of a Quantity, else its unit text, lower-cased."""
    code = quantity.get("code")
    if isinstance(code, str) and code.strip() and quantity.get("system") in (UCUM_SYSTEM, None):
        return code.strip().lower()
    unit = quantity.get("unit")
    return unit.strip().lower() if isinstance(unit, str) and unit.strip() else None


def age_span(quantity: Any, birth: date) -> tuple[date, date] | None:
    """The dates on which the patient had the age ``quantity`` (an ``Age``), or None."""
    if not isinstance(quantity, Mapping):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or value > 150:
        return None
    unit = _unit_of(quantity)
    try:
        if unit in _YEARS or unit in _MONTHS:
            months = value * 12 if unit in _YEARS else value
            whole = int(months)
            start = _add_months(birth, whole)
            if float(months).is_integer():
                # "52 years" is the whole 53rd year of life (likewise for months).
                step = 12 if unit in _YEARS else 1
                return start, _add_months(birth, whole + step) - timedelta(days=1)
            return start, start
        if unit in _POINT_DAYS:
            point = birth + timedelta(days=value * _POINT_DAYS[unit])
            return point, point
    except (OverflowError, ValueError):
        return None
    return None  # no unit, or a unit that is not a time: not readable


def _string_span(text: Any) -> tuple[date, date] | None:
    if not isinstance(text, str):
        return None
    match = _ISO_IN_TEXT.search(text)
    try:
        if match:
            year, month = int(match.group(1)), int(match.group(2))
            if match.group(3):
                day = date(year, month, int(match.group(3)))
                return day, day
            return date(year, month, 1), _month_end(year, month)
        for match in _MONTH_YEAR.finditer(text):
            named = _MONTH_NAMES.get(match.group(1).lower())
            if named:
                year = int(match.group(2))
                return date(year, named, 1), _month_end(year, named)
        match = _YEAR.search(text)
        if match:
            year = int(match.group(1))
            return date(year, 1, 1), date(year, 12, 31)
    except ValueError:
        return None
    return None


def onset_interval(condition: Mapping[str, Any], *, birth: date | None, today: date
                   ) -> OnsetInterval | None:
    """The interval in which ``condition`` began, from whichever ``onset[x]`` it carries."""
    span: tuple[date, date] | None = None
    form = ""
    if "onsetDateTime" in condition:
        span, form = _date_span(condition.get("onsetDateTime")), "onsetDateTime"
    elif "onsetAge" in condition:
        form = "onsetAge"
        span = age_span(condition.get("onsetAge"), birth) if birth else None
    elif "onsetPeriod" in condition:
        form = "onsetPeriod"
        period = condition.get("onsetPeriod")
        if isinstance(period, Mapping):
            start, end = _date_span(period.get("start")), _date_span(period.get("end"))
            if start or end:
                span = ((start or end)[0], (end or start)[1])  # type: ignore[index]
    elif "onsetRange" in condition:
        form = "onsetRange"
        rng = condition.get("onsetRange")
        if isinstance(rng, Mapping) and birth:
            low, high = age_span(rng.get("low"), birth), age_span(rng.get("high"), birth)
            if low or high:
                span = ((low or high)[0], (high or low)[1])  # type: ignore[index]
    elif "onsetString" in condition:
        span, form = _string_span(condition.get("onsetString")), "onsetString"
    if span is None:
        return None
    earliest, latest = span
    if birth is not None:
        earliest, latest = max(earliest, birth), max(latest, birth)
    earliest, latest = min(earliest, today), min(latest, today)
    return OnsetInterval(earliest=min(earliest, latest), latest=latest, form=form)
