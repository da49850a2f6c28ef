"""Fixtures of the hardening suite: a migrated database, decision factories, a served app.

The served app (``served``) is real gunicorn on a loopback port with a temporary database
and one evaluator key, exactly as ``scripts/load_test.py`` and ``scripts/bench_http.py``
start it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from referral_api.config import PROJECT_ROOT
from referral_api.db import connect
from referral_api.decision_log import NewDecision, SQLiteDecisionLog
from referral_api.migrations import migrate

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database under tmp_path."""
    path = tmp_path / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    return path


@pytest.fixture
def decision_log(db_path: Path) -> Iterator[SQLiteDecisionLog]:
    """A SQLiteDecisionLog on the temporary database."""
    log = SQLiteDecisionLog(db_path)
    yield log
    log.close()
