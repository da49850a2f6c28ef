"""The decision write path: group commit of threads, the cross-process write lock, what is
prepared outside it, and fail-closed errors (an interrupt is never caught nor retried)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from referral_api.store.canonical import chain_hash
from referral_api.store.sqlite import log as log_module
from referral_api.store.sqlite.log import (
    IdempotencyConflict,
    LogUnavailable,
    NewDecision,
    SQLiteDecisionLog,
)
from referral_api.store.sqlite.writer import GroupCommitWriter, ProcessLock, lock_path_for
from tests.factories import make_new as new_decision

#: How long a thread that must wait for the lock is watched to stay blocked.
BLOCKED_FOR_S = 0.3
#: Generous upper bound for a woken thread to finish (never a performance assertion).
FINISHES_WITHIN_S = 5
#: Extra time each slow commit takes, so that waiting threads queue behind it.
SLOW_COMMIT_S = 0.005


class SlowLog:
    """A real log whose commits take longer (forces waiters to queue)."""

    def __init__(self, log: SQLiteDecisionLog, delay: float = SLOW_COMMIT_S) -> None:
        self.log, self.delay = log, delay
        self.batch_sizes: list[int] = []

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        time.sleep(self.delay)
        self.batch_sizes.append(len(news))
        return self.log.append_many(news)


class RaisingLog:
    """append_many always raises ``error`` (after a short delay, so waiters queue)."""

    def __init__(self, error: type[BaseException]) -> None:
        self.error, self.calls = error, 0

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        self.calls += 1
        time.sleep(SLOW_COMMIT_S)
        raise self.error("disk I/O error")


def _run_threads(log: SQLiteDecisionLog | GroupCommitWriter, count: int,
                 make=lambda i: new_decision(client=f"t{i}")) -> list[object]:
    results: list[object] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = log.append(make(i))
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_single_append_returns_the_committed_record(decision_log: SQLiteDecisionLog) -> None:
    record, created = decision_log.append(new_decision())
    assert created is True
    assert record["chain"]["seq"] == 1
    assert decision_log.get(record["decision_id"])["chain"] == record["chain"]
    assert lock_path_for(decision_log.path).exists()


def test_hash_spliced_under_the_lock_equals_the_canonical_row_hash(
        decision_log: SQLiteDecisionLog) -> None:
    """The text prepared before the lock, with the head's fields spliced in, is exactly the
    canonical JSON of the row, even when values look like the markers it is cut at."""
    tricky = ',"decision_id":"x","region":1,"urgency":2,"created_at":3'
    news = [new_decision(client=tricky, ordering_clinician=tricky, hook_instance="h\"1",
                         order_ref='a,"seq":9', output={"region": tricky, "urgency": None}),
            new_decision(ordering_clinician=None, patient_hash=None, latency_ms=0.00005,
                         input={"note": "é ☃ \u0000 \\"}),
            new_decision()]
    for new in news:
        decision_log.append(new)
    rows = decision_log.db().conn.execute("SELECT * FROM decisions ORDER BY seq").fetchall()
    columns = log_module.DECISION_COLUMNS
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        fields = {c: row[c] for c in columns if c != "hash"}
        assert chain_hash(row["prev_hash"], fields) == row["hash"]
    assert decision_log.verify()["decisions"]["ok"] is True


def test_concurrent_threads_share_commits(decision_log: SQLiteDecisionLog) -> None:
    slow = SlowLog(decision_log)
    results = _run_threads(GroupCommitWriter(slow), 24, lambda i: new_decision(client=f"c{i}"))
    assert all(isinstance(r, tuple) and r[1] is True for r in results), results
    assert sorted(r[0]["chain"]["seq"] for r in results) == list(range(1, 25))  # type: ignore[index]
    # Waiters queued behind the first commit went in together: fewer commits than decisions.
    assert sum(slow.batch_sizes) == 24
    assert len(slow.batch_sizes) < 24 and max(slow.batch_sizes) > 1
    assert sorted(r[0]["client"] for r in results) == sorted(f"c{i}" for i in range(24))  # type: ignore[index]
    assert decision_log.verify()["decisions"]["checked"] == 24


def test_one_caller_at_a_time_is_a_batch_of_one(decision_log: SQLiteDecisionLog) -> None:
    """What a sync worker does: the writer passes each decision straight through."""
    slow = SlowLog(decision_log, delay=0)
    writer = GroupCommitWriter(slow)
    for i in range(5):
        writer.append(new_decision(client=f"s{i}"))
    assert slow.batch_sizes == [1] * 5
    assert writer.stats() == {"batches": 5, "decisions": 5}


def test_max_batch_bounds_a_commit(decision_log: SQLiteDecisionLog) -> None:
    slow = SlowLog(decision_log)
    results = _run_threads(GroupCommitWriter(slow, max_batch=3), 12)
    assert all(isinstance(r, tuple) for r in results)
    assert max(slow.batch_sizes) <= 3 and sum(slow.batch_sizes) == 12


def test_log_unavailable_fails_every_waiter_of_the_batch() -> None:
    failing = RaisingLog(LogUnavailable)
    results = _run_threads(GroupCommitWriter(failing), 10)
    assert all(isinstance(r, LogUnavailable) for r in results), results
    assert failing.calls < 10  # failed as batches, not retried one by one


def test_an_unexpected_error_is_not_retried_item_by_item() -> None:
    failing = RaisingLog(RuntimeError)
    results = _run_threads(GroupCommitWriter(failing), 10)
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert failing.calls < 10


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_writer_lets_an_interrupt_through_once(interrupt: type[BaseException]) -> None:
    """The leader's thread gets its interrupt back, unretried; queued waiters learn that
    nothing was committed (LogUnavailable), none is left waiting."""
    failing = RaisingLog(interrupt)
    writer = GroupCommitWriter(failing)
    with pytest.raises(interrupt):
        writer.append(new_decision())
    assert failing.calls == 1
    caught: list[BaseException] = []

    def run() -> None:
        try:
            writer.append(new_decision())
        except BaseException as exc:  # the interrupt itself, in the leading thread
            caught.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(FINISHES_WITHIN_S)
    assert not any(t.is_alive() for t in threads)
    assert len(caught) == 6
    assert all(isinstance(e, interrupt | LogUnavailable) for e in caught), caught
    # One interrupt per commit attempt, in the thread that led it: nothing retried.
    assert sum(isinstance(e, interrupt) for e in caught) == failing.calls - 1


def test_concurrent_threads_write_one_unbroken_chain(decision_log: SQLiteDecisionLog) -> None:
    results = _run_threads(decision_log, 24, lambda i: new_decision(client=f"c{i}"))
    assert all(isinstance(r, tuple) and r[1] is True for r in results), results
    seqs = sorted(r[0]["chain"]["seq"] for r in results)  # type: ignore[index]
    assert seqs == list(range(1, 25))
    # Every caller got its own decision back (clients are distinct).
    assert sorted(r[0]["client"] for r in results) == sorted(f"c{i}" for i in range(24))  # type: ignore[index]
    verdict = decision_log.verify()["decisions"]
    assert verdict["ok"] is True and verdict["checked"] == 24


def test_idempotency_conflict_fails_only_its_caller(decision_log: SQLiteDecisionLog) -> None:
    decision_log.append(new_decision(idempotency_key="k", body_sha256="a" * 64))

    def make(i: int) -> NewDecision:
        if i == 0:  # same key, different body: this one alone must fail
            return new_decision(idempotency_key="k", body_sha256="b" * 64)
        return new_decision(client=f"c{i}")

    results = _run_threads(decision_log, 8, make)
    assert isinstance(results[0], IdempotencyConflict)
    assert all(isinstance(r, tuple) and r[1] is True for r in results[1:])
    assert decision_log.verify()["decisions"]["checked"] == 8


def test_idempotent_repeats_return_one_decision(decision_log: SQLiteDecisionLog) -> None:
    results = _run_threads(
        decision_log, 6, lambda i: new_decision(idempotency_key="same", body_sha256="a" * 64))
    ids = {r[0]["decision_id"] for r in results}  # type: ignore[index]
    assert len(ids) == 1
    assert sorted(r[1] for r in results) == [False] * 5 + [True]  # type: ignore[index]
    assert decision_log.verify()["decisions"]["checked"] == 1


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_propagates_once_and_leaves_no_row(
        decision_log: SQLiteDecisionLog, monkeypatch: pytest.MonkeyPatch,
        interrupt: type[BaseException]) -> None:
    """KeyboardInterrupt and SystemExit are neither caught nor retried nor turned into 503: the
    transaction is rolled back, the lock released, and the next append works."""
    calls: list[int] = []
    original = SQLiteDecisionLog._append_in_tx

    def interrupted(self, conn, prepared):
        calls.append(len(prepared))
        original(self, conn, prepared)  # rows inserted, then interrupted before COMMIT
        raise interrupt()

    monkeypatch.setattr(SQLiteDecisionLog, "_append_in_tx", interrupted)
    with pytest.raises(interrupt):
        decision_log.append_many([new_decision(), new_decision(client="other")])
    assert calls == [2]  # one attempt, no item-by-item retry
    monkeypatch.undo()
    assert decision_log.head()["count"] == 0
    record, created = decision_log.append(new_decision())
    assert created and record["chain"]["seq"] == 1


def test_log_unavailable_releases_the_lock(decision_log: SQLiteDecisionLog,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    def broken(self, conn, prepared):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SQLiteDecisionLog, "_append_in_tx", broken)
    with pytest.raises(LogUnavailable):
        decision_log.append(new_decision())
    monkeypatch.undo()
    # Another open file description (= another process for flock) can take the lock at once.
    fd = os.open(lock_path_for(decision_log.path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    assert decision_log.append(new_decision())[0]["chain"]["seq"] == 1


def test_waits_for_the_cross_process_lock(decision_log: SQLiteDecisionLog) -> None:
    decision_log.append(new_decision())  # creates the lock file
    # Another open file description = another process as far as flock is concerned.
    fd = os.open(lock_path_for(decision_log.path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = threading.Event()
        thread = threading.Thread(
            target=lambda: (decision_log.append(new_decision()), done.set()))
        thread.start()
        assert not done.wait(BLOCKED_FOR_S)  # blocked in the kernel while the lock is held
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert done.wait(FINISHES_WITHIN_S)  # woken on release
        thread.join(FINISHES_WITHIN_S)
    finally:
        os.close(fd)
    assert decision_log.verify()["decisions"]["checked"] == 2


def test_threads_of_one_process_exclude_each_other() -> None:
    """flock is shared by the threads of a process: the lock's mutex must serialise them."""
    lock = ProcessLock(None)
    inside = threading.Event()
    release = threading.Event()
    second_in = threading.Event()

    def first() -> None:
        with lock.held():
            inside.set()
            release.wait(FINISHES_WITHIN_S)

    def second() -> None:
        inside.wait(FINISHES_WITHIN_S)
        with lock.held():
            second_in.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert inside.wait(FINISHES_WITHIN_S)
    assert not second_in.wait(BLOCKED_FOR_S)
    release.set()
    assert second_in.wait(FINISHES_WITHIN_S)
    for t in threads:
        t.join(FINISHES_WITHIN_S)


