"""Decision factories for the hardening tests (importable by name, unlike conftest)."""

from __future__ import annotations

from typing import Any

from referral_api.decision_log import NewDecision


def decision_output(**overrides: Any) -> dict:
    """An engine result shaped like the POST /v1/decisions response (storage tests)."""
    procedure = {"code": "mri_lumbar_without_contrast", "cpt": ["72148"],
                 "rating": "usually_not_appropriate"}
    output = {
        "region": "lumbar", "requested_procedure": procedure,
        "appropriateness": "usually_not_appropriate", "urgency": "none",
        "scenario": {"id": "lumbar.uncomplicated", "title": "t", "sources": ["s"]},
        "also_matched": [], "recommended_procedures": [], "reasons": ["r"],
        "safety": {"status": "clear", "alerts": []}, "would_change_if": [],
        "assumptions": [],
        "ruleset": {"id": "spine-imaging", "version": "2026.1.0", "sha256": "ab" * 32},
    }
    output.update(overrides)
    return output


def new_decision(**overrides: Any) -> NewDecision:
    """A NewDecision with realistic defaults; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "channel": "api", "client": "hardening", "ordering_clinician": None,
        "patient_hash": None,
        "input": {"patient": {"age": 40}, "region": "lumbar", "symptom_duration_weeks": 2,
                  "findings": []},
        "output": decision_output(), "ruleset_version": "2026.1.0",
        "ruleset_sha256": "ab" * 32, "engine_version": "test", "latency_ms": 0.5,
    }
    fields.update(overrides)
    return NewDecision(**fields)
