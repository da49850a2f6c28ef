"""Schema migrations, connection pragmas and the append-only triggers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from referral_api.store.interface import LogUnavailable, NewFeedback
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.migrations import (
    APPEND_ONLY_TABLES,
    is_migrated,
    migrate,
    migrations,
    schema_version,
)

EXPECTED_TABLES = {
    "decisions",
    "feedback",
    "idempotency",
    "api_keys",
    "jwt_seen",
    "access_log",
    "meta",
    "_sqlite_migrations",
    "feedback_latest",
    "auth_failures",
    "secret_keys",
}
ALL_MIGRATIONS = ["0001_initial", "0002_audit_stats", "0003_operations"]


def test_migrate_is_idempotent_and_records_the_version(tmp_path: Path) -> None:
    db = connect(tmp_path / "d.sqlite")
    assert not is_migrated(db)
    first = migrate(db)
    assert first == ALL_MIGRATIONS
    assert migrate(db) == []
    assert migrate(db) == []
    assert is_migrated(db)
    assert set(db.table_names()) >= EXPECTED_TABLES
    assert schema_version(db) == len(ALL_MIGRATIONS)
    meta = db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert meta == (str(len(ALL_MIGRATIONS)),)
    applied = db.conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    assert applied == [("referral_api", name) for name in ALL_MIGRATIONS]
    assert not db.conn.in_transaction


def test_concurrent_migrate_applies_once(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    results: list[list[str]] = []

    def run() -> None:
        db = connect(path)
        results.append(migrate(db))
        db.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=len) == [[], [], [], ALL_MIGRATIONS]


def _pragmas(conn: sqlite3.Connection) -> tuple:
    return (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA synchronous").fetchone()[0],
        conn.execute("PRAGMA busy_timeout").fetchone()[0],
        conn.execute("PRAGMA foreign_keys").fetchone()[0],
    )


def test_every_connection_gets_the_durability_pragmas(db_path: Path, raw) -> None:
    # synchronous: 2 = FULL.  Each connection must set it: it is not stored in the file.
    assert _pragmas(connect(db_path).conn) == ("wal", 2, 5000, 1)
    assert _pragmas(connect(db_path, busy_timeout_ms=1234).conn) == ("wal", 2, 1234, 1)
    plain = raw(db_path)
    assert _pragmas(plain)[1:] != (2, 5000, 1)  # proves the values come from connect()

    log = SQLiteDecisionLog(db_path)
    seen: list[tuple] = []

    def in_thread() -> None:
        seen.append(_pragmas(log.db().conn))
        seen.append((log.db() is log.db(),))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [("wal", 2, 5000, 1), (True,)]
    # The main thread gets a connection of its own.
    assert _pragmas(log.db().conn) == ("wal", 2, 5000, 1)
    assert not log.db().conn.in_transaction
    assert log.db().conn.isolation_level is None


def test_log_opens_no_connection_until_used(tmp_path: Path) -> None:
    missing_dir = tmp_path / "not-yet"
    log = SQLiteDecisionLog(missing_dir / "d.sqlite")  # would fail if it connected now
    assert not missing_dir.exists()
    del log


@pytest.mark.sqlite_only  # reads SQLite itself (log.db())
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_triggers_refuse_update_and_delete(log: SQLiteDecisionLog, new_decision, table) -> None:
    record, _ = log.append(new_decision())
    log.append_feedback(record["decision_id"], NewFeedback("accepted"), "c")
    log.record_access("auditor-key", "read", {"decision_id": record["decision_id"]})
    conn = log.db().conn
    with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
        conn.execute(f"UPDATE {table} SET prev_hash = 'x'")  # noqa: S608
    with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)  # noqa: S608
    assert log.verify()[table]["ok"]


@pytest.mark.sqlite_only  # reads SQLite itself (log.db())
def test_foreign_keys_enforced(log: SQLiteDecisionLog) -> None:
    conn = log.db().conn
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO feedback (decision_id, outcome, received_at, client, prev_hash, hash) "
            "VALUES ('nope', 'accepted', 'x', 'c', 'p', 'h')"
        )


def test_0002_upgrades_a_version_1_log_with_its_feedback(tmp_path: Path, new_decision) -> None:
    """An existing (0001) database: the stats index replaces decisions_created_at and
    feedback_latest is backfilled with each decision's LATEST outcome."""
    path = tmp_path / "d.sqlite"
    db = connect(path)
    migrations.apply(db, stop_before="0002_audit_stats")
    assert [m.name for m in migrations.applied(db)] == ["0001_initial"]
    log = SQLiteDecisionLog(path)
    first, _ = log.append(new_decision())
    second, _ = log.append(new_decision())
    # feedback_latest does not exist yet: write the feedback rows as version 1 did.
    for decision_id, outcome in [
        (first["decision_id"], "overridden"),
        (first["decision_id"], "accepted"),
        (second["decision_id"], "overridden"),
    ]:
        with pytest.raises(LogUnavailable, match="feedback_latest"):
            log.append_feedback(decision_id, NewFeedback(outcome), "c")
        conn = log.db().conn
        head = conn.execute("SELECT count(*) FROM feedback").fetchone()[0]
        conn.execute(
            "INSERT INTO feedback (seq, decision_id, outcome, received_at, client, prev_hash, "
            "hash) VALUES (?, ?, ?, 'x', 'c', 'p', 'h')",
            [head + 1, decision_id, outcome],
        )
    assert migrate(db) == ["0002_audit_stats", "0003_operations"]
    assert migrate(db) == []
    indexes = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "decisions_stats" in indexes and "decisions_created_at" not in indexes
    latest = db.conn.execute(
        "SELECT d.decision_id, fl.created_at = d.created_at, fl.outcome FROM feedback_latest fl "
        "JOIN decisions d ON d.seq = fl.decision_seq ORDER BY fl.decision_seq"
    ).fetchall()
    assert latest == [
        (first["decision_id"], 1, "accepted"),
        (second["decision_id"], 1, "overridden"),
    ]
    log.close()