def test_works_without_a_usable_lock_file(db_path: Path, tmp_path: Path) -> None:
    log = SQLiteDecisionLog(db_path, write_lock_path=tmp_path / "missing-dir" / "lock")
    try:
        record, created = log.append(new_decision())
        assert created and record["chain"]["seq"] == 1
    finally:
        log.close()


def _child(db_path: str, name: str, count: int, queue) -> None:
    log = SQLiteDecisionLog(db_path)
    errors = 0
    for _ in range(count):
        try:
            log.append(new_decision(client=name))
        except LogUnavailable:
            errors += 1
    queue.put(errors)


@pytest.mark.slow
def test_processes_and_threads_write_one_unbroken_chain(db_path: Path) -> None:
    parent_log = SQLiteDecisionLog(db_path)
    parent_log.append(new_decision())  # opened before the fork, like gunicorn's master
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_child, args=(str(db_path), f"p{n}", 60, queue))
                for n in range(3)]
    for child in children:
        child.start()
    # Meanwhile threads of this process write through the log inherited across the fork.
    results = _run_threads(parent_log, 20)
    errors = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert errors == [0, 0, 0]
    assert all(isinstance(r, tuple) for r in results)
    verdict = parent_log.verify()["decisions"]
    assert verdict["ok"] is True and verdict["checked"] == 1 + 3 * 60 + 20
    parent_log.close()
