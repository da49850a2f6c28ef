"""The SQLite backend: one database file holds the log, its sibling chains and the keys.

:class:`SQLiteStore` bundles what :func:`referral_api.store.open_store` hands to the app: the
log (:mod:`.log`, audit reads in :mod:`.queries`; its appends hold the write lock of
:mod:`.writer`), the group-commit writer (:mod:`.writer`) and the key store (:mod:`.keys`);
:mod:`.migrations` creates and evolves the schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from referral_api.store.interface import DEFAULT_QUERY_TIMEOUT_MS, Store
from referral_api.store.sqlite.auth_failures import SQLiteAuthFailures
from referral_api.store.sqlite.db import connect
from referral_api.store.sqlite.keys import SQLiteKeyStore
from referral_api.store.sqlite.log import SQLiteDecisionLog, utc_now
from referral_api.store.sqlite.migrations import migrate
from referral_api.store.sqlite.writer import GroupCommitWriter

__all__ = ["SQLiteDecisionLog", "SQLiteKeyStore", "SQLiteStore"]


class SQLiteStore:
    """:class:`~referral_api.store.interface.Store` on one SQLite file (opened lazily)."""

    def __init__(
        self,
        path: str | Path,
        *,
        query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self._log = SQLiteDecisionLog(self.path, query_timeout_ms=query_timeout_ms, clock=clock)
        # Decisions go through the group-commit writer (it batches only with threaded
        # workers); reads use the log directly.
        self._writer = GroupCommitWriter(self._log)
        self._keys = SQLiteKeyStore(self._log)
        self._auth_failures = SQLiteAuthFailures(self.path)

    @property
    def log(self) -> SQLiteDecisionLog:
        """The decision log."""
        return self._log

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer decisions are appended through."""
        return self._writer

    @property
    def keys(self) -> SQLiteKeyStore:
        """The API keys (sharing the log's connections)."""
        return self._keys

    @property
    def auth_failures(self) -> SQLiteAuthFailures:
        """The throttle's failure counters (their own connection: no fsync per failure)."""
        return self._auth_failures

    def describe(self) -> str:
        """The database file's path."""
        return str(self.path)

    def exists(self) -> bool:
        """True when the database file exists."""
        return self.path.exists()

    def migrate(self) -> list[str]:
        """Create the folder and file if needed, then apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(self.path)
        try:
            return migrate(db)
        finally:
            db.close()

    def close(self) -> None:
        """Close this thread's connection and this process's write-lock file."""
        self._log.close()
        self._auth_failures.close()


if TYPE_CHECKING:
    # The type checker (``make test``) proves the SQLite classes implement the whole storage
    # interface: a missing method or a changed signature fails the build here. Through the
    # properties' types this checks the log, the writer and the key store too.
    _conforms: Store = SQLiteStore(":memory:")
