"""Fixtures of the PostgreSQL-only tests (the server bootstrap is in ``tests/backends.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from referral_api.store.postgres.log import PostgresDecisionLog


@pytest.fixture
def open_host(pg_migrated_url: str) -> Iterator[Callable[..., PostgresDecisionLog]]:
    """``open_host()`` → a new log on this test's schema: each one is a separate "host"
    (its own pool). All are closed after the test."""
    opened: list[PostgresDecisionLog] = []

    def make(**kwargs) -> PostgresDecisionLog:
        log = PostgresDecisionLog(pg_migrated_url, **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def pg_log(open_host) -> PostgresDecisionLog:
    """One PostgreSQL log on a fresh, migrated schema."""
    return open_host()
