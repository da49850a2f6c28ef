"""Query parameters of the audit endpoints (``GET /v1/decisions…``), validated with marshmallow.

One schema per endpoint, all sharing the contract's filters (api-v1.md, "Decision records"):
``since``, ``until`` (ISO 8601 date or date-time; no offset means UTC; a bare date means the
start of that day for ``since`` and its end for ``until``), ``region``, ``appropriateness``,
``urgency``, ``scenario``, ``ruleset_version``, ``channel``, ``client``,
``ordering_clinician``, ``patient`` (the clear id: the caller hashes it before it reaches the
store) and ``feedback``. A bad value, an unknown parameter or a parameter given twice is a 422
naming the parameter, so a typo never silently widens an audit query.

The schemas are pure (no Flask); :func:`parse_args` and :func:`storage_filters` turn a query
string into the ``filters`` of the store's ``query / iter_records / stats``
(:class:`referral_api.store.interface.AuditReader`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from referral_api.enums import CHANNELS, FEEDBACK_FILTERS, RATINGS, REGIONS, URGENCIES
from referral_api.store.interface import GROUP_FIELDS, MAX_LIMIT
from referral_api.store.timestamps import parse_instant

EXPORT_FORMATS = ("csv", "ndjson")
MAX_TEXT = 128
MAX_CURSOR = 512
DEFAULT_LIMIT = 50
RANGE_ERROR = "Must not be before since."
#: The audit query parameters that filter, in the contract's order (``patient`` becomes the
#: store's ``patient_hash`` filter on its way to the store).
QUERY_FILTERS = (
    "since", "until", "region", "appropriateness", "urgency", "scenario", "ruleset_version",
    "channel", "client", "ordering_clinician", "patient", "feedback",
)  # fmt: skip


class Instant(fields.String):
    """An ISO 8601 date or date-time, loaded as stored UTC text."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        metadata = {"format": "date-time",
                    "description": "ISO 8601 date or date-time; no offset means UTC"}
        super().__init__(metadata=metadata, **kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_instant(text, end_of_day=self.end_of_day)
        except ValueError:
            raise ValidationError(
                "Not an ISO 8601 date or date-time (e.g. 2026-11-23 or 2026-11-23T18:00:00Z)."
            ) from None


def _choice(values: tuple[str, ...]) -> fields.String:
    return fields.String(validate=validate.OneOf(values), metadata={"enum": list(values)})


def _text() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=MAX_TEXT))


class AuditFilterSchema(Schema):
    """The filters shared by the list, export and stats endpoints."""

    class Meta:
        unknown = RAISE

    since = Instant()
    until = Instant(end_of_day=True)
    region = _choice(REGIONS)
    appropriateness = _choice(RATINGS)
    urgency = _choice(URGENCIES)
    scenario = _text()
    ruleset_version = _text()
    channel = _choice(CHANNELS)
    client = _text()
    ordering_clinician = _text()
    patient = fields.String(validate=validate.Length(min=1, max=MAX_TEXT),
                            metadata={"description": "the clear patient id; hashed by the "
                                                     "server, never stored or logged in clear"})
    feedback = _choice(FEEDBACK_FILTERS)

    @validates_schema
    def _range(self, data: Mapping[str, Any], **_: Any) -> None:
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise ValidationError(RANGE_ERROR, "until")


class ListQuerySchema(AuditFilterSchema):
    """``GET /v1/decisions``: filters, ``limit`` (1–500) and the opaque ``cursor``."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT, strict=False,
                           validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(min=1, max=MAX_CURSOR))


class ExportQuerySchema(AuditFilterSchema):
    """``GET /v1/decisions/export``: filters and ``format``."""

    format = fields.String(required=True, validate=validate.OneOf(EXPORT_FORMATS),
                           metadata={"enum": list(EXPORT_FORMATS)})


class GroupBy(fields.String):
    """A comma-separated list of distinct ``group_by`` fields."""

    # A String on the wire (and in the OpenAPI document) that loads as a list of names.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> list[str]:
        text = super()._deserialize(value, attr, data, **kwargs)
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [n for n in names if n not in GROUP_FIELDS]
        if unknown:
            raise ValidationError(
                f"Unknown field(s) {', '.join(n[:32] for n in unknown)}; "
                f"choose among {', '.join(GROUP_FIELDS)}."
            )
        if len(set(names)) != len(names):
            raise ValidationError("A field is listed twice.")
        return names


class StatsQuerySchema(AuditFilterSchema):
    """``GET /v1/decisions/stats``: filters and ``group_by`` (comma-separated, may be empty)."""

    group_by = GroupBy(load_default=list, validate=validate.Length(max=len(GROUP_FIELDS)),
                       metadata={"description": "comma-separated, among: "
                                                + ", ".join(GROUP_FIELDS)})


class VerifyQuerySchema(Schema):
    """``GET /v1/decisions/verify``: the optional anchor an auditor saved earlier."""

    class Meta:
        unknown = RAISE

    expect_head = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$",
                                                         error="A 64-digit hex hash."))
    expect_count = fields.Integer(strict=False, validate=validate.Range(min=0))


class AccessLogQuerySchema(Schema):
    """``GET /v1/access-log``: ``limit`` (1–500, default 100) and the opaque ``cursor``."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=100, strict=False,
                           validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(min=1, max=MAX_CURSOR))


def parse_args(schema: Schema, args: Any) -> dict[str, Any]:
    """Load a query string (a werkzeug ``MultiDict`` or a plain mapping) with ``schema``.

    Raises ``ValidationError``; a parameter given more than once is an error too (which of two
    values would an auditor expect?).
    """
    if hasattr(args, "getlist"):
        repeated = {name: ["Given more than once."] for name in args
                    if len(args.getlist(name)) > 1}
        if repeated:
            raise ValidationError(repeated)
        flat = {name: args.get(name) for name in args}
    else:
        flat = dict(args)
    return schema.load(flat)


def storage_filters(loaded: Mapping[str, Any],
                    patient_hash: Callable[[str], str | list[str]]) -> dict[str, Any]:
    """The store's ``filters`` from loaded parameters: only filters, ``patient`` hashed
    (under every secret key after a rotation: then a list of hashes, any of which matches)."""
    filters = {name: loaded[name] for name in QUERY_FILTERS
               if name in loaded and name != "patient"}
    if "patient" in loaded:
        filters["patient_hash"] = patient_hash(loaded["patient"])
    return filters

