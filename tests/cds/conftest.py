"""Fixtures for the CDS Hooks tests (helpers live in ``builders.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest

from referral_api.config import PROJECT_ROOT
from referral_api.vocabulary import Vocabulary, load_vocabulary
from tests.cds.builders import EXAMPLE_ISSUER, conformance


@pytest.fixture(scope="session")
def vocabulary() -> Vocabulary:
    """The project's real vocabulary."""
    return load_vocabulary(PROJECT_ROOT / "rules" / "vocabulary.yaml")


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
