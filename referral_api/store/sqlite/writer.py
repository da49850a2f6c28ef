"""The decision write lock: one decision transaction at a time per database file.

Why: when several gunicorn workers write one SQLite file, the losers of ``BEGIN IMMEDIATE``
sleep in SQLite's busy back-off (1, 2, 5, 10 … ms), which pushed p99 to 36–100 ms. A
process that waits on an ``fcntl.flock`` instead sleeps in the kernel and is woken the moment
the holder releases it (p99 11–19 ms). :class:`ProcessLock` is that lock, on a file next to
the database (:func:`lock_path_for`); :meth:`SQLiteDecisionLog.append_many
<referral_api.store.sqlite.log.SQLiteDecisionLog.append_many>` holds it around its write
transaction only (everything independent of the chain head is prepared before it).

The lock is an accelerator, not the correctness mechanism: the chain is still protected by
``BEGIN IMMEDIATE``. When the lock file cannot be opened (read-only directory) writes go on
without it and SQLite decides whether they can be made.

:class:`GroupCommitWriter` adds group commit *inside one process*: callers enqueue their
decision; the first caller that finds no commit in progress leads, takes every waiting
decision (up to ``max_batch``) and appends them with ``log.append_many`` in ONE transaction
and one fsync, then wakes the others with their records. Scope, as measured (see
``docs/performance.md``): it only ever batches with threaded workers (``gthread``), where a
paired run measured 1,521 against 1,932 µs of server CPU per decision without it; under the
shipped ``sync`` workers a process has one request at a time, so every batch holds exactly
one decision and the writer is a pass-through (a queue append and a condition variable).
Across processes nothing is batched: a waiting worker cannot join a transaction whose fsync
has started, and a writer process collecting every worker's decisions measured no gain.

Fail closed: when the batch cannot be committed (:class:`LogUnavailable`), every waiter of
that batch gets :class:`LogUnavailable` and no decision is returned unlogged. A batch that
fails for a reason belonging to one item (:class:`IdempotencyConflict`, ``ValueError``) is
retried item by item, so only the offending caller sees its error. Nothing else is retried:
any other exception fails the whole batch, and an interrupt (``KeyboardInterrupt``,
``SystemExit``) propagates in the leader once its waiters have been failed with
:class:`LogUnavailable`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from referral_api.store.interface import IdempotencyConflict, LogUnavailable, NewDecision

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitWriter", "ProcessLock", "lock_path_for"]

DEFAULT_MAX_BATCH = 64


def lock_path_for(database: str | Path) -> Path:
    """The lock file that serialises decision writes across processes: ``<db>.write-lock``."""
    database = Path(database)
    return database.with_name(database.name + ".write-lock")


class ProcessLock:
    """An exclusive ``flock`` on a lock file, opened lazily once per process; thread-safe.

    flock locks belong to the open file description, which a forked child shares with its
    parent: a descriptor inherited across fork would let parent and child hold the "lock" at
    the same time. The file is therefore (re)opened whenever the pid changes. Threads of one
    process share the descriptor, so they first take :attr:`_mutex`.

    ``path`` None: no file lock (SQLite's own locking alone), the mutex still serialises
    the threads of this process.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._fd: int | None = None
        self._pid: int | None = None
        self._guard = threading.Lock()
        self._mutex = threading.Lock()
        self._mutex_pid = os.getpid()

    def _descriptor(self) -> int | None:
        if self.path is None:
            return None
        pid = os.getpid()
        with self._guard:
            if self._fd is not None and self._pid == pid:
                return self._fd
            # The inherited descriptor (if any) is left open: closing it in the child would
            # not release the parent's lock, but keeping the number avoids reusing it.
            try:
                # O_RDONLY is enough for flock and works on a read-only file; O_CREAT makes
                # the file on first use (fails harmlessly in a read-only directory).
                fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                return None
            self._fd, self._pid = fd, pid
            return fd

    def _thread_mutex(self) -> threading.Lock:
        # A mutex inherited across fork may have been held by another thread of the parent:
        # the child makes its own, as it opens its own descriptor.
        pid = os.getpid()
        with self._guard:
            if self._mutex_pid != pid:
                self._mutex, self._mutex_pid = threading.Lock(), pid
            return self._mutex

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lock for the block; yields False when no lock file could be used."""
        with self._thread_mutex():
            fd = self._descriptor()
            if fd is None:
                yield False
                return
            try:
                # Blocks in the kernel; a holder killed with SIGKILL releases it on exit.
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's descriptor (tests, shutdown)."""
        with self._guard:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None


class BatchLog(Protocol):
    """What the writer needs from the decision log."""

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]: ...


