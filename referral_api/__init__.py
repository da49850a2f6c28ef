"""Spine-MRI referral decision support: the Flask application factory.

``create_app`` wires settings, rule sets, the decision log and the blueprints. It opens no
database connection: connections are opened lazily in each worker after gunicorn forks.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from referral_api.clinical.versions import load_registry
from referral_api.decide import DecisionService, NoRulesetInForce
from referral_api.store import open_store
from referral_api.store.interface import LogUnavailable, QueryTimeout

from .config import MAX_BODY_BYTES, load_settings
from .context import EXTENSION, Services
from .logs import configure_logging
from .metrics import Metrics, instrument_writer
from .problem import ProblemError, problem_response
from .schemas import RequestLoader
from .secret_key import PatientHasher, derive_key, load_keyring
from .throttle import FailureLimiter

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

#: Paths served without a browser session: the JSON API and CDS Hooks never read the cookie,
#: so they do not pay for opening and signing one.
SESSIONLESS_PREFIXES = ("/v1/", "/cds-services", "/healthz", "/readyz", "/openapi.json",
                        "/metrics")


class _WebOnlySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only for the HTML pages."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return None  # Flask substitutes a null session, which is never saved
        return super().open_session(app, request)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app; ``test_config`` overrides the ``REFERRAL_API_*`` settings."""
    settings = load_settings(test_config)
    configure_logging(settings.log_format, settings.log_level)
    app = Flask(__name__)
    # The current secret key signs sessions and makes new patient hashes; retired keys are
    # kept for patient searches only (so sessions signed with a retired key end).
    keyring = load_keyring(settings.db_dir, settings.secret_key)
    registry = load_registry(settings.rules_dir)
    store = open_store(settings)
    metrics = Metrics()
    patient_hasher = PatientHasher(keyring)
    patient_key = patient_hasher.current_key
    services = Services(
        settings=settings,
        registry=registry,
        vocabulary=_vocabulary_in_force(registry, settings),
        store=store,
        log=store.log,
        keys=store.keys,
        # Writes go through the store's writer (instrument_writer times each append and
        # counts the decisions for /metrics).
        decisions=DecisionService(registry, instrument_writer(store.writer, metrics),
                                  patient_hasher, clock=settings.clock,
                                  placeholders=settings.patient_placeholders()),
        # Validation follows the vocabulary of the version in force at request time.
        request_schema=RequestLoader(registry, settings.clock),
        patient_key=patient_key,
        session_key=derive_key(keyring.current.secret, "session"),
        metrics=metrics,
        limiter=FailureLimiter(store.auth_failures,
                               limit=settings.auth_failure_limit,
                               window_s=settings.auth_failure_window_s),
    )
    if not settings.throttle_keeps_contract:
        log.warning("the failed-authentication limit (%d in %gs) can answer 429 before 20 "
                    "failures in a minute, below the API contract's floor",
                    settings.auth_failure_limit, settings.auth_failure_window_s)
    app.extensions[EXTENSION] = services
    if settings.trusted_proxies:
        # The client address (throttle, logs) and scheme come from the last N hops of
        # X-Forwarded-For/-Proto, as set by the N proxies in front; never from a client.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.session_interface = _WebOnlySessionInterface()
    app.config.update(
        SECRET_KEY=services.session_key,
        # One byte more than allowed: werkzeug stops reading a chunked body (no
        # Content-Length) at this limit without an error, so read_json must be able to see
        # that the body went past 64 KiB in order to answer 413 rather than accept a prefix.
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES + 1,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_url
                                   and settings.public_url.startswith("https://")),
        SESSION_COOKIE_NAME="referral_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        TESTING=settings.testing,
        JSON_SORT_KEYS=False,
    )

    from . import api, web
    from .cds.blueprint import bp as cds_bp

    app.register_blueprint(api.bp)
    app.register_blueprint(cds_bp)
    app.register_blueprint(web.bp)

    from .openapi import build_openapi

    app.extensions["referral_api.openapi"] = build_openapi(
        app, _vocabulary_in_force(registry, settings))
    from . import observe

    observe.install(app)  # first, so that its after_request hook runs last
    _install_request_hooks(app)
    _install_error_handlers(app)
    return app


def _vocabulary_in_force(registry: Any, settings: Any) -> Any:
    """The vocabulary of the version in force at start-up (the shared v1 file when none is)."""
    try:
        return registry.vocabulary_at(settings.clock())
    except LookupError:
        return registry.vocabulary


def _install_request_hooks(app: Flask) -> None:
    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else str(uuid.uuid4())

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-ID"] = getattr(g, "request_id", None) or str(uuid.uuid4())
        # A page may set its own policy (the web blueprint does); add only what is missing.
        # (``add`` after ``in`` rather than ``setdefault``: this runs on every response.)
        for name, value in SECURITY_HEADERS:
            if name not in headers:
                headers.add(name, value)
        if request.path.startswith("/v1/") and "Cache-Control" not in headers:
            # Decision records are patient data: never kept by shared caches.
            headers.add("Cache-Control", "no-store")
        return response


def services_of(app: Flask) -> Services:
    """The services ``create_app`` attached to ``app``."""
    return app.extensions[EXTENSION]


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ProblemError)
    def _problem(err: ProblemError) -> Response:
        return problem_response(err)

    @app.errorhandler(QueryTimeout)
    def _too_slow(err: QueryTimeout) -> Response:
        return problem_response(ProblemError(
            503,
            f"The query ran longer than {err.timeout_ms} ms and was stopped so that it cannot "
            "slow down decisions. Narrow it: a shorter since/until range or more filters.",
            headers={"Retry-After": "1"}))

    @app.errorhandler(LogUnavailable)
    def _log_down(err: LogUnavailable) -> Response:
        # The reason is SQLite's (e.g. "disk I/O error", "readonly database"): no patient data.
        services_of(app).metrics.log_unavailable.inc()
        log.error("decision log unavailable (%s); answered 503, request %s", err,
                  g.get("request_id"))
        return problem_response(ProblemError(
            503, "The decision could not be recorded, so none is returned. Try again later.",
            headers={"Retry-After": "5"}))

    @app.errorhandler(NoRulesetInForce)
    def _no_rules(_: NoRulesetInForce) -> Response:
        return problem_response(ProblemError(503, "No rule set version is in force."))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        detail = {
            404: "No resource at this URL.",
            405: "This method is not allowed on this resource.",
            413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.",
        }.get(status, err.description or "")
        headers = {}
        if status == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return problem_response(ProblemError(status, detail, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        # The server log gets the exception type and the stack (where), never its message:
        # a message built from input could carry patient data. The client sees only the
        # request id to quote.
        stack = "".join(traceback.format_tb(err.__traceback__))
        log.error("unhandled %s (request %s)\n%s", type(err).__name__, g.get("request_id"),
                  stack)
        return problem_response(ProblemError(
            500, f"Internal error; quote request id {g.get('request_id')} to support."))
