"""Fixtures of the hardening suite: a migrated database, decision factories, a served app.

The served app (``served``) is real gunicorn on a loopback port with a temporary database
and one evaluator key, exactly as ``scripts/load_test.py`` and ``scripts/bench_http.py``
start it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from referral_api.config import PROJECT_ROOT
from referral_api.db import connect
from referral_api.decision_log import SQLiteDecisionLog
from referral_api.migrations import migrate

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # hardening_factories


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated, empty database under tmp_path."""
    path = tmp_path / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    return path


@pytest.fixture
def decision_log(db_path: Path) -> Iterator[SQLiteDecisionLog]:
    """A SQLiteDecisionLog on the temporary database."""
    log = SQLiteDecisionLog(db_path)
    yield log
    log.close()
