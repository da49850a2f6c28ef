"""Liveness, readiness and the OpenAPI document: public by contract."""

from __future__ import annotations

from flask import Response, current_app

from ..context import services
from ..jsonbody import json_response
from . import bp


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the log is writable, its disk has room and a rule set is in force; else 503."""
    svc = services()
    health = svc.log.health()
    checks = dict(health.checks)
    try:
        in_force = svc.registry.in_force(svc.settings.clock()).version
        checks["rulesets"] = f"{len(svc.registry.versions())} loaded"
    except LookupError:
        in_force = None
        checks["rulesets"] = "none in force"
    ready = health.ready and in_force is not None
    body = {"status": "ready" if ready else "not ready", "checks": checks,
            "ruleset_in_force": in_force}
    return json_response(body, 200 if ready else 503)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document, generated once from the marshmallow schemas."""
    return Response(current_app.extensions["referral_api.openapi"], mimetype="application/json")
