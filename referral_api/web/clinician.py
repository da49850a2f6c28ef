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
from . import bp, wording
from .csrf import token_failed
from .decision_view import build_view, handout_for
from .form_data import (
    CSPINE_LOW_RISK,
    INJURY_FINDINGS,
    FormValues,
    field_errors,
    form_checks,
    read_form,
    to_api_request,
)
from .pages import error_page, logged_decision
from .session_auth import CLINICIAN, SignInRefused, safe_next, sign_in, sign_out, signed_in
from .vocabularies import form_vocabulary, scenario_titles, vocabulary_for

SUBMISSION_FIELD = "submission_id"
UUID_CHARS = frozenset("0123456789abcdef-")

SESSION_ENDED = ("Your session has ended, so nothing was evaluated. Sign in again: what you "
                 "entered is kept and the form comes back filled.")
SIGN_IN_EXPIRED = ("The sign-in page had expired. Enter your access key again: what you "
                   "entered on the form is still kept.")
RESUMED = ("You are signed in again. Everything you entered is below: check it and select "
           "Evaluate referral.")
STALE_PAGE = ("The page's security token had expired, so nothing was evaluated. Everything "
                 "you entered is below: check it and select Evaluate referral again.")


def _new_submission_id() -> str:
    return uuid.uuid4().hex


def _days_supported(vocabulary: Vocabulary) -> bool:
    """Vocabulary v2 and later come with 2026.2.0, which reads ``days_since_injury``."""
    return getattr(vocabulary, "format", 1) >= 2


#: Group names of the v2 form (delta §8.7) where they differ from the v1 words.
V2_GROUP_WORDS = {"trauma": "Injury", "neurological": "Neurology",
                  "imaging": "Imaging already done"}


