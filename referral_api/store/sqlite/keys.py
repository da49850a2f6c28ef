"""The API key store on SQLite: rows in ``api_keys``, read through a short cache.

The token format, its hash and the checks of a new key are shared by every backend
(:mod:`referral_api.store.keys`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlite_utils

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
from referral_api.store.sqlite.db import LazyDatabase, write_transaction
from referral_api.store.timestamps import utc_timestamp


class SQLiteKeyStore:
    """:class:`~referral_api.store.interface.KeyStore` in the ``api_keys`` table.

    ``log_or_db``: a :class:`~referral_api.store.sqlite.log.SQLiteDecisionLog` (its lazily opened
    connections are shared), a :class:`~referral_api.store.sqlite.db.LazyDatabase`, or a path.
    """

    def __init__(self, log_or_db: object) -> None:
        connections = getattr(log_or_db, "connections", log_or_db)
        if isinstance(connections, LazyDatabase):
            self._connections = connections
        elif isinstance(connections, (str, Path)):
            self._connections = LazyDatabase(connections)
        else:
            raise TypeError("SQLiteKeyStore needs a SQLiteDecisionLog, a LazyDatabase or a path")
        # key_id -> (monotonic time fetched, stored row); per process, short TTL so that a
        # revocation made by another process takes effect within CACHE_TTL_SECONDS.
        self._cache: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def _db(self) -> sqlite_utils.Database:
        return self._connections.get()

    @staticmethod
    @contextlib.contextmanager
    def _unavailable_on_error(what: str) -> Iterator[None]:
        """SQLite errors as :class:`LogUnavailable` (the interface's error: 503, not 500)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise LogUnavailable(f"the key store {what}: {type(exc).__name__}") from exc

    def create(self, roles: Sequence[str], label: str) -> tuple[ApiKey, str]:
        """Store a new key; return it with its plaintext token (shown once, never stored)."""
        roles, label, secret = new_key(roles, label)
        with self._unavailable_on_error("cannot be written"), write_transaction(db := self._db()):
            while True:
                key_id = secrets.token_hex(6)
                taken = db.conn.execute(
                    "SELECT 1 FROM api_keys WHERE key_id = ?", [key_id]
                ).fetchone()
                if taken is None:
                    break
            row = {
                "key_id": key_id,
                "label": label,
                "roles_json": json.dumps(list(roles)),
                "secret_sha256": secret_hash(secret),
                "created_at": utc_timestamp(),
                "revoked_at": None,
            }
            db.conn.execute(
                "INSERT INTO api_keys (key_id, label, roles_json, secret_sha256, created_at, "
                "revoked_at) VALUES (:key_id, :label, :roles_json, :secret_sha256, "
                ":created_at, :revoked_at)",
                row,
            )
        return api_key(row), f"{TOKEN_PREFIX}{key_id}_{secret}"

    def _row(self, key_id: str) -> dict | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_TTL_SECONDS:
            return cached[1]
        cursor = self._db().conn.execute("SELECT * FROM api_keys WHERE key_id = ?", [key_id])
        found = cursor.fetchone()
        if found is None:
            # Unknown ids are not cached: a flood of random ids must not grow memory.
            return None
        row = dict(zip([d[0] for d in cursor.description], found, strict=True))
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = (now, row)
        return row

    def verify(self, token: str) -> ApiKey | None:
        """The key this token belongs to; None if malformed, unknown or revoked.

        Raises :class:`~referral_api.store.sqlite.log.LogUnavailable` when the database cannot
        be read (the caller answers 503, not 401).
        """
        return self.identify(token)[0]

    def identify(self, token: str) -> tuple[ApiKey | None, str | None]:
        """``(key, None)`` for a valid token, else ``(None, reason)``.

        ``reason`` is one of :data:`~referral_api.store.interface.KEY_REFUSAL_REASONS` (for
        security logs and metrics; it names no secret). A revoked key is named as such: its
        use is worth an operator's attention.
        """
        try:
            return identify_token(token, self._row)
        except sqlite3.Error as exc:
            # The app maps LogUnavailable to 503: a database fault is not a bad credential.
            raise LogUnavailable(f"the key store cannot be read: {type(exc).__name__}") from exc

    def active(self, key_id: str) -> ApiKey | None:
        """The key with this id when it exists and is not revoked (cached like ``verify``).

        Browser sessions hold only the key id: this is how a revocation ends them too.
        """
        try:
            row = self._row(key_id)
        except sqlite3.Error as exc:
            raise LogUnavailable(f"the key store cannot be read: {type(exc).__name__}") from exc
        if row is None or row["revoked_at"] is not None:
            return None
        return api_key(row)

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        with self._unavailable_on_error("cannot be read"):
            cursor = self._db().conn.execute(
                "SELECT * FROM api_keys ORDER BY created_at, key_id")
            keys = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [api_key(dict(zip(keys, row, strict=True))) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when unknown or already revoked."""
        with self._unavailable_on_error("cannot be written"), write_transaction(db := self._db()):
            cursor = db.conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                [utc_timestamp(), key_id],
            )
            changed = cursor.rowcount == 1
        with self._lock:
            self._cache.pop(key_id, None)
        return changed

    def count(self, role: str | None = None, include_revoked: bool = False) -> int:
        """Number of keys (holding ``role``, when given)."""
        keys = self.list_keys()
        return sum(
            1
            for k in keys
            if (include_revoked or k.revoked_at is None) and (role is None or role in k.roles)
        )


__all__ = ["SQLiteKeyStore", "identify_token"]
