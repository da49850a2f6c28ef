"""Shared fixtures: an app on a temporary database, and one API key per role.

Every test that needs the service uses ``app``/``client``; nothing touches ``db/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from referral_api import create_app
from referral_api.config import PROJECT_ROOT
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.keys import KeyStore
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.migrations import migrate

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
SHARED = PROJECT_ROOT.parent / "shared"


def make_app(tmp_path: Path, **overrides: Any):
    """An app on a fresh migrated database under ``tmp_path``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "decisions.sqlite"
    db = connect(database)
    migrate(db)
    db.close()
    config = {"TESTING": True, "DATABASE": str(database), "SECRET_KEY": TEST_SECRET,
              "RULES_DIR": str(PROJECT_ROOT / "rules"), **overrides}
    return create_app(config)


#: A time when rule set 2026.1.0 is in force (2026.2.0 takes effect on 2026-12-01). Tests of
#: 2026.1.0 behaviour pin the decision clock to it: ``make_app(tmp_path,
#: EVALUATION_TIME=BEFORE_2026_2_0)`` or the ``app_2026_1_0`` fixture.
BEFORE_2026_2_0 = "2026-11-30T12:00:00Z"


@pytest.fixture
def app(tmp_path: Path):
    """The service on a temporary database with the real rules."""
    application = make_app(tmp_path)
    yield application
    application.extensions["referral_api"].log.close()


@pytest.fixture
def app_2026_1_0(tmp_path: Path):
    """The service with its decision clock pinned before 2026-12-01: 2026.1.0 is in force."""
    application = make_app(tmp_path / "v1", EVALUATION_TIME=BEFORE_2026_2_0)
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


@pytest.fixture
def decision_log(db_path: Path) -> Iterator[SQLiteDecisionLog]:
    """A decision log on the temporary database."""
    log = SQLiteDecisionLog(db_path)
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
