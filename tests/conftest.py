"""Shared fixtures: an app on a temporary database, one API key per role, the vocabulary, a
clock. Builders (requests, decisions, headers) are plain functions in ``tests/factories.py``.

Every test that needs the service uses ``app``/``client``; nothing touches ``db/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from referral_api.clinical.versions import RuleRegistry, load_registry
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.config import PROJECT_ROOT
from referral_api.enums import ROLES
from referral_api.store.interface import KeyStore
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.migrations import migrate
from tests.factories import BEFORE_2026_2_0, FakeClock, auth, build_app

SHARED = PROJECT_ROOT.parent / "shared"


@functools.cache
def _published_registry() -> RuleRegistry:
    return load_registry(PROJECT_ROOT / "rules")


@pytest.fixture(scope="session")
def registry() -> RuleRegistry:
    """The real, published rule sets of rules/ (fails if the lock does not match)."""
    return _published_registry()


@pytest.fixture(scope="session", autouse=True)
def _published_rules_loaded_once() -> Iterator[None]:
    """Every app built on the project's own rules/ shares the session's ``registry``.

    Loading and verifying the rule files takes ~0.7 s (YAML parsing and hashing); the suite
    builds a few hundred apps. The published files are immutable (their hashes are locked),
    so one load serves every app; a test's own rules directory is still loaded afresh.
    """
    import referral_api

    own_rules = (PROJECT_ROOT / "rules").resolve()
    load = referral_api.load_registry

    def load_once(rules_dir: Path, *args: Any, **kwargs: Any) -> RuleRegistry:
        if Path(rules_dir).resolve() == own_rules and not args and not kwargs:
            return _published_registry()
        return load(rules_dir, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(referral_api, "load_registry", load_once)
        yield


@pytest.fixture(scope="session")
def vocabulary(registry: RuleRegistry) -> Vocabulary:
    """The project's real vocabulary (the one every rule set shares)."""
    return registry.vocabulary


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``make_app(**overrides)``: a new app on its own fresh database under ``tmp_path``.

    ``overrides`` are ``create_app`` settings (``AUDIT_QUERY_TIMEOUT_MS=0``, ``RULES_DIR=…``).
    The apps' connections are closed after the test.
    """
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        directory = tmp_path / f"app-{len(made)}"
        directory.mkdir()
        application = build_app(directory, **overrides)
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["referral_api"].store.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The service on a temporary database with the real rules."""
    return make_app()


@pytest.fixture
def app_2026_1_0(make_app: Callable[..., Flask]) -> Flask:
    """The service with its decision clock pinned before 2026-12-01: 2026.1.0 is in force."""
    return make_app(EVALUATION_TIME=BEFORE_2026_2_0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database file under tmp_path."""
    path = tmp_path / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    return path


@pytest.fixture
def clock() -> FakeClock:
    """The clock of ``decision_log``: ``clock.advance(seconds=1)`` instead of ``sleep``."""
    return FakeClock()


@pytest.fixture
def decision_log(db_path: Path, clock: FakeClock) -> Iterator[SQLiteDecisionLog]:
    """A decision log on the temporary database, its time given by ``clock``."""
    log = SQLiteDecisionLog(db_path, clock=clock)
    yield log
    log.close()


@pytest.fixture
def client(app: Flask) -> Any:
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def keys(app: Flask) -> dict[str, str]:
    """One plaintext key per role: ``keys["evaluator"]``, ``keys["auditor"]``, …"""
    store: KeyStore = app.extensions["referral_api"].keys
    return {role: store.create([role], f"test-{role}")[1] for role in ROLES}


@pytest.fixture
def role_headers(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """Authorization headers per role: ``role_headers["auditor"]``."""
    return {role: auth(key) for role, key in keys.items()}


@pytest.fixture
def evaluator_headers(role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    return role_headers["evaluator"]


@pytest.fixture
def auditor_headers(role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    return role_headers["auditor"]


@pytest.fixture
def admin_headers(role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    return role_headers["admin"]


@pytest.fixture
def post_decision(client: Any, evaluator_headers: dict[str, str]) -> Callable[..., Any]:
    """POST a decision body; returns the response."""

    def post(body: dict[str, Any], **headers: str) -> Any:
        return client.post("/v1/decisions", json=body,
                           headers={**evaluator_headers, **headers})

    return post
