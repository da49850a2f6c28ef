"""``POST /v1/decisions`` and ``GET /v1/decisions/{id}``: evaluate-and-record, read one."""

from __future__ import annotations

import time

from flask import Response, request
from marshmallow import ValidationError

from referral_api.enums import AUDITOR, EVALUATOR
from referral_api.store.interface import IdempotencyConflict

from ..auth import current_principal, require_role
from ..context import services
from ..jsonbody import json_response, read_json
from ..problem import ProblemError, problem_response, validation_problem
from . import bp

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not key.isprintable():
        raise ProblemError(422, "Idempotency-Key must be 1 to 128 printable characters.",
                           errors={IDEMPOTENCY_HEADER: ["1 to 128 printable characters."]})
    return key


@bp.app_errorhandler(IdempotencyConflict)
def idempotency_conflict(_: IdempotencyConflict) -> Response:
    """The one answer to a reused key with another body, whichever endpoint raised it."""
    return problem_response(ProblemError(
        422, "This Idempotency-Key was already used with a different body.",
        errors={IDEMPOTENCY_HEADER: ["already used with a different body"]}))


@bp.post("/v1/decisions")
@require_role(EVALUATOR)
def create_decision() -> Response:
    """Evaluate a referral and record the decision before answering."""
    started = time.perf_counter()
    svc = services()
    data = read_json(request)
    key = _idempotency_key()
    try:
        validated = svc.request_schema.load(data)
    except ValidationError as err:
        raise validation_problem(err) from None
    principal = current_principal()
    record, created = svc.decisions.decide(
        validated,
        channel="api",
        client=principal.label,
        idempotency_key=key,
        idempotency_scope=principal.key_id,
        started=started,
    )
    body = svc.decisions.response_body(record)
    location = f"/v1/decisions/{record['decision_id']}"
    return json_response(body, 201 if created else 200, {"Location": location})


@bp.get("/v1/decisions/<decision_id>")
@require_role(AUDITOR)
def get_decision(decision_id: str) -> Response:
    """One decision record, with its feedback and chain hashes."""
    svc = services()
    record = svc.log.get(decision_id)
    svc.log.record_access(current_principal().label, "get_decision",
                          {"decision_id": decision_id, "found": record is not None})
    if record is None:
        raise ProblemError(404, "No decision has this id.")
    return json_response(record)

