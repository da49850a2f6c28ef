"""Fixtures for the CDS Hooks tests (helpers live in ``builders.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from referral_api.clinical.vocabulary import Vocabulary, load_vocabulary
from referral_api.config import PROJECT_ROOT
from tests.cds.builders import EHR_ORIGIN, EXAMPLE_ISSUER, PUBLIC_URL, conformance
from tests.conftest import make_app


@pytest.fixture(scope="session")
def vocabulary() -> Vocabulary:
    """The project's real vocabulary."""
    return load_vocabulary(PROJECT_ROOT / "rules" / "vocabulary.yaml")


@pytest.fixture(scope="session")
def vocabulary_v2() -> Vocabulary:
    """The vocabulary of rule set 2026.2.0 (format 2: exclusions, windows, red flags)."""
    return load_vocabulary(PROJECT_ROOT / "rules" / "spine-imaging" / "2026.2.0" /
                           "vocabulary.yaml")


@pytest.fixture(scope="session")
def example_private_key() -> Any:
    """The CDS Hooks 2.0.1 example private key (ES384, kid example-kid)."""
    return jwt.PyJWK(conformance("cds-hooks-2.0.1-example.private-jwk.json")).key


@pytest.fixture
def clients_file(tmp_path: Path) -> Path:
    """A REFERRAL_API_CDS_CLIENTS file trusting the spec's example issuer (inline JWKS)."""
    path = tmp_path / "cds-clients.json"
    path.write_text(json.dumps({EXAMPLE_ISSUER: {
        "jwks": conformance("cds-hooks-2.0.1-example.jwks.json")}}), encoding="utf-8")
    return path


def build_cds_app(tmp_path: Path, **overrides: Any) -> Any:
    """The service with the CDS blueprint, on a fresh database under ``tmp_path``."""
    app = make_app(tmp_path, **overrides)
    assert "cds" in app.blueprints
    return app


#: An instant when 2026.1.0 is in force (the day before 2026.2.0's effective_from).
V1_TIME = "2026-11-30T12:00:00+00:00"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ruleset_2026_1_0: evaluate under rule set 2026.1.0 (the decision clock is "
        "pinned to 2026-11-30), for tests about its behaviour")


@pytest.fixture
def cds_app(request: pytest.FixtureRequest, tmp_path: Path, clients_file: Path
            ) -> Iterator[Any]:
    """Public URL, CORS origin and the spec's example issuer configured.

    The decision clock is the real one (the version in force today), unless the test is marked
    ``ruleset_2026_1_0``.
    """
    pinned = ({"EVALUATION_TIME": V1_TIME}
              if request.node.get_closest_marker("ruleset_2026_1_0") else {})
    app = build_cds_app(tmp_path, PUBLIC_URL=PUBLIC_URL, CDS_CLIENTS=str(clients_file),
                        CORS_ORIGINS=[EHR_ORIGIN], **pinned)
    yield app
    app.extensions["referral_api"].log.close()


@pytest.fixture
def cds_client(cds_app: Any) -> Any:
    return cds_app.test_client()


@pytest.fixture
def cds_keys(cds_app: Any) -> dict[str, dict[str, str]]:
    """Authorization headers per role."""
    store = cds_app.extensions["referral_api"].keys
    return {role: {"Authorization": f"Bearer {store.create([role], f'cds-{role}')[1]}"}
            for role in ("evaluator", "auditor", "clinician")}


@pytest.fixture
def evaluator(cds_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return cds_keys["evaluator"]


@pytest.fixture
def auditor(cds_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return cds_keys["auditor"]


@pytest.fixture(autouse=True)
def fresh_failure_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no recorded auth failures (the limiter is per process)."""
    from referral_api import auth

    monkeypatch.setattr(auth, "limiter", auth.FailureLimiter())