#: Faults that belong to one decision of a batch: the batch is retried item by item.
_ITEM_FAULTS = (IdempotencyConflict, ValueError)


@dataclass
class _Slot:
    """One waiting caller: its decision, then its result or its error."""

    new: NewDecision
    done: bool = False
    result: tuple[dict, bool] | None = None
    error: BaseException | None = None


class GroupCommitWriter:
    """``append(new) -> (record, created)`` with group commit of the threads of one process.

    ``log`` is a :class:`~referral_api.store.sqlite.log.SQLiteDecisionLog` (anything with
    ``append_many``); the log itself holds the cross-process write lock around each
    transaction. Thread-safe; safe to build before gunicorn forks (nothing is opened here).
    """

    def __init__(self, log: BatchLog, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.log = log
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._committing = False
        # Counters for the benchmark and the tests (read without the lock: indicative only).
        self.batches = 0
        self.decisions = 0

    def append(self, new: NewDecision) -> tuple[dict, bool]:
        """Record ``new`` durably (possibly together with other waiting decisions).

        Returns ``(record, created)`` exactly like ``SQLiteDecisionLog.append``; raises
        :class:`LogUnavailable` when the batch holding it could not be committed, and
        :class:`IdempotencyConflict` / ``ValueError`` for this decision's own faults.
        """
        slot = _Slot(new)
        interrupt: BaseException | None = None
        with self._cond:
            self._queue.append(slot)
            while not slot.done:
                if self._committing:
                    self._cond.wait()
                    continue
                # Lead: take every waiting decision (ours is among them unless the queue is
                # longer than max_batch, in which case we lead again afterwards).
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._committing = True
                self._cond.release()
                try:
                    interrupt = self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._committing = False
                    self._cond.notify_all()
                if interrupt is not None:
                    break
        if interrupt is not None:
            raise interrupt
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _commit(self, batch: list[_Slot]) -> BaseException | None:
        """Commit ``batch`` and fill in every slot; returns an interrupt to re-raise."""
        try:
            results = self.log.append_many([s.new for s in batch])
        except LogUnavailable as exc:
            self._fail(batch, exc)
            return None
        except _ITEM_FAULTS as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return None
            # The batch was rolled back as a whole because of one item: commit each alone
            # so only its caller fails.
            for slot in batch:
                self._commit([slot])
            return None
        except Exception as exc:  # every waiter must be woken with an error
            self._fail(batch, exc)
            return None
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit …: not retried; the waiters learn that nothing
            # was committed, the leader's thread gets its interrupt back.
            self._fail(batch, LogUnavailable(f"interrupted: {type(exc).__name__}"))
            return exc
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
        self.batches += 1
        self.decisions += len(batch)
        self._finish(batch)
        return None

    def _fail(self, batch: list[_Slot], exc: BaseException) -> None:
        for slot in batch:
            # A fresh LogUnavailable per waiter: a shared exception object would collect
            # every thread's traceback.
            slot.error = (LogUnavailable(str(exc)) if isinstance(exc, LogUnavailable)
                          else exc)
        self._finish(batch)

    @staticmethod
    def _finish(batch: list[_Slot]) -> None:
        for slot in batch:
            slot.done = True

    def stats(self) -> dict[str, Any]:
        """Batches committed and decisions recorded by this process (indicative)."""
        return {"batches": self.batches, "decisions": self.decisions}
