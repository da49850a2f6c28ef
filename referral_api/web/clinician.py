"""The clinician pages: sign-in, the referral form, and the decision it produces."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from marshmallow import ValidationError

from referral_api.clinical.vocabulary import FINDING_GROUPS, Vocabulary
from referral_api.decide import NoRulesetInForce
from referral_api.store.interface import IdempotencyConflict, LogUnavailable

from ..auth import auth_failure
from ..context import services
from . import bp
from .form_data import FormValues, field_errors, read_form, to_api_request
from .pages import error_page
from .session_auth import CLINICIAN, SignInRefused, safe_next, sign_in, sign_out, signed_in

SUBMISSION_FIELD = "submission_id"


def _new_submission_id() -> str:
    return uuid.uuid4().hex


def _form_context(vocabulary: Vocabulary) -> dict[str, Any]:
    """Everything the form template needs from the vocabulary (built from data, not by hand)."""
    groups = []
    for group in FINDING_GROUPS:
        findings = [f for f in vocabulary.findings.values() if f.group == group]
        if findings:
            groups.append({"code": group, "findings": findings})
    procedures_by_region: dict[str, list[Any]] = {}
    for procedure in vocabulary.procedures.values():
        procedures_by_region.setdefault(procedure.region, []).append(procedure)
    return {
        "finding_groups": groups,
        "contraindications": list(vocabulary.contraindications.values()),
        "procedures_by_region": procedures_by_region,
        "default_procedures": {
            region: vocabulary.default_procedure(region).label for region in procedures_by_region
        },
    }


def _render_form(
    values: FormValues,
    *,
    errors: dict[str, list[str]] | None = None,
    notice: str | None = None,
    status: int = 200,
    submission_id: str | None = None,
) -> tuple[str, int]:
    vocabulary = services().vocabulary
    known: dict[str, Mapping[str, Any]] = {"findings": vocabulary.findings,
                                           "contraindications": vocabulary.contraindications}
    ignored = [code for name, table in known.items()
               for code in values.lists.get(name, []) if code not in table]
    return (
        render_template(
            "web/form.html",
            values=values,
            errors=errors or {},
            notice=notice,
            ignored_codes=ignored if not errors else [],
            submission_id=submission_id or _new_submission_id(),
            **_form_context(vocabulary),
        ),
        status,
    )


def _sign_in_page(message: str | None = None, next_url: str = "/", status: int = 200) -> Any:
    return render_template("web/sign_in.html", message=message, next_url=next_url), status


@bp.get("/")
def form() -> Any:
    """The referral form, prefilled from the query string; the sign-in page when signed out."""
    principal = signed_in()
    if principal is None:
        return _sign_in_page(next_url=safe_next(request.full_path.rstrip("?"), "/"))
    if not principal.has_any((CLINICIAN,)):
        return error_page(
            403,
            "Your access key does not have the clinician role, so it cannot use the referral "
            "form.",
        )
    return _render_form(read_form(request.args))


@bp.get("/sign-in")
def sign_in_page() -> Any:
    """The public sign-in page."""
    if signed_in() is not None:
        return redirect(url_for("web.form"))
    return _sign_in_page(next_url=safe_next(request.args.get("next"), "/"))


@bp.post("/sign-in")
def sign_in_submit() -> Any:
    """Exchange an access key for a session; failures count towards the rate limit."""
    next_url = safe_next(request.form.get("next"), "")
    try:
        principal = sign_in(request.form.get("key", ""))
    except SignInRefused as refused:
        # Only a bad key counts towards the throttle; a valid key is never refused with 429.
        if refused.bad_credential and auth_failure(refused.reason, "sign_in") is not None:
            return error_page(429)
        return _sign_in_page(refused.message, next_url or "/", 401 if refused.bad_credential
                             else 403)
    if not principal.has_any((CLINICIAN,)) and next_url in ("", "/"):
        next_url = url_for("web.audit_index")  # auditors have no use for the form
    return redirect(next_url or "/", code=303)


@bp.post("/sign-out")
def sign_out_submit() -> Any:
    """End the session."""
    sign_out()
    return redirect(url_for("web.sign_in_page"), code=303)


@bp.post("/")
def evaluate() -> Any:
    """Validate the form like the API does, evaluate, log (channel ``form``) and show the result."""
    principal = signed_in()
    if principal is None:
        abort(403, description="Sign in with a clinician access key first.")
    if not principal.has_any((CLINICIAN,)):
        abort(403, description="Your access key does not have the clinician role.")
    values = read_form(request.form)
    submission_id = (request.form.get(SUBMISSION_FIELD) or "").strip()[:64]
    if not submission_id:
        submission_id = _new_submission_id()
    svc = services()
    try:
        loaded = svc.request_schema.load(to_api_request(values))
    except ValidationError as err:
        return _render_form(values, errors=field_errors(err.messages), status=422,
                            submission_id=submission_id)
    # The submission id makes a resubmitted page (reload, double click) return the decision it
    # already made instead of logging a second one.
    try:
        record, _created = svc.decisions.decide(
            loaded,
            channel="form",
            client=principal.label,
            idempotency_key=f"web-form:{submission_id}",
            idempotency_scope=principal.key_id,
        )
    except IdempotencyConflict:
        return _render_form(
            values,
            notice="This form had already been submitted with other values. Check the values "
                   "below and evaluate again.",
            status=422,
        )
    except (LogUnavailable, NoRulesetInForce):
        return error_page(503)
    decision = svc.decisions.response_body(record)
    return render_template(
        "web/result.html",
        decision=decision,
        entered=loaded,
        ordering_clinician=record.get("ordering_clinician"),
        vocabulary=svc.vocabulary,
        again_url=url_for("web.form", **_prefill_args(values)),
    )


def _prefill_args(values: FormValues) -> dict[str, Any]:
    """Query arguments that reopen the form with the same values (for 'change and re-run')."""
    args: dict[str, Any] = {name: text for name, text in values.scalars.items() if text}
    for name, codes in values.lists.items():
        if codes:
            args[name] = codes
    for name, ticked in values.flags.items():
        if ticked:
            args[name] = "true"
    return args
