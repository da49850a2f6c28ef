"""Decision factories shared by the storage, writer and audit tests."""

from __future__ import annotations

from typing import Any

from referral_api.store.interface import NewDecision


def sample_output(**overrides: Any) -> dict:
    """An engine result shaped like api-v1.md's POST /v1/decisions response."""
    procedure = {
        "code": "mri_lumbar_without_contrast",
        "cpt": ["72148"],
        "rating": "usually_appropriate",
    }
    output = {
        "region": "lumbar",
        "requested_procedure": procedure,
        "appropriateness": "usually_appropriate",
        "urgency": "emergent",
        "scenario": {
            "id": "lumbar.cauda_equina",
            "title": "Suspected cauda equina syndrome",
            "sources": ["ACR AC Low Back Pain"],
        },
        "also_matched": [],
        "recommended_procedures": [procedure],
        "reasons": ["Saddle anaesthesia with urinary retention suggests cauda equina — é"],
        "safety": {"status": "clear", "alerts": []},
        "would_change_if": [],
        "assumptions": [],
        "ruleset": {"id": "spine-imaging", "version": "2026.1.0", "sha256": "ab" * 32},
    }
    output.update(overrides)
    return output


def make_new(**overrides: Any) -> NewDecision:
    """A NewDecision with realistic defaults; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "channel": "api",
        "client": "test-client",
        "ordering_clinician": "dr-who",
        "patient_hash": "hmac-sha256:" + "0f" * 32,
        "input": {
            "patient": {"age": 44, "sex": "female", "reference": "hmac-sha256:" + "0f" * 32},
            "region": "lumbar",
            "symptom_duration_weeks": 2,
            "findings": ["saddle_anesthesia"],
        },
        "output": sample_output(),
        "ruleset_version": "2026.1.0",
        "ruleset_sha256": "ab" * 32,
        "engine_version": "1.0.0",
        "latency_ms": 1.234,
    }
    fields.update(overrides)
    return NewDecision(**fields)
