"""The audit dashboard: filtered, paged decisions, one decision in full, CSV, and two charts.

Reads go straight to the decision log (no HTTP round trip to our own API); each page read is
written to the access log, as the JSON API does for its reads.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import (
    Response,
    abort,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from markupsafe import Markup

from referral_api.audit.export import CSV_COLUMNS, MEDIA_TYPES, iter_export
from referral_api.enums import RATINGS
from referral_api.store.interface import LogUnavailable, QueryTimeout
from referral_api.store.records import scenario_id as stored_scenario_id
from referral_api.web.filter_form import CHOICES, AuditFilters, parse_filters

from ..context import services
from . import bp, charts
from .decision_view import build_view
from .pages import error_page, logged_decision
from .session_auth import AUDITOR, signed_in
from .vocabularies import vocabulary_for
from .wording import APPROPRIATENESS_WORDS

PAGE_SIZE = 50
MAX_WEEKS = 104  # two years of weekly bars; older weeks are summarised in the text only
CURSOR_MAX = 512

#: One stacked series per rating, in the contract's order, with its colour.
APPROPRIATENESS_SERIES = tuple(
    charts.Series(rating, APPROPRIATENESS_WORDS[rating], colour)
    for rating, colour in zip(RATINGS, ("#1a7f37", "#bf8700", "#b42318", "#6e7781"), strict=True)
)


def _require_auditor() -> Any:
    """The signed-in auditor (or admin); otherwise sign-in page redirect or 403 page."""
    principal = signed_in()
    if principal is None:
        return None
    if not principal.has_any((AUDITOR,)):
        abort(403, description="Your access key does not have the auditor role, so it cannot "
                               "open the audit dashboard.")
    return principal


def _sign_in_first() -> Any:
    return redirect(url_for("web.sign_in_page", next=request.full_path.rstrip("?")), code=303)


def feedback_state(record: Mapping[str, Any]) -> str:
    """``accepted`` / ``overridden`` (the latest feedback) or ``none``."""
    items = record.get("feedback") or []
    if not items:
        return "none"
    return str(items[-1].get("outcome") or "none")


def scenario_id(record: Mapping[str, Any]) -> str:
    """The governing scenario's id for display (empty when the record has none)."""
    return stored_scenario_id(record) or ""


def iso_week_start(day: str) -> dt.date:
    """The Monday of the ISO week holding ``day`` (``YYYY-MM-DD``)."""
    date = dt.date.fromisoformat(day[:10])
    return date - dt.timedelta(days=date.weekday())


def weekly_bars(groups: Iterable[Mapping[str, Any]]) -> tuple[list[charts.StackedBar], int]:
    """Stats groups by (day, appropriateness) -> one bar per ISO week, gaps filled with zero.

    Returns the bars (at most :data:`MAX_WEEKS`, the latest ones) and how many older weeks
    were left out of the chart.
    """
    weeks: dict[dt.date, dict[str, int]] = {}
    for group in groups:
        day = group.get("day")
        if not day:
            continue
        bucket = weeks.setdefault(iso_week_start(str(day)), {})
        key = str(group.get("appropriateness"))
        bucket[key] = bucket.get(key, 0) + int(group.get("count", 0))
    if not weeks:
        return [], 0
    first, last = min(weeks), max(weeks)
    every_week = []
    current = first
    while current <= last:
        every_week.append(current)
        current += dt.timedelta(days=7)
    dropped = max(0, len(every_week) - MAX_WEEKS)
    bars = [
        charts.StackedBar(
            label=week.strftime("%d %b"),
            long_label=f"Week of {week.isoformat()}",
            counts=weeks.get(week, {}),
        )
        for week in every_week[dropped:]
    ]
    return bars, dropped


def override_rows(groups: Iterable[Mapping[str, Any]]) -> list[charts.RateRow]:
    """Stats groups by scenario -> rate rows, most frequent scenario first."""
    ordered = sorted(groups, key=lambda g: (-int(g.get("count", 0)), str(g.get("scenario"))))
    rows = []
    for group in ordered:
        count = int(group.get("count", 0))
        rate = group.get("override_rate")
        rows.append(charts.RateRow(
            label=str(group.get("scenario") or "(none)"),
            rate=None if rate is None else float(rate),
            note=f"{count} decision{'' if count == 1 else 's'}",
        ))
    return rows


