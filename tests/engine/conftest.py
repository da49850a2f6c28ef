"""Fixtures for the clinical core: the 2026.1.0 rule set, a rules/ copy, a request builder
(``registry`` and ``vocabulary`` are shared: tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from referral_api.clinical.versions import RuleRegistry, RuleSet

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="session")
def ruleset(registry: RuleRegistry) -> RuleSet:
    """spine-imaging 2026.1.0."""
    return registry.get("2026.1.0")


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A private copy of rules/ that a test may modify."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


@pytest.fixture(scope="session")
def req():
    """The request builder, as a fixture (test modules here are not a package)."""
    return make_request


def make_request(region: str, age: int = 45, weeks: float = 2, findings: Any = (),
                 **extra: Any) -> dict[str, Any]:
    """A validated request with the web layer's defaults applied."""
    request: dict[str, Any] = {
        "patient": {"age": age},
        "region": region,
        "symptom_duration_weeks": weeks,
        "conservative_care_weeks": extra.pop("care", 0),
        "intervention_candidate": extra.pop("candidate", False),
        "findings": list(findings),
        "contraindications": list(extra.pop("contraindications", [])),
    }
    request.update(extra)
    return request
