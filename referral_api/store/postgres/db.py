"""PostgreSQL connections: a psycopg 3 pool per process, opened lazily after the fork.

A gunicorn master must not hold connections its workers inherit (two processes on one
socket corrupt the protocol), so :class:`LazyPool` opens nothing until :meth:`LazyPool.get`
is called, and opens a new pool when it finds itself in a process other than the one that
opened the current pool (the inherited pool is abandoned, never closed: closing it would
send a Terminate on the parent's sockets).

Every connection sets ``synchronous_commit = on`` (a decision is returned only after its
commit is flushed to the WAL, and to the synchronous standby when one is configured) and a
``lock_timeout``, so that an append never waits for ever on a chain lock held by a stuck
session: it fails closed with :class:`~referral_api.store.postgres.log.LogUnavailable`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

URL_SCHEMES = ("postgresql", "postgres")
#: Seconds a request waits for a pooled connection (PostgreSQL down: then 503).
POOL_TIMEOUT_S = 5.0
#: Seconds a readiness probe waits: a load balancer's health check must get its 503 in time.
PING_TIMEOUT_S = 1.5
#: Seconds a new connection may take to be established.
CONNECT_TIMEOUT_S = 3
#: Milliseconds an append waits for the chain lock before failing closed.
LOCK_TIMEOUT_MS = 5000
#: Default connections per process: a sync worker uses one; gthread workers a few more.
DEFAULT_POOL_MAX = 4

# Pools inherited across fork() are kept referenced (and never closed) in the child.
_inherited_pools: list[ConnectionPool] = []


def is_postgres_url(database: object) -> bool:
    """True when ``database`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(database, str) and urlsplit(database).scheme in URL_SCHEMES


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def connection_kwargs(url: str, *, statement_timeout_ms: int | None = None) -> dict[str, Any]:
    """Keyword arguments of every connection to ``url`` (libpq options added to those the URL
    may carry, such as a ``search_path``; the password comes from the URL or the usual
    ``PG*`` variables and ``~/.pgpass``, which libpq reads itself)."""
    given = conninfo_to_dict(url).get("options") or os.environ.get("PGOPTIONS", "")
    options = f"{given} -c synchronous_commit=on -c lock_timeout={LOCK_TIMEOUT_MS}".strip()
    if statement_timeout_ms is not None:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    return {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "options": options,
        "application_name": "referral-api",
    }


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """One plain connection (CLI commands, migrations); autocommit off."""
    return psycopg.connect(url, **{**connection_kwargs(url), **kwargs})


class LazyPool:
    """One :class:`psycopg_pool.ConnectionPool` per process, created on first use.

    ``check_connection`` runs on every checkout (one round trip): after a PostgreSQL restart
    a dead pooled connection is replaced instead of failing the request that drew it.
    """

    def __init__(self, url: str, *, max_size: int = DEFAULT_POOL_MAX,
                 timeout_s: float = POOL_TIMEOUT_S):
        self.url = url
        self.max_size = max_size
        self.timeout_s = timeout_s
        self._pool: ConnectionPool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> ConnectionPool:
        """This process's pool (opened now if needed; opening does not wait for a server)."""
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pid == pid:
            return pool
        with self._lock:
            if self._pool is not None and self._pid == pid:
                return self._pool
            if self._pool is not None:
                _inherited_pools.append(self._pool)
            pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self.max_size,
                kwargs=connection_kwargs(self.url),
                timeout=self.timeout_s,
                check=ConnectionPool.check_connection,
                # Reconnection attempts in the background stop after this long; requests keep
                # failing fast (503) meanwhile and a new attempt starts with the next one.
                reconnect_timeout=60.0,
                name=f"referral-api-{pid}",
                open=False,
            )
            pool.open(wait=False)
            self._pool, self._pid = pool, pid
            return pool

    @contextmanager
    def connection(self, timeout_s: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection (waiting at most ``timeout_s``, default the pool's); its
        transaction commits on normal exit, rolls back on error."""
        with self.get().connection(timeout=timeout_s) as conn:
            yield conn

    def close(self) -> None:
        """Close this process's pool (tests, shutdown)."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None
            self._pid = None
