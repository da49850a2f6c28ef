"""Shared fixtures: an app on a temporary database, and one API key per role.

Every test that needs the service uses ``app``/``client``; nothing touches ``db/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from referral_api import create_app
from referral_api.config import PROJECT_ROOT
from referral_api.store.interface import DecisionLog, KeyStore
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.migrations import migrate

#: The PostgreSQL server bootstrap and the ``backend``/``database`` fixtures.
pytest_plugins = ["tests.backends"]

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
SHARED = PROJECT_ROOT.parent / "shared"
#: Where the fake clock starts: today's date in this project, a fixed instant.
CLOCK_START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def make_app(tmp_path: Path, **overrides: Any):
    """An app on a fresh migrated database under ``tmp_path`` (or on ``DATABASE``)."""
    database = overrides.pop("DATABASE", None)
    if database is None:
        database = tmp_path / "decisions.sqlite"
        db = connect(database)
        migrate(db)
        db.close()
    config = {"TESTING": True, "DATABASE": str(database), "SECRET_KEY": TEST_SECRET,
              "RULES_DIR": str(PROJECT_ROOT / "rules"), **overrides}
    return create_app(config)


@pytest.fixture
def app(tmp_path: Path, database: str):
    """The service on a temporary database with the real rules (on each backend)."""
    application = make_app(tmp_path, DATABASE=database)
    yield application
    application.extensions["referral_api"].log.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database file under tmp_path."""
    path = tmp_path / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    return path


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


@pytest.fixture
def clock() -> FakeClock:
    """The clock of ``decision_log``: ``clock.advance(seconds=1)`` instead of ``sleep``."""
    return FakeClock()


@pytest.fixture
def decision_log(database: str, clock: FakeClock, open_log: Any) -> Iterator[DecisionLog]:
    """A decision log on the temporary database (on each backend), its time given by
    ``clock``."""
    log = open_log(database, clock=clock)
    yield log
    log.close()


@pytest.fixture
def client(app):
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def keys(app) -> dict[str, str]:
    """A plaintext key per role: ``keys["evaluator"]``, ``keys["auditor"]``, …"""
    store: KeyStore = app.extensions["referral_api"].keys
    return {role: store.create([role], f"test-{role}")[1]
            for role in ("evaluator", "clinician", "auditor", "admin")}


def auth(key: str) -> dict[str, str]:
    """Headers presenting ``key``."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def evaluator_headers(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys["evaluator"])


@pytest.fixture
def auditor_headers(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys["auditor"])


@pytest.fixture
def admin_headers(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys["admin"])


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


@pytest.fixture
def post_decision(client, evaluator_headers) -> Iterator[Any]:
    """POST a decision body; returns the response."""

    def post(body: dict[str, Any], **headers: str):
        return client.post("/v1/decisions", json=body,
                           headers={**evaluator_headers, **headers})

    return post