def _form_context(vocabulary: Vocabulary, values: FormValues) -> dict[str, Any]:
    """Everything the form template needs from the vocabulary (built from data, not by hand)."""
    confirm = [vocabulary.findings[c] for c in values.confirm if c in vocabulary.findings]
    confirm_codes = {f.code for f in confirm}
    v2 = _days_supported(vocabulary)
    order = list(getattr(vocabulary, "finding_groups", FINDING_GROUPS))
    for finding in vocabulary.findings.values():
        if finding.group not in order:
            order.append(finding.group)
    groups = []
    for group in order:
        findings = [f for f in vocabulary.findings.values() if f.group == group
                    and f.code not in confirm_codes and f.code != CSPINE_LOW_RISK
                    and (not getattr(f, "deprecated", False)
                         or values.ticked("findings", f.code))]
        if findings:
            words = (V2_GROUP_WORDS.get(group) if v2 else None) or wording.group_words(group)
            groups.append({"code": group, "words": words, "findings": findings})
    procedures_by_region: dict[str, list[Any]] = {}
    for procedure in vocabulary.procedures.values():
        procedures_by_region.setdefault(procedure.region, []).append(procedure)
    return {
        "finding_groups": groups,
        "confirm_findings": confirm,
        "injury_findings": INJURY_FINDINGS,
        "cspine_low_risk": vocabulary.findings.get(CSPINE_LOW_RISK),
        "days_supported": v2,
        "mark_red_flags": v2,
        "contraindications": [c for c in vocabulary.contraindications.values()
                              if not getattr(c, "deprecated", False)
                              or values.ticked("contraindications", c.code)],
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
    vocabulary = form_vocabulary()
    known: dict[str, Mapping[str, Any]] = {"findings": vocabulary.findings,
                                           "contraindications": vocabulary.contraindications,
                                           "confirm": vocabulary.findings}
    ignored = [code for name, table in known.items()
               for code in (values.confirm if name == "confirm" else values.lists.get(name, []))
               if code not in table]
    return (
        render_template(
            "web/form.html",
            values=values,
            errors=errors or {},
            notice=notice,
            ignored_codes=ignored if not errors else [],
            submission_id=submission_id or _new_submission_id(),
            **_form_context(vocabulary, values),
        ),
        status,
    )


def _sign_in_page(message: str | None = None, next_url: str = "/", status: int = 200,
                  pending: FormValues | None = None, submission_id: str = "",
                  notice: str | None = None) -> Any:
    """The sign-in page; ``pending`` form values ride along as hidden fields (nothing lost)."""
    return render_template(
        "web/sign_in.html", message=message, next_url=next_url, notice=notice,
        pending=pending.hidden_pairs() if pending is not None else [],
        submission_id=submission_id,
    ), status


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
    resume = request.form.get("resume") == "1"
    pending = read_form(request.form) if resume else None
    submission_id = (request.form.get(SUBMISSION_FIELD) or "").strip()[:64]
    if token_failed():
        return _sign_in_page(SIGN_IN_EXPIRED if resume else
                             "The sign-in page had expired. Enter your access key again.",
                             next_url or "/", 400, pending, submission_id,
                             notice=SESSION_ENDED if resume else None)
    try:
        principal = sign_in(request.form.get("key", ""))
    except SignInRefused as refused:
        # Only a bad key counts towards the throttle; a valid key is never refused with 429.
        if refused.bad_credential and auth_failure(refused.reason, "sign_in") is not None:
            return error_page(429)
        return _sign_in_page(refused.message, next_url or "/", 401 if refused.bad_credential
                             else 403, pending, submission_id,
                             notice=SESSION_ENDED if pending is not None else None)
    if pending is not None and principal.has_any((CLINICIAN,)):
        # The form comes back filled, from the hidden fields of this very post: the values
        # never travel in a URL or a cookie.
        return _render_form(pending, notice=RESUMED, submission_id=submission_id or None)
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
    values = read_form(request.form)
    submission_id = (request.form.get(SUBMISSION_FIELD) or "").strip()[:64]
    if not submission_id:
        submission_id = _new_submission_id()
    principal = signed_in()
    if principal is None:
        # Session over (timed out, key revoked, cookie gone): never a dead end, never a loss.
        return _sign_in_page(None, "/", 401, values, submission_id, notice=SESSION_ENDED)
    if not principal.has_any((CLINICIAN,)):
        abort(403, description="Your access key does not have the clinician role.")
    if token_failed():
        return _render_form(values, notice=STALE_PAGE, status=400,
                            submission_id=submission_id)
    svc = services()
    vocabulary = form_vocabulary()

    def label(code: str) -> str:
        finding = vocabulary.findings.get(code)
        return finding.label if finding is not None else code

    errors = form_checks(values, days_since_injury_supported=_days_supported(vocabulary),
                         label=label)
    try:
        loaded = svc.request_schema.load(to_api_request(values))
    except ValidationError as err:
        for name, messages in field_errors(err.messages).items():
            bucket = errors.setdefault(name, [])
            bucket.extend(m for m in messages if m not in bucket)
    if errors:
        return _render_form(values, errors=errors, status=422, submission_id=submission_id)
    cds_decision = _cds_decision(values.text("cds_decision"))
    # The submission id makes a resubmitted page (reload, double click) return the decision it
    # already made instead of logging a second one.
    try:
        record, _created = svc.decisions.decide(
            loaded,
            channel="form",
            client=principal.label,
            idempotency_key=f"web-form:{submission_id}",
            idempotency_scope=principal.key_id,
            # The CDS decision this form confirms (delta §8.4), kept in the chained record.
            order_ref=f"confirms:{cds_decision}" if cds_decision else None,
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
    decision = dict(svc.decisions.response_body(record))
    for extra in ("patient_information", "contributing_scenarios"):
        if extra in record:
            decision[extra] = record[extra]
    version = decision["ruleset"]["version"]
    vocabulary = vocabulary_for(version)
    view = build_view(decision, vocabulary, loaded)
    has_handout = handout_for(decision, vocabulary) is not None
    return render_template(
        "web/result.html",
        view=view,
        entered=loaded,
        ordering_clinician=record.get("ordering_clinician"),
        patient_reference=values.text("patient_reference"),
        confirms_decision=cds_decision,
        vocabulary=vocabulary,
        scenario_titles=scenario_titles(version),
        handout_url=url_for("web.patient_handout", decision_id=decision["decision_id"])
        if has_handout else None,
        again_url=url_for("web.form", **_prefill_args(values)),
    )


def _cds_decision(text: str) -> str | None:
    """The CDS Hooks decision a confirm-mode form refers to, when it is one in the log."""
    text = text.strip().lower()
    if not text or len(text) != 36 or not set(text) <= UUID_CHARS:
        return None
    try:
        record = services().log.get(text)
    except LogUnavailable:
        return None
    if record is None or record.get("channel") != "cds-hooks":
        return None
    return text


def placeholders() -> dict[str, str]:
    """Configured values for placeholders a handout text may still hold (the engine fills
    them when it decides; this covers a record made before a value was configured)."""
    settings = services().settings
    configured = getattr(settings, "patient_placeholders", None)
    return dict(configured()) if callable(configured) else {}


@bp.get("/decisions/<decision_id>/patient")
def patient_handout(decision_id: str) -> Any:
    """The patient handout of one decision (clinician session)."""
    principal = signed_in()
    if principal is None:
        return redirect(url_for("web.sign_in_page", next=request.path), code=303)
    if not principal.has_any((CLINICIAN,)):
        abort(403, description="Your access key does not have the clinician role.")
    record = logged_decision(principal.label, decision_id, "web_patient_handout")
    version = record["ruleset"]["version"]
    vocabulary = vocabulary_for(version)
    handout = handout_for(record, vocabulary, placeholders())
    if handout is None:
        return error_page(404, f"There is no patient handout for this decision: rule set "
                               f"{version} has no patient information.")
    return render_template("web/handout.html", handout=handout, record=record,
                           view=build_view(record, vocabulary, record.get("input")),
                           vocabulary=vocabulary)


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
