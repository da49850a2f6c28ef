"""Fixtures for the storage layer: a migrated temporary database and decision factories."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from referral_api.store.interface import NewDecision
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new, sample_output

__all__ = ["make_new", "raw", "sample_output", "tampered_copy"]


@pytest.fixture
def log(decision_log: SQLiteDecisionLog) -> SQLiteDecisionLog:
    """The shared ``decision_log`` fixture (tests/conftest.py) under this suite's short name."""
    return decision_log


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
