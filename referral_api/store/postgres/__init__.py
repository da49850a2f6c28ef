"""The PostgreSQL backend: the production log, shared by any number of app hosts.

:class:`PostgresStore` bundles what :func:`referral_api.store.open_store` hands to the app when
``REFERRAL_API_DATABASE`` is a ``postgresql://`` URL: the log (:mod:`.log`, audit reads in
:mod:`.queries`), the in-process group-commit writer (shared with SQLite, without its lock
file: the chain lock lives in the database) and the key store (:mod:`.keys`).
:mod:`.migrations` creates the schema from versioned SQL files; :mod:`.copy` moves a SQLite
log here. Nothing connects before first use, in the process that uses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from referral_api.store.interface import DEFAULT_QUERY_TIMEOUT_MS, Store
from referral_api.store.postgres.db import connect, is_postgres_url, redact
from referral_api.store.postgres.keys import PostgresKeyStore
from referral_api.store.postgres.log import PostgresDecisionLog
from referral_api.store.postgres.migrations import migrate
from referral_api.store.sqlite.writer import GroupCommitWriter
from referral_api.store.timestamps import utc_now

__all__ = ["PostgresDecisionLog", "PostgresKeyStore", "PostgresStore", "is_postgres_url"]


class PostgresStore:
    """:class:`~referral_api.store.interface.Store` on a PostgreSQL database (lazy pools)."""

    def __init__(
        self,
        url: str,
        *,
        query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.url = url
        self._log = PostgresDecisionLog(url, query_timeout_ms=query_timeout_ms, clock=clock)
        # Batches the decisions of one process's threads into one commit (gthread workers);
        # across processes and hosts the database's chain lock orders them (no lock file).
        self._writer = GroupCommitWriter(self._log)
        self._keys = PostgresKeyStore(self._log.pool)

    @property
    def log(self) -> PostgresDecisionLog:
        """The decision log."""
        return self._log

    @property
    def writer(self) -> GroupCommitWriter:
        """The group-commit writer decisions are appended through."""
        return self._writer

    @property
    def keys(self) -> PostgresKeyStore:
        """The API keys (sharing the log's pool)."""
        return self._keys

    @property
    def auth_failures(self) -> PostgresDecisionLog:
        """The throttle's failure counters, shared by every host (the log's pool)."""
        return self._log

    def describe(self) -> str:
        """The URL without its password."""
        return redact(self.url)

    def exists(self) -> bool:
        """True when the server answers and the schema has been created (``init-db``)."""
        import psycopg

        try:
            with connect(self.url) as conn:
                found = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        except psycopg.Error:
            return False
        return bool(found and found[0])

    def migrate(self) -> list[str]:
        """Apply pending migrations (idempotent; concurrent runs serialise)."""
        with connect(self.url) as conn:
            return migrate(conn)

    def close(self) -> None:
        """Close this process's pool."""
        self._log.close()


if TYPE_CHECKING:
    # The type checker proves the PostgreSQL classes implement the whole storage interface
    # (through the properties' types: the log, the writer and the key store too).
    _conforms: Store = PostgresStore("postgresql://localhost/referral")
