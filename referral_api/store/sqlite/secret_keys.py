"""Which secret keys made this database's patient hashes (``secret_keys``, migration 0003).

Only key ids and check values are stored, never a secret. :meth:`SecretKeyRegistry.reconcile`
compares the keyring the service is about to use with what the database remembers: a key
whose secret changed, or a key that has disappeared, would make the records hashed under it
unfindable, so both are refused with a reason instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from referral_api.secret_key import Keyring
from referral_api.store.sqlite.db import LazyDatabase, write_transaction
from referral_api.store.timestamps import utc_timestamp

__all__ = ["KeyRecord", "SecretKeyRegistry"]


@dataclass(frozen=True)
class KeyRecord:
    """A key the database knows: id, when first used, when retired (None: current)."""

    key_id: str
    check_hmac: str
    created_at: str
    retired_at: str | None


class SecretKeyRegistry:
    """The ``secret_keys`` table of one SQLite database."""

    def __init__(self, path: str | Path) -> None:
        self._connections = LazyDatabase(path)

    def records(self) -> list[KeyRecord]:
        """Every known key, by number."""
        rows = self._connections.get().conn.execute(
            "SELECT key_id, check_hmac, created_at, retired_at FROM secret_keys").fetchall()
        return sorted((KeyRecord(*row) for row in rows), key=lambda r: int(r.key_id[1:]))

    def problems(self, keyring: Keyring) -> list[str]:
        """Why ``keyring`` cannot be used with this database (empty when it can)."""
        known = {record.key_id: record for record in self.records()}
        ring = {key.key_id: key for key in keyring.keys}
        found = []
        for key_id, record in known.items():
            key = ring.get(key_id)
            if key is None:
                found.append(f"secret key {key_id} is missing from the keyring: patient "
                             "references hashed under it could no longer be found")
            elif key.check_value() != record.check_hmac:
                found.append(f"the secret of key {key_id} is not the one that made this "
                             "database's patient hashes (was REFERRAL_API_SECRET_KEY or "
                             "secret.key changed?)")
        return found

    def reconcile(self, keyring: Keyring) -> list[str]:
        """Record keys not yet known and retire all but the current one.

        Returns :meth:`problems` (and changes nothing) when the keyring does not match.
        """
        db = self._connections.get()
        with write_transaction(db):
            found = self.problems(keyring)
            if found:
                return found
            now = utc_timestamp()
            for key in keyring.keys:
                db.conn.execute(
                    "INSERT INTO secret_keys (key_id, check_hmac, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key_id) DO NOTHING", [key.key_id, key.check_value(), now])
            db.conn.execute(
                "UPDATE secret_keys SET retired_at = ? WHERE key_id != ? AND retired_at IS NULL",
                [now, keyring.current.key_id])
        return []

    def close(self) -> None:
        """Close this thread's connection."""
        self._connections.close()
