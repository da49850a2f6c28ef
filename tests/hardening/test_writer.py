"""Group-commit writer: batching, fail-closed errors, per-item faults, cross-process lock."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from referral_api.store.sqlite.log import (
    IdempotencyConflict,
    LogUnavailable,
    NewDecision,
    SQLiteDecisionLog,
)
from referral_api.store.sqlite.writer import GroupCommitWriter, lock_path_for
from tests.factories import make_new as new_decision


class SlowLog:
    """A real log whose commits take ``delay`` seconds longer (forces waiters to queue)."""

    def __init__(self, log: SQLiteDecisionLog, delay: float = 0.005) -> None:
        self.log, self.delay, self.path = log, delay, log.path
        self.batch_sizes: list[int] = []

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        time.sleep(self.delay)
        self.batch_sizes.append(len(news))
        return self.log.append_many(news)


def _run_threads(writer: GroupCommitWriter, count: int,
                 make=lambda i: new_decision(client=f"t{i}")):
    results: list[object] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = writer.append(make(i))
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_single_append_returns_the_committed_record(decision_log: SQLiteDecisionLog) -> None:
    writer = GroupCommitWriter(decision_log)
    record, created = writer.append(new_decision())
    assert created is True
    assert record["chain"]["seq"] == 1
    assert decision_log.get(record["decision_id"])["chain"] == record["chain"]
    assert lock_path_for(decision_log.path).exists()


def test_concurrent_callers_share_commits(decision_log: SQLiteDecisionLog) -> None:
    slow = SlowLog(decision_log)
    writer = GroupCommitWriter(slow)
    results = _run_threads(writer, 24, lambda i: new_decision(client=f"c{i}"))
    assert all(isinstance(r, tuple) and r[1] is True for r in results), results
    seqs = sorted(r[0]["chain"]["seq"] for r in results)  # type: ignore[index]
    assert seqs == list(range(1, 25))
    # Waiters queued behind the first commit went in together: fewer commits than decisions.
    assert sum(slow.batch_sizes) == 24
    assert len(slow.batch_sizes) < 24 and max(slow.batch_sizes) > 1
    # Every caller got its own decision back (clients are distinct).
    assert sorted(r[0]["client"] for r in results) == sorted(f"c{i}" for i in range(24))  # type: ignore[index]
    verdict = decision_log.verify()["decisions"]
    assert verdict["ok"] is True and verdict["checked"] == 24


def test_max_batch_bounds_a_commit(decision_log: SQLiteDecisionLog) -> None:
    slow = SlowLog(decision_log)
    writer = GroupCommitWriter(slow, max_batch=3)
    results = _run_threads(writer, 12)
    assert all(isinstance(r, tuple) for r in results)
    assert max(slow.batch_sizes) <= 3 and sum(slow.batch_sizes) == 12


class FailingLog:
    """append_many always fails like a full or read-only disk."""

    path = None

    def __init__(self) -> None:
        self.calls = 0

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        self.calls += 1
        time.sleep(0.005)
        raise LogUnavailable("disk I/O error")


def test_log_unavailable_fails_every_waiter_of_the_batch() -> None:
    failing = FailingLog()
    writer = GroupCommitWriter(failing, use_process_lock=False)
    results = _run_threads(writer, 10)
    assert all(isinstance(r, LogUnavailable) for r in results), results
    assert failing.calls < 10  # failed as batches, not retried one by one


def test_idempotency_conflict_fails_only_its_caller(decision_log: SQLiteDecisionLog) -> None:
    writer = GroupCommitWriter(SlowLog(decision_log))
    writer.append(new_decision(idempotency_key="k", body_sha256="a" * 64))

    def make(i: int) -> NewDecision:
        if i == 0:  # same key, different body: this one alone must fail
            return new_decision(idempotency_key="k", body_sha256="b" * 64)
        return new_decision(client=f"c{i}")

    results = _run_threads(writer, 8, make)
    assert isinstance(results[0], IdempotencyConflict)
    assert all(isinstance(r, tuple) and r[1] is True for r in results[1:])
    assert decision_log.verify()["decisions"]["checked"] == 8


def test_idempotent_repeats_inside_one_batch_return_one_decision(
        decision_log: SQLiteDecisionLog) -> None:
    writer = GroupCommitWriter(SlowLog(decision_log))
    results = _run_threads(
        writer, 6, lambda i: new_decision(idempotency_key="same", body_sha256="a" * 64))
    ids = {r[0]["decision_id"] for r in results}  # type: ignore[index]
    assert len(ids) == 1
    assert sorted(r[1] for r in results) == [False] * 5 + [True]  # type: ignore[index]
    assert decision_log.verify()["decisions"]["checked"] == 1


def test_waits_for_the_cross_process_lock(decision_log: SQLiteDecisionLog) -> None:
    writer = GroupCommitWriter(decision_log)
    writer.append(new_decision())  # creates the lock file
    # Another open file description = another process as far as flock is concerned.
    fd = os.open(lock_path_for(decision_log.path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = threading.Event()
        thread = threading.Thread(target=lambda: (writer.append(new_decision()), done.set()))
        thread.start()
        assert not done.wait(0.3)  # blocked in the kernel while the lock is held
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert done.wait(5)  # woken at once on release
        thread.join(5)
    finally:
        os.close(fd)
    assert decision_log.verify()["decisions"]["checked"] == 2


def test_works_without_a_usable_lock_file(decision_log: SQLiteDecisionLog,
                                          tmp_path: Path) -> None:
    writer = GroupCommitWriter(decision_log, lock_path=tmp_path / "missing-dir" / "lock")
    record, created = writer.append(new_decision())
    assert created and record["chain"]["seq"] == 1


def _child(db_path: str, name: str, count: int, queue) -> None:
    log = SQLiteDecisionLog(db_path)
    writer = GroupCommitWriter(log)
    errors = 0
    for _ in range(count):
        try:
            writer.append(new_decision(client=name))
        except LogUnavailable:
            errors += 1
    queue.put(errors)


@pytest.mark.slow
def test_processes_and_threads_write_one_unbroken_chain(db_path: Path) -> None:
    parent_log = SQLiteDecisionLog(db_path)
    parent_writer = GroupCommitWriter(parent_log)
    parent_writer.append(new_decision())  # opened before the fork, like gunicorn's master
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_child, args=(str(db_path), f"p{n}", 60, queue))
                for n in range(3)]
    for child in children:
        child.start()
    # Meanwhile threads of this process write through the writer inherited across the fork.
    results = _run_threads(parent_writer, 20)
    errors = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert errors == [0, 0, 0]
    assert all(isinstance(r, tuple) for r in results)
    verdict = parent_log.verify()["decisions"]
    assert verdict["ok"] is True and verdict["checked"] == 1 + 3 * 60 + 20
    parent_log.close()