@pytest.mark.sqlite_only  # reads SQLite itself (log.db())
def test_append_feedback_keeps_feedback_latest_in_step(
    log: SQLiteDecisionLog, new_decision
) -> None:
    record, _ = log.append(new_decision())
    conn = log.db().conn

    def latest() -> list[tuple]:
        return conn.execute(
            "SELECT decision_seq, created_at, outcome FROM feedback_latest"
        ).fetchall()

    assert latest() == []
    log.append_feedback(record["decision_id"], NewFeedback("overridden"), "c")
    assert latest() == [(record["chain"]["seq"], record["created_at"], "overridden")]
    log.append_feedback(record["decision_id"], NewFeedback("accepted"), "c")
    assert latest() == [(record["chain"]["seq"], record["created_at"], "accepted")]
    with pytest.raises(KeyError):
        log.append_feedback("no-such-decision", NewFeedback("accepted"), "c")
    assert len(latest()) == 1


def test_switching_to_wal_is_retried_while_another_opener_holds_the_file() -> None:
    """SQLite answers "database is locked" to a journal-mode change without calling the busy
    handler (seen with four threads opening one new file at once); connect() retries it
    within its busy timeout instead of failing."""
    from referral_api.store.sqlite import db as db_module

    class Contended:
        def __init__(self) -> None:
            self.calls = 0

        def execute(self, sql: str) -> sqlite3.Cursor:
            self.calls += 1
            if self.calls < 3:
                raise sqlite3.OperationalError("database is locked")
            return sqlite3.connect(":memory:").execute("SELECT 'wal'")

    conn = Contended()
    assert db_module._enable_wal(conn, busy_timeout_ms=1000) == "wal"  # type: ignore[arg-type]
    assert conn.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db_module._enable_wal(Contended(), busy_timeout_ms=0)  # type: ignore[arg-type]
