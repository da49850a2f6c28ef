"""The decision log: records, chains, idempotency, dedupe, tampering, failures."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from referral_api.store.canonical import GENESIS_HASH
from referral_api.store.interface import (
    IDEMPOTENCY_HOURS,
    IdempotencyConflict,
    LogUnavailable,
    NewFeedback,
)
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.migrations import migrate
from tests.factories import make_new, sample_output

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

#: busy_timeout of the locked-database test, and how soon the log must give up at the latest.
BUSY_TIMEOUT_MS = 200
GAVE_UP_WITHIN_S = 5


def test_append_returns_the_full_record(log: SQLiteDecisionLog, new_decision) -> None:
    new = new_decision(hook_instance=None)
    record, created = log.append(new)
    assert created is True
    for key, value in sample_output().items():
        assert record[key] == value
    assert set(record) == set(sample_output()) | {
        "decision_id", "created_at", "channel", "input", "client", "ordering_clinician",
        "engine_version", "latency_ms", "hook_instance", "feedback", "chain",
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", record["decision_id"])
    assert ISO_MS_Z.fullmatch(record["created_at"])
    assert record["channel"] == "api"
    assert record["input"] == new.input
    assert record["client"] == "test-client"
    assert record["ordering_clinician"] == "dr-who"
    assert record["engine_version"] == "1.0.0"
    assert record["latency_ms"] == 1.234
    assert record["feedback"] == []
    assert record["chain"]["seq"] == 1
    assert record["chain"]["prev_hash"] == GENESIS_HASH
    assert log.get(record["decision_id"]) == record
    assert log.get("unknown") is None


def test_chain_links_records_and_verifies(log: SQLiteDecisionLog, new_decision) -> None:
    records = [log.append(new_decision())[0] for _ in range(5)]
    for earlier, later in itertools.pairwise(records):
        assert later["chain"]["prev_hash"] == earlier["chain"]["hash"]
        assert later["chain"]["seq"] == earlier["chain"]["seq"] + 1
        assert later["created_at"] >= earlier["created_at"]
    result = log.verify()
    assert result["decisions"] == {"ok": True, "checked": 5, "head": records[-1]["chain"]["hash"]}
    assert result["feedback"] == {"ok": True, "checked": 0, "head": GENESIS_HASH}
    assert log.head() == {"count": 5, "head": records[-1]["chain"]["hash"]}
    anchored = log.verify(expect_head=records[-1]["chain"]["hash"], expect_count=5)
    assert anchored["decisions"]["ok"]


def test_independent_auditor_script_reverifies_the_chain(
    log: SQLiteDecisionLog, new_decision, db_path: Path
) -> None:
    """The recipe of db/README.md, written without any project code."""
    for i in range(3):
        log.append(new_decision(latency_ms=0.1 * i, ordering_clinician=None))
    conn = sqlite3.connect(str(db_path))
    conn.row_factory = sqlite3.Row
    prev = "0" * 64
    for row in conn.execute("SELECT * FROM decisions ORDER BY seq"):
        fields = {k: v for k, v in dict(row).items() if k != "hash"}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert row["prev_hash"] == prev
        assert hashlib.sha256((prev + text).encode()).hexdigest() == row["hash"]
        prev = row["hash"]
    assert prev == log.head()["head"]


def test_idempotent_replay_and_conflict(log: SQLiteDecisionLog, new_decision) -> None:
    first, created = log.append(new_decision(idempotency_key="k1", body_sha256="a" * 64))
    assert created
    again, created_again = log.append(new_decision(idempotency_key="k1", body_sha256="a" * 64))
    assert created_again is False
    assert again == first
    with pytest.raises(IdempotencyConflict):
        log.append(new_decision(idempotency_key="k1", body_sha256="b" * 64))
    # Keys are per client.
    other, created_other = log.append(
        new_decision(client="other", idempotency_key="k1", body_sha256="b" * 64)
    )
    assert created_other and other["decision_id"] != first["decision_id"]
    fresh, created_fresh = log.append(new_decision(idempotency_key="k2", body_sha256="a" * 64))
    assert created_fresh and fresh["decision_id"] != first["decision_id"]
    assert log.verify()["decisions"]["checked"] == 3


def test_idempotency_window_expires(log: SQLiteDecisionLog, new_decision, clock) -> None:
    first, _ = log.append(new_decision(idempotency_key="k", body_sha256="a" * 64))
    clock.advance(hours=IDEMPOTENCY_HOURS - 1)
    again, created = log.append(new_decision(idempotency_key="k", body_sha256="a" * 64))
    assert not created and again["decision_id"] == first["decision_id"]
    clock.advance(hours=2)
    fresh, created = log.append(new_decision(idempotency_key="k", body_sha256="b" * 64))
    assert created and fresh["decision_id"] != first["decision_id"]


def test_idempotency_key_requires_body_hash(log: SQLiteDecisionLog, new_decision) -> None:
    with pytest.raises(ValueError):
        log.append(new_decision(idempotency_key="k"))
    with pytest.raises(ValueError):
        log.append(new_decision(channel="email"))


def test_cds_hooks_order_dedupe(log: SQLiteDecisionLog, new_decision) -> None:
    hook = {"channel": "cds-hooks", "hook_instance": "hi-1", "order_ref": "sr-1"}
    first, created = log.append(new_decision(**hook))
    assert created and first["hook_instance"] == "hi-1"
    log.append_feedback(first["decision_id"], NewFeedback("accepted"), "ehr")
    again, created_again = log.append(new_decision(**hook))
    assert created_again is False
    assert again["decision_id"] == first["decision_id"]
    assert len(again["feedback"]) == 1
    assert log.find_by_order("hi-1", "sr-1")["decision_id"] == first["decision_id"]
    assert log.find_by_order("hi-1", "sr-2") is None
    other, created_other = log.append(new_decision(**{**hook, "order_ref": "sr-2"}))
    assert created_other and other["decision_id"] != first["decision_id"]


def test_append_many_is_one_transaction(log: SQLiteDecisionLog, new_decision) -> None:
    results = log.append_many(
        [
            new_decision(idempotency_key="a", body_sha256="1" * 64),
            new_decision(idempotency_key="a", body_sha256="1" * 64),  # repeat in the batch
            new_decision(),
        ]
    )
    assert [created for _, created in results] == [True, False, True]
    assert results[0][0]["decision_id"] == results[1][0]["decision_id"]
    assert [r["chain"]["seq"] for r, _ in results] == [1, 1, 2]
    with pytest.raises(IdempotencyConflict):
        log.append_many([new_decision(), new_decision(idempotency_key="a", body_sha256="2" * 64)])
    assert log.head()["count"] == 2  # the conflicting batch left nothing behind
    assert log.append_many([]) == []


def test_feedback_chain(log: SQLiteDecisionLog, new_decision) -> None:
    record, _ = log.append(new_decision())
    first = log.append_feedback(
        record["decision_id"],
        NewFeedback(
            "overridden",
            override_reason={"code": "patient-preference", "display": "Patient preference"},
            outcome_timestamp="2026-11-23T18:00:00Z",
        ),
        "ehr-1",
    )
    second = log.append_feedback(
        record["decision_id"],
        NewFeedback("accepted", accepted_suggestions=[{"id": "s1"}]),
        "ehr-1",
    )
    assert first["override_reason"]["code"] == "patient-preference"
    assert first["outcome_timestamp"] == "2026-11-23T18:00:00Z"
    assert second["accepted_suggestions"] == [{"id": "s1"}]
    assert second["chain"]["prev_hash"] == first["chain"]["hash"]
    stored = log.get(record["decision_id"])
    assert [f["outcome"] for f in stored["feedback"]] == ["overridden", "accepted"]
    # Feedback does not change the decision's own chain entry.
    assert stored["chain"] == record["chain"]
    assert log.verify()["feedback"] == {"ok": True, "checked": 2, "head": second["chain"]["hash"]}
    with pytest.raises(KeyError):
        log.append_feedback("no-such-decision", NewFeedback("accepted"), "ehr-1")
    with pytest.raises(ValueError):
        log.append_feedback(record["decision_id"], NewFeedback("maybe"), "ehr-1")
    assert log.verify()["feedback"]["checked"] == 2


def test_access_log_chain(log: SQLiteDecisionLog) -> None:
    log.record_access("key:abc", "decisions.read", {"decision_id": "x"})
    log.record_access("key:abc", "decisions.query", {"filters": {"region": "lumbar"}})
    entries = log.access_log()
    assert [e["action"] for e in entries] == ["decisions.query", "decisions.read"]
    assert entries[0]["target"] == {"filters": {"region": "lumbar"}}
    assert ISO_MS_Z.fullmatch(entries[0]["at"])
    assert log.access_log(before_seq=2) == entries[1:]
    result = log.verify()["access_log"]
    assert result == {"ok": True, "checked": 2, "head": entries[0]["chain"]["hash"]}


def test_jti_replay_is_seen_across_connections(db_path: Path) -> None:
    worker_a, worker_b = SQLiteDecisionLog(db_path), SQLiteDecisionLog(db_path)
    exp = int(time.time()) + 300
    assert worker_a.seen_jti("https://ehr.example", "jti-1", exp) is False
    assert worker_b.seen_jti("https://ehr.example", "jti-1", exp) is True
    assert worker_a.seen_jti("https://ehr.example", "jti-1", exp) is True
    assert worker_b.seen_jti("https://other.example", "jti-1", exp) is False
    # Long-expired rows are purged (their tokens are refused on exp anyway).
    assert worker_a.seen_jti("https://ehr.example", "old", 1000) is False
    assert worker_a.seen_jti("https://ehr.example", "old", 1000) is False
    count = worker_b.db().conn.execute("SELECT count(*) FROM jwt_seen").fetchone()[0]
    assert count == 3  # jti-1 twice (two issuers) and the last "old" insert


# -- tampering, detected on copies of the database -----------------------------------------


@pytest.fixture
def filled(log: SQLiteDecisionLog, new_decision) -> list[dict]:
    records = [log.append(new_decision())[0] for _ in range(10)]
    log.append_feedback(records[2]["decision_id"], NewFeedback("accepted"), "c")
    log.append_feedback(records[3]["decision_id"], NewFeedback("overridden"), "c")
    log.record_access("a", "read", {"id": 1})
    log.record_access("a", "read", {"id": 2})
    return records


def test_edited_row_is_named(
    db_path: Path, filled: list[dict], tmp_path: Path, tampered_copy,
) -> None:
    copy = tmp_path / "edited.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.execute("UPDATE decisions SET urgency = 'routine' WHERE seq = 4")
    conn.close()
    result = SQLiteDecisionLog(copy).verify()["decisions"]
    assert result["ok"] is False
    assert result["first_bad"] == filled[3]["decision_id"]
    assert result["first_bad_seq"] == 4
    assert "altered" in result["reason"]
    assert result["checked"] == 3


def test_edited_output_json_is_detected(db_path, filled, tmp_path: Path, tampered_copy) -> None:
    copy = tmp_path / "edited.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.execute(
        "UPDATE decisions SET output_json = replace(output_json, 'emergent', 'routine') "
        "WHERE seq = 7"
    )
    conn.close()
    assert SQLiteDecisionLog(copy).verify()["decisions"]["first_bad"] == filled[6]["decision_id"]


def test_deleted_row_is_named(
    db_path: Path, filled: list[dict], tmp_path: Path, tampered_copy,
) -> None:
    copy = tmp_path / "deleted.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.execute("DELETE FROM decisions WHERE seq = 5")
    conn.close()
    result = SQLiteDecisionLog(copy).verify()["decisions"]
    assert result["ok"] is False
    assert result["first_bad"] == filled[5]["decision_id"]  # the record after the hole
    assert "gap" in result["reason"]


def test_cut_tail_needs_the_anchor(
    db_path: Path, filled: list[dict], tmp_path: Path, tampered_copy,
) -> None:
    anchor = SQLiteDecisionLog(db_path).head()
    assert anchor["count"] == 10
    copy = tmp_path / "cut.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.execute("DELETE FROM decisions WHERE seq > 8")
    conn.close()
    cut = SQLiteDecisionLog(copy)
    assert cut.verify()["decisions"]["ok"] is True  # a clean cut is invisible without anchor
    result = cut.verify(expect_head=anchor["head"], expect_count=anchor["count"])["decisions"]
    assert result["ok"] is False
    assert result["first_bad"] == "9"
    assert "removed from the end" in result["reason"]
    assert cut.verify(expect_count=10)["decisions"]["ok"] is False
    head_only = cut.verify(expect_head=anchor["head"])["decisions"]
    assert head_only["ok"] is False and "not in the chain" in head_only["reason"]
    # The original still satisfies its anchor, and later growth keeps satisfying it.
    original = SQLiteDecisionLog(db_path)
    original.append(make_new())
    assert original.verify(expect_head=anchor["head"], expect_count=10)["decisions"]["ok"]


def test_rewritten_history_fails_the_anchor(db_path, filled, tmp_path: Path, tampered_copy) -> None:
    """An attacker who recomputes every hash after an edit is caught by the saved anchor."""
    from referral_api.store.canonical import chain_hash

    anchor = SQLiteDecisionLog(db_path).head()
    copy = tmp_path / "rewritten.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY seq")]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM decisions")
    prev = GENESIS_HASH
    for row in rows:
        if row["seq"] == 2:
            row["urgency"] = "routine"
        row["prev_hash"] = prev
        row["hash"] = chain_hash(prev, {k: v for k, v in row.items() if k != "hash"})
        prev = row["hash"]
        conn.execute(
            f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",  # noqa: S608
            list(row.values()),
        )
    conn.close()
    rewritten = SQLiteDecisionLog(copy)
    assert rewritten.verify()["decisions"]["ok"] is True
    result = rewritten.verify(expect_head=anchor["head"], expect_count=10)["decisions"]
    assert result["ok"] is False
    assert result["first_bad"] == filled[9]["decision_id"]


def test_tampered_feedback_and_access_log(db_path, filled, tmp_path: Path, tampered_copy) -> None:
    copy = tmp_path / "fb.sqlite"
    conn = tampered_copy(db_path, copy)
    conn.execute("UPDATE feedback SET outcome = 'accepted' WHERE seq = 2")
    conn.execute("DELETE FROM access_log WHERE seq = 1")
    conn.close()
    result = SQLiteDecisionLog(copy).verify()
    assert result["decisions"]["ok"] is True
    assert result["feedback"]["ok"] is False and result["feedback"]["first_bad"] == 2
    assert result["access_log"]["ok"] is False and result["access_log"]["first_bad"] == 2


# -- failures -------------------------------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can enter (tmp_path's parents are root-only)."""
    path = Path(tempfile.mkdtemp(prefix="ro-log-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _append_on_read_only(path: Path, queue) -> None:  # runs in a child process
    if os.geteuid() == 0:
        # root ignores file modes: become `nobody` so that chmod 0444 really applies.
        os.setgid(65534)
        os.setuid(65534)
    log = SQLiteDecisionLog(path)
    outcome = []
    for call in (lambda: log.append(make_new()), log.ping):
        try:
            call()
            outcome.append("ok")
        except LogUnavailable:
            outcome.append("unavailable")
    queue.put(outcome)


def test_read_only_file_raises_log_unavailable_without_partial_row(shared_dir: Path, raw) -> None:
    import multiprocessing

    path = shared_dir / "decisions.sqlite"
    db = connect(path)
    migrate(db)
    db.close()
    log = SQLiteDecisionLog(path)
    log.append(make_new())
    log.ping()
    log.close()  # last connection: checkpoints and removes -wal/-shm
    path.chmod(0o444)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_append_on_read_only, args=(path, queue))
    child.start()
    outcome = queue.get(timeout=60)
    child.join(timeout=60)
    assert outcome == ["unavailable", "unavailable"]
    path.chmod(0o644)
    check = raw(path)
    assert check.execute("SELECT count(*) FROM decisions").fetchone() == (1,)
    assert check.execute("SELECT count(*) FROM idempotency").fetchone() == (0,)
    check.close()
    assert SQLiteDecisionLog(path).verify()["decisions"] == {
        "ok": True,
        "checked": 1,
        "head": SQLiteDecisionLog(path).head()["head"],
    }


def test_missing_database_is_unavailable(tmp_path: Path) -> None:
    log = SQLiteDecisionLog(tmp_path / "missing-dir" / "d.sqlite")
    with pytest.raises(LogUnavailable):
        log.append(make_new())
    with pytest.raises(LogUnavailable):
        log.ping()


def test_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailable, match="init-db"):
        SQLiteDecisionLog(tmp_path / "empty.sqlite").ping()


def test_locked_database_times_out_as_unavailable(db_path: Path, raw) -> None:
    holder = raw(db_path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        log = SQLiteDecisionLog(db_path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        started = time.monotonic()
        with pytest.raises(LogUnavailable, match="locked"):
            log.append(make_new())
        waited = time.monotonic() - started
        # It waited for the lock (most of busy_timeout), then gave up rather than hang.
        assert BUSY_TIMEOUT_MS / 1000 * 0.75 < waited < GAVE_UP_WITHIN_S
    finally:
        holder.execute("ROLLBACK")
    assert SQLiteDecisionLog(db_path).head()["count"] == 0
    # After the lock is gone the same log works again (the failed connection was dropped).
    assert log.append(make_new())[1] is True


def test_log_unavailable_message_has_no_patient_data(tmp_path: Path) -> None:
    log = SQLiteDecisionLog(tmp_path / "missing" / "d.sqlite")
    with pytest.raises(LogUnavailable) as info:
        log.append(make_new(patient_hash="hmac-sha256:secretpatient"))
    assert "secretpatient" not in str(info.value)
