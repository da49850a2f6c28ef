"""Evaluate a validated request and record it: the one path every channel takes.

API, CDS Hooks and the web form all call :meth:`DecisionService.decide`, so each decision is
evaluated by the same engine under the rule set in force and is durably logged before anyone
sees it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from referral_api.clinical import engine
from referral_api.clinical.versions import RuleRegistry
from referral_api.secret_key import PatientHasher
from referral_api.store.canonical import canonical_json
from referral_api.store.interface import DecisionWriter, NewDecision

#: The fields of a record that make up the public ``POST /v1/decisions`` body.
RESPONSE_FIELDS = (
    "decision_id", "created_at", "channel", "region", "requested_procedure", "appropriateness",
    "urgency", "scenario", "also_matched", "recommended_procedures", "reasons", "safety",
    "would_change_if", "assumptions", "ruleset",
)
#: Fields that rule set 2026.2.0 and later add (delta §7); present in the body only when the
#: record has them, so 2026.1.0 decisions keep exactly their old shape.
OPTIONAL_RESPONSE_FIELDS = ("contributing_scenarios", "patient_information")


class NoRulesetInForce(LookupError):
    """No active rule set version is in force at the decision time."""


class DecisionService:
    """Runs the engine under the rule set in force and appends the result to the log."""

    def __init__(self, registry: RuleRegistry, log: DecisionWriter,
                 patient_key: bytes | PatientHasher, *,
                 clock: Callable[[], datetime] | None = None,
                 placeholders: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        self.log = log
        self._hasher = (patient_key if isinstance(patient_key, PatientHasher)
                        else PatientHasher.single(patient_key))
        #: The decision clock (the rule set in force is chosen by it); tests pin it.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.placeholders = dict(placeholders or {})

    def patient_hash(self, reference: str) -> str:
        """The keyed hash under which a patient reference is stored (current secret key)."""
        return self._hasher.hash(reference)

    def patient_hash_filter(self, reference: str) -> str | list[str]:
        """What a patient search matches: the reference's hash under every secret key,
        current and retired (one string while there has been no rotation)."""
        return self._hasher.search_value(reference)

    def evaluate(self, request: Mapping[str, Any], at: datetime | None = None) -> dict[str, Any]:
        """Engine output for ``request`` under the version in force at ``at`` (no logging)."""
        try:
            ruleset = self.registry.in_force(at or self.clock())
        except LookupError as exc:
            raise NoRulesetInForce(str(exc)) from None
        return engine.evaluate(request, ruleset, ruleset.vocabulary or self.registry.vocabulary,
                               placeholders=self.placeholders)

    def decide(
        self,
        request: Mapping[str, Any],
        *,
        channel: str,
        client: str,
        ordering_clinician: str | None = None,
        assumptions: Sequence[Mapping[str, Any]] = (),
        hook_instance: str | None = None,
        order_ref: str | None = None,
        idempotency_key: str | None = None,
        idempotency_scope: str | None = None,
        at: datetime | None = None,
        started: float | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Evaluate and log; returns ``(record, created)``.

        ``created`` is False when an idempotent repeat returned the original record: the same
        ``idempotency_key`` (within ``idempotency_scope``) with the same validated request,
        hashed here once for every channel. Raises
        ``LogUnavailable`` (the caller answers 503: nothing is returned unlogged),
        ``IdempotencyConflict`` and :class:`NoRulesetInForce`.
        """
        started = time.perf_counter() if started is None else started
        output = self.evaluate(request, at)
        if assumptions:
            # The channel's assumptions (CDS Hooks) come first; the engine's own (an undated
            # injury) follow unless the channel already states the same field.
            given = [dict(a) for a in assumptions]
            fields = {a.get("field") for a in given}
            output["assumptions"] = given + [
                a for a in output.get("assumptions") or () if a.get("field") not in fields]
        stored_input = dict(request)
        patient = dict(request.get("patient") or {})
        reference = patient.pop("reference", None)
        hashed = self.patient_hash(reference) if reference else None
        if hashed:
            patient["reference"] = hashed
        stored_input["patient"] = patient
        ruleset = output["ruleset"]
        body_sha256 = (hashlib.sha256(canonical_json(request)).hexdigest()
                       if idempotency_key is not None else None)
        new = NewDecision(
            channel=channel,
            client=client,
            ordering_clinician=ordering_clinician or request.get("ordering_clinician"),
            patient_hash=hashed,
            input=stored_input,
            output=output,
            ruleset_version=ruleset["version"],
            ruleset_sha256=ruleset["sha256"],
            engine_version=engine.ENGINE_VERSION,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            hook_instance=hook_instance,
            order_ref=order_ref,
            idempotency_key=idempotency_key,
            body_sha256=body_sha256,
            idempotency_scope=idempotency_scope,
        )
        return self.log.append(new)

    @staticmethod
    def response_body(record: Mapping[str, Any]) -> dict[str, Any]:
        """The public decision: the contract's response fields, in the contract's order."""
        body = {name: record[name] for name in RESPONSE_FIELDS}
        for name in OPTIONAL_RESPONSE_FIELDS:
            if name in record:
                body[name] = record[name]
        return body
