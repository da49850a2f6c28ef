"""API keys on PostgreSQL: the same tokens, hashing, cache and semantics as the SQLite store.

Only the SQL differs; the token format, hashing and the per-process cache (a revocation made
on one host takes effect on every host within ``CACHE_TTL_SECONDS``) come from
:mod:`referral_api.store.sqlite.keys`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Sequence

import psycopg
from psycopg.rows import dict_row

from referral_api.store.interface import ApiKey, LogUnavailable
from referral_api.store.keys import (
    CACHE_MAX,
    CACHE_TTL_SECONDS,
    TOKEN_PREFIX,
    api_key,
    identify_token,
    new_key,
    secret_hash,
)
from referral_api.store.postgres.db import LazyPool
from referral_api.store.timestamps import utc_timestamp

__all__ = ["PostgresKeyStore"]


class PostgresKeyStore:
    """API keys in the ``api_keys`` table of a PostgreSQL log (shares its pool)."""

    def __init__(self, pool: LazyPool):
        self._pool = pool
        self._cache: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def create(self, roles: Sequence[str], label: str) -> tuple[ApiKey, str]:
        """Store a new key; return it with its plaintext token (shown once, never stored)."""
        roles, label, secret = new_key(roles, label)
        with self._pool.connection() as conn, conn.transaction():
            while True:
                row = {
                    "key_id": secrets.token_hex(6),
                    "label": label,
                    "roles_json": json.dumps(list(roles)),
                    "secret_sha256": secret_hash(secret),
                    "created_at": utc_timestamp(),
                    "revoked_at": None,
                }
                inserted = conn.execute(
                    "INSERT INTO api_keys (key_id, label, roles_json, secret_sha256, "
                    "created_at, revoked_at) VALUES (%(key_id)s, %(label)s, %(roles_json)s, "
                    "%(secret_sha256)s, %(created_at)s, %(revoked_at)s) "
                    "ON CONFLICT (key_id) DO NOTHING", row).rowcount
                if inserted == 1:
                    break
        return api_key(row), f"{TOKEN_PREFIX}{row['key_id']}_{secret}"

    def _row(self, key_id: str) -> dict | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_TTL_SECONDS:
            return cached[1]
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT key_id, label, roles_json, secret_sha256, created_at, "
                                  "revoked_at FROM api_keys WHERE key_id = %s",
                                  [key_id]).fetchone()
        except psycopg.Error as exc:
            raise LogUnavailable(f"the key store cannot be read: {type(exc).__name__}") from exc
        if row is None:
            return None
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = (now, row)
        return row

    def verify(self, token: str) -> ApiKey | None:
        """The key this token belongs to; None if malformed, unknown or revoked.

        Raises :class:`LogUnavailable` when the database cannot be read (503, not 401).
        """
        return self.identify(token)[0]

    def identify(self, token: str) -> tuple[ApiKey | None, str | None]:
        """``(key, None)`` for a valid token, else ``(None, reason)`` (the same reasons as
        the SQLite store: one definition, ``identify_token``)."""
        return identify_token(token, self._row)

    def active(self, key_id: str) -> ApiKey | None:
        """The key with this id when it exists and is not revoked (cached like ``verify``)."""
        row = self._row(key_id)
        if row is None or row["revoked_at"] is not None:
            return None
        return api_key(row)

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT * FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [api_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when unknown or already revoked."""
        with self._pool.connection() as conn, conn.transaction():
            changed = conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                [utc_timestamp(), key_id]).rowcount == 1
        with self._lock:
            self._cache.pop(key_id, None)
        return changed

    def count(self, role: str | None = None, include_revoked: bool = False) -> int:
        """Number of keys (holding ``role``, when given)."""
        return sum(1 for k in self.list_keys()
                   if (include_revoked or k.revoked_at is None)
                   and (role is None or role in k.roles))
