"""Group commit: many waiting decisions, one durable SQLite transaction, one fsync.

Why: a commit with ``synchronous=FULL`` waits ~140 µs on fsync, and when several gunicorn
processes write one SQLite file the losers sleep in SQLite's busy back-off (1, 2, 5, 10 …
ms), which is what pushes p99 to 100–200 ms. This module removes both costs:

- inside one process, callers enqueue their :class:`NewDecision` and wait; the first caller
  that finds no commit in progress becomes the *leader*, takes every waiting decision (up
  to ``max_batch``), appends them with ``log.append_many`` in ONE ``BEGIN IMMEDIATE``
  transaction, then wakes the others with their records. With threaded (gthread) workers
  several requests of one process share each fsync;
- across processes, the leader holds an exclusive ``fcntl.flock`` on a lock file next to the
  database for the duration of the write transaction. A process that has to wait blocks in
  the kernel and is woken the moment the lock is released, instead of polling in SQLite's
  sleeping busy handler, so SQLite itself never sees contention from decision writes.

Fail closed: when the batch cannot be committed (:class:`LogUnavailable`), every waiter of
that batch gets :class:`LogUnavailable` and no decision is returned unlogged. A batch that
fails for a reason belonging to one item (an :class:`IdempotencyConflict`, a ``ValueError``)
is retried item by item, so only the offending caller sees its error.

The flock is an accelerator, not the correctness mechanism: the chain is still protected by
``BEGIN IMMEDIATE``. When the lock file cannot be opened (read-only directory) the writer
goes on without it and lets SQLite decide whether the write can be made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from referral_api.store.sqlite.log import LogUnavailable, NewDecision

__all__ = ["DEFAULT_MAX_BATCH", "GroupCommitWriter", "lock_path_for"]

DEFAULT_MAX_BATCH = 64


class BatchLog(Protocol):
    """What the writer needs from the decision log."""

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]: ...


def lock_path_for(database: str | Path) -> Path:
    """The lock file that serialises decision writes across processes: ``<db>.write-lock``."""
    database = Path(database)
    return database.with_name(database.name + ".write-lock")


@dataclass
class _Slot:
    """One waiting caller: its decision, then its result or its error."""

    new: NewDecision
    done: bool = False
    result: tuple[dict, bool] | None = None
    error: BaseException | None = None


@dataclass
class _ProcessLock:
    """An ``flock`` on a lock file, opened lazily once per process.

    flock locks belong to the open file description, which a forked child shares with its
    parent: a descriptor inherited across fork would let parent and child hold the "lock" at
    the same time. The file is therefore (re)opened whenever the pid changes.
    """

    path: Path | None
    _fd: int | None = None
    _pid: int | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

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

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lock for the block; yields False when no lock file could be used."""
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
        """Close this process's descriptor (tests)."""
        with self._guard:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None


class GroupCommitWriter:
    """``append(new) -> (record, created)`` with group commit and cross-process serialisation.

    ``log`` is a :class:`~referral_api.store.sqlite.log.SQLiteDecisionLog` (anything with
    ``append_many``). ``lock_path`` defaults to :func:`lock_path_for` of ``log.path``; pass
    ``None`` explicitly via ``use_process_lock=False`` to rely on SQLite's busy handler only.
    Thread-safe; safe to build before gunicorn forks (nothing is opened until first use).
    """

    def __init__(
        self,
        log: BatchLog,
        *,
        lock_path: str | Path | None = None,
        use_process_lock: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.log = log
        self.max_batch = max_batch
        if use_process_lock and lock_path is None:
            database = getattr(log, "path", None)
            lock_path = lock_path_for(database) if database is not None else None
        self._process_lock = _ProcessLock(Path(lock_path) if use_process_lock and lock_path
                                          else None)
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
        ``IdempotencyConflict`` / ``ValueError`` for this decision's own faults.
        """
        slot = _Slot(new)
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
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._committing = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _commit(self, batch: list[_Slot]) -> None:
        """Commit ``batch`` and fill in every slot (never raises)."""
        try:
            with self._process_lock.held():
                results = self.log.append_many([s.new for s in batch])
        except LogUnavailable as exc:
            self._fail(batch, exc)
            return
        except BaseException as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            # The batch was rolled back as a whole because of one item (idempotency
            # conflict, invalid channel …): commit each alone so only its caller fails.
            for slot in batch:
                self._commit([slot])
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
        self.batches += 1
        self.decisions += len(batch)
        self._finish(batch)

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

    def close(self) -> None:
        """Release this process's lock-file descriptor."""
        self._process_lock.close()
