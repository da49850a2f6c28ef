"""Per-request observation: request metrics, the access log's fields, web role refusals.

One ``before_request``/``after_request`` pair for all of them, so a request pays for one
hook. The fields the access log needs but gunicorn cannot know (the route template and the
credential's key id) are handed to it in the WSGI environ (:mod:`referral_api.access_log`).
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from .auth import client_address
from .context import services
from .logs import security_event
from .metrics import UNMATCHED_ROUTE

#: WSGI environ keys read by :class:`referral_api.access_log.AccessLogger`.
ENVIRON_ROUTE = "referral_api.route"
ENVIRON_KEY_ID = "referral_api.key_id"
ENVIRON_CLIENT = "referral_api.client"
ENVIRON_REQUEST_ID = "referral_api.request_id"


def install(app: Flask) -> None:
    """Register the hooks on ``app`` (``create_app`` calls this)."""
    app.before_request(_started)
    app.after_request(_observed)


def _started() -> None:
    g.started = time.perf_counter()


def _observed(response: Response) -> Response:
    started = g.get("started")
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    status = response.status_code
    if started is not None:
        services().metrics.observe_request(route, request.method, status,
                                           time.perf_counter() - started)
    principal = g.get("principal")
    environ = request.environ
    environ[ENVIRON_ROUTE] = route
    environ[ENVIRON_KEY_ID] = getattr(principal, "key_id", None)
    environ[ENVIRON_CLIENT] = request.remote_addr
    environ[ENVIRON_REQUEST_ID] = g.get("request_id")
    if status == 403 and principal is not None and not g.get("role_refusal_logged"):
        # The web pages refuse a signed-in key without the role with abort(403).
        security_event("role_refused", "a credential without the role required was refused",
                       key_id=principal.key_id, credential=principal.kind,
                       held=sorted(principal.roles), client=client_address())
    return response
