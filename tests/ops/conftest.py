"""Fixtures for the operations tests: the command line on a temporary database folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from referral_api import cli
from referral_api.config import PROJECT_ROOT


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REFERRAL_API_* pointing at a fresh database folder (not created); no secret in env."""
    database = tmp_path / "db" / "decisions.sqlite"
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(database))
    monkeypatch.setenv("REFERRAL_API_RULES_DIR", str(PROJECT_ROOT / "rules"))
    monkeypatch.delenv("REFERRAL_API_SECRET_KEY", raising=False)
    return database


@pytest.fixture
def run():
    """Run ``referral-api ARGS…``; returns ``(exit code, output)``."""

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return invoke
