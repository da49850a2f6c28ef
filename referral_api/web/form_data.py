"""Mapping between the clinician form's fields and the API request shape.

The form's control names are the API field names (``age``, ``region``, ``findings``…), so the
same mapping serves a submitted form and a prefilled link (the CDS Hooks card opens the form with
query parameters of those names). Numbers are parsed here only far enough to hand the schema a
number; the validation itself, and its messages, belong to the shared request schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SCALAR_FIELDS: tuple[str, ...] = (
    "age",
    "sex",
    "region",
    "requested_procedure",
    "symptom_duration_weeks",
    "conservative_care_weeks",
    "egfr",
    "ordering_clinician",
    "days_since_injury",
    "patient_reference",
    "cds_decision",
)
LIST_FIELDS: tuple[str, ...] = ("findings", "contraindications")
FLAG_FIELDS: tuple[str, ...] = ("intervention_candidate",)
#: Confirm mode (delta §8.4, §8.7): ``confirm=<codes>`` lists red flags to answer yes or no,
#: each answer in ``confirm_<code>``.
CONFIRM_FIELD = "confirm"
ANSWER_PREFIX = "confirm_"
ANSWERS = ("yes", "no")

#: Findings that assert an injury (criteria-2026.2.0 §2 ``injury``).
INJURY_FINDINGS: tuple[str, ...] = (
    "significant_trauma", "minor_trauma", "midline_spinal_tenderness",
    "midline_cervical_tenderness", "distracting_injury",
)
CSPINE_LOW_RISK = "cspine_rule_low_risk"

# Longest text kept from a query string or form field: longer values are truncated for
# redisplay (the schema rejects them anyway), so a crafted link cannot bloat the page.
MAX_TEXT = 200
MAX_LIST_ITEMS = 100

TRUE_WORDS = frozenset({"true", "1", "on", "yes"})

# Where a schema error path lands on the form. Anything not listed becomes a form-level error.
ERROR_FIELD_FOR_PATH: dict[str, str] = {
    "patient.age": "age",
    "patient.sex": "sex",
    "patient.reference": "patient_reference",
    "patient": "age",
}

FRIENDLIER_MESSAGES: dict[str, str] = {
    "Missing data for required field.": "Required: enter a value.",
    "Field may not be null.": "Required: enter a value.",
}


class MultiMapping(Protocol):
    """What we need from a werkzeug ``MultiDict`` (``request.form`` / ``request.args``)."""

    def get(self, key: str) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


@dataclass
class FormValues:
    """What the form shows: the text of each scalar control, ticked codes, ticked flags."""

    scalars: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    confirm: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """The text shown in control ``name`` ('' when empty)."""
        return self.scalars.get(name, "")

    def ticked(self, name: str, code: str) -> bool:
        """Whether checkbox ``code`` of list ``name`` is ticked."""
        return code in self.lists.get(name, [])

    def flag(self, name: str) -> bool:
        """Whether the single checkbox ``name`` is ticked."""
        return self.flags.get(name, False)

    def answer(self, code: str) -> str:
        """The yes/no answer given for confirm item ``code`` ('' when unanswered)."""
        return self.answers.get(code, "")

    def hidden_pairs(self) -> list[tuple[str, str]]:
        """Every value as (name, value) pairs: carried through sign-in so nothing is lost."""
        pairs = [(name, text) for name, text in self.scalars.items() if text]
        pairs += [(name, code) for name, codes in self.lists.items() for code in codes]
        pairs += [(name, "true") for name, ticked in self.flags.items() if ticked]
        if self.confirm:
            pairs.append((CONFIRM_FIELD, ",".join(self.confirm)))
        pairs += [(ANSWER_PREFIX + code, answer) for code, answer in self.answers.items()]
        return pairs


def read_form(source: MultiMapping) -> FormValues:
    """Read the form's controls from a submitted form or a query string, trimming whitespace."""
    values = FormValues()
    for name in SCALAR_FIELDS:
        raw = source.get(name)
        values.scalars[name] = str(raw).strip()[:MAX_TEXT] if raw is not None else ""
    for name in LIST_FIELDS:
        seen: list[str] = []
        for raw in source.getlist(name)[:MAX_LIST_ITEMS]:
            code = str(raw).strip()[:MAX_TEXT]
            if code and code not in seen:
                seen.append(code)
        values.lists[name] = seen
    for name in FLAG_FIELDS:
        raw = source.get(name)
        values.flags[name] = raw is not None and str(raw).strip().lower() in TRUE_WORDS
    for raw in source.getlist(CONFIRM_FIELD)[:MAX_LIST_ITEMS]:
        for code in str(raw).split(","):
            code = code.strip()[:MAX_TEXT]
            if code and code not in values.confirm and len(values.confirm) < MAX_LIST_ITEMS:
                values.confirm.append(code)
    for code in values.confirm:
        answer = str(source.get(ANSWER_PREFIX + code) or "").strip().lower()
        if answer in ANSWERS:
            values.answers[code] = answer
    return values


