"""Fixtures for the storage layer: the log under its short name, plain connections."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from referral_api.store.interface import NewDecision
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new


@pytest.fixture
def log(decision_log: SQLiteDecisionLog) -> SQLiteDecisionLog:
    """The shared ``decision_log`` fixture (tests/conftest.py) under this suite's short name."""
    return decision_log


@pytest.fixture
def new_decision() -> Callable[..., NewDecision]:
    """Factory fixture: ``new_decision(**overrides)``."""
    return make_new


@pytest.fixture
def raw() -> Iterator[Callable[[Path], sqlite3.Connection]]:
    """``raw(path)``: a plain connection (no pragmas set by us) for inspecting or tampering
    with a file; closed after the test."""
    opened: list[sqlite3.Connection] = []

    def connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def tampered_copy(
    raw: Callable[[Path], sqlite3.Connection],
) -> Callable[[Path, Path], sqlite3.Connection]:
    """``tampered_copy(src, dst)``: copy ``src`` (WAL content included) to ``dst`` and open it
    with the append-only triggers dropped."""

    def copy(src: Path, dst: Path) -> sqlite3.Connection:
        source = raw(src)
        target = raw(dst)
        source.backup(target)
        for table in ("decisions", "feedback", "access_log"):
            target.execute(f"DROP TRIGGER {table}_no_update")
            target.execute(f"DROP TRIGGER {table}_no_delete")
        return target

    return copy
