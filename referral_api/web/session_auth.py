"""Browser sign-in: an API key exchanged for a signed Flask session.

The key itself never goes into the cookie (Flask's session is signed, not encrypted): only its
id, label and roles, and the time of sign-in. Sessions expire after ``MAX_AGE_S`` whatever the
cookie lifetime says, and the session is cleared and re-keyed on sign-in and sign-out so a
session id fixed before sign-in is worthless after it.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import g, request, session

from ..auth import Principal, role_refused
from ..context import services
from ..enums import ADMIN, AUDITOR, CLINICIAN
from ..logs import security_event
from .csrf import rotate_csrf_token

SESSION_FIELD = "who"
MAX_AGE_S = 8 * 3600  # one clinical shift

WEB_ROLES = (CLINICIAN, AUDITOR)


class SignInRefused(Exception):
    """The key is unknown/revoked, or holds no role that may use the web pages."""

    def __init__(self, message: str, *, bad_credential: bool, reason: str = "role") -> None:
        super().__init__(message)
        self.message = message
        self.bad_credential = bad_credential
        #: Why, as a fixed code for logs and metrics (``missing_credential``, ``unknown_key``,
        #: ``wrong_secret``, ``revoked_key``, ``malformed_key``; ``role`` for a valid key).
        self.reason = reason


def sign_in(token: str) -> Principal:
    """Verify ``token`` and open a session for it; raises :class:`SignInRefused`.

    Keys with the clinician, auditor or admin role may sign in; an evaluator-only key is a
    machine credential and is refused with a message that says why.
    """
    token = token.strip()
    key, reason = services().keys.identify(token) if token else (None, "missing_credential")
    if key is None:
        raise SignInRefused("That access key is not valid (unknown, mistyped or revoked).",
                            bad_credential=True, reason=reason or "unknown_key")
    roles = frozenset(key.roles)
    if ADMIN not in roles and not roles.intersection(WEB_ROLES):
        role_refused(Principal(kind="session", label=key.label, roles=roles,
                               key_id=key.key_id), WEB_ROLES)
        raise SignInRefused(
            "This access key does not have the clinician or auditor role, so it cannot be used "
            "to sign in to these pages. Ask an administrator for a clinician key.",
            bad_credential=False,
        )
    session.clear()
    session.permanent = True
    session[SESSION_FIELD] = {
        "key_id": key.key_id,
        "label": key.label,
        "roles": sorted(roles),
        "at": int(time.time()),
    }
    rotate_csrf_token()
    return Principal(kind="session", label=key.label, roles=roles, key_id=key.key_id)


def sign_out() -> None:
    """Forget the signed-in key (a fresh CSRF token stays for the sign-in form)."""
    session.clear()
    rotate_csrf_token()


def signed_in() -> Principal | None:
    """The principal of the current session, or None (not signed in, or expired)."""
    who = session.get(SESSION_FIELD)
    if not isinstance(who, dict):
        return None
    issued = who.get("at")
    if not isinstance(issued, int) or time.time() - issued > MAX_AGE_S:
        session.pop(SESSION_FIELD, None)
        return None
    # A session lives no longer than its key: revoking the key signs the browser out.
    key_id = str(who.get("key_id", ""))
    key = services().keys.active(key_id)
    if key is None:
        session.pop(SESSION_FIELD, None)
        security_event("revoked_key_used", "a browser session of a revoked key was ended",
                       credential="session", presented_key_id=key_id,
                       client=request.remote_addr)
        return None
    principal = Principal(kind="session", label=key.label, roles=frozenset(key.roles),
                          key_id=key.key_id)
    g.principal = principal  # the key id for the request's log lines and role refusals
    return principal


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