def _number(text: str) -> int | float | str:
    """``"12"`` -> 12, ``"1.5"`` -> 1.5; anything else is returned as given."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def to_api_request(values: FormValues) -> dict[str, Any]:
    """Build the POST /v1/decisions body the form describes (empty optional fields left out)."""
    scalars = values.scalars
    patient: dict[str, Any] = {}
    if scalars.get("age"):
        patient["age"] = _number(scalars["age"])
    if scalars.get("sex"):
        patient["sex"] = scalars["sex"]
    if scalars.get("patient_reference"):
        patient["reference"] = scalars["patient_reference"]
    body: dict[str, Any] = {"patient": patient}
    if scalars.get("region"):
        body["region"] = scalars["region"]
    if scalars.get("requested_procedure"):
        body["requested_procedure"] = scalars["requested_procedure"]
    for name in ("symptom_duration_weeks", "conservative_care_weeks", "egfr"):
        if scalars.get(name):
            body[name] = _number(scalars[name])
    if scalars.get("days_since_injury"):
        body["days_since_injury"] = _number(scalars["days_since_injury"])
    if scalars.get("ordering_clinician"):
        body["ordering_clinician"] = scalars["ordering_clinician"]
    body["intervention_candidate"] = values.flag("intervention_candidate")
    for name in LIST_FIELDS:
        body[name] = list(values.lists.get(name, []))
    # A confirmed red flag ("yes") is a finding like any ticked box; "no" asserts its absence.
    for code in values.confirm:
        if values.answer(code) == "yes" and code not in body["findings"]:
            body["findings"].append(code)
    return body


def form_checks(values: FormValues, *, days_since_injury_supported: bool,
                label: Any = None) -> dict[str, list[str]]:
    """The form's own rules, on top of the API schema (delta §8.7).

    Every confirm item needs a yes or no; once an injury item is ticked the days since the
    injury are required (the API keeps them optional); the low-risk C-spine rule result is only
    for a cervical request after an injury. ``label(code)`` gives a finding's words.
    """
    name_of = label or (lambda code: code)
    errors: dict[str, list[str]] = {}
    unanswered = [code for code in values.confirm if not values.answer(code)]
    if unanswered:
        errors[CONFIRM_FIELD] = ["Answer yes or no for each red flag to confirm: "
                                 + "; ".join(name_of(code) for code in unanswered) + "."]
    findings = set(values.lists.get("findings", []))
    findings |= {code for code in values.confirm if values.answer(code) == "yes"}
    injury = bool(findings.intersection(INJURY_FINDINGS))
    if days_since_injury_supported and injury and not values.text("days_since_injury"):
        errors["days_since_injury"] = [
            "Required when an injury is ticked: enter the days since the injury (0 for today)."]
    if CSPINE_LOW_RISK in findings and (values.text("region") != "cervical" or not injury):
        errors.setdefault("findings", []).append(
            f"{name_of(CSPINE_LOW_RISK)} applies only to a cervical request after an injury.")
    return errors


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten marshmallow's nested error messages into (dotted path, message) pairs."""
    pairs: list[tuple[str, str]] = []
    if isinstance(messages, Mapping):
        for key, inner in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(_flatten(inner, path))
    elif isinstance(messages, list | tuple):
        for inner in messages:
            pairs.extend(_flatten(inner, prefix))
    else:
        pairs.append((prefix, str(messages)))
    return pairs


def field_errors(messages: Any) -> dict[str, list[str]]:
    """Map schema error messages onto form controls; ``_form`` holds errors of no single control.

    ``findings.3`` (the fourth code) lands on ``findings``; an unexpected field lands on
    ``_form`` with its name, so nothing the schema said is lost.
    """
    errors: dict[str, list[str]] = {}
    for path, message in _flatten(messages):
        message = FRIENDLIER_MESSAGES.get(message, message)
        head = path.split(".", 1)[0]
        if path in ERROR_FIELD_FOR_PATH:
            target = ERROR_FIELD_FOR_PATH[path]
        elif head in SCALAR_FIELDS or head in LIST_FIELDS or head in FLAG_FIELDS:
            target = head
        else:
            target = "_form"
            if path and path != "_schema":
                message = f"{path}: {message}"
        bucket = errors.setdefault(target, [])
        if message not in bucket:
            bucket.append(message)
    return errors
