"""SQLite connections: durable pragmas, explicit write transactions, lazy per-process opening.

Every connection is opened *after* gunicorn forks (never at import time) and is owned by one
process and one thread.  The Python driver runs in autocommit mode (``isolation_level=None``)
so that it never opens an implicit, deferred transaction behind our back: every write
transaction is started explicitly with ``BEGIN IMMEDIATE`` (see :func:`write_transaction`),
because a deferred transaction that reads and then writes fails with "database is locked"
when another process wrote in between, instead of waiting on ``busy_timeout``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

DEFAULT_BUSY_TIMEOUT_MS = 5000
#: A time limit's progress handler runs every this many SQLite VM instructions (~0.1 ms).
PROGRESS_OPS = 2000

# Connections inherited from a parent process across fork() are never closed by the child:
# closing them could release POSIX locks the child's own connection holds on the same file.
# They are kept referenced here so that garbage collection does not close them either.
_inherited_connections: list[sqlite3.Connection] = []


def connect(
    path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Open ``path`` with the pragmas the decision log relies on.

    - ``journal_mode=WAL``: readers never block the writer and vice versa;
    - ``synchronous=FULL``: in WAL mode the log is fsynced at every commit, so a decision that
      was returned survives a power cut (NORMAL would only survive an application crash);
    - ``busy_timeout``: a writer waits for the lock instead of failing at once;
    - ``foreign_keys=ON``: feedback must point at an existing decision.

    Raises ``sqlite3.Error`` when the file cannot be opened or WAL cannot be enabled.
    """
    conn = sqlite3.connect(
        str(path),
        isolation_level=None,
        timeout=busy_timeout_ms / 1000,
        check_same_thread=True,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = _enable_wal(conn, busy_timeout_ms)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn, execute_plugins=False)


def _enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Switch ``conn`` to WAL and return the journal mode now in force.

    Changing the journal mode of a new file needs an exclusive lock, and SQLite does not call
    the busy handler for it: several processes opening a fresh database at once (two
    ``init-db`` runs, workers starting together) get "database is locked" at once. Retry
    within the busy timeout, as every other statement waits.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block inside ``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any exception.

    ``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to ``busy_timeout``), so the
    reads made inside the block (the chain head) cannot be invalidated by another writer.
    """
    conn = db.conn
    if conn.in_transaction:
        raise sqlite3.OperationalError("write_transaction() cannot be nested")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class LazyDatabase:
    """Opens one connection per process and per thread, on first use.

    Safe to construct at import time or in the gunicorn master: nothing is opened until
    :meth:`get` is called, and a child process never reuses its parent's connection.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()

    def get(self) -> sqlite_utils.Database:
        """Return this thread's connection, opening it if needed (or after a fork)."""
        pid = os.getpid()
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is not None and self._local.pid == pid:
            return db
        if db is not None:
            _inherited_connections.append(db.conn)
        db = connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
        self._local.db = db
        self._local.pid = pid
        return db

    def close(self) -> None:
        """Close this thread's connection if this process opened it."""
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local.db = None


@dataclass
class TimeLimit:
    """State of one :func:`time_limit`: whether it stopped a statement."""

    timeout_ms: int
    tripped: bool = False


@contextlib.contextmanager
def time_limit(conn: sqlite3.Connection, timeout_ms: int) -> Iterator[TimeLimit]:
    """Interrupt the statements run on ``conn`` in the block once ``timeout_ms`` have passed.

    SQLite then raises ``OperationalError: interrupted``; the yielded :class:`TimeLimit` says
    whether the limit was the cause. After tripping, the handler lets statements run again so
    that the transaction can still be ended.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    state = TimeLimit(timeout_ms)

    def progress() -> int:
        if state.tripped:
            return 0
        if time.monotonic() > deadline:
            state.tripped = True
            return 1  # non-zero: SQLite interrupts the running statement
        return 0

    conn.set_progress_handler(progress, PROGRESS_OPS)
    try:
        yield state
    finally:
        # After an error the store may have closed the connection: nothing to reset then.
        with contextlib.suppress(sqlite3.Error):
            conn.set_progress_handler(None, 0)