def _charts(filters: Mapping[str, str]) -> dict[str, Any]:
    log = services().log
    by_day = log.stats(dict(filters), ["day", "appropriateness"])
    by_scenario = log.stats(dict(filters), ["scenario"])
    bars, dropped = weekly_bars(by_day.get("groups", []))
    rows = override_rows(by_scenario.get("groups", []))
    weekly_svg = charts.stacked_bar_chart(
        bars,
        APPROPRIATENESS_SERIES,
        chart_id="chart-weekly",
        title="Decisions per week by appropriateness",
        desc=(f"Stacked bars, one per week (weeks start on Monday, UTC), for "
              f"{by_day.get('total', 0)} decisions matching the filters. The table below "
              f"gives the same numbers."),
    )
    override_svg = charts.rate_bar_chart(
        rows,
        chart_id="chart-override",
        title="Override rate by scenario",
        desc=("Share of decisions with feedback whose latest feedback was an override, per "
              "governing scenario. The table below gives the same numbers."),
    )
    return {
        "weekly_svg": Markup(weekly_svg),  # noqa: S704 - charts.py escapes every text it emits
        "override_svg": Markup(override_svg),  # noqa: S704 - same
        "weekly_bars": bars,
        "weekly_dropped": dropped,
        "override_rows": rows,
        "total": by_day.get("total", 0),
    }


@bp.get("/audit")
def audit_index() -> Any:
    """Filters, a page of decisions (newest first, keyset cursor) and the charts."""
    principal = _require_auditor()
    if principal is None:
        return _sign_in_first()
    parsed: AuditFilters = parse_filters(request.args)
    cursor = (request.args.get("cursor") or "").strip()[:CURSOR_MAX] or None
    items: list[dict[str, Any]] = []
    next_cursor = None
    chart_data: dict[str, Any] = {}
    status = 200
    log = services().log
    if parsed.valid:
        try:
            try:
                items, next_cursor = log.query(dict(parsed.filters), limit=PAGE_SIZE,
                                               cursor=cursor)
            except ValueError:
                # An unreadable cursor (edited or from another filter): back to page one.
                parsed.errors["cursor"] = ("That page link is no longer valid; showing the "
                                           "first page.")
                cursor = None
                items, next_cursor = log.query(dict(parsed.filters), limit=PAGE_SIZE)
            chart_data = _charts(parsed.filters)
        except QueryTimeout as exc:
            return error_page(503, f"The search ran longer than {exc.timeout_ms} ms and was "
                                   "stopped so that it cannot slow down decisions. Narrow it: "
                                   "a shorter date range or more filters.")
        except LogUnavailable:
            return error_page(503, "The decision log cannot be read right now. Try again shortly.")
        log.record_access(principal.label, "web_audit_list",
                          {"filters": parsed.filters, "cursor": cursor, "returned": len(items)})
    else:
        status = 422
    args: dict[str, Any] = parsed.query_args()
    return render_template(
        "web/audit/index.html",
        parsed=parsed,
        choices=CHOICES,
        items=items,
        cursor=cursor,
        next_url=url_for("web.audit_index", cursor=next_cursor, **args) if next_cursor else None,
        first_url=url_for("web.audit_index", **args) if cursor else None,
        csv_url=url_for("web.audit_export", **args),
        csv_columns=CSV_COLUMNS,
        appropriateness_series=APPROPRIATENESS_SERIES,
        feedback_state=feedback_state,
        scenario_id=scenario_id,
        **chart_data,
    ), status


@bp.get("/audit/decisions/<decision_id>")
def audit_decision(decision_id: str) -> Any:
    """One decision record: input, output, feedback and its place in the hash chain."""
    principal = _require_auditor()
    if principal is None:
        return _sign_in_first()
    record = logged_decision(principal.label, decision_id, "web_audit_decision")
    vocabulary = vocabulary_for(record["ruleset"]["version"])
    return render_template(
        "web/audit/decision.html",
        record=record,
        view=build_view(record, vocabulary, record.get("input")),
        vocabulary=vocabulary,
        feedback_state=feedback_state(record),
        input_json=json.dumps(record.get("input"), indent=2, ensure_ascii=False),
        output_json=json.dumps(services().decisions.response_body(record), indent=2,
                               ensure_ascii=False),
    )


@bp.get("/audit/export.csv")
def audit_export() -> Any:
    """Every decision matching the filters as CSV, streamed from the log.

    The same columns, cell protection and streaming as ``GET /v1/decisions/export``
    (:mod:`referral_api.audit.export`): one CSV definition for the API, the CLI and this page.
    """
    principal = _require_auditor()
    if principal is None:
        return _sign_in_first()
    parsed = parse_filters(request.args)
    if not parsed.valid:
        return error_page(400, "The filters are not valid: " + "; ".join(
                f"{name}: {message}" for name, message in parsed.errors.items()))
    log = services().log
    try:
        records = log.iter_records(dict(parsed.filters))
        # Read the first record now: a log that cannot be read is a 503 page, not a
        # truncated download.
        first = list(itertools.islice(records, 1))
    except LogUnavailable:
        return error_page(503, "The decision log cannot be read right now. Try again shortly.")
    log.record_access(principal.label, "web_audit_export", {"filters": parsed.filters,
                                                            "format": "csv"})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        stream_with_context(iter_export("csv", itertools.chain(first, records))),
        content_type=MEDIA_TYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="decisions-{stamp}.csv"'},
    )
