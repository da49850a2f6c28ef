"""CSRF protection for the HTML forms (synchroniser token kept in the signed session).

Every page that renders a POST form calls :func:`csrf_token`, which stores a random token in the
Flask session (creating an anonymous session for the sign-in page, so signing in is protected
too). Every POST to the web blueprint must echo it in the ``csrf_token`` field; the check runs
before any view code, so a refused request is never evaluated or logged.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, g, request, session

from ..logs import security_event

SESSION_FIELD = "csrf"
FORM_FIELD = "csrf_token"

#: Views that handle an expired token themselves, so nothing typed is lost: they neither
#: evaluate nor sign in, but show the page again, filled, with a fresh token.
RESUMABLE_ENDPOINTS = frozenset({"web.evaluate", "web.sign_in_submit"})


def csrf_token() -> str:
    """Return the session's CSRF token, creating one when the session has none."""
    token = session.get(SESSION_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_FIELD] = token
    return token


def rotate_csrf_token() -> str:
    """Replace the token (after sign-in/out), so a token seen before then is no longer valid."""
    session[SESSION_FIELD] = secrets.token_urlsafe(32)
    return session[SESSION_FIELD]


def token_is_valid(submitted: str | None) -> bool:
    """True when ``submitted`` equals the session's token (constant-time comparison)."""
    expected = session.get(SESSION_FIELD)
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def protect() -> None:
    """``before_request`` hook: refuse (400) any state-changing request without a valid token."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    if not token_is_valid(request.form.get(FORM_FIELD)):
        security_event("csrf_refused", "a form was posted without a valid CSRF token",
                       client=request.remote_addr,
                       had_session_token=isinstance(session.get(SESSION_FIELD), str))
        if request.endpoint in RESUMABLE_ENDPOINTS:
            g.csrf_failed = True
            return
        abort(400, description="csrf")


def token_failed() -> bool:
    """True when this request's token was refused (only ever set for a resumable view)."""
    return bool(g.get("csrf_failed"))
