"""The audit dashboard's filters: the same names and values as ``GET /v1/decisions``.

Read from the query string of the dashboard (a plain GET form, so filtered views can be
bookmarked and shared), checked, and turned into the ``filters`` dict the decision log's
``query``/``stats``/``iter_records`` take. Dates from ``<input type="date">`` become the start
(``since``) or the end (``until``) of that UTC day; full ISO 8601 times are kept as given,
read as UTC when they carry no offset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..schemas import CHANNELS, RATINGS, REGIONS, URGENCIES

FEEDBACK_FILTERS = ("accepted", "overridden", "none")
CHOICES: dict[str, tuple[str, ...]] = {
    "region": REGIONS,
    "appropriateness": RATINGS,
    "urgency": URGENCIES,
    "channel": CHANNELS,
    "feedback": FEEDBACK_FILTERS,
}
TEXT_FILTERS = ("scenario", "ruleset_version", "client", "ordering_clinician")
TIME_FILTERS = ("since", "until")
FILTER_NAMES = (*TIME_FILTERS, *CHOICES, *TEXT_FILTERS)
MAX_TEXT = 128


@dataclass
class AuditFilters:
    """Filters as entered (for redisplay), as passed to storage, and the errors found."""

    entered: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """True when every filter given could be read."""
        return not self.errors

    def query_args(self) -> dict[str, str]:
        """The non-empty filters as entered: the query string of links that keep the filter."""
        return {name: value for name, value in self.entered.items() if value}


def _utc_text(moment: dt.datetime) -> str:
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str, *, end_of_day: bool) -> str:
    """ISO date or date-time -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC); raises ValueError.

    A bare date means the whole day: its first millisecond for ``since``, its last for
    ``until``, so "until 23 Nov" includes decisions made on 23 Nov.
    """
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
        return _utc_text(moment)
    return _utc_text(dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))


def parse_filters(args: Mapping[str, str]) -> AuditFilters:
    """Read and check the filters in ``args`` (a query string); unknown names are ignored."""
    result = AuditFilters()
    for name in FILTER_NAMES:
        raw = args.get(name)
        text = str(raw).strip()[:MAX_TEXT] if raw is not None else ""
        result.entered[name] = text
        if not text:
            continue
        if name in TIME_FILTERS:
            try:
                result.filters[name] = parse_time(text, end_of_day=(name == "until"))
            except ValueError:
                result.errors[name] = "Enter a date (YYYY-MM-DD) or an ISO 8601 time."
        elif name in CHOICES:
            if text in CHOICES[name]:
                result.filters[name] = text
            else:
                result.errors[name] = f"Choose one of: {', '.join(CHOICES[name])}."
        else:
            result.filters[name] = text
    since, until = result.filters.get("since"), result.filters.get("until")
    if since and until and since > until:
        result.errors["until"] = "'Until' must not be before 'since'."
    return result
