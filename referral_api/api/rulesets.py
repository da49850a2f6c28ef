"""Rule set versions and the vocabulary, read-only."""

from __future__ import annotations

from flask import Response, request

from ..auth import require_role
from ..context import services
from ..enums import AUDITOR, EVALUATOR
from ..jsonbody import json_response
from ..problem import ProblemError
from . import bp


@bp.get("/v1/rulesets")
@require_role(EVALUATOR, AUDITOR)
def list_rulesets() -> Response:
    """Every loaded version, and which one is in force now."""
    svc = services()
    registry = svc.registry
    try:
        in_force = registry.in_force(svc.settings.clock()).version
    except LookupError:
        in_force = None
    items = [{"id": rs.id, **rs.summary(), "in_force": rs.version == in_force}
             for rs in registry.versions()]
    return json_response({"in_force": in_force, "rulesets": items})


@bp.get("/v1/rulesets/<version>")
@require_role(EVALUATOR, AUDITOR)
def get_ruleset(version: str) -> Response:
    """One version's scenarios, sources and ratings."""
    try:
        ruleset = services().registry.get(version)
    except KeyError:
        raise ProblemError(404, "No rule set version of that name is loaded.") from None
    return json_response(ruleset.to_json())


@bp.get("/v1/vocabulary")
@require_role(EVALUATOR)
def get_vocabulary() -> Response:
    """Findings, contraindications and procedures with labels and standard codes.

    The vocabulary of the version in force now, or of ``?ruleset_version=`` (404 when no
    such version is loaded). The body names the version it belongs to.
    """
    svc = services()
    registry = svc.registry
    version = request.args.get("ruleset_version")
    try:
        ruleset = (registry.get(version) if version is not None
                   else registry.in_force(svc.settings.clock()))
    except KeyError:
        raise ProblemError(404, "No rule set version of that name is loaded.",
                           errors={"ruleset_version": ["unknown version"]}) from None
    except LookupError:
        raise ProblemError(404, "No rule set version is in force now.") from None
    vocabulary = ruleset.vocabulary or registry.vocabulary
    return json_response({**vocabulary.to_json(), "ruleset_version": ruleset.version})
