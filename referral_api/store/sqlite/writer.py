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

What is deliberately *not* here (measured, see ``docs/performance.md``): an in-process queue
that commits the decisions of several waiting threads in one transaction. Under the shipped
``sync`` workers a process has one request at a time, so such a queue never held more than
one decision and only cost a condition variable per request; threaded workers, the only
ones it helped, measured slower. Threads of one process take a mutex before the flock (a
flock is shared by every thread of a process) and each commits alone. Across processes, a
waiting worker cannot join the transaction in flight (its fsync is most of the held time),
and a writer process committing for every worker measured no gain with two workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ProcessLock", "lock_path_for"]


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
