"""Validation of CDS Hooks 2.0 service-call and feedback bodies (pure; no Flask).

Errors are :class:`HookRequestError` with a field path → messages map; the blueprint answers
them as 400 problem+json. Messages name fields and fixed text only, never values sent (a body
may carry patient data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..enums import FEEDBACK_OUTCOMES

MAX_ID_LENGTH = 128
MAX_FEEDBACK_ITEMS = 64
MAX_COMMENT_LENGTH = 2000


class HookRequestError(ValueError):
    """A malformed CDS Hooks body: ``errors`` maps field paths to messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))

    @property
    def reason(self) -> str:
        """One sentence naming the offending fields."""
        return "Malformed CDS Hooks request: " + str(self)


@dataclass(frozen=True)
class HookCall:
    """The parts of a validated service call the service uses."""

    hook: str
    hook_instance: str
    context: dict[str, Any]
    patient_id: str
    user_id: str
    selections: tuple[str, ...]
    prefetch: Any


def _identifier(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def parse_hook_call(body: Any, expected_hook: str) -> HookCall:
    """Validate a service call for a service answering ``expected_hook``."""
    if not isinstance(body, Mapping):
        raise HookRequestError({"$": ["The body must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    hook = body.get("hook")
    if not isinstance(hook, str) or not hook:
        errors["hook"] = ["Required: the hook name."]
    elif hook != expected_hook:
        errors["hook"] = [f"This service answers '{expected_hook}', not the hook sent."]
    if not _identifier(body.get("hookInstance")):
        errors["hookInstance"] = [f"Required: a string of 1 to {MAX_ID_LENGTH} characters."]
    if "fhirServer" in body and not isinstance(body["fhirServer"], str):
        errors["fhirServer"] = ["Must be a URL string."]
    context = body.get("context")
    selections: tuple[str, ...] = ()
    if not isinstance(context, Mapping):
        errors["context"] = ["Required: an object."]
    else:
        for name in ("patientId", "userId"):
            if not _identifier(context.get(name)):
                errors[f"context.{name}"] = [
                    f"Required: a string of 1 to {MAX_ID_LENGTH} characters."]
        orders = context.get("draftOrders")
        if not isinstance(orders, Mapping) or orders.get("resourceType") != "Bundle":
            errors["context.draftOrders"] = ["Required: a FHIR Bundle of the draft orders."]
        elif "entry" in orders and not isinstance(orders["entry"], list):
            errors["context.draftOrders.entry"] = ["Must be an array."]
        raw_selections = context.get("selections")
        if raw_selections is not None:
            if not isinstance(raw_selections, list) or not all(
                    isinstance(s, str) for s in raw_selections):
                errors["context.selections"] = ["Must be an array of references."]
            else:
                selections = tuple(raw_selections)
    if errors:
        raise HookRequestError(errors)
    assert isinstance(context, Mapping) and isinstance(hook, str)
    return HookCall(
        hook=hook,
        hook_instance=body["hookInstance"],
        context=dict(context),
        patient_id=context["patientId"],
        user_id=context["userId"],
        selections=selections,
        prefetch=body.get("prefetch"),
    )


def parse_timestamp(value: Any) -> str | None:
    """An ISO 8601 date-time as UTC ``…Z`` (no offset: read as UTC), or None if invalid."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _coding(value: Any, path: str, errors: dict[str, list[str]]) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        errors[path] = ["Must be a Coding object."]
        return None
    coding = {k: value[k] for k in ("system", "code", "display") if k in value}
    if not all(isinstance(v, str) and 0 < len(v) <= 512 for v in coding.values()):
        errors[path] = ["system, code and display must be non-empty strings."]
        return None
    if "code" not in coding:
        errors[path] = ["Must have a code."]
        return None
    return coding


def parse_feedback(body: Any) -> list[tuple[str, dict[str, Any]]]:
    """Validate a CDS Hooks 2.0 feedback body; returns ``[(card uuid, feedback dict)]``."""
    if not isinstance(body, Mapping):
        raise HookRequestError({"$": ["The body must be a JSON object."]})
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise HookRequestError({"feedback": ["Required: a non-empty array."]})
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise HookRequestError({"feedback": [f"At most {MAX_FEEDBACK_ITEMS} items."]})
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        path = f"feedback.{index}"
        if not isinstance(item, Mapping):
            errors[path] = ["Must be an object."]
            continue
        card = item.get("card")
        if not _identifier(card):
            errors[f"{path}.card"] = ["Required: the card's uuid."]
        outcome = item.get("outcome")
        if outcome not in FEEDBACK_OUTCOMES:
            errors[f"{path}.outcome"] = ["Must be 'accepted' or 'overridden'."]
        stamp = parse_timestamp(item.get("outcomeTimestamp"))
        if stamp is None:
            errors[f"{path}.outcomeTimestamp"] = ["Required: an ISO 8601 date-time."]
        entry: dict[str, Any] = {"outcome": outcome, "outcomeTimestamp": stamp}
        if "overrideReason" in item:
            reason = item["overrideReason"]
            if outcome != "overridden":
                errors[f"{path}.overrideReason"] = ["Only with outcome 'overridden'."]
            elif not isinstance(reason, Mapping):
                errors[f"{path}.overrideReason"] = ["Must be an object."]
            else:
                stored: dict[str, Any] = {}
                if "reason" in reason:
                    coding = _coding(reason["reason"], f"{path}.overrideReason.reason", errors)
                    if coding:
                        stored["reason"] = coding
                comment = reason.get("userComment")
                if comment is not None:
                    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_LENGTH:
                        errors[f"{path}.overrideReason.userComment"] = [
                            f"Must be a string of at most {MAX_COMMENT_LENGTH} characters."]
                    elif comment:
                        stored["userComment"] = comment
                if stored:
                    entry["overrideReason"] = stored
        if "acceptedSuggestions" in item:
            accepted = item["acceptedSuggestions"]
            if not isinstance(accepted, list) or not all(
                    isinstance(s, Mapping) and _identifier(s.get("id")) for s in accepted):
                errors[f"{path}.acceptedSuggestions"] = [
                    "Must be an array of objects with an 'id'."]
            elif accepted:
                entry["acceptedSuggestions"] = [{"id": s["id"]} for s in accepted]
        parsed.append((str(card), entry))
    if errors:
        raise HookRequestError(errors)
    return parsed
