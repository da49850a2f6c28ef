"""Storage: the interface (:mod:`.interface`) every other package uses, and its backends.

``open_store(settings)`` is the one place a backend is chosen: today a file path means
SQLite (:mod:`.sqlite`). Nothing is connected until first use (after gunicorn forks).
"""

from __future__ import annotations

from referral_api.config import Settings
from referral_api.store.interface import Store
from referral_api.store.sqlite import SQLiteStore
from referral_api.store.sqlite.log import utc_now

__all__ = ["open_store", "query_timeout_ms"]


def query_timeout_ms(settings: Settings) -> int:
    """The audit reads' time limit: ``REFERRAL_API_AUDIT_QUERY_TIMEOUT_MS`` (default 3 s)."""
    return settings.audit_query_timeout_ms


def open_store(settings: Settings) -> Store:
    """The store ``settings.database`` names, opened lazily.

    A further backend is added here, chosen by the form of ``settings.database`` (e.g. a
    ``postgresql://`` URL), and imported only when chosen.
    """
    # ``STORE_CLOCK`` (tests only, through ``create_app(test_config)``): the times the chains
    # record. Not the decision clock (``EVALUATION_TIME``, which picks the rule set in force).
    clock = settings.extra.get("STORE_CLOCK") or utc_now
    return SQLiteStore(settings.database, query_timeout_ms=query_timeout_ms(settings),
                       clock=clock)
