"""Builders shared by the test suites: requests, decisions, headers, a fake clock, an app.

Plain functions and classes (not fixtures) for what a test builds with its own arguments;
the fixtures that use them live in ``tests/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Flask

from referral_api import create_app
from referral_api.config import PROJECT_ROOT
from referral_api.store.interface import NewDecision
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.migrations import migrate

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
#: A time when rule set 2026.1.0 is in force (2026.2.0 takes effect on 2026-12-01). Tests of
#: 2026.1.0 behaviour pin the decision clock to it: ``make_app(EVALUATION_TIME=
#: BEFORE_2026_2_0)`` or the ``app_2026_1_0`` fixture.
BEFORE_2026_2_0 = "2026-11-30T12:00:00Z"
#: Where a fake clock starts: a fixed instant on this project's "today".
CLOCK_START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def build_app(directory: Path, **overrides: Any) -> Flask:
    """The service on a fresh migrated database in ``directory``, with the real rules.

    Prefer the ``make_app`` fixture (it closes the app's connections); this is for fixtures of
    a wider scope.
    """
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "decisions.sqlite"
    db = connect(database)
    migrate(db)
    db.close()
    config = {"TESTING": True, "DATABASE": str(database), "SECRET_KEY": TEST_SECRET,
              "RULES_DIR": str(PROJECT_ROOT / "rules"), **overrides}
    return create_app(config)


def auth(key: str) -> dict[str, str]:
    """Headers presenting the API key (or JWT) ``key``."""
    return {"Authorization": f"Bearer {key}"}


def lumbar_request(**changes: Any) -> dict[str, Any]:
    """A valid lumbar request (uncomplicated), with ``changes`` applied on top."""
    body: dict[str, Any] = {
        "patient": {"age": 45, "sex": "female", "reference": "MRN-0001"},
        "region": "lumbar",
        "symptom_duration_weeks": 2,
        "findings": [],
    }
    body.update(changes)
    return body


class FakeClock:
    """A settable UTC clock: tests move time instead of sleeping."""

    def __init__(self, start: dt.datetime = CLOCK_START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        """Move the clock forward by ``timedelta(**delta)``; return the new time."""
        self.now += dt.timedelta(**delta)
        return self.now


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
