"""Fixtures for the storage layer: a migrated temporary database and decision factories."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from referral_api.db import connect
from referral_api.decision_log import NewDecision, SQLiteDecisionLog
from referral_api.migrations import migrate


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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database file under tmp_path."""
    path = tmp_path / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    return path


@pytest.fixture
def log(db_path: Path) -> Iterator[SQLiteDecisionLog]:
    """A decision log on the temporary database."""
    decision_log = SQLiteDecisionLog(db_path)
    yield decision_log
    decision_log.close()


@pytest.fixture
def new_decision() -> Callable[..., NewDecision]:
    """Factory fixture: ``new_decision(**overrides)``."""
    return make_new


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection (no pragmas set by us) for inspecting or tampering with a file."""
    return sqlite3.connect(str(path), isolation_level=None)


def tampered_copy(src: Path, dst: Path) -> sqlite3.Connection:
    """Copy ``src`` (WAL content included) to ``dst`` and open it with triggers dropped."""
    source = raw(src)
    target = raw(dst)
    source.backup(target)
    source.close()
    for table in ("decisions", "feedback", "access_log"):
        target.execute(f"DROP TRIGGER {table}_no_update")
        target.execute(f"DROP TRIGGER {table}_no_delete")
    return target
