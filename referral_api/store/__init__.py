"""Storage: the interface (:mod:`.interface`) every other package uses, and its backends.

``open_store(settings)`` is the one place a backend is chosen: a ``postgresql://`` URL means
PostgreSQL (:mod:`.postgres`), a file path SQLite (:mod:`.sqlite`). Nothing is connected
until first use (after gunicorn forks).
"""

from __future__ import annotations

from referral_api.config import Settings
from referral_api.store.interface import Store
from referral_api.store.sqlite import SQLiteStore
from referral_api.store.timestamps import utc_now

__all__ = ["open_store", "query_timeout_ms"]


def query_timeout_ms(settings: Settings) -> int:
    """The audit reads' time limit: ``REFERRAL_API_AUDIT_QUERY_TIMEOUT_MS`` (default 3 s)."""
    return settings.audit_query_timeout_ms


def open_store(settings: Settings) -> Store:
    """The store ``settings.database`` names, opened lazily.

    A ``postgresql://`` URL opens the PostgreSQL store (psycopg is imported only then); any
    other value is a SQLite file path.
    """
    # ``STORE_CLOCK`` (tests only, through ``create_app(test_config)``): the times the chains
    # record. Not the decision clock (``EVALUATION_TIME``, which picks the rule set in force).
    clock = settings.extra.get("STORE_CLOCK") or utc_now
    if isinstance(settings.database, str) and settings.database.startswith(
            ("postgresql://", "postgres://")):
        from referral_api.store.postgres import PostgresStore

        return PostgresStore(settings.database, query_timeout_ms=query_timeout_ms(settings),
                             clock=clock)
    return SQLiteStore(settings.database, query_timeout_ms=query_timeout_ms(settings),
                       clock=clock)
