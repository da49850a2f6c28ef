"""Failed-authentication counters in the shared SQLite file, so every worker counts together.

The throttle (:mod:`referral_api.throttle`) asks one question per failed authentication:
"count this failure unless the client is already over the limit". Answering it in the database
that every gunicorn worker of the host opens makes the count per host, not per process.

Writes use their own connection with ``synchronous=NORMAL``: in WAL mode that is corruption
safe and skips the fsync, so a flood of bad credentials does not cost one fsync each (a power
cut may forget the last few failures, which only ever errs towards letting a client in). The
decision log's own connections keep ``synchronous=FULL``.
"""

from __future__ import annotations

import math
from pathlib import Path

from referral_api.store.sqlite.db import DEFAULT_BUSY_TIMEOUT_MS, LazyDatabase, write_transaction

__all__ = ["SQLiteAuthFailures"]


class SQLiteAuthFailures:
    """A sliding-window failure log per client in the ``auth_failures`` table."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self._connections = LazyDatabase(self.path, busy_timeout_ms=busy_timeout_ms)

    def register_failure(self, client: str, now: float, window_s: float,
                         limit: int) -> int | None:
        """Count one failure of ``client`` at ``now`` (seconds since the epoch).

        Returns None when it was counted (the client had fewer than ``limit`` failures in the
        last ``window_s`` seconds), else the whole seconds until the oldest of those failures
        leaves the window (nothing is written then). Raises ``sqlite3.Error``.
        """
        db = self._connections.get()
        conn = db.conn
        conn.execute("PRAGMA synchronous = NORMAL")  # this connection only; see the module doc
        since = now - window_s
        with write_transaction(db):
            count, oldest = conn.execute(
                "SELECT count(*), min(at) FROM auth_failures WHERE client = ? AND at > ?",
                [client, since],
            ).fetchone()
            if count >= limit:
                return max(1, math.ceil(oldest + window_s - now))
            conn.execute("INSERT INTO auth_failures (client, at) VALUES (?, ?)", [client, now])
            # Forget every client's expired failures (the index on `at` keeps this cheap).
            conn.execute("DELETE FROM auth_failures WHERE at <= ?", [since])
        return None

    def failures(self, client: str, now: float, window_s: float) -> int:
        """How many failures of ``client`` lie in the window ending at ``now``."""
        row = self._connections.get().conn.execute(
            "SELECT count(*) FROM auth_failures WHERE client = ? AND at > ?",
            [client, now - window_s],
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close this thread's connection."""
        self._connections.close()
