"""Fixtures for the CDS Hooks tests (helpers live in ``builders.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from referral_api.clinical.vocabulary import Vocabulary, load_vocabulary
from referral_api.config import PROJECT_ROOT
from tests.cds.builders import EHR_ORIGIN, EXAMPLE_ISSUER, PUBLIC_URL, conformance


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


@pytest.fixture
def build_cds_app(make_app: Callable[..., Any]) -> Callable[..., Any]:
    """``build_cds_app(**overrides)``: the service with the CDS blueprint, on a fresh database."""

    def build(**overrides: Any) -> Any:
        app = make_app(**overrides)
        assert "cds" in app.blueprints
        return app

    return build


#: An instant when 2026.1.0 is in force (the day before 2026.2.0's effective_from).
V1_TIME = "2026-11-30T12:00:00+00:00"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ruleset_2026_1_0: evaluate under rule set 2026.1.0 (the decision clock is "
        "pinned to 2026-11-30), for tests about its behaviour")


@pytest.fixture
def cds_app(request: pytest.FixtureRequest, build_cds_app: Callable[..., Any],
            clients_file: Path) -> Any:
    """Public URL, CORS origin and the spec's example issuer configured.

    The decision clock is the real one (the version in force today), unless the test is marked
    ``ruleset_2026_1_0``.
    """
    pinned = ({"EVALUATION_TIME": V1_TIME}
              if request.node.get_closest_marker("ruleset_2026_1_0") else {})
    return build_cds_app(PUBLIC_URL=PUBLIC_URL, CDS_CLIENTS=str(clients_file),
                         CORS_ORIGINS=[EHR_ORIGIN], **pinned)


@pytest.fixture
def cds_client(cds_app: Any) -> Any:
    return cds_app.test_client()


@pytest.fixture
def app(cds_app: Any) -> Any:
    """In this suite the shared fixtures (``keys``, ``role_headers``, ``client``) use
    ``cds_app``."""
    return cds_app


@pytest.fixture
def cds_keys(role_headers: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Authorization headers per role, for keys of ``cds_app`` (the shared ``role_headers``)."""
    return role_headers


@pytest.fixture
def evaluator(cds_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return cds_keys["evaluator"]


@pytest.fixture
def auditor(cds_keys: dict[str, dict[str, str]]) -> dict[str, str]:
    return cds_keys["auditor"]


