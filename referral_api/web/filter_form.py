"""The audit dashboard's filters: the same names and values as ``GET /v1/decisions``.

Read from the query string of the dashboard (a plain GET form, so filtered views can be
bookmarked and shared), checked, and turned into the ``filters`` dict the decision log's
``query``/``stats``/``iter_records`` take. Dates from ``<input type="date">`` become the start
(``since``) or the end (``until``) of that UTC day; full ISO 8601 times are kept as given,
read as UTC when they carry no offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from marshmallow import ValidationError

from referral_api.audit.filters import MAX_TEXT, RANGE_ERROR, AuditFilterSchema
from referral_api.enums import CHANNELS, FEEDBACK_FILTERS, RATINGS, REGIONS, URGENCIES

CHOICES: dict[str, tuple[str, ...]] = {
    "region": REGIONS,
    "appropriateness": RATINGS,
    "urgency": URGENCIES,
    "channel": CHANNELS,
    "feedback": FEEDBACK_FILTERS,
}
TEXT_FILTERS = ("scenario", "ruleset_version", "client", "ordering_clinician")
TIME_FILTERS = ("since", "until")
FORM_FIELDS = (*TIME_FILTERS, *CHOICES, *TEXT_FILTERS)

# The API's filter schema, restricted to the dashboard's fields: one definition of what a
# valid filter is, so the table, the charts and the CSV select what the API would.
_SCHEMA = AuditFilterSchema(only=FORM_FIELDS)

# The API's messages name formats for programmers; the page speaks to the reviewer.
_PAGE_MESSAGES = {name: "Enter a date (YYYY-MM-DD) or an ISO 8601 time." for name in TIME_FILTERS}


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


def parse_filters(args: Mapping[str, str]) -> AuditFilters:
    """Read and check the filters in ``args`` (a query string); unknown names are ignored.

    Valid filters are kept even when another one is wrong, so the page can show both.
    """
    result = AuditFilters()
    for name in FORM_FIELDS:
        raw = args.get(name)
        result.entered[name] = str(raw).strip()[:MAX_TEXT] if raw is not None else ""
    given = {name: text for name, text in result.entered.items() if text}
    try:
        result.filters = _SCHEMA.load(given)
    except ValidationError as err:
        valid = err.valid_data if isinstance(err.valid_data, dict) else {}
        result.filters = {k: v for k, v in valid.items() if k not in err.messages}
        for name, messages in err.normalized_messages().items():
            if name in CHOICES:
                result.errors[name] = f"Choose one of: {', '.join(CHOICES[name])}."
            elif name == "until" and RANGE_ERROR in messages:
                result.errors[name] = "'Until' must not be before 'since'."
            else:
                result.errors[name] = _PAGE_MESSAGES.get(name, " ".join(map(str, messages)))
    return result
