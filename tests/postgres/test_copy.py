"""Moving a SQLite log to PostgreSQL: everything as stored, chains verified, empty target."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral_api.store.interface import NewFeedback
from referral_api.store.postgres.copy import CopyRefused, copy_sqlite_to_postgres
from referral_api.store.postgres.keys import PostgresKeyStore
from referral_api.store.postgres.log import PostgresDecisionLog
from referral_api.store.sqlite.keys import SQLiteKeyStore
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new


@pytest.fixture
def sqlite_log(decision_log: SQLiteDecisionLog) -> SQLiteDecisionLog:
    """A SQLite log with decisions, feedback, idempotency keys, access entries and keys."""
    first, _ = decision_log.append(make_new(idempotency_key="k", body_sha256="b"))
    decision_log.append_many([make_new(latency_ms=2.0), make_new(channel="cds-hooks",
                              hook_instance="h", order_ref="o", patient_hash=None)])
    decision_log.append_feedback(first["decision_id"],
                                 NewFeedback("overridden", override_reason={"code": "x"}), "ehr")
    decision_log.record_access("auditor", "query", {"filters": {"region": "lumbar"}})
    decision_log.seen_jti("iss", "jti", 2**40)
    SQLiteKeyStore(decision_log).create(["auditor"], "audit-team")
    return decision_log


def test_copy_preserves_ids_seqs_hashes_and_verifies(sqlite_log, pg_url: str) -> None:
    anchor = sqlite_log.head()
    report = copy_sqlite_to_postgres(sqlite_log.path, pg_url)
    assert report.rows["decisions"] == 3 and report.rows["feedback"] == 1
    assert report.rows["access_log"] == 1 and report.rows["api_keys"] == 1
    target = PostgresDecisionLog(pg_url)
    try:
        assert target.head() == anchor
        assert target.verify(expect_head=anchor["head"], expect_count=anchor["count"]) == \
            sqlite_log.verify(expect_head=anchor["head"], expect_count=anchor["count"])
        source_records = list(sqlite_log.iter_records({}))
        assert list(target.iter_records({})) == source_records
        assert target.stats({}, ["feedback"]) == sqlite_log.stats({}, ["feedback"])
        assert target.seen_jti("iss", "jti", 2**40) is True
        again, created = target.append(make_new(idempotency_key="k", body_sha256="b"))
        assert not created and again["decision_id"] == source_records[0]["decision_id"]
        # The chain goes on from the copied head.
        record, _ = target.append(make_new())
        assert record["chain"]["seq"] == 4 and record["chain"]["prev_hash"] == anchor["head"]
        assert [k.label for k in PostgresKeyStore(target.pool).list_keys()] == ["audit-team"]
    finally:
        target.close()


def test_copy_refuses_a_non_empty_target(sqlite_log, pg_url: str) -> None:
    copy_sqlite_to_postgres(sqlite_log.path, pg_url)
    with pytest.raises(CopyRefused, match="not empty"):
        copy_sqlite_to_postgres(sqlite_log.path, pg_url)


def test_copy_refuses_a_missing_source(tmp_path: Path, pg_url: str) -> None:
    with pytest.raises(CopyRefused, match="no SQLite database"):
        copy_sqlite_to_postgres(tmp_path / "nothing.sqlite", pg_url)
