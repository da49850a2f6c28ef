"""What every web page shares: security headers, template helpers, HTML error pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, abort, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from referral_api.store.interface import LogUnavailable

from ..context import services
from . import bp, wording
from .csrf import csrf_token, protect
from .session_auth import AUDITOR, CLINICIAN, signed_in

# Only this site's own script file (local times, the Print button: the pages work without
# it); styles and images only from this site; forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

ERROR_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Request refused",
          "The form could not be accepted: it was missing its security token or the token had "
          "expired. Reload the page and submit it again."),
    403: ("Not allowed",
          "Your access key does not have the role needed for this page."),
    404: ("Not found", "There is no such page or record."),
    405: ("Method not allowed", "This page cannot be used that way."),
    413: ("Too large", "The form was too large to accept."),
    429: ("Too many attempts",
          "Too many failed sign-in attempts from this address. Wait a minute and try again."),
    503: ("Service unavailable",
          "The decision could not be recorded, so no result is shown. Try again shortly."),
}

bp.before_request(protect)


@bp.after_request
def _security_headers(response: Response) -> Response:
    """Pages may show clinical details: never cache them, run no script (the app adds the
    headers every response carries: nosniff, frame denial …)."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    # Prefilled form links carry clinical facts in the query: do not leak them to other sites.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "web.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _helpers() -> dict[str, Any]:
    principal = signed_in()
    return {
        "csrf_token": csrf_token,
        "principal": principal,
        "can_use_form": principal is not None and principal.has_any((CLINICIAN,)),
        "can_audit": principal is not None and principal.has_any((AUDITOR,)),
        "w": wording,
    }


@bp.app_template_filter("num")
def _number(value: Any) -> str:
    """Numbers as a clinician writes them: 1.0 -> "1", 2.5 -> "2.5"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@bp.app_template_filter("weeks")
def _weeks(value: Any) -> str:
    """A duration in weeks, singular or plural: "1 week", "2.5 weeks"."""
    return f"{_number(value)} {'week' if value == 1 else 'weeks'}"


@bp.app_template_filter("utc_words")
def _utc_words(value: Any) -> str:
    """``2026-12-01T23:05:12.123Z`` -> ``2026-12-01 23:05:12 UTC`` (shown until the page's
    script replaces it by the reader's local time, keeping this text on hover)."""
    text = str(value or "")
    if "T" not in text:
        return text
    day, _, clock = text.partition("T")
    clock = clock.rstrip("Z").split(".")[0].split("+")[0]
    return f"{day} {clock} UTC"


def error_page(status: int, message: str | None = None, **extra: Any) -> tuple[str, int]:
    """Render the HTML error page for ``status`` (a short title and a plain explanation)."""
    title, default = ERROR_MESSAGES.get(status, ("Error", "Something went wrong."))
    return (
        render_template("web/error.html", status=status, title=title,
                        message=message or default, **extra),
        status,
    )


def logged_decision(reader: str, decision_id: str, action: str) -> Mapping[str, Any]:
    """The decision ``decision_id`` for a page, its reading recorded in the access log as
    ``action`` by ``reader``; a 404 page for an unknown id, a 503 page when the log cannot
    be read (raised through ``abort`` so every page answers alike)."""
    if len(decision_id) > 64:
        abort(404)
    svc = services()
    try:
        record = svc.log.get(decision_id)
    except LogUnavailable:
        abort(make_response(error_page(
            503, "The decision log cannot be read right now. Try again shortly.")))
    svc.log.record_access(reader, action, {"decision_id": decision_id,
                                           "found": record is not None})
    if record is None:
        abort(404)
    return record


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """Errors raised by web views are shown as pages, not as problem+json."""
    status = error.code or 500
    if status in ERROR_MESSAGES:
        description = error.description if status == 403 and error.description else None
        if description and description.startswith(("The server", "You don't")):
            description = None  # werkzeug's generic text: use ours
        return error_page(status, description)
    return error
